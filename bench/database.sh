#!/usr/bin/env bash
# Database benchmark (issue 8): time until an environment's database is ready with `seed` and
# with `clone` (FILE_COPY and WAL_LOG, and taking a spare made ahead of time), N environments
# each, on the test bed's PostgreSQL 15.
#
#   bench/database.sh [TABLES] [ROWS_PER_TABLE] [ROW_BYTES] [N] [FORMAT]
#       defaults 10 5000 200 10 copy; FORMAT copy (pg_dump-style COPY data in the script) or
#       generate (server-side generate_series, the cheapest seed there is)
#   bench/database.sh 10 100000 128 10                            (the issue's ~200 MB seed)
#
# Runs its own PostgreSQL from the test bed in a temporary state dir; loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
tables=${1:-10}
rows=${2:-5000}
row_bytes=${3:-200}
n=${4:-10}
format=${5:-copy}
build=${EPH_BUILD_DIR:-build/dev}
[ -x "$build/bench/database_bench" ] || {
  echo "database.sh: build first: cmake --build $build --target database_bench" >&2; exit 2; }

export EPH_TESTBED_DIR
EPH_TESTBED_DIR=$(mktemp -d /tmp/eph-bench-database.XXXXXX)
work=$EPH_TESTBED_DIR
cleanup() {
  test/bed/postgres/down >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

test/bed/postgres/up >/dev/null
# shellcheck disable=SC1091
source "$EPH_TESTBED_DIR/postgres.env"
"$build/bench/database_bench" --admin-url "$EPH_TEST_POSTGRES_ADMIN_URL" --tables "$tables" \
  --rows "$rows" --row-bytes "$row_bytes" --n "$n" --format "$format"
