#include "pkg/state/postgres_store.h"

#include <poll.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <pqxx/pqxx>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "pkg/state/sql_store.h"
#include "spdlog/spdlog.h"

namespace eph::state {
namespace {

// Held (per transaction) while migrating, so concurrent ephd starts migrate one at a time.
constexpr int64_t kMigrationLockKey = 0x6570682E6D696772;  // "eph.migr"

std::string PercentDecode(absl::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && absl::ascii_isxdigit(s[i + 1]) &&
        absl::ascii_isxdigit(s[i + 2])) {
      auto hex = [](char c) { return absl::ascii_isdigit(c) ? c - '0' : (c | 0x20) - 'a' + 10; };
      out.push_back(static_cast<char>(hex(s[i + 1]) * 16 + hex(s[i + 2])));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

// The password of a URL, as written and decoded, to scrub from any message that might echo it.
// libpq does not put passwords in its messages; this is a second line of defence.
std::vector<std::string> Secrets(const std::string& url) {
  std::vector<std::string> out;
  auto add = [&](std::string secret) {
    if (secret.empty()) return;
    out.push_back(PercentDecode(secret));
    out.push_back(std::move(secret));
  };
  const size_t scheme_end = url.find("://");
  const size_t query = url.find('?');
  if (scheme_end != std::string::npos) {
    const size_t authority = scheme_end + 3;
    const size_t at = url.rfind('@', query);
    const size_t colon = url.find(':', authority);
    if (at != std::string::npos && at > authority && colon < at) {
      add(url.substr(colon + 1, at - colon - 1));
    }
  }
  if (query != std::string::npos) {
    for (absl::string_view param : absl::StrSplit(url.substr(query + 1), '&')) {
      if (absl::StartsWithIgnoreCase(param, "password=")) {
        add(std::string(param.substr(absl::string_view("password=").size())));
      }
    }
  }
  return out;
}

// libpq messages are multi-line ("ERROR:  ...\nDETAIL:  ...\n"); one line reads better in logs
// and API errors.
std::string OneLine(absl::string_view msg) {
  std::string out;
  for (absl::string_view part : absl::StrSplit(msg, absl::ByAnyChar("\n\t"), absl::SkipEmpty())) {
    part = absl::StripAsciiWhitespace(part);
    if (part.empty()) continue;
    if (!out.empty()) out += absl::ascii_ispunct(out.back()) ? " " : "; ";
    out.append(part.data(), part.size());
  }
  absl::StrReplaceAll({{"  ", " "}}, &out);
  return out;
}

// libpq connection parameters Eph wants unless the URL says otherwise: bounded connect time,
// TCP keepalives so a silently dead idle server is noticed in about a minute, not hours, and a
// bound on unacknowledged sends so a call on a dead network fails in seconds.
std::string WithDefaults(const std::string& url, const PostgresStoreOptions& options) {
  std::string out = url;
  // libpq only knows the lowercase schemes.
  const size_t scheme_end = out.find("://");
  for (size_t i = 0; i < scheme_end; ++i) out[i] = absl::ascii_tolower(out[i]);
  const std::pair<std::string, std::string> defaults[] = {
      {"connect_timeout", absl::StrCat(options.connect_timeout.count())},
      {"application_name", "ephd"},
      {"keepalives_idle", "30"},
      {"keepalives_interval", "10"},
      {"keepalives_count", "3"},
      {"tcp_user_timeout", absl::StrCat(options.statement_timeout.count())},
  };
  for (const auto& [key, value] : defaults) {
    const std::string param = absl::StrCat(key, "=");
    const size_t query = out.find('?');
    if (query != std::string::npos &&
        (absl::StrContains(out.substr(query), absl::StrCat("?", param)) ||
         absl::StrContains(out.substr(query), absl::StrCat("&", param)))) {
      continue;
    }
    absl::StrAppend(&out, query == std::string::npos ? "?" : "&", param, value);
  }
  return out;
}

class PgConnectionPool {
 public:
  PgConnectionPool(std::string conninfo, std::string redacted, std::vector<std::string> secrets,
                   const PostgresStoreOptions& options)
      : conninfo_(std::move(conninfo)),
        redacted_(std::move(redacted)),
        secrets_(std::move(secrets)),
        options_(options) {}

  // A connection on loan; goes back to the pool (or is dropped if broken) when destroyed.
  class Handle {
   public:
    Handle(PgConnectionPool* pool, std::unique_ptr<pqxx::connection> conn)
        : pool_(pool), conn_(std::move(conn)) {}
    Handle(Handle&& other) noexcept
        : pool_(std::exchange(other.pool_, nullptr)),
          conn_(std::move(other.conn_)),
          broken_(other.broken_) {}
    Handle& operator=(Handle&&) = delete;
    ~Handle() {
      if (pool_ != nullptr) pool_->Release(std::move(conn_), broken_);
    }
    pqxx::connection& conn() { return *conn_; }
    void MarkBroken() { broken_ = true; }

   private:
    PgConnectionPool* pool_;
    std::unique_ptr<pqxx::connection> conn_;
    bool broken_ = false;
  };

  absl::StatusOr<Handle> Acquire() {
    std::unique_ptr<pqxx::connection> conn;
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (!cv_.wait_for(lock, options_.acquire_timeout,
                        [&] { return in_use_ < options_.pool_size; })) {
        return ForClient(absl::UnavailableError(
            absl::StrCat("all ", options_.pool_size, " connections to PostgreSQL at ", redacted_,
                         " stayed busy for ", options_.acquire_timeout.count(), "s")));
      }
      ++in_use_;
      if (!idle_.empty()) {
        conn = std::move(idle_.back());
        idle_.pop_back();
      }
    }
    if (conn != nullptr && !StillConnected(*conn)) {
      spdlog::warn("state: a pooled PostgreSQL connection to {} was closed; reconnecting",
                   redacted_);
      DropIdle();
      conn.reset();
    }
    if (conn == nullptr) {
      absl::StatusOr<std::unique_ptr<pqxx::connection>> fresh = Connect();
      if (!fresh.ok()) {
        Release(nullptr, false);
        return fresh.status();
      }
      conn = *std::move(fresh);
    }
    return Handle(this, std::move(conn));
  }

  std::string Scrub(std::string msg) const {
    for (const std::string& s : secrets_) {
      if (s.size() >= 4) absl::StrReplaceAll({{s, "***"}}, &msg);
    }
    return msg;
  }

  const std::string& redacted() const { return redacted_; }

  // From now on statuses may reach API clients: see ForClient.
  void Serving() { serving_ = true; }

  // While opening, errors go to the operator and name the server (redacted). Once serving, they
  // may reach API clients, so those that would name it are logged and replaced by a generic
  // message with the same code.
  absl::Status ForClient(absl::Status detailed) const {
    if (!serving_ || detailed.ok()) return detailed;
    switch (detailed.code()) {
      case absl::StatusCode::kUnavailable:
      case absl::StatusCode::kInternal:
      case absl::StatusCode::kPermissionDenied:
        spdlog::warn("state: {}", std::string(detailed.message()));
        return absl::Status(detailed.code(), detailed.code() == absl::StatusCode::kUnavailable
                                                 ? kStoreUnavailableMessage
                                                 : "state store error; ephd's log says why");
      default:
        return detailed;
    }
  }

 private:
  // Checks the socket without a round trip. Nothing arrives unasked on an idle connection of
  // ours (no LISTEN), so anything readable is the server closing it (a FATAL such as
  // "terminating connection due to administrator command", then EOF), as is a hang-up.
  static bool StillConnected(pqxx::connection& conn) {
    if (!conn.is_open()) return false;
    pollfd pfd{.fd = conn.sock(), .events = POLLIN | POLLRDHUP, .revents = 0};
    if (pfd.fd < 0) return false;
    const int ready = poll(&pfd, 1, 0);
    return ready == 0;
  }

  absl::StatusOr<std::unique_ptr<pqxx::connection>> Connect() {
    try {
      auto conn = std::make_unique<pqxx::connection>(conninfo_);
      pqxx::nontransaction setup(*conn);
      // CREATE ... IF NOT EXISTS and friends would print NOTICEs to stderr.
      setup.exec("SET client_min_messages TO WARNING");
      // A statement stuck behind a lock gives up well inside a webhook sender's 10 s, so the
      // sender sees a 503 it retries rather than a timeout. A URL's own setting wins.
      if (!absl::StrContains(conninfo_, "statement_timeout")) {
        setup.exec(absl::StrCat("SET statement_timeout = ", options_.statement_timeout.count()));
      }
      return conn;
    } catch (const std::exception& e) {
      return ForClient(absl::UnavailableError(Scrub(
          absl::StrCat("cannot connect to PostgreSQL at ", redacted_, ": ", OneLine(e.what())))));
    }
  }

  void Release(std::unique_ptr<pqxx::connection> conn, bool broken) {
    if (broken) {
      spdlog::warn("state: lost a PostgreSQL connection to {}; the next call reconnects",
                   redacted_);
      DropIdle();
    }
    std::lock_guard<std::mutex> lock(mu_);
    --in_use_;
    if (conn != nullptr && !broken && conn->is_open()) idle_.push_back(std::move(conn));
    cv_.notify_one();
  }

  // One broken connection usually means the server went away: the idle ones are as dead.
  void DropIdle() {
    std::vector<std::unique_ptr<pqxx::connection>> dropped;
    {
      std::lock_guard<std::mutex> lock(mu_);
      dropped.swap(idle_);
    }
  }

  const std::string conninfo_;
  const std::string redacted_;
  const std::vector<std::string> secrets_;
  const PostgresStoreOptions options_;
  std::atomic<bool> serving_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<pqxx::connection>> idle_;
  int in_use_ = 0;
};

// Translates the exception being handled into a canonical status. Sets *broken when the
// connection cannot be used any more.
absl::Status TranslateCurrentException(const PgConnectionPool& pool, bool* broken) {
  const std::string& where = pool.redacted();
  auto msg = [&](absl::string_view prefix, const std::exception& e) {
    return pool.Scrub(absl::StrCat(prefix, OneLine(e.what())));
  };
  try {
    throw;
  } catch (const SqlError& e) {
    return e.status();
  } catch (const pqxx::in_doubt_error& e) {
    *broken = true;
    return absl::UnavailableError(
        msg(absl::StrCat("lost the connection to PostgreSQL at ", where,
                         " while committing; the change may or may not have been applied: "),
            e));
  } catch (const pqxx::broken_connection& e) {
    *broken = true;
    return absl::UnavailableError(msg(absl::StrCat("lost the connection to PostgreSQL at ", where,
                                                   " (the next call reconnects): "),
                                      e));
  } catch (const pqxx::transaction_rollback& e) {
    // serialization_failure, deadlock_detected, statement_completion_unknown.
    return absl::AbortedError(msg("PostgreSQL rolled back a conflicting transaction: ", e));
  } catch (const pqxx::unique_violation& e) {
    return absl::AlreadyExistsError(msg("PostgreSQL: ", e));
  } catch (const pqxx::foreign_key_violation& e) {
    return absl::FailedPreconditionError(msg("PostgreSQL: ", e));
  } catch (const pqxx::integrity_constraint_violation& e) {
    return absl::InvalidArgumentError(msg("PostgreSQL: ", e));
  } catch (const pqxx::insufficient_privilege& e) {
    return absl::PermissionDeniedError(
        msg(absl::StrCat("the PostgreSQL role in ", where,
                         " lacks a privilege Eph needs (it must own the schema): "),
            e));
  } catch (const pqxx::sql_error& e) {
    const std::string& state = e.sqlstate();
    if (absl::StartsWith(state, "08") || state == "57P01" || state == "57P02" || state == "57P03") {
      // Connection exceptions; admin shutdown, crash shutdown, cannot connect now.
      *broken = true;
      return absl::UnavailableError(
          msg(absl::StrCat("PostgreSQL at ", where, " is unavailable: "), e));
    }
    if (absl::StartsWith(state, "53") || state == "57014") {
      // Insufficient resources (disk full, out of memory, too many connections); cancelled.
      return absl::UnavailableError(
          msg(absl::StrCat("PostgreSQL at ", where, " could not run the statement: "), e));
    }
    if (absl::StartsWith(state, "40") || state == "55P03") {
      return absl::AbortedError(msg("PostgreSQL rolled back a conflicting transaction: ", e));
    }
    return absl::InternalError(msg("PostgreSQL: ", e));
  } catch (const std::exception& e) {
    return absl::InternalError(msg("PostgreSQL client: ", e));
  } catch (...) {
    return absl::InternalError("PostgreSQL client: unknown exception");
  }
}

absl::Status CurrentExceptionStatus(const PgConnectionPool& pool, bool* broken) {
  return pool.ForClient(TranslateCurrentException(pool, broken));
}

class PgTx final : public SqlTx {
 public:
  PgTx(pqxx::work& work, const PgConnectionPool& pool) : work_(work), pool_(pool) {}

