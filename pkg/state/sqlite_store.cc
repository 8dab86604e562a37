#include "pkg/state/sqlite_store.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <system_error>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "pkg/state/sql_store.h"
#include "spdlog/spdlog.h"

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

// Where errors go. While the store is being opened they go to the operator who named the file,
// with its path; once it serves, statuses reach API clients too, so they carry no path (the
// detail goes to the log instead).
struct ErrorContext {
  std::string path;
  std::atomic<bool> serving{false};
};

// What a client is told when the store cannot be used right now: enough to retry, nothing about
// where the data lives.
absl::Status ClientError(absl::StatusCode code, const std::string& detail,
                         absl::string_view message) {
  spdlog::warn("state: {}", detail);
  return absl::Status(code, message);
}

// Canonical status for an SQLite result code. Opening: with the database path and SQLite's own
// message so the operator can tell which file and what went wrong. Serving: see ErrorContext.
absl::Status SqliteError(int rc, sqlite3* db, const ErrorContext& context,
                         absl::string_view doing) {
  const std::string& path = context.path;
  const char* sqlite_message = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  const std::string detail =
      absl::StrCat("SQLite database ", path, ": ", doing, ": ", sqlite_message);
  if (context.serving.load(std::memory_order_relaxed)) {
    switch (rc & 0xff) {
      case SQLITE_CONSTRAINT:
        // SQLite's message names a table and column, never the file.
        switch (rc) {
          case SQLITE_CONSTRAINT_UNIQUE:
          case SQLITE_CONSTRAINT_PRIMARYKEY:
            return absl::AlreadyExistsError(absl::StrCat("state store: ", sqlite_message));
          case SQLITE_CONSTRAINT_FOREIGNKEY:
            return absl::FailedPreconditionError(absl::StrCat("state store: ", sqlite_message));
          default:
            return absl::InvalidArgumentError(absl::StrCat("state store: ", sqlite_message));
        }
      case SQLITE_READONLY:
      case SQLITE_PERM:
      case SQLITE_AUTH:
      case SQLITE_NOTADB:
        return ClientError(absl::StatusCode::kFailedPrecondition, detail,
                           "the state store cannot be written; ephd's log says why");
      case SQLITE_BUSY:
      case SQLITE_LOCKED:
      case SQLITE_FULL:
      case SQLITE_IOERR:
      case SQLITE_CANTOPEN:
      case SQLITE_PROTOCOL:
        return ClientError(absl::StatusCode::kUnavailable, detail, kStoreUnavailableMessage);
      default:
        return ClientError(absl::StatusCode::kInternal, detail, "state store error");
    }
  }
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

// Waits for another connection's lock in short naps, up to the call's deadline. SQLite's own
// busy timeout backs off to 100 ms naps, which leaves the write lock idle most of the time when
// two processes contend for it.
struct BusyWait {
  // Set by each call before it starts, under the connection's mutex: time spent queueing for
  // the connection inside this process counts against the same budget.
  std::chrono::steady_clock::time_point deadline;
};

int OnBusy(void* arg, int attempts) {
  auto* wait = static_cast<BusyWait*>(arg);
  if (std::chrono::steady_clock::now() >= wait->deadline) return 0;
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
  SqliteTx(sqlite3* db, const ErrorContext& context) : db_(db), context_(context) {}

  SqlResult Exec(std::string_view sql, const std::vector<SqlValue>& params) override {
    const std::string text = SqlitePlaceholders(sql);
    sqlite3_stmt* raw = nullptr;
    int rc = sqlite3_prepare_v2(db_, text.data(), static_cast<int>(text.size()), &raw, nullptr);
    StmtPtr stmt(raw);
    if (rc != SQLITE_OK) throw SqlError(SqliteError(rc, db_, context_, "preparing a statement"));
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
      if (rc != SQLITE_OK) throw SqlError(SqliteError(rc, db_, context_, "binding a parameter"));
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
    if (rc != SQLITE_DONE) throw SqlError(SqliteError(rc, db_, context_, "running a statement"));
    result.affected = sqlite3_changes64(db_);
    return result;
  }

  void ExecScript(std::string_view sql) override {
    const std::string text(sql);
    char* err = nullptr;
    const int rc = sqlite3_exec(db_, text.c_str(), nullptr, nullptr, &err);
    sqlite3_free(err);
    if (rc != SQLITE_OK) throw SqlError(SqliteError(rc, db_, context_, "running a script"));
  }

 private:
  sqlite3* db_;
  const ErrorContext& context_;
};

// One connection and the mutex that serialises its use. Timed, so a call queued behind others
// waiting for another process's lock gives up at its own deadline.
// A lock that gives up at a deadline. Not std::timed_mutex: libstdc++ waits on it with
// pthread_mutex_clocklock, which ThreadSanitizer (gcc 12) does not see, so every unlock looked
// like the unlock of a mutex never locked; a mutex and a condition variable it models exactly.
class DeadlineLock {
 public:
  bool LockUntil(std::chrono::steady_clock::time_point deadline) {
    std::unique_lock<std::mutex> guard(mu_);
    if (!free_.wait_until(guard, deadline, [this] { return !held_; })) return false;
    held_ = true;
    return true;
  }
  void Unlock() {
    {
      std::lock_guard<std::mutex> guard(mu_);
      held_ = false;
    }
    free_.notify_one();
  }

 private:
  std::mutex mu_;
  std::condition_variable free_;
  bool held_ = false;
};

// Holds a DeadlineLock for a scope, if it could be had by the deadline.
class HeldUntil {
 public:
  HeldUntil(DeadlineLock& lock, std::chrono::steady_clock::time_point deadline)
      : lock_(lock), owns_(lock.LockUntil(deadline)) {}
  ~HeldUntil() {
    if (owns_) lock_.Unlock();
  }
  HeldUntil(const HeldUntil&) = delete;
  HeldUntil& operator=(const HeldUntil&) = delete;
  bool owns_lock() const { return owns_; }

 private:
  DeadlineLock& lock_;
  bool owns_;
};

struct Connection {
  DeadlineLock mu;
  std::unique_ptr<BusyWait> busy;  // the busy handler's state: declared first, freed last
  DbPtr db;
};

// Writes (and migrations) go through one connection, reads through another, so a reader never
// queues behind a writer that waits for another process's write lock: in WAL mode readers
// and the writer do not block each other.
class SqliteBackend final : public SqlBackend {
 public:
  SqliteBackend(std::unique_ptr<Connection> writer, std::unique_ptr<Connection> reader,
                std::unique_ptr<ErrorContext> context, const SqliteStoreOptions& options)
      : writer_(std::move(writer)),
        reader_(std::move(reader)),
        context_(std::move(context)),
        options_(options) {}

  SqlDialect dialect() const override { return SqlDialect::kSqlite; }

  // From now on statuses may reach API clients (ErrorContext).
  void Serving() { context_->serving = true; }

  absl::Status Run(TxMode mode, const std::function<absl::Status(SqlTx&)>& body) override {
    Connection& conn = mode == TxMode::kRead && reader_ != nullptr ? *reader_ : *writer_;
    const auto deadline = std::chrono::steady_clock::now() + options_.busy_timeout;
    HeldUntil lock(conn.mu, deadline);
    if (!lock.owns_lock()) return Busy("waiting for the connection, busy with other calls");
    conn.busy->deadline = deadline;
    return RunLocked(conn.db.get(), mode, body);
  }

  // Proves the store can take a write now: takes the write lock and lets it go, waiting at most
  // ping_timeout for it. A file locked by another process makes this fail, where a read would
  // still succeed.
  absl::Status Ping() override {
    Connection& conn = *writer_;
    const auto deadline = std::chrono::steady_clock::now() + options_.ping_timeout;
    HeldUntil lock(conn.mu, deadline);
    if (!lock.owns_lock()) return Busy("pinging: the connection stayed busy with other calls");
    conn.busy->deadline = deadline;
    sqlite3* db = conn.db.get();
    const int rc = sqlite3_exec(db, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK) return SqliteError(rc, db, *context_, "pinging (taking the write lock)");
    sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
    return absl::OkStatus();
  }

  const ErrorContext& context() const { return *context_; }

 private:
  absl::Status Busy(absl::string_view doing) const {
    return SqliteError(SQLITE_BUSY, nullptr, *context_, doing);
  }

  absl::Status RunLocked(sqlite3* db, TxMode mode,
                         const std::function<absl::Status(SqlTx&)>& body) {
    // IMMEDIATE takes the write lock before the first read, so two writers never both read and
    // then deadlock upgrading; in WAL mode EXCLUSIVE is the same lock, named for intent.
    const char* begin = mode == TxMode::kRead    ? "BEGIN"
                        : mode == TxMode::kWrite ? "BEGIN IMMEDIATE"
                                                 : "BEGIN EXCLUSIVE";
    int rc = sqlite3_exec(db, begin, nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK) return SqliteError(rc, db, *context_, "starting a transaction");
    SqliteTx tx(db, *context_);
    absl::Status status;
    try {
      status = body(tx);
    } catch (const SqlError& e) {
      status = e.status();
    } catch (const std::exception& e) {
      const std::string detail = absl::StrCat("SQLite database ", context_->path, ": ", e.what());
      status = context_->serving
                   ? ClientError(absl::StatusCode::kInternal, detail, "state store error")
                   : absl::InternalError(detail);
    }
    if (status.ok()) {
      rc = sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr);
      if (rc == SQLITE_OK) return absl::OkStatus();
      status = SqliteError(rc, db, *context_, "committing");
    }
    // Some errors (I/O, full disk) already rolled the transaction back.
    if (sqlite3_get_autocommit(db) == 0) sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
    return status;
  }

  const std::unique_ptr<Connection> writer_;
  const std::unique_ptr<Connection> reader_;  // null for :memory: (a second one is another db)
  const std::unique_ptr<ErrorContext> context_;
  const SqliteStoreOptions options_;
};

