#include "pkg/state/migrations.h"

namespace eph::state {

std::string_view Migration::SqlFor(SqlDialect dialect) const {
  if (dialect == SqlDialect::kSqlite && !sqlite_sql.empty()) return sqlite_sql;
  if (dialect == SqlDialect::kPostgres && !postgres_sql.empty()) return postgres_sql;
  return sql;
}

namespace {

// Version 1: everything without an identity column, in SQL both dialects accept.
constexpr std::string_view kCoreTables = R"sql(
CREATE TABLE projects (
  repo            TEXT PRIMARY KEY,
  forge           TEXT NOT NULL,
  installation_id BIGINT NOT NULL DEFAULT 0,
  enabled         BOOLEAN NOT NULL DEFAULT TRUE,
  created_at      BIGINT NOT NULL,
  updated_at      BIGINT NOT NULL
);

CREATE TABLE environments (
  name             TEXT PRIMARY KEY,
  project          TEXT NOT NULL,
  pr_number        BIGINT NOT NULL DEFAULT 0,
  state            TEXT NOT NULL,
  reason           TEXT NOT NULL DEFAULT '',
  url              TEXT NOT NULL DEFAULT '',
  provider         TEXT NOT NULL DEFAULT '',
  head_sha         TEXT NOT NULL DEFAULT '',
  spec_json        TEXT NOT NULL DEFAULT '',
  created_at       BIGINT NOT NULL,
  updated_at       BIGINT NOT NULL,
  expires_at       BIGINT,
  last_activity_at BIGINT,
  version          BIGINT NOT NULL
);
-- A pull request has at most one live environment; names stay unique forever (primary key).
CREATE UNIQUE INDEX environments_one_live_per_pr ON environments (project, pr_number)
  WHERE state <> 'destroyed' AND pr_number > 0;
CREATE INDEX environments_by_project ON environments (project);

CREATE TABLE deliveries (
  id          TEXT PRIMARY KEY,
  forge       TEXT NOT NULL,
  event       TEXT NOT NULL,
  action      TEXT NOT NULL DEFAULT '',
  repo        TEXT NOT NULL DEFAULT '',
  pr_number   BIGINT NOT NULL DEFAULT 0,
  body        TEXT NOT NULL,
  received_at BIGINT NOT NULL
);
CREATE INDEX deliveries_by_received_at ON deliveries (received_at);

-- One row per key. Unleased: due at not_before. Leased: owned by lease_owner until
-- lease_expires_at; dirty means "enqueued again meanwhile, run again at not_before".
CREATE TABLE work_queue (
  key              TEXT PRIMARY KEY,
  not_before       BIGINT NOT NULL,
  attempts         BIGINT NOT NULL DEFAULT 0,
  lease_owner      TEXT,
  lease_expires_at BIGINT,
  dirty            BOOLEAN NOT NULL DEFAULT FALSE,
  last_error       TEXT NOT NULL DEFAULT '',
  enqueued_at      BIGINT NOT NULL
);
CREATE INDEX work_queue_by_due ON work_queue (not_before, enqueued_at);
)sql";

// Version 2: the audit trail. `id` is the SSE event id: it must only ever grow.
// SQLite: AUTOINCREMENT never reuses an id, even after the highest row is deleted.
constexpr std::string_view kEnvEventsSqlite = R"sql(
CREATE TABLE env_events (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  environment TEXT NOT NULL REFERENCES environments (name),
  from_state  TEXT NOT NULL DEFAULT '',
  to_state    TEXT NOT NULL,
  reason      TEXT NOT NULL DEFAULT '',
  at          BIGINT NOT NULL
);
CREATE INDEX env_events_by_environment ON env_events (environment, id);
)sql";

constexpr std::string_view kEnvEventsPostgres = R"sql(
CREATE TABLE env_events (
  id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  environment TEXT NOT NULL REFERENCES environments (name),
  from_state  TEXT NOT NULL DEFAULT '',
  to_state    TEXT NOT NULL,
  reason      TEXT NOT NULL DEFAULT '',
  at          BIGINT NOT NULL
);
CREATE INDEX env_events_by_environment ON env_events (environment, id);
)sql";