  SqlResult Exec(std::string_view sql, const std::vector<SqlValue>& params) override {
    // Parameters go as text; the server infers their types from the statement.
    std::vector<std::string> storage;
    storage.reserve(params.size());
    std::vector<const char*> values;
    values.reserve(params.size());
    for (const SqlValue& v : params) {
      if (std::holds_alternative<std::monostate>(v)) {
        values.push_back(nullptr);
      } else if (const auto* n = std::get_if<int64_t>(&v)) {
        storage.push_back(absl::StrCat(*n));
        values.push_back(storage.back().c_str());
      } else if (const auto* b = std::get_if<bool>(&v)) {
        values.push_back(*b ? "true" : "false");
      } else {
        values.push_back(std::get<std::string>(v).c_str());
      }
    }
    try {
      const pqxx::result r =
          work_.exec_params(std::string(sql), pqxx::prepare::make_dynamic_params(values));
      SqlResult out;
      out.affected = static_cast<int64_t>(r.affected_rows());
      out.rows.reserve(r.size());
      for (const pqxx::row& row : r) {
        std::vector<SqlValue> cells;
        cells.reserve(row.size());
        for (const pqxx::field& f : row) {
          if (f.is_null()) {
            cells.emplace_back(std::monostate{});
          } else {
            cells.emplace_back(std::string(f.c_str(), f.size()));
          }
        }
        out.rows.emplace_back(std::move(cells));
      }
      return out;
    } catch (...) {
      throw SqlError(CurrentExceptionStatus(pool_, &broken_));
    }
  }

