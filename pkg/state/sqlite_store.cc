#include "pkg/state/sqlite_store.h"

#include <sqlite3.h>

#include <cctype>
#include <filesystem>
#include <mutex>
#include <system_error>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "pkg/state/sql_store.h"

namespace eph::state {
namespace {

struct DbCloser {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
using DbPtr = std::unique_ptr<sqlite3, DbCloser>;

struct StmtFinalizer {
  void operator()(sqlite3_stmt* stmt) const { sqlite3_finalize(stmt); }
};
using StmtPtr = std::unique_ptr<sqlite3_stmt, StmtFinalizer>;

// Canonical status for an SQLite result code, with the database path and SQLite's own message
// so the user can tell which file and what went wrong.
absl::Status SqliteError(int rc, sqlite3* db, const std::string& path, absl::string_view doing) {
  const std::string detail = absl::StrCat("SQLite database ", path, ": ", doing, ": ",
                                          db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return absl::UnavailableError(
          absl::StrCat(detail, " (another connection or process held the lock too long)"));
    case SQLITE_CONSTRAINT:
      switch (rc) {
        case SQLITE_CONSTRAINT_UNIQUE:
        case SQLITE_CONSTRAINT_PRIMARYKEY:
          return absl::AlreadyExistsError(detail);
        case SQLITE_CONSTRAINT_FOREIGNKEY:
          return absl::FailedPreconditionError(detail);
        default:
          return absl::InvalidArgumentError(detail);
      }
    case SQLITE_FULL:
      return absl::UnavailableError(absl::StrCat(detail, " (free some disk space)"));
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
    case SQLITE_PROTOCOL:
      return absl::UnavailableError(detail);
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_AUTH:
      return absl::FailedPreconditionError(
          absl::StrCat(detail, " (check the file's and its directory's permissions)"));
    case SQLITE_NOTADB:
      return absl::FailedPreconditionError(
          absl::StrCat("SQLite database ", path, ": the file is not an SQLite database"));
    default:
      return absl::InternalError(detail);
  }
}

// Waits for another connection's lock in short naps, up to the timeout. SQLite's own busy
// timeout backs off to 100 ms naps, which leaves the write lock idle most of the time when two
// processes contend for it.
struct BusyWait {
  std::chrono::milliseconds timeout;
  std::chrono::steady_clock::time_point since;
};

int OnBusy(void* arg, int attempts) {
  auto* wait = static_cast<BusyWait*>(arg);
  const auto now = std::chrono::steady_clock::now();
  if (attempts == 0) wait->since = now;
  if (now - wait->since >= wait->timeout) return 0;
  std::this_thread::sleep_for(attempts < 100 ? std::chrono::microseconds(200)
                                             : std::chrono::microseconds(2000));
  return 1;
}

// The store's statements use PostgreSQL's $N placeholders; SQLite spells them ?N.
std::string SqlitePlaceholders(std::string_view sql) {
  std::string out(sql);
  for (size_t i = 0; i + 1 < out.size(); ++i) {
    if (out[i] == '$' && std::isdigit(static_cast<unsigned char>(out[i + 1]))) out[i] = '?';
  }
  return out;
}

class SqliteTx final : public SqlTx {
 public:
  SqliteTx(sqlite3* db, const std::string& path) : db_(db), path_(path) {}