// Version 3: API tokens, by hash. A name is unique among tokens that are not revoked.
constexpr std::string_view kApiTokensSqlite = R"sql(
CREATE TABLE api_tokens (
  id         INTEGER PRIMARY KEY AUTOINCREMENT,
  name       TEXT NOT NULL,
  scope      TEXT NOT NULL,
  hash       TEXT NOT NULL UNIQUE,
  created_at BIGINT NOT NULL,
  revoked_at BIGINT
);
CREATE UNIQUE INDEX api_tokens_live_name ON api_tokens (name) WHERE revoked_at IS NULL;
)sql";

constexpr std::string_view kApiTokensPostgres = R"sql(
CREATE TABLE api_tokens (
  id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  name       TEXT NOT NULL,
  scope      TEXT NOT NULL,
  hash       TEXT NOT NULL UNIQUE,
  created_at BIGINT NOT NULL,
  revoked_at BIGINT
);
CREATE UNIQUE INDEX api_tokens_live_name ON api_tokens (name) WHERE revoked_at IS NULL;
)sql";

// Version 4: the reconciler reads a pull request's comment deliveries (`/eph` commands).
constexpr std::string_view kDeliveriesByPullRequest = R"sql(
CREATE INDEX deliveries_by_pull_request ON deliveries (repo, pr_number, event);
)sql";

// Version 5: this installation's identity, made once with the schema and never changed. Every
// object Eph creates carries it, so several installations can share a cluster, a Docker engine or
// a database server without sweeping each other's objects as orphans.
constexpr std::string_view kInstallationSqlite = R"sql(
CREATE TABLE installation (id TEXT NOT NULL PRIMARY KEY, created_at BIGINT NOT NULL);
INSERT INTO installation (id, created_at)
  SELECT lower(hex(randomblob(8))), CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER);
)sql";
constexpr std::string_view kInstallationPostgres = R"sql(
CREATE TABLE installation (id TEXT NOT NULL PRIMARY KEY, created_at BIGINT NOT NULL);
INSERT INTO installation (id, created_at)
  SELECT substr(md5(random()::text || clock_timestamp()::text || pg_backend_pid()::text), 1, 16),
         (extract(epoch FROM clock_timestamp()) * 1000)::bigint;
)sql";

// Version 6: a project's trigger labels, so the resync can find labelled pull requests whose
// webhook was lost. One label per line.
constexpr std::string_view kProjectTriggerLabels = R"sql(
ALTER TABLE projects ADD COLUMN trigger_labels TEXT NOT NULL DEFAULT '';
)sql";

// Version 7: what others need to know of an environment, as typed columns instead of fields of
// the controller's private record in spec_json (issue 13): the provider namespace, whether it
// was created by hand for a pull request (kept whatever its labels say), and the gateway's
// backend address. Existing rows are filled from spec_json where it holds them.
constexpr std::string_view kEnvironmentFieldsSqlite = R"sql(
ALTER TABLE environments ADD COLUMN namespace_name TEXT NOT NULL DEFAULT '';
ALTER TABLE environments ADD COLUMN forced BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE environments ADD COLUMN backend_url TEXT NOT NULL DEFAULT '';
UPDATE environments SET
  namespace_name = COALESCE(json_extract(spec_json, '$.namespace'), ''),
  forced = COALESCE(json_extract(spec_json, '$.forced'), 0) <> 0,
  backend_url = COALESCE(json_extract(spec_json, '$.controller.backend_url'), '')
WHERE json_valid(spec_json) AND json_type(spec_json) = 'object';
)sql";
constexpr std::string_view kEnvironmentFieldsPostgres = R"sql(
ALTER TABLE environments ADD COLUMN namespace_name TEXT NOT NULL DEFAULT '';
ALTER TABLE environments ADD COLUMN forced BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE environments ADD COLUMN backend_url TEXT NOT NULL DEFAULT '';
UPDATE environments SET
  namespace_name = COALESCE(spec_json::jsonb ->> 'namespace', ''),
  forced = COALESCE((spec_json::jsonb ->> 'forced') = 'true', FALSE),
  backend_url = COALESCE(spec_json::jsonb -> 'controller' ->> 'backend_url', '')
WHERE spec_json LIKE '{%}';
)sql";

