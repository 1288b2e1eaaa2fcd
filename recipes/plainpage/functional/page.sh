#!/bin/sh
# cc-ci functional check of plainpage: the page is served with its title and a version line.
# cc-ci runs it with BASE_URL, APP_HOST, DOMAIN, STACK_NAME, ABRA_DIR and RECIPE_DIR set;
# exit 0 passes. See docs/testing-custom.md.
set -eu

url="$BASE_URL/"
if command -v curl >/dev/null 2>&1; then
  page=$(curl -fsS --insecure --max-time 10 -H "Host: $APP_HOST" "$url")
elif command -v wget >/dev/null 2>&1; then
  page=$(wget -q -O - --no-check-certificate --timeout=10 --header "Host: $APP_HOST" "$url")
else
  echo "neither curl nor wget is installed" >&2
  exit 2
fi

case $page in
  *'id="page-title"'*) ;;
  *) echo "GET $url has no element with id=\"page-title\"" >&2; exit 1 ;;
esac
version=$(printf '%s\n' "$page" | sed -n 's/.*<p id="version">\(Version: [^<]*\)<.*/\1/p')
if [ -z "$version" ]; then
  echo "GET $url has no version line" >&2
  exit 1
fi
echo "GET $url: the page and its title are there ($version)"
