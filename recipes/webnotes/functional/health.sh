#!/bin/sh
# cc-ci functional check of webnotes: GET /health answers "ok".
# cc-ci runs it with BASE_URL, APP_HOST, DOMAIN, STACK_NAME, ABRA_DIR and RECIPE_DIR set;
# exit 0 passes. See docs/testing-custom.md.
set -eu

url="$BASE_URL/health"
if command -v curl >/dev/null 2>&1; then
  body=$(curl -fsS --insecure --max-time 10 "$url")
elif command -v wget >/dev/null 2>&1; then
  body=$(wget -q -O - --no-check-certificate --timeout=10 "$url")
else
  echo "neither curl nor wget is installed" >&2
  exit 2
fi

if [ "$body" != "ok" ]; then
  echo "GET $url answered \"$body\", expected \"ok\"" >&2
  exit 1
fi
echo "GET $url: ok"
