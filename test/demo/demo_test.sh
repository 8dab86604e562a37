#!/usr/bin/env bash
# scripts/demo as a user runs it, on the test bed's Docker engine and the existing build: the
# printed preview URL serves the sample app through ephd's gateway, a second start says the demo
# runs (one ephd), and `scripts/demo stop` leaves no container, network or volume of the
# environment on the engine.
set -euo pipefail

: "${EPH_TESTBED_DIR:?set by CTest}" "${EPH_SOURCE_DIR:?set by CTest}" "${EPH_BINARY_DIR:?set by CTest}"
DEMO=$EPH_SOURCE_DIR/scripts/demo

fail() {
  printf 'FAIL: %s\n' "$*" >&2
  exit 1
}

DOCKER_HOST=$(sed -n 's/^EPH_TEST_DOCKER_HOST=//p' "$EPH_TESTBED_DIR/docker.env" 2>/dev/null || true)
[[ -n "$DOCKER_HOST" ]] || fail "no EPH_TEST_DOCKER_HOST in $EPH_TESTBED_DIR/docker.env (fixture docker)"
SOCK=${DOCKER_HOST#unix://}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

tmp=$(mktemp -d /tmp/eph-demo-test.XXXXXX)
export EPH_DEMO_SKIP_BUILD=1 EPH_BUILD_DIR=$EPH_BINARY_DIR EPH_DEMO_DIR=$tmp/demo DOCKER_HOST
EPH_DEMO_API_PORT=$(free_port)
EPH_DEMO_GATEWAY_PORT=$(free_port)
while [[ "$EPH_DEMO_GATEWAY_PORT" == "$EPH_DEMO_API_PORT" ]]; do EPH_DEMO_GATEWAY_PORT=$(free_port); done
export EPH_DEMO_API_PORT EPH_DEMO_GATEWAY_PORT

finish() {
  local rc=$?
  if ((rc != 0)); then
    for f in ephd.log standin.log image.log; do
      if [[ -f "$EPH_DEMO_DIR/$f" ]]; then
        printf -- '--- last lines of %s\n' "$f" >&2
        tail -n 40 "$EPH_DEMO_DIR/$f" >&2
      fi
    done
  fi
  "$DEMO" stop >/dev/null 2>&1 || true
  rm -rf "$tmp"
  exit "$rc"
}
trap finish EXIT

# Objects of environment $1 still on the engine, one name a line.
engine_objects() {
  local filter kind
  filter=$(jq -rn --arg env "$1" \
    '{label: ["eph.dev/managed-by=eph", "eph.dev/environment=\($env)"]} | @uri')
  for kind in containers/json networks volumes; do
    curl -fsS --max-time 10 --unix-socket "$SOCK" "http://localhost/v1.41/$kind?all=1&filters=$filter" |
      jq -r '(if type == "object" then .Volumes // [] else . end)[] | (.Names // [.Name])[0]'
  done
}

echo "== scripts/demo (API port $EPH_DEMO_API_PORT, gateway port $EPH_DEMO_GATEWAY_PORT)"
out=$("$DEMO" 2>&1) || {
  printf '%s\n' "$out"
  fail "scripts/demo exited non-zero"
}
printf '%s\n' "$out"
url=$(sed -n 's/^Preview: //p' <<<"$out")
[[ "$url" =~ ^http://([a-z0-9-]+)\.preview\.localhost:$EPH_DEMO_GATEWAY_PORT/?$ ]] ||
  fail "no gateway preview URL in the output (got '$url')"
name=${BASH_REMATCH[1]}

page=$(curl -fsS --max-time 10 "$url") || fail "$url does not answer"
grep -q 'Hello from an Eph preview' <<<"$page" || fail "$url did not serve the sample app: $page"
grep -q 'pr-1' <<<"$page" || fail "$url does not serve the image of pull request 1: $page"
grep -q "$name.preview.localhost" <<<"$page" || fail "the app did not see the preview's Host: $page"
[[ -n "$(engine_objects "$name")" ]] || fail "no container of $name on the test bed's engine"

echo "== a second scripts/demo while it runs"
again=$("$DEMO" 2>&1) || fail "the second scripts/demo failed: $again"
grep -q 'already running' <<<"$again" || fail "the second run did not say the demo runs: $again"
grep -qF "Preview: $url" <<<"$again" || fail "the second run did not print the URL again: $again"
# ephd processes of this demo: those whose state is the demo's database (other tests may run
# ephd from the same build at the same time).
demo_ephds() {
  local pid n=0
  for pid in $(pgrep -f "^$EPH_BINARY_DIR/cmd/ephd/ephd" || true); do
    if tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null |
      grep -qxF "EPH_STATE=sqlite:$EPH_DEMO_DIR/eph.db"; then
      n=$((n + 1))
    fi
  done
  echo "$n"
}
ephds=$(demo_ephds)
[[ "$ephds" == 1 ]] || fail "$ephds ephd processes of the demo after two starts"

status=$("$DEMO" status)
printf '%s\n' "$status"
grep -q "^preview: *$name ready" <<<"$status" || fail "status does not show $name ready"

violations=$(curl -fsS "$(cat "$EPH_DEMO_DIR/standin.url")/_standin/violations")
[[ "$violations" == "[]" ]] || fail "the stand-in recorded violations: $violations"

echo "== scripts/demo stop"
"$DEMO" stop || fail "scripts/demo stop exited non-zero"
left=$(engine_objects "$name")
[[ -z "$left" ]] || fail "left on the engine after stop: $left"
for what in ephd standin; do
  [[ ! -f "$EPH_DEMO_DIR/$what.pid" ]] || fail "$what.pid is still there after stop"
done
[[ "$(demo_ephds)" == 0 ]] || fail "the demo's ephd still runs after stop"
grep -q '^ephd: *not running' <<<"$("$DEMO" status)" || fail "status does not say ephd stopped"
echo "PASS"
