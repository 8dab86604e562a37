#!/usr/bin/env bash
# The README's first command as a new user runs it (issue 14): a clean clone of this commit,
# `scripts/demo` with nothing prepared: it installs what it needs, builds Eph, starts its own
# dockerd (no DOCKER_HOST), and must print a preview URL that serves the sample app. Then the
# dashboard answers at / from the binary (the clone has no web/dist), `eph list` shows the
# environment, and `scripts/demo stop` leaves nothing: no process, mount or cgroup of the demo,
# and the demo's own check that the engine holds no container, network or volume of it.
#
# The clone lives inside this build tree so that, when the suite's build went through ccache
# (scripts/test does that when ccache is installed), the clone's build of ephd and eph is mostly
# cache hits: the same commands a user runs, about a minute instead of ten. Runs as root, like
# the demo's own dockerd.
set -euo pipefail

: "${EPH_SOURCE_DIR:?set by CTest}" "${EPH_BINARY_DIR:?set by CTest}"
source_dir=$EPH_SOURCE_DIR
binary_dir=$EPH_BINARY_DIR

fail() {
  printf 'FAIL: %s\n' "$*" >&2
  exit 1
}
[[ $EUID -eq 0 ]] || fail "must run as root (the demo starts its own dockerd)"

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

clone=$binary_dir/newcomer/clone
# The demo's state (and its dockerd's sockets) in a short path: Unix socket paths are limited to
# 107 bytes.
demo_dir=$(mktemp -d /tmp/eph-nc.XXXXXX)
rm -rf "$clone"
mkdir -p "$(dirname "$clone")"
git clone -q "$source_dir" "$clone" || fail "git clone $source_dir failed"
DEMO=$clone/scripts/demo

# Nothing of the caller's setup reaches the demo: no engine, no build to reuse, no EPH_* setting.
while read -r var; do unset "$var"; done < <(compgen -e | grep -E '^(EPH_|DOCKER_)' || true)
if command -v ccache >/dev/null; then
  # The suite's build and the clone are both under the checkout: paths relative to it hit.
  export CMAKE_C_COMPILER_LAUNCHER=ccache CMAKE_CXX_COMPILER_LAUNCHER=ccache CCACHE_NOHASHDIR=1
  export CCACHE_BASEDIR=$source_dir
fi
export EPH_DEMO_DIR=$demo_dir
EPH_DEMO_API_PORT=$(free_port)
EPH_DEMO_GATEWAY_PORT=$(free_port)
while [[ "$EPH_DEMO_GATEWAY_PORT" == "$EPH_DEMO_API_PORT" ]]; do EPH_DEMO_GATEWAY_PORT=$(free_port); done
export EPH_DEMO_API_PORT EPH_DEMO_GATEWAY_PORT
API=http://127.0.0.1:$EPH_DEMO_API_PORT

finish() {
  local rc=$?
  if ((rc != 0)); then
    for f in install.log build.log ephd.log standin.log image.log bed/docker/log/dockerd.log; do
      if [[ -f "$demo_dir/$f" ]]; then
        printf -- '--- last lines of %s\n' "$f" >&2
        tail -n 40 "$demo_dir/$f" >&2
      fi
    done
  fi
  "$DEMO" stop >/dev/null 2>&1 || true
  rm -rf "$demo_dir"
  ((rc != 0)) || rm -rf "$binary_dir/newcomer"
  exit "$rc"
}
trap finish EXIT

