# Shared by the Docker test-bed scripts (up, down, smoke).
#
# Runs Debian's dockerd with its own containerd, both private to the state directory:
#   $EPH_TESTBED_DIR/docker/
#     docker.sock                   the engine API socket (EPH_TEST_DOCKER_HOST)
#     docker.pid, containerd.pid    pidfiles
#     data/                         dockerd --data-root (vfs layers, images, containers)
#     exec/                         dockerd --exec-root (netns files, plugin sockets)
#     containerd/{root,state,opt}   containerd's root, state and opt directories
#     containerd/containerd.sock    containerd's gRPC socket, passed to dockerd --containerd
#     log/{dockerd,containerd}.log  logs
#   $EPH_TESTBED_DIR/docker.env     EPH_TEST_DOCKER_HOST=unix://.../docker.sock
#
# Sourced, not executed. Expects bash with `set -euo pipefail` already on.
# shellcheck shell=bash disable=SC2034  # the variables here are used by the sourcing scripts

DOCKERD=${EPH_TESTBED_DOCKERD:-/usr/sbin/dockerd}
CONTAINERD=${EPH_TESTBED_CONTAINERD:-/usr/bin/containerd}
DOCKER_START_TIMEOUT=${EPH_TESTBED_DOCKER_START_TIMEOUT:-90}
# containerd namespace used by this engine; distinct from the default "moby" so that a system
# containerd (if any) never mixes its objects with ours.
CONTAINERD_NAMESPACE=eph-testbed

log() { printf '[testbed.docker] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

if [[ -z "${EPH_TESTBED_DIR:-}" ]]; then
  die "EPH_TESTBED_DIR is not set (absolute path of the test-bed state directory)"
fi
if [[ "$EPH_TESTBED_DIR" != /* ]]; then
  die "EPH_TESTBED_DIR must be an absolute path, got '$EPH_TESTBED_DIR'"
fi

DK_STATE="$EPH_TESTBED_DIR/docker"
DK_SOCK="$DK_STATE/docker.sock"
DK_PIDFILE="$DK_STATE/docker.pid"
DK_DATA="$DK_STATE/data"
DK_EXEC="$DK_STATE/exec"
DK_CONFIG="$DK_STATE/daemon.json"
DK_LOG_DIR="$DK_STATE/log"
DK_LOG="$DK_LOG_DIR/dockerd.log"
CT_DIR="$DK_STATE/containerd"
CT_SOCK="$CT_DIR/containerd.sock"
CT_PIDFILE="$DK_STATE/containerd.pid"
CT_CONFIG="$CT_DIR/config.toml"
CT_LOG="$DK_LOG_DIR/containerd.log"
DK_ENV_FILE="$EPH_TESTBED_DIR/docker.env"
# dockerd runs in a mount namespace of its own that sees two files of the bed instead of the
# host's: an /etc/hosts naming the registry bed's host (REGISTRY_BED_HOST, on ::1), and
# /etc/docker/certs.d, where test/bed/registry/up puts its CA. A registry on 127.0.0.0/8 would
# count as insecure to dockerd, which then skips certificate checks and retries over plain HTTP,
# hiding the registry's own answer; one on ::1 under a name is trusted only through its CA.
DK_HOSTS="$DK_STATE/hosts"
DK_CERTS_DIR="$EPH_TESTBED_DIR/docker-certs.d"
REGISTRY_BED_HOST=registry.eph.test
DK_HOST="unix://$DK_SOCK"
# Containers' cgroups go under a parent named after the state dir, so that down can find (and
# kill) what a crashed engine left running without touching any other engine's containers.
DK_CGROUP_PARENT="eph-testbed-$(printf '%s' "$DK_STATE" | sha256sum | cut -c1-12)"

# True if the process exists and is not a zombie (PID 1 here may reap exited children late).
alive() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [[ -n "$stat" && "${stat:0:1}" != Z && "${stat:0:1}" != X ]]
}

# PID from a pidfile if that process is alive, else nothing.
pid_from() {
  local pid
  [[ -f "$1" ]] || return 0
  pid=$(tr -dc '0-9' <"$1" 2>/dev/null || true)
  if [[ -n "$pid" ]] && alive "$pid"; then
    echo "$pid"
  fi
}

# True when the engine answers its ping endpoint on the private socket.
engine_healthy() {
  [[ -S "$DK_SOCK" ]] || return 1
  [[ "$(curl -sS --max-time 3 --unix-socket "$DK_SOCK" http://localhost/_ping 2>/dev/null)" == OK ]]
}

tail_logs() {
  if [[ -f "$CT_LOG" ]]; then
    log "last lines of $CT_LOG:"
    tail -n 10 "$CT_LOG" >&2 || true
  fi
  if [[ -f "$DK_LOG" ]]; then
    log "last lines of $DK_LOG:"
    tail -n 30 "$DK_LOG" >&2 || true
  fi
}

# Sends SIGTERM, waits up to $2 seconds for the process to exit, then SIGKILLs it.
terminate() {
  local pid=$1 grace=$2 deadline
  alive "$pid" || return 0
  kill -TERM "$pid" 2>/dev/null || true
  deadline=$((SECONDS + grace))
  while alive "$pid" && ((SECONDS < deadline)); do
    sleep 0.1
  done
  if alive "$pid"; then
    log "process $pid did not exit after SIGTERM within ${grace}s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    deadline=$((SECONDS + 10))
    while alive "$pid" && ((SECONDS < deadline)); do
      sleep 0.1
    done
  fi
}

# PIDs of live engine processes (containerd, its shims, dockerd, runc) whose command line names
# this state directory; shims outlive containerd if it dies. docker-proxy is not matched: it
# names no path, and the kernel stops it when dockerd dies (parent-death signal).
state_dir_pids() {
  local d pid exe cmdline
  for d in /proc/[0-9]*; do
    pid=${d#/proc/}
    exe=$(readlink "$d/exe" 2>/dev/null) || continue
    case "${exe##*/}" in
      containerd | containerd-shim* | dockerd | runc) ;;
      *) continue ;;
    esac
    cmdline=$(tr '\0' ' ' 2>/dev/null <"$d/cmdline") || continue
    if [[ "$cmdline" == *"$DK_STATE/"* ]] && alive "$pid"; then
      echo "$pid"
    fi
  done
}