// Version 8: what a delivery means, decoded by its forge at intake (forge-neutral), so the
// controller reads no forge JSON. Comments stored before it are decoded here from GitHub's
// payload (the only forge so far; every stored body is a JSON object, the intake refuses
// anything else): a person's new comment on a pull request.
constexpr std::string_view kDeliveryKindsSqlite = R"sql(
ALTER TABLE deliveries ADD COLUMN kind TEXT NOT NULL DEFAULT '';
ALTER TABLE deliveries ADD COLUMN comment_id BIGINT NOT NULL DEFAULT 0;
ALTER TABLE deliveries ADD COLUMN author TEXT NOT NULL DEFAULT '';
ALTER TABLE deliveries ADD COLUMN text TEXT NOT NULL DEFAULT '';
UPDATE deliveries SET
  kind = 'comment',
  comment_id = json_extract(body, '$.comment.id'),
  author = json_extract(body, '$.comment.user.login'),
  text = json_extract(body, '$.comment.body')
WHERE forge = 'github' AND event = 'issue_comment' AND action = 'created' AND json_valid(body)
  AND json_type(body, '$.comment.id') = 'integer'
  AND json_type(body, '$.comment.user.login') = 'text'
  AND json_type(body, '$.comment.body') = 'text'
  AND COALESCE(json_extract(body, '$.comment.user.type'), '') <> 'Bot';
CREATE INDEX deliveries_by_kind ON deliveries (repo, pr_number, kind, received_at);
)sql";
constexpr std::string_view kDeliveryKindsPostgres = R"sql(
ALTER TABLE deliveries ADD COLUMN kind TEXT NOT NULL DEFAULT '';
ALTER TABLE deliveries ADD COLUMN comment_id BIGINT NOT NULL DEFAULT 0;
ALTER TABLE deliveries ADD COLUMN author TEXT NOT NULL DEFAULT '';
ALTER TABLE deliveries ADD COLUMN text TEXT NOT NULL DEFAULT '';
UPDATE deliveries SET
  kind = 'comment',
  comment_id = (body::jsonb -> 'comment' ->> 'id')::bigint,
  author = body::jsonb -> 'comment' -> 'user' ->> 'login',
  text = body::jsonb -> 'comment' ->> 'body'
WHERE forge = 'github' AND event = 'issue_comment' AND action = 'created'
  AND jsonb_typeof(body::jsonb -> 'comment' -> 'id') = 'number'
  AND (body::jsonb -> 'comment' ->> 'id') ~ '^[0-9]{1,18}$'
  AND jsonb_typeof(body::jsonb -> 'comment' -> 'user' -> 'login') = 'string'
  AND jsonb_typeof(body::jsonb -> 'comment' -> 'body') = 'string'
  AND COALESCE(body::jsonb -> 'comment' -> 'user' ->> 'type', '') <> 'Bot';
CREATE INDEX deliveries_by_kind ON deliveries (repo, pr_number, kind, received_at);
)sql";

}  // namespace

const std::vector<Migration>& Migrations() {
  static const std::vector<Migration>* const kMigrations = new std::vector<Migration>{
      {.version = 1, .name = "core tables", .sql = kCoreTables},
      {.version = 2,
       .name = "environment events",
       .sqlite_sql = kEnvEventsSqlite,
       .postgres_sql = kEnvEventsPostgres},
      {.version = 3,
       .name = "api tokens",
       .sqlite_sql = kApiTokensSqlite,
       .postgres_sql = kApiTokensPostgres},
      {.version = 4, .name = "deliveries by pull request", .sql = kDeliveriesByPullRequest},
      {.version = 5,
       .name = "installation",
       .sqlite_sql = kInstallationSqlite,
       .postgres_sql = kInstallationPostgres},
      {.version = 6, .name = "project trigger labels", .sql = kProjectTriggerLabels},
      {.version = 7,
       .name = "environment fields",
       .sqlite_sql = kEnvironmentFieldsSqlite,
       .postgres_sql = kEnvironmentFieldsPostgres},
      {.version = 8,
       .name = "delivery kinds",
       .sqlite_sql = kDeliveryKindsSqlite,
       .postgres_sql = kDeliveryKindsPostgres},
  };
  return *kMigrations;
}

int LatestSchemaVersion() { return Migrations().back().version; }

}  // namespace eph::state
