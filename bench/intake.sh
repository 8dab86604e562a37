#!/usr/bin/env bash
# Intake benchmark (engine issue): signed deliveries per second that ephd accepts durably on
# PostgreSQL, side by side with pgbench inserting the same rows (delivery + queue key, in one
# transaction, same body size) at the same concurrency. Prints both rates, ephd's p50/p99
# acknowledgement latency, and the row counts that prove nothing was lost.
#
#   bench/intake.sh [COUNT] [CONCURRENCY]      (defaults 5000 16; needs a dev build)
#
# Runs its own PostgreSQL from the test bed in a temporary state dir; loopback only; bounded.
set -euo pipefail
cd "$(dirname "$0")/.."
count=${1:-5000}
conc=${2:-16}
build=${EPH_BUILD_DIR:-build/dev}
[ -x "$build/cmd/ephd/ephd" ] && [ -x "$build/bench/webhook_load" ] || {
  echo "intake.sh: build first: cmake --build --preset dev --target ephd webhook_load" >&2; exit 2; }

export EPH_TESTBED_DIR
EPH_TESTBED_DIR=$(mktemp -d /tmp/eph-bench-intake.XXXXXX)
work=$EPH_TESTBED_DIR
ephd_pid=""
cleanup() {
  [ -n "$ephd_pid" ] && kill "$ephd_pid" 2>/dev/null && wait "$ephd_pid" 2>/dev/null || true
  test/bed/postgres/down >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

test/bed/postgres/up >/dev/null
# shellcheck disable=SC1091
source "$EPH_TESTBED_DIR/postgres.env"
bin=$EPH_TEST_POSTGRES_BIN
psql_admin() { "$bin/psql" -X -q -v ON_ERROR_STOP=1 "$EPH_TEST_POSTGRES_ADMIN_URL" "$@"; }
psql_admin -c "CREATE DATABASE eph_bench"
db_url=${EPH_TEST_POSTGRES_ADMIN_URL%/postgres}/eph_bench

# A realistic pull_request payload is a few kilobytes; pad the small one to 8 KiB.
body_file=$work/body.json
python3 - "$body_file" <<'PY'
import json, sys
body = {"action": "labeled", "number": 0, "pull_request": {"number": 0, "state": "open",
        "title": "x" * 7000}, "label": {"name": "preview"}, "repository": {"full_name": "bench/app"}}
open(sys.argv[1], "w").write(json.dumps(body, separators=(",", ":")))
PY
body_len=$(stat -c %s "$body_file")

port_file=$work/ephd.log
EPH_WORKERS=0 EPH_GITHUB_WEBHOOK_SECRET=bench "$build/cmd/ephd/ephd" --listen 127.0.0.1:0 \
  --state "$db_url" >"$port_file" 2>&1 &
ephd_pid=$!
for _ in $(seq 1 200); do
  port=$(grep -oE 'listening on http://127\.0\.0\.1:[0-9]+' "$port_file" | grep -oE '[0-9]+$' || true)
  [ -n "$port" ] && break
  sleep 0.05
done
[ -n "${port:-}" ] || { cat "$port_file"; echo "intake.sh: ephd did not start" >&2; exit 1; }

echo "== ephd intake: $count signed deliveries, concurrency $conc, body $body_len bytes"
ephd_line=$("$build/bench/webhook_load" --url "http://127.0.0.1:$port/webhooks/github" \
  --secret bench --count "$count" --concurrency "$conc" --body-file "$body_file" --id-prefix bench)
echo "$ephd_line"
kill "$ephd_pid"; wait "$ephd_pid" 2>/dev/null || true; ephd_pid=""
rows=$("$bin/psql" -X -At "$db_url" -c "SELECT count(*) FROM deliveries WHERE id LIKE 'bench-%'")
keys=$("$bin/psql" -X -At "$db_url" -c "SELECT count(*) FROM work_queue WHERE key LIKE 'bench/app#%'")
acked=$(sed -E 's/.*acked=([0-9]+).*/\1/' <<<"$ephd_line")
echo "rows: deliveries=$rows queue_keys=$keys acked=$acked lost=$((acked - rows))"

# The same two statements the store runs for one delivery, in one transaction.
cat >"$work/pgbench.sql" <<'SQL'
\set pr random(1, 2000000000)
BEGIN;
INSERT INTO deliveries (id, forge, event, action, repo, pr_number, body, received_at)
  VALUES ('pgb-' || :client_id || '-' || :pr || '-' || md5(random()::text), 'github',
          'pull_request', 'labeled', 'bench/app', :pr, repeat('x', :bodylen),
          (extract(epoch from clock_timestamp()) * 1000)::bigint)
  ON CONFLICT (id) DO NOTHING;
INSERT INTO work_queue (key, not_before, enqueued_at)
  VALUES ('pgb/app#' || :pr, (extract(epoch from clock_timestamp()) * 1000)::bigint,
          (extract(epoch from clock_timestamp()) * 1000)::bigint)
  ON CONFLICT (key) DO UPDATE SET not_before = LEAST(work_queue.not_before, excluded.not_before),
  dirty = (work_queue.lease_owner IS NOT NULL);
COMMIT;
SQL
per_client=$(( (count + conc - 1) / conc ))
echo "== pgbench: same rows, $conc clients x $per_client transactions"
pg_out=$("$bin/pgbench" -n -c "$conc" -j 2 -t "$per_client" -D bodylen="$body_len" -r \
  -f "$work/pgbench.sql" "$db_url" 2>&1)
pg_tps=$(grep -oE 'tps = [0-9.]+ \(without initial connection time\)' <<<"$pg_out" | grep -oE '[0-9.]+' | head -1)
pg_lat=$(grep -oE 'latency average = [0-9.]+ ms' <<<"$pg_out" | grep -oE '[0-9.]+')
echo "pgbench tps=$pg_tps latency_avg_ms=$pg_lat"
ephd_rate=$(sed -E 's/.*rate=([0-9.]+).*/\1/' <<<"$ephd_line")
python3 -c "print('ratio ephd/pgbench = %.2f' % ($ephd_rate / $pg_tps))"
