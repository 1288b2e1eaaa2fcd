#!/usr/bin/env bash
# The baseline cc-ci is measured against (bench/baseline.ts): what a recipe maintainer does by
# hand to test a change of the bundled webnotes recipe with abra — the same abra calls cc-ci
# makes, one after another, abra waiting for convergence (no -c), a curl to see it serves.
#
#   bench/abra-script.sh REPO REF install|full PORT
#
#   install  a fresh app of REF: new, secrets, deploy, serving
#   full     install; then the upgrade from the last release (a second app at the release,
#            a note written, upgraded in place to REF, the note still there); then backup and
#            restore on it (a note, backup, the note changed, restore, the note back)
#
# Env: ABRA (the abra binary, default abra), ABRA_DIR (a directory whose servers/default exists;
# the recipe is cloned into its recipes/). PORT is the host port the app's web service is
# published on (a local swarm has no Traefik: compose.local.yml publishes it, as a maintainer
# would). Prints `VERDICT passed|failed <ms> <why>` as soon as it knows, then removes every app
# it made (undeploy, wait for the containers, rm) and prints `DONE <ms>`. Exit 0 when passed.
set -uo pipefail

repo=$1 ref=$2 mode=$3 port=$4
abra=${ABRA:-abra}
recipe=webnotes
dir="$ABRA_DIR/recipes/$recipe"
t0=$(date +%s%3N)
ms() { echo $(($(date +%s%3N) - t0)); }
say() { echo "[$(ms)ms] $*" >&2; }
apps=()

run() {
  say "\$ $*"
  "$@" >&2
}

cleanup() {
  for d in "${apps[@]}"; do
    run "$abra" app undeploy "$d" -n
    stack=${d//./_}
    for _ in $(seq 1 120); do
      [ -z "$(docker ps -aq --filter "label=com.docker.stack.namespace=$stack")" ] && break
      sleep 0.5
    done
    run "$abra" app rm "$d" -f -n
  done
  echo "DONE $(ms)"
}

verdict() {
  echo "VERDICT $1 $(ms) ${2:-}"
  cleanup
  [ "$1" = passed ]
  exit $?
}

fail() { verdict failed "$*"; }

# Waits until GET $1 answers 200 (and, with $2, its body is $2).
serving() {
  for _ in $(seq 1 120); do
    body=$(curl -fsS --max-time 5 "http://127.0.0.1:$port$1" 2>/dev/null) && { [ -z "${2:-}" ] || [ "$body" = "$2" ]; } && return 0
    sleep 0.5
  done
  return 1
}

note() { curl -fsS --max-time 5 -X POST --data-binary "$2" "http://127.0.0.1:$port/cgi-bin/notes?key=$1" >/dev/null; }

# A fresh app of the checkout as it is: env, the local port overlay, secrets.
new_app() {
  local d=$1
  run "$abra" app new "$recipe" -s default -D "$d" -C -n || fail "abra app new $d"
  apps+=("$d")
  sed -i 's/^COMPOSE_FILE=.*/COMPOSE_FILE="compose.yml:compose.local.yml"/' "$ABRA_DIR/servers/default/$d.env"
  run "$abra" app secret generate "$d" --all -n || fail "abra app secret generate $d"
}

rm -rf "$dir"
git clone -q "$repo" "$dir" || fail "git clone"
git -C "$dir" checkout -q "$ref" || fail "git checkout $ref"
head=$(git -C "$dir" rev-parse HEAD)
cat >"$dir/compose.local.yml" <<EOF
version: "3.8"
services:
  app:
    ports:
      - { target: 8080, published: $port, protocol: tcp, mode: host }
EOF
echo compose.local.yml >>"$dir/.git/info/exclude"

suffix() { od -An -N3 -tx1 /dev/urandom | tr -d ' \n'; }

# install
d1="scrp-$(suffix).ci.localhost"
new_app "$d1"
run "$abra" app deploy "$d1" -C -n || fail "install: abra app deploy"
serving /health || fail "install: not serving"
say "install passed"
[ "$mode" = install ] && verdict passed install

# upgrade: install's app goes first (one port), then the last release, a note, the head in place.
run "$abra" app undeploy "$d1" -n
for _ in $(seq 1 120); do [ -z "$(docker ps -aq --filter "label=com.docker.stack.namespace=${d1//./_}")" ] && break; sleep 0.5; done
run "$abra" app rm "$d1" -f -n
apps=()
base=$(git -C "$dir" tag --merged "$head" --sort=-v:refname | head -n 1)
[ -n "$base" ] || fail "no release below $ref"
d2="scrp-$(suffix).ci.localhost"
new_app "$d2"
run "$abra" app deploy "$d2" "$base" -n || fail "upgrade: abra app deploy $base"
serving /health || fail "upgrade: $base not serving"
note upgrade before-upgrade || fail "upgrade: could not write a note"
git -C "$dir" checkout -q "$head"
run "$abra" app deploy "$d2" -C -f -n || fail "upgrade: abra app deploy -C -f"
serving "/cgi-bin/notes?key=upgrade" before-upgrade || fail "upgrade: the note is gone"
say "upgrade passed"

# backup and restore
note backup before-backup || fail "backup: could not write a note"
NO_COLOR=1 script -qec "$abra app backup create $d2 -n" /dev/null >&2 || fail "backup: abra app backup create"
say "backup passed"
note backup changed || fail "restore: could not change the note"
NO_COLOR=1 script -qec "$abra app restore $d2 -n" /dev/null >&2 || fail "restore: abra app restore"
serving "/cgi-bin/notes?key=backup" before-backup || fail "restore: the note did not come back"
say "restore passed"
verdict passed full
