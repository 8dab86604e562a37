// SqlStore: the one implementation of Store's logic, written once against a tiny SQL seam that
// the SQLite and PostgreSQL adapters implement. Every query, every queue rule and every check is
// here, so the two backends cannot drift apart; the adapters only run statements, manage
// connections and transactions, and translate their library's errors into canonical Statuses.
//
// Internal to pkg/state: other modules use store.h (OpenStore) only.
//
// Thread-safety: SqlStore is as thread-safe as its SqlBackend, which must allow concurrent
// Run() calls from many threads (the adapters do).
#pragma once

#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "pkg/state/migrations.h"
#include "pkg/state/store.h"

namespace eph::state {

// A parameter or a result cell. Adapters may return any alternative for a cell (PostgreSQL
// returns text); SqlRow converts.
using SqlValue = std::variant<std::monostate, int64_t, std::string, bool>;

// Thrown inside a transaction body by SqlTx and SqlRow; SqlBackend::Run catches it and returns
// its status. Never escapes the adapter.
class SqlError : public std::exception {
 public:
  explicit SqlError(absl::Status status) : status_(std::move(status)) {}
  const absl::Status& status() const { return status_; }
  const char* what() const noexcept override { return "eph::state::SqlError"; }

 private:
  absl::Status status_;
};

class SqlRow {
 public:
  explicit SqlRow(std::vector<SqlValue> cells) : cells_(std::move(cells)) {}
  bool IsNull(size_t i) const;
  int64_t Int(size_t i) const;
  std::optional<int64_t> OptInt(size_t i) const;
  std::string Str(size_t i) const;  // NULL reads as ""
  bool Bool(size_t i) const;
  TimePoint Time(size_t i) const;
  std::optional<TimePoint> OptTime(size_t i) const;

 private:
  const SqlValue& At(size_t i) const;
  std::vector<SqlValue> cells_;
};

struct SqlResult {
  std::vector<SqlRow> rows;
  int64_t affected = 0;  // rows changed by an INSERT/UPDATE/DELETE
};

// One open transaction. Statements use $1, $2, ... placeholders (the SQLite adapter rewrites
// them). Failures throw SqlError with a canonical status.
class SqlTx {
 public:
  virtual ~SqlTx() = default;
  virtual SqlResult Exec(std::string_view sql, const std::vector<SqlValue>& params) = 0;
  // Several statements without parameters (migrations).
  virtual void ExecScript(std::string_view sql) = 0;
};

enum class TxMode {
  kRead,     // reads only
  kWrite,    // SQLite: BEGIN IMMEDIATE, so writers queue up front instead of failing late
  kMigrate,  // schema changes: exclusive against every other store on the same database
};

class SqlBackend {
 public:
  virtual ~SqlBackend() = default;
  virtual SqlDialect dialect() const = 0;
  // Runs `body` in one transaction: commits if it returns OK, rolls back otherwise (or when it
  // throws SqlError). Returns the body's status or the translated database error.
  virtual absl::Status Run(TxMode mode, const std::function<absl::Status(SqlTx&)>& body) = 0;
  // Store::Ping: OK only if the database would take a write now, answered within about a
  // second.
  virtual absl::Status Ping() = 0;
};

// Applies pending migrations (under the kMigrate lock) and wraps the backend in a Store.
// FailedPrecondition if the database has a schema newer than this build knows.
absl::StatusOr<std::unique_ptr<Store>> OpenSqlStore(std::unique_ptr<SqlBackend> backend);

// Applies pending migrations; returns the schema version afterwards.
absl::StatusOr<int> ApplyMigrations(SqlBackend& backend);

}  // namespace eph::state
