# shellcheck shell=bash
# Shared by up, down, restart-apiserver and smoke (sourced, never run). Defines where the
# Kubernetes test bed keeps its state and how its processes are started, checked and stopped.
#
# Layout under $EPH_TESTBED_DIR (other test beds may share that directory; this one touches only):
#   kubernetes.env        the public interface, sourceable KEY=VALUE lines
#   kubernetes/           everything else: pki/, etcd/, logs/, run/ (pid files), kubeconfigs
#
# Each process runs in its own session, so its pid is also its process-group id and stopping it
# kills the whole group.

bed_here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck disable=SC2034 # used by the scripts that source this
bed_repo="$(cd "$bed_here/../../.." && pwd)"

bed_die() {
  echo "test/bed/kubernetes: $*" >&2
  exit 1
}

bed_log() { echo "test/bed/kubernetes: $*" >&2; }

bed_init_paths() {
  [[ -n "${EPH_TESTBED_DIR:-}" ]] || bed_die "EPH_TESTBED_DIR must be set (an absolute path)"
  [[ "$EPH_TESTBED_DIR" == /* ]] || bed_die "EPH_TESTBED_DIR must be absolute, got '$EPH_TESTBED_DIR'"
  bed_top="${EPH_TESTBED_DIR%/}"
  bed_env_file="$bed_top/kubernetes.env"
  bed_dir="$bed_top/kubernetes"
  bed_pki="$bed_dir/pki"
  bed_logs="$bed_dir/logs"
  bed_run="$bed_dir/run"
  bed_ports_file="$bed_run/ports"
}

# Serialises up / down / restart-apiserver for the rest of the calling script: an exclusive
# lock on the $EPH_TESTBED_DIR directory itself, so no lock file is left behind.
bed_lock() {
  mkdir -p "$bed_top"
  exec 8<"$bed_top"
  flock -w 300 8 || bed_die "timed out waiting for the lock on $bed_top"
}

# The components in start order; they are stopped in reverse.
bed_components=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok)

bed_pid() { # component -> pid on stdout, or fails
  local f="$bed_run/$1.pid" pid
  [[ -f "$f" ]] || return 1
  read -r pid <"$f" || return 1
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  echo "$pid"
}

# True if the component's recorded process is alive and is ours (guards against pid reuse: every
# component's command line names a path under the state directory).
bed_alive() {
  local pid
  pid="$(bed_pid "$1")" || return 1
  [[ -r "/proc/$pid/cmdline" ]] || return 1
  tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -qF -- "$bed_dir" || return 1
  # A zombie is not alive.
  [[ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ]]
}

# Starts "$@" as component $1 in its own session, output to logs/$1.log, pid in run/$1.pid.
bed_start() {
  local name=$1
  shift
  mkdir -p "$bed_logs" "$bed_run"
  rm -f "$bed_run/$name.pid"
  # The inner shell records its own pid, then execs the program: setsid may fork, so $! is not
  # reliably the program's pid. Only stdin/stdout/stderr are redirected; close other inherited
  # descriptors (such as the lock) so a caller waiting on a pipe is not held open.
  # shellcheck disable=SC2016 # expanded by the inner shell
  setsid bash -c 'echo $$ >"$1"; shift; exec "$@"' bed-start "$bed_run/$name.pid" "$@" \
    </dev/null >>"$bed_logs/$name.log" 2>&1 8>&- 9>&- &
  local i
  for ((i = 0; i < 100; i++)); do
    [[ -s "$bed_run/$name.pid" ]] && return 0
    sleep 0.05
  done
  bed_die "$name did not start (no pid file)"
}

# Stops a component's process group: SIGTERM, then SIGKILL after a grace period.
bed_stop() {
  local name=$1 grace=${2:-20} pid i
  pid="$(bed_pid "$name")" || { rm -f "$bed_run/$name.pid"; return 0; }
  if bed_alive "$name"; then
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < grace * 10; i++)); do
      bed_group_alive "$pid" || break
      sleep 0.1
    done
    if bed_group_alive "$pid"; then
      bed_log "$name (pid $pid) did not stop within ${grace}s, killing it"
      kill -KILL -- "-$pid" 2>/dev/null || true
      for ((i = 0; i < 50; i++)); do
        bed_group_alive "$pid" || break
        sleep 0.1
      done
    fi
  fi
  rm -f "$bed_run/$name.pid"
}

# True while any live (non-zombie) process is in process group $1.
bed_group_alive() {
  ps -eo pgid=,stat= | awk -v g="$1" '$1 == g && $2 !~ /^Z/ { found = 1 } END { exit !found }'
}

# Prints $1 free TCP ports on 127.0.0.1, one a line. They are held open together while being
# chosen, so they are distinct; another process could still take one before we bind it, which up
# reports as a start failure.
bed_free_ports() {
  python3 - "$1" <<'PY'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    socks.append(s)
for s in socks:
    print(s.getsockname()[1])
PY
}

# Waits until "$@" succeeds, for at most $1 seconds, polling every 0.2 s. Fails early if the
# component named by $2 has died. Usage: bed_wait SECONDS COMPONENT WHAT COMMAND...
bed_wait() {
  local seconds=$1 component=$2 what=$3
  shift 3
  local deadline=$((SECONDS + seconds))
  while ((SECONDS < deadline)); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    if [[ -n "$component" ]] && ! bed_alive "$component"; then
      bed_fail "$component" "$component exited while waiting for: $what"
    fi
    sleep 0.2
  done
  bed_fail "$component" "timed out after ${seconds}s waiting for: $what"
}

# Prints what went wrong with the tail of the component's log, runs the caller's bed_on_fail hook
# if any, and exits non-zero.
bed_fail() {
  local component=$1 message=$2
  echo "test/bed/kubernetes: $message" >&2
  if [[ -n "$component" && -f "$bed_logs/$component.log" ]]; then
    echo "---- last 40 lines of $bed_logs/$component.log ----" >&2
    tail -n 40 "$bed_logs/$component.log" >&2
    echo "----" >&2
  fi
  if declare -F bed_on_fail >/dev/null; then bed_on_fail; fi
  exit 1
}

bed_curl() { # path [curl args...]: GET on the apiserver as the admin
  local path=$1
  shift
  curl -sS --max-time 5 --cacert "$bed_pki/ca.crt" --cert "$bed_pki/admin.crt" \
    --key "$bed_pki/admin.key" "$@" "https://127.0.0.1:$APISERVER_PORT$path"
}

bed_apiserver_ready() { [[ "$(bed_curl /readyz 2>/dev/null)" == ok ]]; }

# Loads the ports chosen by up.
bed_load_ports() {
  [[ -f "$bed_ports_file" ]] || return 1
  # shellcheck disable=SC1090
  source "$bed_ports_file"
}

# Service network of the test bed; only ever data (nothing routes it), but the apiserver's serving
# certificate must name the first address, the in-cluster "kubernetes" Service.
bed_service_cidr=10.96.0.0/16
# shellcheck disable=SC2034
bed_service_ip=10.96.0.1

bed_start_apiserver() {
  bed_start kube-apiserver "$EPH_TEST_KUBE_BIN/kube-apiserver" \
    --etcd-servers="http://127.0.0.1:$ETCD_CLIENT_PORT" \
    --bind-address=127.0.0.1 \
    --advertise-address=127.0.0.1 \
    --secure-port="$APISERVER_PORT" \
    --tls-cert-file="$bed_pki/apiserver.crt" \
    --tls-private-key-file="$bed_pki/apiserver.key" \
    --client-ca-file="$bed_pki/ca.crt" \
    --authorization-mode=Node,RBAC \
    --allow-privileged=true \
    --service-cluster-ip-range="$bed_service_cidr" \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$bed_pki/sa.pub" \
    --service-account-signing-key-file="$bed_pki/sa.key" \
    --endpoint-reconciler-type=none \
    --shutdown-send-retry-after=true \
    --profiling=false
}

# Writes the public interface file atomically.
bed_write_env() {
  local tmp="$bed_env_file.tmp.$$" name
  {
    echo "# Written by test/bed/kubernetes/up; removed by down. Sourceable shell."
    bed_kv EPH_TEST_KUBECONFIG "$bed_dir/admin.kubeconfig"
    bed_kv EPH_TEST_KUBE_SERVER "https://127.0.0.1:$APISERVER_PORT"
    bed_kv EPH_TEST_KUBE_CA "$bed_pki/ca.crt"
    bed_kv EPH_TEST_KUBE_CLIENT_CERT "$bed_pki/admin.crt"
    bed_kv EPH_TEST_KUBE_CLIENT_KEY "$bed_pki/admin.key"
    bed_kv EPH_TEST_KUBE_CA_KEY "$bed_pki/ca.key"
    bed_kv EPH_TEST_KUBE_BIN "$EPH_TEST_KUBE_BIN"
    bed_kv EPH_TEST_KUBE_VERSION "$("$EPH_TEST_KUBE_BIN/kube-apiserver" --version | awk '{print $2}')"
    bed_kv EPH_TEST_KUBE_NODES "$EPH_TEST_KUBE_NODES"
    bed_kv EPH_TEST_KUBE_STATE_DIR "$bed_dir"
    bed_kv EPH_TEST_KUBE_LOG_DIR "$bed_logs"
    bed_kv EPH_TEST_ETCD_ENDPOINT "http://127.0.0.1:$ETCD_CLIENT_PORT"
    for name in "${bed_components[@]}"; do
      bed_kv "EPH_TEST_KUBE_PID_$(echo "${name#kube-}" | tr a-z- A-Z_)" "$(bed_pid "$name")"
    done
  } >"$tmp"
  mv "$tmp" "$bed_env_file"
}

bed_kv() { # KEY VALUE: one line, quoted only when the value needs it
  if [[ "$2" =~ ^[A-Za-z0-9_./:@,+=-]*$ ]]; then
    echo "$1=$2"
  else
    echo "$1='${2//\'/\'\\\'\'}'"
  fi
}
