#!/usr/bin/env bash
# cc-ci set-up on a fresh Debian machine, and its main job on the embedded default.
#
# Installs what is missing (docker.io, chromium, busybox-static, git, nix-bin, bubblewrap), starts
# dockerd if it is not running, makes this host look like a Co-op Cloud server (a single-node swarm, the external
# `proxy` overlay network, an abra server entry), builds cc-ci and the local images of the
# bundled example recipe, then tests that recipe with `cc-ci run` and prints the verdict.
# Safe to run again: every step checks before it acts.
#
#   ./setup.sh              set up, then run the bundled example recipe
#   ./setup.sh --no-demo    set up only
#
# abra: the pinned real abra is used when it is on PATH (or named by CCCI_ABRA). This machine
# kind cannot install abra, so without one the demo uses the test double in test/support/abra
# and says so; a production server must install the real binary (docs/install.md).
set -euo pipefail
cd "$(dirname "$0")"

demo=1
for arg in "$@"; do
  case "$arg" in
    --no-demo) demo=0 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown option $arg" >&2; exit 2 ;;
  esac
done

say() { printf '==> %s\n' "$*"; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# 1. Debian packages.
missing=()
for pkg in docker.io chromium busybox-static git nix-bin bubblewrap; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  say "installing ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
else
  say "Debian packages present"
fi

# Node.js: cc-ci and its native modules (better-sqlite3, node-pty) need 20.19 or newer; Debian
# 12's own nodejs is 18, so a too-old one is a clear stop here rather than an npm error later.
if ! command -v node >/dev/null 2>&1; then
  echo "setup.sh: Node.js is not installed; cc-ci needs Node.js >= 20.19 with npm (https://nodejs.org)" >&2
  exit 1
fi
if ! node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 19) ? 0 : 1)'; then
  echo "setup.sh: Node.js $(node --version) is too old; cc-ci needs >= 20.19" >&2
  exit 1
fi

# 2. dockerd (no systemd here: start it ourselves when it is not answering).
if ! docker info >/dev/null 2>&1; then
  say "starting dockerd (log: /var/log/cc-ci-dockerd.log)"
  as_root sh -c 'nohup dockerd >/var/log/cc-ci-dockerd.log 2>&1 &'
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || { echo "dockerd did not start; see /var/log/cc-ci-dockerd.log" >&2; exit 1; }
fi
say "docker $(docker version --format '{{.Server.Version}}')"

# 3. A single-node swarm and the external `proxy` network every recipe joins.
if [ "$(docker info --format '{{.Swarm.LocalNodeState}}')" != "active" ]; then
  say "initialising the swarm"
  docker swarm init --advertise-addr 127.0.0.1 >/dev/null
fi
if ! docker network inspect proxy >/dev/null 2>&1; then
  say "creating the proxy overlay network"
  docker network create -d overlay --attachable proxy >/dev/null
fi

# 4. cc-ci itself.
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "installing npm dependencies (builds better-sqlite3 when no prebuilt binary is reachable)"
  npm ci --no-audit --no-fund
else
  npm run --silent build
fi
cc_ci=(node "$PWD/dist/controller/cli/main.js")

# 5. abra and its server entry.
if [ -n "${CCCI_ABRA:-}" ]; then
  abra="$CCCI_ABRA"
elif command -v abra >/dev/null 2>&1; then
  abra="$(command -v abra)"
else
  abra="$PWD/test/support/abra"
  say "abra is not installed: using the test double ($abra) — install the pinned abra for production"
fi
export CCCI_ABRA="$abra"
export ABRA_DIR="${ABRA_DIR:-$HOME/.abra}"
if [ ! -d "$ABRA_DIR/servers/default" ]; then
  say "adding the local abra server (ABRA_DIR=$ABRA_DIR)"
  "$abra" server add --local -n
fi

# 6. Local images of the bundled example recipes (nothing can be pulled here).
say "building example recipe images"
node dist/fixtures/images.js

"${cc_ci[@]}" doctor

[ "$demo" -eq 1 ] || { say "set-up done (demo skipped)"; exit 0; }

# 7. The main job on the embedded default: the bundled recipe, a real git repository made fresh.
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
node dist/fixtures/recipe-repo.js webnotes "$work/webnotes" >/dev/null
say "testing the bundled example recipe webnotes at main"
state="${CCCI_STATE_DIR:-$HOME/.local/state/cc-ci}"
set +e
"${cc_ci[@]}" run webnotes --repo "$work/webnotes" --ref main --state-dir "$state"
code=$?
set -e
say "cc-ci run exited $code (exit status: 0 = the run passed, 1 = it failed, 2 = an error)"
exit "$code"
