#!/usr/bin/env bash
# The postgres:15 stand-in (build.sh) on the test bed's Docker engine: it builds (and a second
# build.sh run skips the build), a container initialised with POSTGRES_PASSWORD, POSTGRES_USER
# and POSTGRES_DB becomes healthy (pg_isready in the container, on PATH) and answers the host's
# psql on its published port as that user in that database on PostgreSQL 15, refuses a wrong
# password, keeps a table across `docker restart` without initialising again, and a container
# without POSTGRES_PASSWORD exits non-zero saying so. Every container, volume and network made
# here is removed on exit; the image is kept for the next run.
set -euo pipefail

: "${EPH_TESTBED_DIR:?set by CTest}" "${EPH_SOURCE_DIR:?set by CTest}"
BUILD=$EPH_SOURCE_DIR/test/support/postgres_image/build.sh
# Its own tag: the end-to-end tests build postgres:15 at the same time on the same engine.
TAG=${EPH_POSTGRES_IMAGE_TAG:-eph-test/postgres-standin:15}
READY_TIMEOUT=60

fail() {
  printf 'FAIL: %s\n' "$*" >&2
  exit 1
}

DOCKER_HOST=$(sed -n 's/^EPH_TEST_DOCKER_HOST=//p' "$EPH_TESTBED_DIR/docker.env" 2>/dev/null || true)
[[ -n "$DOCKER_HOST" ]] || fail "no EPH_TEST_DOCKER_HOST in $EPH_TESTBED_DIR/docker.env (fixture docker)"
export DOCKER_HOST
unset DOCKER_CONTEXT DOCKER_TLS_VERIFY DOCKER_CERT_PATH
# Only what this test passes may reach psql.
unset PGHOST PGHOSTADDR PGPORT PGUSER PGDATABASE PGPASSWORD PGPASSFILE PGSERVICE PGSERVICEFILE \
  PGSSLMODE PGOPTIONS
command -v psql >/dev/null || fail "psql not found (Debian's postgresql-client)"
command -v pg_isready >/dev/null || fail "pg_isready not found (Debian's postgresql-client)"

suffix=$(openssl rand -hex 4)
net=eph-pgimg-$suffix
db_container=eph-pgimg-db-$suffix
nopw_container=eph-pgimg-nopw-$suffix
volume=eph-pgimg-data-$suffix
password="pw-$(openssl rand -hex 8) 'quoted' \"too\""

dk() { timeout 120 docker "$@"; }

finish() {
  local rc=$?
  if ((rc != 0)) && [[ -n "$(docker ps -aq --filter "name=^$db_container\$" 2>/dev/null)" ]]; then
    printf -- '--- last lines of docker logs %s\n' "$db_container" >&2
    dk logs "$db_container" 2>&1 | tail -n 40 >&2 || true
  fi
  dk rm -f -v "$db_container" "$nopw_container" >/dev/null 2>&1 || true
  dk volume rm "$volume" >/dev/null 2>&1 || true
  dk network rm "$net" >/dev/null 2>&1 || true
  exit "$rc"
}
trap finish EXIT
trap 'exit 124' TERM INT

echo "== build.sh $TAG"
started=$SECONDS
out=$("$BUILD" "$TAG") || fail "build.sh exited non-zero"
[[ "$(tail -n 1 <<<"$out")" == "$TAG" ]] || fail "build.sh did not print the tag last: '$out'"
echo "build.sh took $((SECONDS - started))s"
image_id=$(dk image inspect --format '{{.Id}}' "$TAG") || fail "no image $TAG after build.sh"
size=$(dk image inspect --format '{{.Size}}' "$TAG")
echo "image $TAG: $image_id, $((size / 1000 / 1000)) MB"
description=$(dk image inspect \
  --format '{{ index .Config.Labels "org.opencontainers.image.description" }}' "$TAG")
grep -qi 'stand-in' <<<"$description" ||
  fail "the image's description does not say stand-in: '$description'"
user=$(dk image inspect --format '{{.Config.User}}' "$TAG")
[[ "$user" == 999 ]] || fail "image user is '$user', not 999"

echo "== build.sh $TAG again (nothing changed)"
again=$("$BUILD" "$TAG" 2>&1) || fail "the second build.sh failed: $again"
printf '%s\n' "$again"
grep -q 'build skipped' <<<"$again" || fail "the second build.sh did not skip the build"
[[ "$(dk image inspect --format '{{.Id}}' "$TAG")" == "$image_id" ]] ||
  fail "the second build.sh changed the image"

# The test bed's engine has no default bridge: publishing a port needs a network of our own.
dk network create --driver bridge "$net" >/dev/null || fail "could not create network $net"
dk volume create "$volume" >/dev/null || fail "could not create volume $volume"

