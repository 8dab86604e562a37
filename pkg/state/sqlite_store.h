// The embedded SQLite Store (`sqlite:PATH`), ephd's default.
//
// Durability: WAL journal with synchronous=FULL, so a call that returned OK (an acknowledged
// webhook) survives kill -9 of the process and a power cut. Foreign keys are on.
//
// Concurrency: one connection per Store, guarded by a mutex, so calls from many threads
// serialise inside the process. Several Stores, or several processes, may open the same file:
// writes take the database write lock up front (BEGIN IMMEDIATE) and wait for it up to the
// busy timeout; a call that still cannot get it returns Unavailable. Ping takes and releases
// the write lock, so a file another process holds locked makes /readyz fail.
//
// Files: the database's directory is created 0700 and the database (with its -wal and -shm)
// 0600; too-open ones are tightened with a warning. Once open, errors carry no path (store.h).
//
// Thread-safety: safe to use from many threads at once.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "pkg/state/store.h"

namespace eph::state {

struct SqliteStoreOptions {
  // How long a call waits for another connection's lock (and for its turn on this store's
  // connection) before giving up with Unavailable: short enough that a webhook is answered 503
  // well inside GitHub's 10 s, which it records as a failure to retry rather than a timeout.
  std::chrono::milliseconds busy_timeout{3000};
  // How long Ping waits for the write lock.
  std::chrono::milliseconds ping_timeout{1000};
};

// Opens (creating the file and its parent directories if needed) the database at `path`,
// relative to the working directory unless absolute, and applies pending migrations.
// ":memory:" gives a private in-memory database.
absl::StatusOr<std::unique_ptr<Store>> OpenSqliteStore(const std::string& path,
                                                       const SqliteStoreOptions& options = {});

}  // namespace eph::state
