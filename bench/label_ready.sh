#!/usr/bin/env bash
# Label -> ready on Docker (issue 13): the time from a signed `pull_request labeled` webhook to
# `ready` in the environment's history, for the demo app (deploy/demo), through ephd and the GitHub
# stand-in, with a breakdown (intake, queue wait, forge reads, apply, readiness) and, per
# reconcile pass, the forge fetches (from the stand-in's request log) and the writes of the
# environment row (its optimistic-concurrency version: every insert or update bumps it).
#
#   bench/label_ready.sh [RUNS] [HEALTHCHECK_INTERVAL]     (defaults 5 and the demo's own, 1s)
#
# A healthcheck interval other than the demo's (e.g. 100ms) rewrites the compose file's, to show
# what the controller costs apart from Docker's first healthcheck, which runs one interval after
# the container starts. EPH_BENCH_LOG=FILE keeps ephd's debug log. Needs a dev build (ephd), root (its own dockerd from the test bed) and the
# stand-in's npm packages. Bounded; prints figures; not a test.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
interval=${2:-}
build=${EPH_BUILD_DIR:-build/dev}
ephd=${EPH_EPHD:-$build/cmd/ephd/ephd}  # another binary, e.g. a copy of the build before a change
[ -x "$ephd" ] || {
  echo "label_ready.sh: build first: cmake --build --preset dev --target ephd" >&2
  exit 2
}
[ -d test/github/node_modules ] || { echo "label_ready.sh: run scripts/install-deps" >&2; exit 2; }

export EPH_TESTBED_DIR
EPH_TESTBED_DIR=$(mktemp -d /tmp/eph-bench-ready.XXXXXX)
work=$EPH_TESTBED_DIR
ephd_pid=""
standin_pid=""
cleanup() {
  # EPH_BENCH_LOG=FILE keeps ephd's debug log, for a closer look at one run's hops.
  [ -n "${EPH_BENCH_LOG:-}" ] && cp "$work/ephd.log" "$EPH_BENCH_LOG" 2>/dev/null || true
  [ -n "$ephd_pid" ] && kill "$ephd_pid" 2>/dev/null && wait "$ephd_pid" 2>/dev/null || true
  [ -n "$standin_pid" ] && kill "$standin_pid" 2>/dev/null && wait "$standin_pid" 2>/dev/null || true
  test/bed/docker/down >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

test/bed/docker/up >/dev/null
docker_host=$(sed -n 's/^EPH_TEST_DOCKER_HOST=//p' "$work/docker.env")

# The demo's app image, tagged for every pull request the runs open (pr-1 .. pr-RUNS).
mkdir -p "$work/app" "$work/repo"
gcc -static -O2 -o "$work/app/demo_server" deploy/demo/app/demo_server.c
cp deploy/demo/app/Dockerfile "$work/app/"
DOCKER_HOST=$docker_host DOCKER_BUILDKIT=0 docker build -q -t eph-demo/web:dev "$work/app" >/dev/null
for n in $(seq 1 "$runs"); do
  DOCKER_HOST=$docker_host docker tag eph-demo/web:dev "eph-demo/web:pr-$n"
done
cp deploy/demo/repo/* "$work/repo/"
if [ -n "$interval" ]; then
  sed -i "s/interval: 1s/interval: $interval/" "$work/repo/compose.yaml"
fi

token=ghp_$(openssl rand -hex 20)
secret=$(openssl rand -hex 32)
: >"$work/standin.log"
node test/github/standin.mjs --port 0 --token "$token" >"$work/standin.log" 2>&1 &
standin_pid=$!
for _ in $(seq 1 300); do
  standin=$(sed -n '1s/^listening on //p' "$work/standin.log")
  [ -n "$standin" ] && break
  sleep 0.1
done
[ -n "${standin:-}" ] || { cat "$work/standin.log"; echo "label_ready.sh: no stand-in" >&2; exit 1; }

: >"$work/ephd.log"
EPH_LOG_LEVEL=debug EPH_GITHUB_API_URL=$standin EPH_GITHUB_TOKEN=$token \
  EPH_GITHUB_WEBHOOK_SECRET=$secret EPH_DOCKER_HOST=$docker_host \
  "$ephd" --listen 127.0.0.1:0 --state "sqlite:$work/eph.db" >"$work/ephd.log" 2>&1 &
ephd_pid=$!
for _ in $(seq 1 300); do
  port=$(grep -oE 'listening on http://127\.0\.0\.1:[0-9]+' "$work/ephd.log" | grep -oE '[0-9]+$' || true)
  [ -n "$port" ] && break
  sleep 0.05
done
[ -n "${port:-}" ] || { cat "$work/ephd.log"; echo "label_ready.sh: ephd did not start" >&2; exit 1; }
api_token=$("$ephd" token create --name bench --scope write \
  --state "sqlite:$work/eph.db" | tail -1)

python3 bench/label_ready.py --runs "$runs" --standin "$standin" --ephd "http://127.0.0.1:$port" \
  --token "$api_token" --secret "$secret" --repo-dir "$work/repo" --log "$work/ephd.log" \
  --db "$work/eph.db" --docker-host "$docker_host" --interval "${interval:-1s (the demo)}"
