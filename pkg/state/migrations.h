// Migrations: the versioned schema shared by the SQLite and PostgreSQL stores.
//
// Each migration is applied once, in version order, and recorded in `schema_migrations`
// (version, name, applied_at). Both backends run the same SQL text; a migration carries
// per-dialect text only where the SQL really differs (identity columns). Timestamps are BIGINT
// Unix milliseconds everywhere, booleans are BOOLEAN (SQLite stores 0/1).
//
// Rules for adding one: append with the next version, never edit or reorder an applied one,
// keep it valid for both dialects (or give both texts), and keep each migration's statements
// transactional (both backends apply a migration inside the migration transaction).
//
// Thread-safety: the list is immutable; safe from any thread.
#pragma once

#include <string_view>
#include <vector>

namespace eph::state {

enum class SqlDialect { kSqlite, kPostgres };

struct Migration {
  int version = 0;
  std::string_view name;
  std::string_view sql;           // for both dialects, unless overridden below
  std::string_view sqlite_sql;    // SQLite-only text, replaces `sql` when set
  std::string_view postgres_sql;  // PostgreSQL-only text, replaces `sql` when set

  std::string_view SqlFor(SqlDialect dialect) const;
};

// All migrations, in increasing version order.
const std::vector<Migration>& Migrations();

// The highest version in Migrations(): the schema this build expects.
int LatestSchemaVersion();

}  // namespace eph::state
