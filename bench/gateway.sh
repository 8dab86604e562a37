#!/usr/bin/env bash
# Gateway benchmark (issues 7 and 12): Eph's preview gateway against nginx (Debian `nginx`)
# proxying to the same backend, in one run, on loopback. Prints figures; not a test. The gateway
# measured is the strict one: every request passes its framing and routing checks.
#
#  1. Throughput: wrk, same threads/connections/duration, against the backend directly (for
#     reference), through nginx (upstream keepalive) and through the gateway, each bounded by
#     wrk's connections and duration. nginx and the gateway alternate over ROUNDS rounds (the
#     order flipped each round) and the median of each is compared, so a neighbour's build
#     that starts mid-run does not land on one of them only. Goal: gateway at least 1.0x
#     nginx's requests per second.
#  2. Added latency: an open-loop probe (gateway_bench probe) at a fixed 1,000 requests/s per
#     target over keep-alive connections, direct, via nginx and via the gateway, interleaved in
#     the same window (so a noisy shared machine hits all three alike). Goal: the gateway's p99
#     minus the direct p99 under 1 ms.
#
#   bench/gateway.sh [SECONDS] [WRK_CONNECTIONS]     (defaults 10 50; needs gateway_bench built)
#
# Environment: EPH_BUILD_DIR (default build/dev), PROXY_THREADS (default 1: nginx workers and
# gateway I/O threads alike), WRK_THREADS (default 1), BACKEND_THREADS (default 1), ROUNDS
# (default 3).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
conns=${2:-50}
build=${EPH_BUILD_DIR:-build/dev}
proxy_threads=${PROXY_THREADS:-1}
wrk_threads=${WRK_THREADS:-1}
backend_threads=${BACKEND_THREADS:-1}
rounds=${ROUNDS:-3}
tool=$build/bench/gateway_bench
[ -x "$tool" ] || { echo "gateway.sh: build first: cmake --build --preset dev --target gateway_bench" >&2; exit 2; }
command -v wrk >/dev/null || { echo "gateway.sh: needs wrk (scripts/install-deps)" >&2; exit 2; }
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$nginx_bin" ] || { echo "gateway.sh: needs nginx (scripts/install-deps)" >&2; exit 2; }

work=$(mktemp -d /tmp/eph-bench-gateway.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

# shellcheck source=bench/nginx_proxy.sh
source bench/nginx_proxy.sh

"$tool" backend --port 0 --threads "$backend_threads" >"$work/backend.log" 2>&1 &
pids+=($!)
backend_port=$(port_from_log "$work/backend.log")
"$tool" gateway --port 0 --backend-port "$backend_port" --threads "$proxy_threads" \
  >"$work/gateway.log" 2>&1 &
pids+=($!)
gateway_port=$(port_from_log "$work/gateway.log")

nginx_port=$(free_port)
write_nginx_conf "$work/nginx" "$backend_port" "$nginx_port" "$proxy_threads"
"$nginx_bin" -p "$work/nginx" -c "$work/nginx/nginx.conf" -e "$work/nginx/logs/error.log" \
  >"$work/nginx.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 200); do
  curl -fsS -o /dev/null -H 'Host: bench.preview.localhost' "http://127.0.0.1:$nginx_port/" 2>/dev/null && break
  sleep 0.05
done
curl -fsS -o /dev/null -H 'Host: bench.preview.localhost' "http://127.0.0.1:$nginx_port/" || {
  cat "$work/nginx.log" "$work/nginx/logs/error.log" >&2; echo "gateway.sh: nginx did not start" >&2; exit 1; }
curl -fsS -o /dev/null -H 'Host: bench.preview.localhost' "http://127.0.0.1:$gateway_port/"

host=bench.preview.localhost
echo "== $(nproc) CPUs; backend $backend_threads thread(s); nginx $("$nginx_bin" -v 2>&1 | sed 's/.*nginx\///') with $proxy_threads worker(s); gateway $proxy_threads I/O thread(s)"

wrk_rps() {
  local out
  out=$(wrk -t"$wrk_threads" -c"$conns" -d"${secs}s" --latency -H "Host: $host" "http://127.0.0.1:$1/")
  echo "$out" | grep -E 'Requests/sec|Non-2xx|Socket errors' >&2
  echo "$out" | awk '/Requests\/sec/ {print $2}'
}
echo "== throughput: wrk -t$wrk_threads -c$conns -d${secs}s; nginx and gateway alternate, $rounds rounds"
echo "-- direct" >&2
direct_rps=$(wrk_rps "$backend_port")
nginx_all=()
gateway_all=()
for round in $(seq 1 "$rounds"); do
  if [ $((round % 2)) = 1 ]; then order="nginx gateway"; else order="gateway nginx"; fi
  for target in $order; do
    echo "-- round $round: $target" >&2
    if [ "$target" = nginx ]; then
      nginx_all+=("$(wrk_rps "$nginx_port")")
    else
      gateway_all+=("$(wrk_rps "$gateway_port")")
    fi
  done
done
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
nginx_rps=$(median "${nginx_all[@]}")
gateway_rps=$(median "${gateway_all[@]}")
echo "rounds: nginx=${nginx_all[*]} gateway=${gateway_all[*]}"

echo "== latency: open loop at 1000 req/s per target for ${secs}s, 16 keep-alive connections each;"
echo "   direct, nginx and gateway interleaved in the same window"
probe_out=$("$tool" probe --target direct="$backend_port" --target nginx="$nginx_port" \
  --target gateway="$gateway_port" --host "$host" --rate 1000 --seconds "$secs" --connections 16)
echo "$probe_out"
direct_lat=$(grep '^direct ' <<<"$probe_out")
nginx_lat=$(grep '^nginx ' <<<"$probe_out")
gateway_lat=$(grep '^gateway ' <<<"$probe_out")

p99() { sed -E 's/.*p99_us=([0-9.]+).*/\1/' <<<"$1"; }
p50() { sed -E 's/.*p50_us=([0-9.]+).*/\1/' <<<"$1"; }
python3 - "$direct_rps" "$nginx_rps" "$gateway_rps" "$(p50 "$direct_lat")" "$(p99 "$direct_lat")" \
  "$(p50 "$nginx_lat")" "$(p99 "$nginx_lat")" "$(p50 "$gateway_lat")" "$(p99 "$gateway_lat")" <<'PY'
import sys
d, n, g, d50, d99, n50, n99, g50, g99 = map(float, sys.argv[1:])
print("== results")
print(f"rps (median of the rounds): direct={d:.0f} nginx={n:.0f} gateway={g:.0f}")
print(f"gateway/nginx rps ratio = {g / n:.2f}  (goal >= 1.00: {'met' if g / n >= 1.0 else 'NOT met'})")
print(f"added p50 at 1000 rps: nginx={n50 - d50:.0f}us gateway={g50 - d50:.0f}us")
print(f"added p99 at 1000 rps: nginx={n99 - d99:.0f}us gateway={g99 - d99:.0f}us"
      f"  (goal < 1000us: {'met' if g99 - d99 < 1000 else 'NOT met'})")
PY
