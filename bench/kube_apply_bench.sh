#!/usr/bin/env bash
# Kubernetes provider benchmark (issue 4). Prints figures; not a test.
#
#  1. Apply: the multi-service fixture's rendered objects (test/kubernetes/app, overlay preview:
#     12 Deployments, 12 Services, 2 ConfigMaps, 1 Ingress) into a fresh namespace, with Eph's
#     apply path (bench/kube_apply: KubeApplier, server-side apply, fieldManager eph) and with
#     `kubectl apply --server-side` from the same pinned Kubernetes release, in one run, ROUNDS
#     rounds, alternating which goes first. Both are timed as whole processes (kubeconfig,
#     discovery, every request). Goal: Eph at most 1.0x kubectl.
#  2. Readiness: the delay from the last pod becoming Ready to the provider reporting the
#     environment ready (watch-driven). Goal: under 500 ms.
#
#   bench/kube_apply_bench.sh [ROUNDS]          (default 7; needs the kube_apply target built)
#
# Uses the test bed at $EPH_TESTBED_DIR if kubernetes.env is there, otherwise starts a private
# one in a temporary directory and stops it at the end. Namespaces it creates are deleted.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-7}
build=${EPH_BUILD_DIR:-build/dev}
tool=$build/bench/kube_apply
[ -x "$tool" ] || { echo "kube_apply_bench.sh: build first: cmake --build --preset dev --target kube_apply" >&2; exit 2; }

own_bed=""
if [ -z "${EPH_TESTBED_DIR:-}" ] || [ ! -f "$EPH_TESTBED_DIR/kubernetes.env" ]; then
  EPH_TESTBED_DIR=$(mktemp -d /tmp/eph-bench-kube.XXXXXX)
  own_bed=$EPH_TESTBED_DIR
fi
export EPH_TESTBED_DIR
work=$(mktemp -d /tmp/eph-bench-kube-work.XXXXXX)
namespaces=()
cleanup() {
  if [ ${#namespaces[@]} -gt 0 ]; then
    "$EPH_TEST_KUBE_BIN/kubectl" --kubeconfig "$EPH_TEST_KUBECONFIG" delete namespace --wait=false \
      "${namespaces[@]}" >/dev/null 2>&1 || true
  fi
  if [ -n "$own_bed" ]; then
    test/bed/kubernetes/down >/dev/null 2>&1 || true
    rm -rf "$own_bed"
  fi
  rm -rf "$work"
}
trap cleanup EXIT

if [ -n "$own_bed" ]; then test/bed/kubernetes/up >/dev/null; fi
# shellcheck disable=SC1091
source "$EPH_TESTBED_DIR/kubernetes.env"
bin=$EPH_TEST_KUBE_BIN
# kubectl keeps its discovery cache under HOME; give it one of its own (warm after round 1).
export HOME=$work/home
mkdir -p "$HOME"
kubectl() { "$bin/kubectl" --kubeconfig "$EPH_TEST_KUBECONFIG" "$@"; }

rendered=$work/rendered.yaml
"$bin/kustomize" build test/kubernetes/app/overlays/preview >"$rendered"
objects=$(grep -c '^kind:' "$rendered")
echo "kubectl $("$bin/kubectl" version --client -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["clientVersion"]["gitVersion"])'), server $EPH_TEST_KUBE_VERSION; $objects objects; $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"

now_ms() { echo $(($(date +%s%N) / 1000000)); }
run_eph() { # namespace -> wall ms on stdout; tool's own line to stderr
  local t0 t1 out
  t0=$(now_ms)
  out=$("$tool" apply --kubeconfig "$EPH_TEST_KUBECONFIG" --namespace "$1" --file "$rendered")
  t1=$(now_ms)
  echo "$out" >&2
  echo $((t1 - t0))
}
run_kubectl() {
  local t0 t1
  t0=$(now_ms)
  kubectl apply --server-side --field-manager=kubectl-bench -n "$1" -f "$rendered" >/dev/null
  t1=$(now_ms)
  echo $((t1 - t0))
}

run_id=$(date +%s)
eph_times=()
kubectl_times=()
printf '%-6s %10s %12s %7s   %s\n' round "eph ms" "kubectl ms" ratio "(eph in-process)"
for ((r = 1; r <= rounds; r++)); do
  ns_e=bench-eph-$run_id-$r
  ns_k=bench-kubectl-$run_id-$r
  kubectl create namespace "$ns_e" >/dev/null
  kubectl create namespace "$ns_k" >/dev/null
  namespaces+=("$ns_e" "$ns_k")
  if ((r % 2 == 1)); then
    e=$(run_eph "$ns_e" 2>"$work/eph.out"); k=$(run_kubectl "$ns_k")
  else
    k=$(run_kubectl "$ns_k"); e=$(run_eph "$ns_e" 2>"$work/eph.out")
  fi
  eph_times+=("$e")
  kubectl_times+=("$k")
  printf '%-6s %10s %12s %7s   %s\n' "$r" "$e" "$k" "$(python3 -c "print(f'{$e/$k:.2f}x')")" \
    "$(cat "$work/eph.out")"
done
python3 - "${eph_times[*]}" "${kubectl_times[*]}" <<'PY'
import statistics, sys
e = [int(x) for x in sys.argv[1].split()]
k = [int(x) for x in sys.argv[2].split()]
me, mk = statistics.median(e), statistics.median(k)
print(f"median: eph {me:.0f} ms, kubectl {mk:.0f} ms, ratio {me/mk:.2f}x (goal <= 1.0x); "
      f"without round 1 (cold caches): eph {statistics.median(e[1:]) if len(e) > 1 else me:.0f} ms, "
      f"kubectl {statistics.median(k[1:]) if len(k) > 1 else mk:.0f} ms")
PY

# The applied namespaces hold a few hundred pods that kwok and the controllers are still
# starting; remove them first so the readiness rounds do not queue behind them.
kubectl delete namespace --wait=true --timeout=300s "${namespaces[@]}" >/dev/null 2>&1 || true
namespaces=()

echo
echo "readiness: last pod Ready -> provider reports ready (goal < 500 ms)"
"$tool" ready-latency --kubeconfig "$EPH_TEST_KUBECONFIG" --source test/kubernetes/app \
  --manifests overlays/preview --kustomize "$bin/kustomize" --rounds "${READY_ROUNDS:-3}"
