# Shared by the registry test-bed scripts (up, down, smoke).
#
# Runs the CNCF distribution registry (built by tools/registry/build) on a free port of ::1, with
# TLS from a CA made here and htpasswd (bcrypt) basic auth. Images are named
# registry.eph.test:<port>/...: the test bed's dockerd resolves that name to ::1 and trusts the CA
# through its certs.d (test/bed/docker/lib.sh), so pulls are verified TLS, as from a real
# registry. (On 127.0.0.0/8 dockerd would treat it as insecure: no certificate check, and a
# retry over plain HTTP whose error replaces the registry's.)
#   $EPH_TESTBED_DIR/registry/
#     ca.crt, ca.key                the test bed's own CA (EPH_TEST_REGISTRY_CA)
#     server.crt, server.key        the registry's certificate, for 127.0.0.1 and localhost
#     htpasswd                      one user, bcrypt
#     auth.json                     that user's credentials in Docker's config.json format
#                                   (EPH_TEST_REGISTRY_AUTH_FILE), as an operator gives ephd
#     config.yml, data/             the registry's configuration and storage
#     registry.pid, registry.log
#   $EPH_TESTBED_DIR/docker-certs.d/registry.eph.test:<port>/ca.crt   the CA, for dockerd
#   $EPH_TESTBED_DIR/registry.env   EPH_TEST_REGISTRY_HOST=registry.eph.test:<port> (for image
#                                   names), EPH_TEST_REGISTRY_URL=https://[::1]:<port> (for
#                                   clients on the host), ..._USER, ..._PASSWORD, ..._CA,
#                                   ..._AUTH_FILE
#
# Sourced, not executed. Expects bash with `set -euo pipefail` already on.
# shellcheck shell=bash disable=SC2034  # the variables here are used by the sourcing scripts

REGISTRY_START_TIMEOUT=${EPH_TESTBED_REGISTRY_START_TIMEOUT:-30}

log() { printf '[testbed.registry] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

if [[ -z "${EPH_TESTBED_DIR:-}" ]]; then
  die "EPH_TESTBED_DIR is not set (absolute path of the test-bed state directory)"
fi
if [[ "$EPH_TESTBED_DIR" != /* ]]; then
  die "EPH_TESTBED_DIR must be an absolute path, got '$EPH_TESTBED_DIR'"
fi

RG_STATE="$EPH_TESTBED_DIR/registry"
RG_PIDFILE="$RG_STATE/registry.pid"
RG_LOG="$RG_STATE/registry.log"
RG_ENV_FILE="$EPH_TESTBED_DIR/registry.env"
RG_USER=eph-ci
RG_NAME=registry.eph.test  # as in test/bed/docker/lib.sh
RG_CERTS_DIR="$EPH_TESTBED_DIR/docker-certs.d"

# True if the process exists and is not a zombie.
alive() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [[ -n "$stat" && "${stat:0:1}" != Z && "${stat:0:1}" != X ]]
}

pid_from() {
  local pid
  [[ -f "$1" ]] || return 0
  pid=$(tr -dc '0-9' <"$1" 2>/dev/null || true)
  if [[ -n "$pid" ]] && alive "$pid"; then
    echo "$pid"
  fi
}

# True when the registry answers /v2/ over verified TLS and asks for credentials (401).
registry_healthy() { # url
  [[ "$(curl -sS --max-time 3 --cacert "$RG_STATE/ca.crt" -o /dev/null -w '%{http_code}' \
    "$1/v2/" 2>/dev/null)" == 401 ]]
}