  SqlResult Exec(std::string_view sql, const std::vector<SqlValue>& params) override {
    const std::string text = SqlitePlaceholders(sql);
    sqlite3_stmt* raw = nullptr;
    int rc = sqlite3_prepare_v2(db_, text.data(), static_cast<int>(text.size()), &raw, nullptr);
    StmtPtr stmt(raw);
    if (rc != SQLITE_OK) throw SqlError(SqliteError(rc, db_, path_, "preparing a statement"));
    for (size_t i = 0; i < params.size(); ++i) {
      const int index = static_cast<int>(i) + 1;
      const SqlValue& v = params[i];
      if (std::holds_alternative<std::monostate>(v)) {
        rc = sqlite3_bind_null(raw, index);
      } else if (const auto* n = std::get_if<int64_t>(&v)) {
        rc = sqlite3_bind_int64(raw, index, *n);
      } else if (const auto* b = std::get_if<bool>(&v)) {
        rc = sqlite3_bind_int(raw, index, *b ? 1 : 0);
      } else {
        const std::string& s = std::get<std::string>(v);
        rc = sqlite3_bind_text64(raw, index, s.data(), s.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
      }
      if (rc != SQLITE_OK) throw SqlError(SqliteError(rc, db_, path_, "binding a parameter"));
    }
    SqlResult result;
    const int columns = sqlite3_column_count(raw);
    while ((rc = sqlite3_step(raw)) == SQLITE_ROW) {
      std::vector<SqlValue> cells;
      cells.reserve(columns);
      for (int c = 0; c < columns; ++c) {
        switch (sqlite3_column_type(raw, c)) {
          case SQLITE_NULL:
            cells.emplace_back(std::monostate{});
            break;
          case SQLITE_INTEGER:
            cells.emplace_back(static_cast<int64_t>(sqlite3_column_int64(raw, c)));
            break;
          case SQLITE_FLOAT:
            cells.emplace_back(static_cast<int64_t>(sqlite3_column_double(raw, c)));
            break;
          default: {
            const auto* data = static_cast<const char*>(sqlite3_column_blob(raw, c));
            const int size = sqlite3_column_bytes(raw, c);
            cells.emplace_back(data == nullptr ? std::string() : std::string(data, size));
          }
        }
      }
      result.rows.emplace_back(std::move(cells));
    }
    if (rc != SQLITE_DONE) throw SqlError(SqliteError(rc, db_, path_, "running a statement"));
    result.affected = sqlite3_changes64(db_);
    return result;
  }

  void ExecScript(std::string_view sql) override {
    const std::string text(sql);
    char* err = nullptr;
    const int rc = sqlite3_exec(db_, text.c_str(), nullptr, nullptr, &err);
    sqlite3_free(err);
    if (rc != SQLITE_OK) throw SqlError(SqliteError(rc, db_, path_, "running a script"));
  }

 private:
  sqlite3* db_;
  const std::string& path_;
};

// One connection and the mutex that serialises its use.
struct Connection {
  std::mutex mu;
  std::unique_ptr<BusyWait> busy;  // the busy handler's state: declared first, freed last
  DbPtr db;
};

// Writes (and migrations) go through one connection, reads through another, so a reader never
// queues behind a writer that waits for another process's write lock: in WAL mode readers
// and the writer do not block each other.
class SqliteBackend final : public SqlBackend {
 public:
  SqliteBackend(std::unique_ptr<Connection> writer, std::unique_ptr<Connection> reader,
                std::string path)
      : writer_(std::move(writer)), reader_(std::move(reader)), path_(std::move(path)) {}

  SqlDialect dialect() const override { return SqlDialect::kSqlite; }

  absl::Status Run(TxMode mode, const std::function<absl::Status(SqlTx&)>& body) override {
    Connection& conn = mode == TxMode::kRead && reader_ != nullptr ? *reader_ : *writer_;
    std::lock_guard<std::mutex> lock(conn.mu);
    sqlite3* db = conn.db.get();
    // IMMEDIATE takes the write lock before the first read, so two writers never both read and
    // then deadlock upgrading; in WAL mode EXCLUSIVE is the same lock, named for intent.
    const char* begin = mode == TxMode::kRead    ? "BEGIN"
                        : mode == TxMode::kWrite ? "BEGIN IMMEDIATE"
                                                 : "BEGIN EXCLUSIVE";
    int rc = sqlite3_exec(db, begin, nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK) return SqliteError(rc, db, path_, "starting a transaction");
    SqliteTx tx(db, path_);
    absl::Status status;
    try {
      status = body(tx);
    } catch (const SqlError& e) {
      status = e.status();
    } catch (const std::exception& e) {
      status = absl::InternalError(absl::StrCat("SQLite database ", path_, ": ", e.what()));
    }
    if (status.ok()) {
      rc = sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr);
      if (rc == SQLITE_OK) return absl::OkStatus();
      status = SqliteError(rc, db, path_, "committing");
    }
    // Some errors (I/O, full disk) already rolled the transaction back.
    if (sqlite3_get_autocommit(db) == 0) sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
    return status;
  }