absl::StatusOr<std::string> QueryText(sqlite3* db, const ErrorContext& context,
                                      const std::string& sql) {
  sqlite3_stmt* raw = nullptr;
  int rc = sqlite3_prepare_v2(db, sql.c_str(), -1, &raw, nullptr);
  StmtPtr stmt(raw);
  if (rc != SQLITE_OK) return SqliteError(rc, db, context, sql);
  rc = sqlite3_step(raw);
  if (rc == SQLITE_ROW) {
    const unsigned char* text = sqlite3_column_text(raw, 0);
    return text == nullptr ? std::string() : std::string(reinterpret_cast<const char*>(text));
  }
  if (rc == SQLITE_DONE) return std::string();
  return SqliteError(rc, db, context, sql);
}

// Switching to WAL needs a moment of exclusive access, which another connection opening the
// same new file at the same time may hold; SQLite does not always wait for it by itself.
absl::StatusOr<std::string> SetJournalModeWal(Connection& conn, const ErrorContext& context,
                                              std::chrono::milliseconds patience) {
  const auto deadline = std::chrono::steady_clock::now() + patience;
  while (true) {
    conn.busy->deadline = std::chrono::steady_clock::now() + patience;
    absl::StatusOr<std::string> mode = QueryText(conn.db.get(), context, "PRAGMA journal_mode=WAL");
    if (mode.ok() || !absl::IsUnavailable(mode.status()) ||
        std::chrono::steady_clock::now() >= deadline) {
      return mode;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

absl::StatusOr<std::unique_ptr<Connection>> OpenConnection(const ErrorContext& context,
                                                           const SqliteStoreOptions& options) {
  auto conn = std::make_unique<Connection>();
  conn->busy = std::make_unique<BusyWait>(
      BusyWait{.deadline = std::chrono::steady_clock::now() + options.busy_timeout});
  sqlite3* raw = nullptr;
  const int rc =
      sqlite3_open_v2(context.path.c_str(), &raw,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  conn->db.reset(raw);
  if (rc != SQLITE_OK) return SqliteError(rc, raw, context, "opening");
  sqlite3_extended_result_codes(raw, 1);
  sqlite3_busy_handler(raw, &OnBusy, conn->busy.get());
  // Both are per connection. FULL: a commit is on disk before it returns (WAL + NORMAL could
  // lose the last commits on power loss).
  for (const char* pragma : {"PRAGMA synchronous=FULL", "PRAGMA foreign_keys=ON"}) {
    absl::StatusOr<std::string> ok = QueryText(raw, context, pragma);
    if (!ok.ok()) return ok.status();
  }
  return conn;
}

// True if `dir` holds nothing but the database and SQLite's files beside it: a directory of
// its own, which ephd may make private without surprising anyone.
bool HoldsOnlyTheDatabase(const std::filesystem::path& dir, const std::filesystem::path& db) {
  std::error_code ec;
  const std::string base = db.filename().string();
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name != base && name != base + "-wal" && name != base + "-shm" &&
        name != base + "-journal") {
      return false;
    }
  }
  return !ec;
}

// The database holds webhook bodies and token hashes: its directory is made 0700 and its files
// 0600 (SQLite gives the -wal and -shm files the database file's mode). Too-open ones left by
// an older ephd are tightened with a warning; a directory shared with other files (the working
// directory, say) is only warned about.
absl::Status MakePrivate(const std::string& path) {
  namespace fs = std::filesystem;
  constexpr auto kOthers = fs::perms::group_all | fs::perms::others_all;
  const fs::path file(path);
  fs::path parent = file.parent_path();
  if (parent.empty()) parent = ".";
  std::error_code ec;
  if (!fs::is_directory(parent, ec)) {
    // A file in the way makes create_directories fail, which is the error to report.
    ec.clear();
    // false without an error: another opener made it first, or a file is in the way.
    if (!fs::create_directories(parent, ec) && !ec && !fs::is_directory(parent, ec) && !ec) {
      ec = std::make_error_code(std::errc::not_a_directory);
    }
    if (!ec) fs::permissions(parent, fs::perms::owner_all, fs::perm_options::replace, ec);
    if (ec) {
      return absl::UnavailableError(absl::StrCat("SQLite database ", path,
                                                 ": cannot create directory ", parent.string(),
                                                 ": ", ec.message()));
    }
  } else {
    const fs::file_status st = fs::status(parent, ec);
    const bool shared = (st.permissions() & fs::perms::sticky_bit) != fs::perms::none;
    if (!ec && (st.permissions() & kOthers) != fs::perms::none && !shared) {
      if (HoldsOnlyTheDatabase(parent, file)) {
        fs::permissions(parent, kOthers, fs::perm_options::remove, ec);
        spdlog::warn("state: {} was open to other users; made it private (0700)", parent.string());
      } else {
        spdlog::warn(
            "state: {} is open to other users and holds other files; the database in it is "
            "private, but give it a directory of its own (e.g. eph-data/eph.db)",
            parent.string());
      }
    }
  }
  // Created here rather than by SQLite so it is never, even for a moment, readable by others.
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  if (fd >= 0) ::close(fd);
  for (const std::string& name : {path, path + "-wal", path + "-shm", path + "-journal"}) {
    const fs::file_status st = fs::status(name, ec);
    if (ec || !fs::is_regular_file(st)) continue;
    if ((st.permissions() & kOthers) != fs::perms::none) {
      fs::permissions(name, kOthers | fs::perms::owner_exec, fs::perm_options::remove, ec);
      if (!ec) spdlog::warn("state: {} was readable by other users; made it private (0600)", name);
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<Store>> OpenSqliteStore(const std::string& path,
                                                       const SqliteStoreOptions& options) {
  if (path.empty()) return absl::InvalidArgumentError("SQLite database path is empty");
  const bool in_memory = path == ":memory:";
  if (!in_memory) {
    if (absl::Status s = MakePrivate(path); !s.ok()) return s;
  }
  auto context = std::make_unique<ErrorContext>();
  context->path = path;
  absl::StatusOr<std::unique_ptr<Connection>> writer = OpenConnection(*context, options);
  if (!writer.ok()) return writer.status();
  absl::StatusOr<std::string> mode = SetJournalModeWal(**writer, *context, options.busy_timeout);
  if (!mode.ok()) return mode.status();
  if (*mode != "wal" && !(in_memory && *mode == "memory")) {
    return absl::FailedPreconditionError(
        absl::StrCat("SQLite database ", path, ": cannot use the WAL journal (journal mode is '",
                     *mode, "'); put the database on a local filesystem"));
  }
  std::unique_ptr<Connection> reader;
  if (!in_memory) {
    absl::StatusOr<std::unique_ptr<Connection>> opened = OpenConnection(*context, options);
    if (!opened.ok()) return opened.status();
    reader = *std::move(opened);
  }
  auto backend = std::make_unique<SqliteBackend>(*std::move(writer), std::move(reader),
                                                 std::move(context), options);
  SqliteBackend* raw = backend.get();
  absl::StatusOr<std::unique_ptr<Store>> store = OpenSqlStore(std::move(backend));
  if (store.ok()) raw->Serving();
  return store;
}

}  // namespace eph::state