# Unmounts everything mounted below the state directory, deepest first.
unmount_state() {
  local mp
  while read -r mp; do
    umount "$mp" 2>/dev/null || umount -l "$mp" 2>/dev/null || log "could not unmount $mp"
  done < <(awk -v p="$DK_STATE/" 'index($2, p) == 1 {print $2}' /proc/self/mounts | sort -r)
}

# Kills processes left in this engine's container cgroups (only after a crash: a clean
# shutdown has none) and removes the cgroup directories.
remove_cgroups() {
  local dir pids pid deadline
  while read -r dir; do
    deadline=$((SECONDS + 10))
    while :; do
      pids=$(find "$dir" -name cgroup.procs -exec cat {} + 2>/dev/null | sort -u)
      [[ -n "$pids" ]] || break
      if ((SECONDS >= deadline)); then
        log "processes still in $dir: ${pids//$'\n'/ }"
        break
      fi
      for pid in $pids; do
        log "killing leftover container process $pid"
        kill -KILL "$pid" 2>/dev/null || true
      done
      sleep 0.1
    done
    find "$dir" -depth -type d -exec rmdir {} + 2>/dev/null || log "could not remove cgroup $dir"
  done < <(find /sys/fs/cgroup -maxdepth 2 -type d -name "$DK_CGROUP_PARENT" 2>/dev/null)
}

# Deletes host bridge interfaces of this engine's networks. Only for a crashed engine: a live
# one removes them itself when its networks are deleted. Names come from the engine's own
# network store, so bridges of other engines are never touched.
remove_bridges() {
  local db="$DK_DATA/network/files/local-kv.db" br
  [[ -f "$db" ]] || return 0
  while read -r br; do
    if ip -d link show "$br" 2>/dev/null | grep -qw bridge; then
      log "deleting leftover bridge $br"
      ip link delete "$br" 2>/dev/null || log "could not delete bridge $br"
    fi
  done < <(grep -aoE '"BridgeName":"[^"]+"' "$db" | cut -d'"' -f4 | sort -u)
}

# Removes the sockets of killed shims. containerd 1.6 puts them in /run/containerd/s/ whatever
# its state dir; each task's state records its shim's address, so only ours are removed.
remove_shim_sockets() {
  local file addr
  for file in "$CT_DIR"/state/io.containerd.runtime.v2.task/*/*/address; do
    [[ -f "$file" ]] || continue
    addr=$(<"$file")
    addr=${addr#unix://}
    if [[ "$addr" == /run/containerd/s/* && -S "$addr" ]]; then
      rm -f "$addr"
    fi
  done
}
