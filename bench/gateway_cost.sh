#!/usr/bin/env bash
# Gateway cost per request (issue 12): user-space instructions the gateway spends on one proxied
# request, counted by callgrind. Unlike requests per second this barely moves with the load of a
# shared machine, so a change to the request path can be judged on a busy machine too. The
# gateway (gateway_bench gateway, 1 I/O thread) runs under valgrind; wrk sends keep-alive GETs
# through it to gateway_bench backend for SECONDS; the instructions counted while wrk ran are
# divided by the requests wrk completed. Prints figures; not a test.
#
#   bench/gateway_cost.sh [SECONDS] [WRK_CONNECTIONS]     (defaults 8 20; needs valgrind, wrk)
#
# Environment: EPH_BUILD_DIR (default build/dev), PRELOAD (an allocator to LD_PRELOAD, to compare).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-8}
conns=${2:-20}
build=${EPH_BUILD_DIR:-build/dev}
tool=$build/bench/gateway_bench
[ -x "$tool" ] || { echo "gateway_cost.sh: build first: cmake --build --preset dev --target gateway_bench" >&2; exit 2; }
for t in valgrind callgrind_control callgrind_annotate wrk; do
  command -v "$t" >/dev/null || { echo "gateway_cost.sh: needs $t (Debian valgrind, wrk)" >&2; exit 2; }
done

work=$(mktemp -d /tmp/eph-bench-gwcost.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

port_from_log() {
  local port=""
  for _ in $(seq 1 400); do
    port=$(grep -oE 'listening on 127\.0\.0\.1:[0-9]+' "$1" | grep -oE '[0-9]+$' || true)
    [ -n "$port" ] && break
    sleep 0.05
  done
  [ -n "$port" ] || { cat "$1" >&2; echo "gateway_cost.sh: no listener in $1" >&2; exit 1; }
  echo "$port"
}

"$tool" backend --port 0 --threads 1 >"$work/backend.log" 2>&1 &
pids+=($!)
backend_port=$(port_from_log "$work/backend.log")
LD_PRELOAD=${PRELOAD:-} valgrind --tool=callgrind --instr-atstart=no \
  --callgrind-out-file="$work/callgrind.out" \
  "$tool" gateway --port 0 --backend-port "$backend_port" --threads 1 >"$work/gateway.log" 2>&1 &
gateway_pid=$!
pids+=($gateway_pid)
gateway_port=$(port_from_log "$work/gateway.log")
host=bench.preview.localhost
for _ in 1 2 3; do curl -fsS -o /dev/null -H "Host: $host" "http://127.0.0.1:$gateway_port/"; done

callgrind_control -i on "$gateway_pid" >/dev/null
out=$(wrk -t1 -c"$conns" -d"${secs}s" -H "Host: $host" "http://127.0.0.1:$gateway_port/")
callgrind_control -i off "$gateway_pid" >/dev/null
callgrind_control -d "$gateway_pid" >/dev/null
requests=$(echo "$out" | awk '/requests in/ {print $1}')
errors=$(echo "$out" | grep -E 'Non-2xx|Socket errors' || true)
dump=$(ls -t "$work"/callgrind.out* | head -1)
for _ in $(seq 1 50); do [ -s "$dump" ] && break; sleep 0.1; done
instructions=$(callgrind_annotate "$dump" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
echo "== gateway cost under callgrind: wrk -t1 -c$conns -d${secs}s${PRELOAD:+, LD_PRELOAD=$PRELOAD}"
[ -n "$errors" ] && echo "wrk: $errors"
echo "requests=$requests instructions=$instructions instructions_per_request=$((instructions / requests))"
