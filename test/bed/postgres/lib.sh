# Shared by the PostgreSQL test-bed scripts (up, down, smoke, start-server, stop-server).
#
# Layout under $EPH_TESTBED_DIR:
#   postgres/             state of this service (removed by `down`); a symlink to
#                         /tmp/eph-testbed-postgres.* if the postgres OS user cannot reach here
#     data/               PGDATA, owned by the postgres OS user
#     socket/             unix socket directory (0700, postgres)
#     log/server.log      server log (pg_ctl -l)
#     bed.conf            port, role and password chosen by `up`; its presence means "initialised"
#   postgres.env          the sourceable KEY=VALUE file other tests read
#
# Sourced, not executed. Expects bash with `set -euo pipefail` already on.
# shellcheck shell=bash disable=SC2034  # the variables here are used by the sourcing scripts

PG_BIN=${EPH_TESTBED_PG_BIN:-/usr/lib/postgresql/15/bin}
PG_OS_USER=postgres
PG_ROLE=eph
PG_DATABASE=eph_test
PG_START_TIMEOUT=${EPH_TESTBED_PG_START_TIMEOUT:-60}

log() { printf '[testbed.postgres] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

if [[ -z "${EPH_TESTBED_DIR:-}" ]]; then
  die "EPH_TESTBED_DIR is not set (absolute path of the test-bed state directory)"
fi
if [[ "$EPH_TESTBED_DIR" != /* ]]; then
  die "EPH_TESTBED_DIR must be an absolute path, got '$EPH_TESTBED_DIR'"
fi
if [[ $EUID -ne 0 ]]; then
  die "must run as root (initdb and the server run as the '$PG_OS_USER' OS user via runuser)"
fi
[[ -x "$PG_BIN/postgres" ]] ||
  die "no PostgreSQL server binaries in $PG_BIN (install postgresql-15)"

# The postgres OS user may not be able to read the caller's working directory.
cd /

# Normally a plain directory. When the postgres OS user cannot reach $EPH_TESTBED_DIR (say, it
# is under /root), `up` keeps the state in /tmp and leaves a symlink here; paths handed to the
# server must then be the real ones, so resolve the link.
PG_STATE_LINK="$EPH_TESTBED_DIR/postgres"
if [[ -L "$PG_STATE_LINK" ]]; then
  PG_STATE=$(readlink "$PG_STATE_LINK")
  [[ "$PG_STATE" == /tmp/eph-testbed-postgres.* ]] ||
    die "$PG_STATE_LINK points to '$PG_STATE', not a state dir made by up; remove it by hand"
else
  PG_STATE=$PG_STATE_LINK
fi
PG_DATA="$PG_STATE/data"
PG_SOCKET_DIR="$PG_STATE/socket"
PG_LOG_DIR="$PG_STATE/log"
PG_LOG="$PG_LOG_DIR/server.log"
PG_BED_CONF="$PG_STATE/bed.conf"
PG_ENV_FILE="$EPH_TESTBED_DIR/postgres.env"

as_pg() { runuser -u "$PG_OS_USER" -- "$@"; }

# Prints the last lines of the server log to stderr; used on every failure path.
tail_log() {
  if [[ -f "$PG_LOG" ]]; then
    log "last lines of $PG_LOG:"
    tail -n 40 "$PG_LOG" >&2 || true
  else
    log "(no server log at $PG_LOG)"
  fi
}

# Loads PG_PORT and PG_PASSWORD written by `up`. Fails if `up` never completed.
load_bed_conf() {
  [[ -f "$PG_BED_CONF" ]] ||
    die "test bed not initialised ($PG_BED_CONF missing): run test/bed/postgres/up first"
  # shellcheck disable=SC1090
  source "$PG_BED_CONF"
  [[ -n "${PG_PORT:-}" && -n "${PG_PASSWORD:-}" ]] || die "$PG_BED_CONF is incomplete"
}

# Prints a TCP port on 127.0.0.1 that is free right now. Another process may still take it
# before the server binds; `up` retries with a new port when that happens.
pick_free_port() {
  python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

# The password is hex, so it needs no percent-encoding in a URL.
url_for() { printf 'postgresql://%s:%s@127.0.0.1:%s/%s' "$PG_ROLE" "$PG_PASSWORD" "$PG_PORT" "$1"; }
admin_url() { url_for postgres; }
test_url() { url_for "$PG_DATABASE"; }

# True if the process exists and is not a zombie (PID 1 here may reap exited children late).
alive() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [[ -n "$stat" && "${stat:0:1}" != Z && "${stat:0:1}" != X ]]
}

# PID of the running postmaster, or nothing. Checks the process is alive, not just the file.
postmaster_pid() {
  local pid
  [[ -f "$PG_DATA/postmaster.pid" ]] || return 0
  pid=$(head -n 1 "$PG_DATA/postmaster.pid" 2>/dev/null || true)
  if [[ "$pid" =~ ^[0-9]+$ ]] && alive "$pid"; then
    echo "$pid"
  fi
}

# True when the server accepts a password-authenticated TCP session and answers a query.
server_healthy() {
  local out
  out=$(PGCONNECT_TIMEOUT=3 timeout 10 "$PG_BIN/psql" -X -q -At -d "$(admin_url)" \
    -c 'SELECT 1' 2>/dev/null) || return 1
  [[ "$out" == 1 ]]
}

# Polls server_healthy until it holds or the deadline (seconds) passes.
wait_healthy() {
  local deadline=$((SECONDS + $1))
  until server_healthy; do
    if ((SECONDS >= deadline)); then
      return 1
    fi
    if [[ -z "$(postmaster_pid)" ]]; then
      log "server process is not running"
      return 1
    fi
    sleep 0.2
  done
}

# Starts the server on the configured port. Returns non-zero (without exiting) on failure so
# that `up` can retry on a new port.
start_server() {
  # After a crash the dead postmaster can linger as a zombie until PID 1 reaps it; the new
  # postmaster's lock-file check would take it for a live server, so wait for it to go.
  local stale deadline
  stale=$(head -n 1 "$PG_DATA/postmaster.pid" 2>/dev/null || true)
  if [[ "$stale" =~ ^[0-9]+$ ]]; then
    deadline=$((SECONDS + 30))
    while [[ -e /proc/$stale ]] && ! alive "$stale" && ((SECONDS < deadline)); do
      sleep 0.1
    done
  fi
  : >>"$PG_LOG"
  chown "$PG_OS_USER:" "$PG_LOG"
  if ! as_pg "$PG_BIN/pg_ctl" start -D "$PG_DATA" -l "$PG_LOG" -w -t "$PG_START_TIMEOUT" -s; then
    return 1
  fi
  wait_healthy "$PG_START_TIMEOUT"
}

# Stops the server if it runs. mode: smart | fast | immediate. Escalates to SIGKILL of the
# postmaster if pg_ctl cannot stop it within the deadline, so nothing is left behind.
stop_server() {
  local mode=${1:-fast} pid
  pid=$(postmaster_pid)
  [[ -n "$pid" ]] || return 0
  if as_pg "$PG_BIN/pg_ctl" stop -D "$PG_DATA" -m "$mode" -w -t 60 -s; then
    return 0
  fi
  log "pg_ctl stop -m $mode failed; trying immediate shutdown"
  if as_pg "$PG_BIN/pg_ctl" stop -D "$PG_DATA" -m immediate -w -t 30 -s; then
    return 0
  fi
  log "immediate shutdown failed; killing postmaster $pid and its children"
  pkill -KILL -P "$pid" 2>/dev/null || true
  kill -KILL "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + 10))
  while alive "$pid"; do
    ((SECONDS < deadline)) || { log "postmaster $pid survived SIGKILL"; return 1; }
    sleep 0.1
  done
}

write_env_file() {
  local tmp="$PG_ENV_FILE.tmp.$$"
  (
    umask 077
    cat >"$tmp" <<ENV
EPH_TEST_POSTGRES_URL=$(test_url)
EPH_TEST_POSTGRES_ADMIN_URL=$(admin_url)
EPH_TEST_POSTGRES_PORT=$PG_PORT
EPH_TEST_POSTGRES_DATA=$PG_DATA
EPH_TEST_POSTGRES_BIN=$PG_BIN
EPH_TEST_POSTGRES_USER=$PG_ROLE
EPH_TEST_POSTGRES_PASSWORD=$PG_PASSWORD
EPH_TEST_POSTGRES_SOCKET_DIR=$PG_SOCKET_DIR
ENV
  )
  mv -f "$tmp" "$PG_ENV_FILE"
}

# Removes the state (and the symlink to it, if any).
remove_state() {
  rm -rf "$PG_STATE"
  [[ ! -L "$PG_STATE_LINK" ]] || rm -f "$PG_STATE_LINK"
}