 private:
  const std::unique_ptr<Connection> writer_;
  const std::unique_ptr<Connection> reader_;  // null for :memory: (a second one is another db)
  const std::string path_;
};

absl::StatusOr<std::string> QueryText(sqlite3* db, const std::string& path,
                                      const std::string& sql) {
  sqlite3_stmt* raw = nullptr;
  int rc = sqlite3_prepare_v2(db, sql.c_str(), -1, &raw, nullptr);
  StmtPtr stmt(raw);
  if (rc != SQLITE_OK) return SqliteError(rc, db, path, sql);
  rc = sqlite3_step(raw);
  if (rc == SQLITE_ROW) {
    const unsigned char* text = sqlite3_column_text(raw, 0);
    return text == nullptr ? std::string() : std::string(reinterpret_cast<const char*>(text));
  }
  if (rc == SQLITE_DONE) return std::string();
  return SqliteError(rc, db, path, sql);
}

// Switching to WAL needs a moment of exclusive access, which another connection opening the
// same new file at the same time may hold; SQLite does not always wait for it by itself.
absl::StatusOr<std::string> SetJournalModeWal(sqlite3* db, const std::string& path,
                                              std::chrono::milliseconds patience) {
  const auto deadline = std::chrono::steady_clock::now() + patience;
  while (true) {
    absl::StatusOr<std::string> mode = QueryText(db, path, "PRAGMA journal_mode=WAL");
    if (mode.ok() || !absl::IsUnavailable(mode.status()) ||
        std::chrono::steady_clock::now() >= deadline) {
      return mode;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

absl::StatusOr<std::unique_ptr<Connection>> OpenConnection(const std::string& path,
                                                           const SqliteStoreOptions& options) {
  auto conn = std::make_unique<Connection>();
  conn->busy = std::make_unique<BusyWait>(BusyWait{.timeout = options.busy_timeout, .since = {}});
  sqlite3* raw = nullptr;
  const int rc =
      sqlite3_open_v2(path.c_str(), &raw,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  conn->db.reset(raw);
  if (rc != SQLITE_OK) return SqliteError(rc, raw, path, "opening");
  sqlite3_extended_result_codes(raw, 1);
  sqlite3_busy_handler(raw, &OnBusy, conn->busy.get());
  // Both are per connection. FULL: a commit is on disk before it returns (WAL + NORMAL could
  // lose the last commits on power loss).
  for (const char* pragma : {"PRAGMA synchronous=FULL", "PRAGMA foreign_keys=ON"}) {
    absl::StatusOr<std::string> ok = QueryText(raw, path, pragma);
    if (!ok.ok()) return ok.status();
  }
  return conn;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Store>> OpenSqliteStore(const std::string& path,
                                                       const SqliteStoreOptions& options) {
  if (path.empty()) return absl::InvalidArgumentError("SQLite database path is empty");
  const bool in_memory = path == ":memory:";
  if (!in_memory) {
    const std::filesystem::path parent = std::filesystem::path(path).parent_path();
    std::error_code ec;
    if (!parent.empty()) std::filesystem::create_directories(parent, ec);
    if (ec) {
      return absl::UnavailableError(absl::StrCat("SQLite database ", path,
                                                 ": cannot create directory ", parent.string(),
                                                 ": ", ec.message()));
    }
  }
  absl::StatusOr<std::unique_ptr<Connection>> writer = OpenConnection(path, options);
  if (!writer.ok()) return writer.status();
  absl::StatusOr<std::string> mode =
      SetJournalModeWal((*writer)->db.get(), path, options.busy_timeout);
  if (!mode.ok()) return mode.status();
  if (*mode != "wal" && !(in_memory && *mode == "memory")) {
    return absl::FailedPreconditionError(
        absl::StrCat("SQLite database ", path, ": cannot use the WAL journal (journal mode is '",
                     *mode, "'); put the database on a local filesystem"));
  }
  std::unique_ptr<Connection> reader;
  if (!in_memory) {
    absl::StatusOr<std::unique_ptr<Connection>> opened = OpenConnection(path, options);
    if (!opened.ok()) return opened.status();
    reader = *std::move(opened);
  }
  return OpenSqlStore(std::make_unique<SqliteBackend>(*std::move(writer), std::move(reader), path));
}

}  // namespace eph::state
