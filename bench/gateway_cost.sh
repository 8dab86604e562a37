#!/usr/bin/env bash
# Gateway cost per request (issue 12): the user-space instructions the gateway and, for
# comparison, one nginx worker (configured as in bench/gateway.sh) spend on one proxied request,
# counted by callgrind. Unlike requests per second this barely moves with the load of a shared
# machine, so a change to the request path can be judged on a busy machine too. Each proxy
# (gateway_bench gateway with 1 I/O thread; nginx with master_process off, so its one worker is
# the process valgrind runs) runs under valgrind in turn; wrk sends keep-alive GETs through it
# to gateway_bench backend for SECONDS; the instructions counted while wrk ran are divided by
# the requests wrk completed. Prints figures; not a test.
#
#   bench/gateway_cost.sh [SECONDS] [WRK_CONNECTIONS]     (defaults 8 20; needs valgrind, wrk)
#
# Environment: EPH_BUILD_DIR (default build/dev), PRELOAD (an allocator to LD_PRELOAD into the
# gateway, to compare allocators).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-8}
conns=${2:-20}
build=${EPH_BUILD_DIR:-build/dev}
tool=$build/bench/gateway_bench
[ -x "$tool" ] || { echo "gateway_cost.sh: build first: cmake --build --preset dev --target gateway_bench" >&2; exit 2; }
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$nginx_bin" ] || { echo "gateway_cost.sh: needs nginx (scripts/install-deps)" >&2; exit 2; }
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

# shellcheck source=bench/nginx_proxy.sh
source bench/nginx_proxy.sh

"$tool" backend --port 0 --threads 1 >"$work/backend.log" 2>&1 &
pids+=($!)
backend_port=$(port_from_log "$work/backend.log")
host=bench.preview.localhost

# measure NAME PORT|log COMMAND...: runs COMMAND under callgrind with instrumentation off, waits
# until it answers on PORT (or the port its log names), counts instructions while wrk runs
# through it, stops it and prints one line.
measure() {
  local name=$1 port=$2 log=$work/$1.log
  shift 2
  valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$work/$name.out" "$@" \
    >"$log" 2>&1 &
  local pid=$!
  pids+=("$pid")
  [ "$port" = log ] && port=$(port_from_log "$log")
  local up=""
  for _ in $(seq 1 400); do
    curl -fsS -o /dev/null -H "Host: $host" "http://127.0.0.1:$port/" 2>/dev/null && { up=1; break; }
    sleep 0.05
  done
  [ -n "$up" ] || { cat "$log" >&2; echo "gateway_cost.sh: $name did not answer" >&2; exit 1; }
  callgrind_control -i on "$pid" >/dev/null 2>&1
  local out
  out=$(wrk -t1 -c"$conns" -d"${secs}s" -H "Host: $host" "http://127.0.0.1:$port/")
  callgrind_control -i off "$pid" >/dev/null 2>&1
  callgrind_control -d "$pid" >/dev/null 2>&1
  local requests errors dump="" instructions=""
  requests=$(echo "$out" | awk '/requests in/ {print $1}')
  errors=$(echo "$out" | grep -E 'Non-2xx|Socket errors' || true)
  for _ in $(seq 1 100); do
    dump=$(ls -t "$work/$name.out".* 2>/dev/null | head -1 || true)
    if [ -n "$dump" ] && [ -s "$dump" ]; then
      instructions=$(callgrind_annotate "$dump" 2>/dev/null |
        awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
      [ -n "$instructions" ] && break
    fi
    sleep 0.1
  done
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  [ -n "$instructions" ] || { echo "gateway_cost.sh: no callgrind figures for $name" >&2; exit 1; }
  [ -n "$errors" ] && echo "$name: wrk: $errors" >&2
  echo "$name requests=$requests instructions=$instructions instructions_per_request=$((instructions / requests))"
}

nginx_port=$(free_port)
write_nginx_conf "$work/nginx" "$backend_port" "$nginx_port" 1 off

echo "== cost per proxied request under callgrind: wrk -t1 -c$conns -d${secs}s each${PRELOAD:+ (gateway with LD_PRELOAD=$PRELOAD)}"
gateway_line=$(LD_PRELOAD=${PRELOAD:-} measure gateway log "$tool" gateway --port 0 \
  --backend-port "$backend_port" --threads 1)
echo "$gateway_line"
nginx_line=$(measure nginx "$nginx_port" "$nginx_bin" -p "$work/nginx" \
  -c "$work/nginx/nginx.conf" -e "$work/nginx/logs/error.log")
echo "$nginx_line"
g=$(echo "$gateway_line" | grep -oE 'instructions_per_request=[0-9]+' | cut -d= -f2)
n=$(echo "$nginx_line" | grep -oE 'instructions_per_request=[0-9]+' | cut -d= -f2)
python3 -c "print('gateway/nginx instructions per request = %.2f' % ($g / $n))"