echo "== a container with POSTGRES_PASSWORD, POSTGRES_USER=eph_admin, POSTGRES_DB=app"
run_out=$(dk run -d --name "$db_container" --network "$net" \
  -e POSTGRES_PASSWORD="$password" -e POSTGRES_USER=eph_admin -e POSTGRES_DB=app \
  -v "$volume:/var/lib/postgresql/data" -p 127.0.0.1::5432 \
  --health-cmd 'pg_isready -U eph_admin -d app' --health-interval 1s --health-timeout 5s \
  --health-retries 3 "$TAG" 2>&1) || fail "docker run failed: $run_out"

# Published port of the database container (it may change on restart).
db_port() {
  local bindings port
  bindings=$(dk port "$db_container" 5432/tcp) || fail "no port binding for 5432/tcp"
  port=$(sed -n 's/^127\.0\.0\.1:\([0-9][0-9]*\)$/\1/p' <<<"$bindings" | head -n 1)
  [[ -n "$port" ]] || fail "5432/tcp is not published on 127.0.0.1: '$bindings'"
  echo "$port"
}

# Waits until the container's healthcheck says healthy and pg_isready answers on the port.
wait_ready() {
  local deadline=$((SECONDS + READY_TIMEOUT)) state health port
  while :; do
    state=$(dk inspect --format '{{.State.Status}} {{.State.ExitCode}}' "$db_container")
    [[ "$state" == running* ]] || fail "the container stopped ($state)"
    health=$(dk inspect --format '{{.State.Health.Status}}' "$db_container")
    if [[ "$health" == healthy ]]; then
      port=$(db_port)
      if pg_isready -q -t 2 -h 127.0.0.1 -p "$port" -U eph_admin -d app; then
        echo "$port"
        return 0
      fi
    fi
    ((SECONDS < deadline)) || fail "not ready after ${READY_TIMEOUT}s (health: $health)"
    sleep 0.5
  done
}

psql_app() {
  PGPASSWORD=$password PGCONNECT_TIMEOUT=10 psql -X -A -t -q -v ON_ERROR_STOP=1 \
    -h 127.0.0.1 -p "$port" -U eph_admin -d app "$@"
}

started=$SECONDS
port=$(wait_ready)
echo "ready on 127.0.0.1:$port after $((SECONDS - started))s"

# The healthcheck above is CMD-SHELL (dash); this is the exec form, found on the image's PATH.
ready=$(dk exec "$db_container" pg_isready -U eph_admin -d app) ||
  fail "pg_isready (exec form) in the container failed: $ready"

query="SELECT current_user, current_database(), current_setting('server_version_num')::int / 10000"
who=$(psql_app -c "$query") ||
  fail "psql as eph_admin with the password failed"
[[ "$who" == "eph_admin|app|15" ]] || fail "expected eph_admin|app|15, got '$who'"
echo "psql: $who"

rc=0
refused=$(PGPASSWORD=wrong-password PGCONNECT_TIMEOUT=10 psql -X -A -t -h 127.0.0.1 -p "$port" \
  -U eph_admin -d app -c 'SELECT 1' 2>&1) || rc=$?
((rc != 0)) || fail "a wrong password was accepted: $refused"
grep -q 'password authentication failed for user "eph_admin"' <<<"$refused" ||
  fail "a wrong password failed, but not as an authentication failure: $refused"
echo "wrong password refused"

psql_app -c 'CREATE TABLE survives_restart (id int PRIMARY KEY, note text)' \
  -c "INSERT INTO survives_restart VALUES (42, 'kept')" || fail "could not create the table"

echo "== docker restart"
dk restart "$db_container" >/dev/null || fail "docker restart failed"
# The health status of the run before the restart may still say healthy for a moment; the
# port check in wait_ready needs the new server.
started=$SECONDS
port=$(wait_ready)
echo "ready again on 127.0.0.1:$port after $((SECONDS - started))s"
row=$(psql_app -c 'SELECT id, note FROM survives_restart') ||
  fail "the table is gone after the restart"
[[ "$row" == "42|kept" ]] || fail "expected 42|kept after the restart, got '$row'"
inits=$(dk logs "$db_container" 2>&1 | grep -c 'PostgreSQL init process complete' || true)
[[ "$inits" == 1 ]] || fail "the data directory was initialised $inits times (expected once)"
echo "table kept, initialised once"

echo "== a container without POSTGRES_PASSWORD"
run_out=$(dk run -d --name "$nopw_container" --network none "$TAG" 2>&1) ||
  fail "docker run (no password) failed: $run_out"
code=$(dk wait "$nopw_container") || fail "docker wait failed"
[[ "$code" =~ ^[0-9]+$ && "$code" != 0 ]] || fail "without POSTGRES_PASSWORD it exited with '$code'"
logs=$(dk logs "$nopw_container" 2>&1 >/dev/null) || fail "docker logs failed"
for expected in 'superuser password is not specified' 'POSTGRES_PASSWORD'; do
  grep -q "$expected" <<<"$logs" || fail "no '$expected' on the container's stderr: '$logs'"
done
echo "exited $code: $(head -n 1 <<<"$logs")"
echo "PASS"