  void ExecScript(std::string_view sql) override {
    try {
      work_.exec(std::string(sql));
    } catch (...) {
      throw SqlError(CurrentExceptionStatus(pool_, &broken_));
    }
  }

  bool broken() const { return broken_; }

 private:
  pqxx::work& work_;
  const PgConnectionPool& pool_;
  bool broken_ = false;
};

class PgBackend final : public SqlBackend {
 public:
  PgBackend(const std::string& url, const PostgresStoreOptions& options)
      : pool_(WithDefaults(url, options), RedactStoreUrl(url), Secrets(url), options) {}

  SqlDialect dialect() const override { return SqlDialect::kPostgres; }

  absl::Status Run(TxMode mode, const std::function<absl::Status(SqlTx&)>& body) override {
    absl::StatusOr<PgConnectionPool::Handle> handle = pool_.Acquire();
    if (!handle.ok()) return handle.status();
    bool broken = false;
    absl::Status status;
    try {
      pqxx::work work(handle->conn());
      if (mode == TxMode::kMigrate) {
        // Waiting for another ephd's migration, and migrating, may take longer than a call.
        work.exec("SET LOCAL statement_timeout = 0");
        work.exec(absl::StrCat("SELECT pg_advisory_xact_lock(", kMigrationLockKey, ")"));
      }
      PgTx tx(work, pool_);
      try {
        status = body(tx);
      } catch (const SqlError& e) {
        status = e.status();
      }
      broken = tx.broken();
      if (status.ok() && !broken) work.commit();
      // Otherwise the work's destructor rolls back.
    } catch (...) {
      status = CurrentExceptionStatus(pool_, &broken);
    }
    if (broken || !handle->conn().is_open()) handle->MarkBroken();
    return status;
  }

  absl::Status Ping() override {
    return Run(TxMode::kRead, [](SqlTx& tx) {
      tx.Exec("SELECT 1", {});
      return absl::OkStatus();
    });
  }

  void Serving() { pool_.Serving(); }

 private:
  PgConnectionPool pool_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Store>> OpenPostgresStore(const std::string& url,
                                                         const PostgresStoreOptions& options) {
  if (options.pool_size < 1) {
    return absl::InvalidArgumentError("PostgreSQL pool size must be at least 1");
  }
  auto backend = std::make_unique<PgBackend>(url, options);
  PgBackend* raw = backend.get();
  absl::StatusOr<std::unique_ptr<Store>> store = OpenSqlStore(std::move(backend));
  if (store.ok()) raw->Serving();
  return store;
}

}  // namespace eph::state
