#!/usr/bin/env bash
# Scale benchmark (engine issue): 10,000 environments in the store. Prints the CPU time of one
# full resync pass (goal < 2 s) and ephd's resident memory holding that store while serving the
# environment list (goal < 150 MB).
#
#   bench/scale.sh [ENVIRONMENTS]     (default 10000; needs a dev build of ephd and resync_bench)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-10000}
build=${EPH_BUILD_DIR:-build/dev}
[ -x "$build/bench/resync_bench" ] && [ -x "$build/cmd/ephd/ephd" ] || {
  echo "scale.sh: build first: cmake --build --preset dev --target ephd resync_bench" >&2; exit 2; }
work=$(mktemp -d /tmp/eph-bench-scale.XXXXXX)
ephd_pid=""
cleanup() {
  [ -n "$ephd_pid" ] && kill "$ephd_pid" 2>/dev/null && wait "$ephd_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
state="sqlite:$work/eph.db"

echo "== resync passes over $n environments (SQLite)"
"$build/bench/resync_bench" --state "$state" --environments "$n" --passes 5

token=""
if "$build/cmd/ephd/ephd" token create --name bench --scope read --state "$state" >"$work/token" 2>/dev/null; then
  token=$(tail -1 "$work/token" | awk '{print $NF}')
fi
"$build/cmd/ephd/ephd" --listen 127.0.0.1:0 --state "$state" --workers 0 >"$work/ephd.log" 2>&1 &
ephd_pid=$!
for _ in $(seq 1 200); do
  port=$(grep -oE 'listening on http://127\.0\.0\.1:[0-9]+' "$work/ephd.log" | grep -oE '[0-9]+$' || true)
  [ -n "$port" ] && break
  sleep 0.05
done
[ -n "${port:-}" ] || { cat "$work/ephd.log"; exit 1; }
rss() { awk '/^VmRSS/ {print $2}' "/proc/$ephd_pid/status"; }
hwm() { awk '/^VmHWM/ {print $2}' "/proc/$ephd_pid/status"; }
echo "== ephd with $n environments"
echo "rss_after_start_kb=$(rss)"
for _ in 1 2 3 4 5; do
  bytes=$(curl -s -H "Authorization: Bearer $token" -o /dev/null -w '%{size_download}' \
    "http://127.0.0.1:$port/api/v1/environments")
done
echo "list_response_bytes=$bytes"
echo "rss_after_5_lists_kb=$(rss) peak_rss_kb=$(hwm) (goal < 153600 kB)"