# Processes that belong to the demo: their command line or working directory is in the clone or
# the demo's directory (ephd, the stand-in, dockerd, containerd, shims, the app).
demo_processes() {
  local pid cmd cwd
  for pid in $(ls /proc | grep -E '^[0-9]+$'); do
    [[ "$pid" != "$$" && "$pid" != "$BASHPID" ]] || continue
    cmd=$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline") || continue
    cwd=$(readlink "/proc/$pid/cwd" 2>/dev/null || true)
    if [[ "$cmd" == *"$demo_dir"* || "$cmd" == *"$clone/"* || "$cwd" == "$demo_dir"* ||
      "$cwd" == "$clone"/* ]]; then
      printf '%s %s\n' "$pid" "$cmd"
    fi
  done
}

echo "== scripts/demo from a clean clone ($clone), API port $EPH_DEMO_API_PORT"
t0=$SECONDS
out=$(cd "$clone" && scripts/demo 2>&1) || {
  printf '%s\n' "$out"
  fail "scripts/demo exited non-zero"
}
printf '%s\n' "$out"
echo "== scripts/demo took $((SECONDS - t0))s"
grep -q "the demo's own" <<<"$(cd "$clone" && scripts/demo status)" ||
  fail "the demo did not start its own dockerd (is an engine on /var/run/docker.sock?)"

url=$(sed -n 's/^Preview: //p' <<<"$out")
[[ "$url" =~ ^http://([a-z0-9-]+)\.preview\.localhost:$EPH_DEMO_GATEWAY_PORT/?$ ]] ||
  fail "no gateway preview URL in the output (got '$url')"
name=${BASH_REMATCH[1]}
page=$(curl -fsS --max-time 10 "$url") || fail "$url does not answer"
grep -q 'Hello from an Eph preview' <<<"$page" || fail "$url did not serve the sample app: $page"

echo "== the dashboard at $API/, from the binary"
[[ ! -e "$clone/web/dist" ]] || fail "the clone has a web/dist: the dashboard must come from the binary"
grep -qF "dashboard: $API/" <<<"$out" || fail "the demo did not print the dashboard's address"
index=$(curl -fsS --max-time 10 "$API/") || fail "$API/ does not answer"
grep -q '<div id="root">' <<<"$index" || fail "$API/ is not the dashboard: $index"
asset=$(grep -o 'src="[^"]*\.js"' <<<"$index" | head -1 | sed 's/^src="\.\{0,1\}//; s/"$//')
[[ -n "$asset" ]] || fail "the dashboard's index.html names no script: $index"
type=$(curl -fsS --max-time 10 -o /dev/null -w '%{content_type}' "$API/${asset#/}") ||
  fail "the dashboard's script $asset does not answer"
[[ "$type" == *javascript* ]] || fail "$asset is served as '$type'"

echo "== eph list"
list=$(cd "$clone" && EPH_SERVER=$API EPH_TOKEN=$(cat "$demo_dir/api-token") \
  build/dev/cmd/eph/eph list 2>&1) || fail "eph list failed: $list"
printf '%s\n' "$list"
grep -E "^$name[[:space:]].*ready" <<<"$list" >/dev/null || fail "eph list does not show $name ready"
json=$(cd "$clone" && EPH_SERVER=$API EPH_TOKEN=$(cat "$demo_dir/api-token") \
  build/dev/cmd/eph/eph list -o json 2>&1) || fail "eph list -o json failed: $json"
jq -e --arg n "$name" '[.items[]? // .[]? | select(.name == $n)] | length == 1' <<<"$json" >/dev/null ||
  fail "eph list -o json does not hold $name: $json"

echo "== scripts/demo stop"
[[ -n "$(demo_processes)" ]] || fail "no process of the demo found while it runs (the check below could not fail)"
stop=$(cd "$clone" && scripts/demo stop 2>&1) || {
  printf '%s\n' "$stop"
  fail "scripts/demo stop exited non-zero"
}
printf '%s\n' "$stop"
grep -q "$name destroyed: its containers, network and volumes are gone" <<<"$stop" ||
  fail "stop did not report $name destroyed with nothing left on the engine"
sleep 1
left=$(demo_processes)
[[ -z "$left" ]] || fail "still running after stop: $left"
mounts=$(grep -F "$demo_dir" /proc/self/mountinfo || true)
[[ -z "$mounts" ]] || fail "still mounted after stop: $mounts"
[[ ! -e "$demo_dir/bed/docker" ]] || fail "the demo's dockerd state is still there after stop"
cgroup=eph-testbed-$(printf '%s' "$demo_dir/bed/docker" | sha256sum | cut -c1-12)
cgroups=$(find /sys/fs/cgroup -maxdepth 3 -name "$cgroup" 2>/dev/null || true)
[[ -z "$cgroups" ]] || fail "cgroups of the demo's containers left: $cgroups"
echo "PASS"
