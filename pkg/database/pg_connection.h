// A libpq connection that runs untrusted SQL one statement at a time (seed and sanitising
// scripts, as the environment's role), and a watchdog that cancels the running statement at a
// deadline. libpq directly, not libpqxx: pqxx 6.4 does not expose an error's statement
// position, which gives the failing line.
//
// Thread-safety: a ScriptConnection is used by one thread at a time; its StatementWatchdog
// cancels from a thread of its own, which libpq allows (PQcancel).
#pragma once

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "pkg/database/conninfo.h"

struct pg_conn;
struct pg_cancel;

namespace eph::database {

// The server's refusal of a statement.
struct ServerError {
  std::string severity;  // "ERROR", "FATAL"
  std::string message;   // primary message, one line
  std::string detail;    // one line; may be empty
  std::string sqlstate;
  int position = 0;  // 1-based character index into the statement; 0 when none
};

// What one statement did: `connection` is Unavailable when the connection broke (nothing is
// known of the statement); otherwise `refused` says whether the server refused it.
struct StatementResult {
  absl::Status connection;
  std::optional<ServerError> refused;
};

class ScriptConnection {
 public:
  // Unavailable (libpq's message; the caller scrubs it) when the server cannot be reached.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<ScriptConnection>> Open(
      const ConnParams& params);
  ~ScriptConnection();
  ScriptConnection(const ScriptConnection&) = delete;
  ScriptConnection& operator=(const ScriptConnection&) = delete;

  // Runs `sql`. For `COPY ... FROM STDIN` sends `copy_data` (none: the COPY fails, saying the
  // data is missing); the rows of `COPY ... TO STDOUT` are read and dropped.
  StatementResult Run(const std::string& sql, const std::optional<std::string>& copy_data);

  // True when the session is inside a transaction block (a script's BEGIN without COMMIT).
  bool InTransaction() const;

  pg_conn* raw() const { return conn_; }

 private:
  explicit ScriptConnection(pg_conn* conn) : conn_(conn) {}
  StatementResult CopyIn(const std::optional<std::string>& copy_data);
  StatementResult CopyOut();

  pg_conn* conn_;
};

// Cancels the statement running on `connection` once `deadline` passes; stops (joining its
// thread) when destroyed. One thread for the life of the watchdog.
class StatementWatchdog {
 public:
  StatementWatchdog(ScriptConnection& connection, std::chrono::steady_clock::time_point deadline);
  ~StatementWatchdog();
  StatementWatchdog(const StatementWatchdog&) = delete;
  StatementWatchdog& operator=(const StatementWatchdog&) = delete;

  // Whether the deadline passed and the cancel was sent.
  bool fired();

 private:
  pg_cancel* cancel_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  bool fired_ = false;
  std::thread thread_;
};

}  // namespace eph::database
