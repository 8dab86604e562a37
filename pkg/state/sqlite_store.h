// The embedded SQLite Store (`sqlite:PATH`), ephd's default.
//
// Durability: WAL journal with synchronous=FULL, so a call that returned OK (an acknowledged
// webhook) survives kill -9 of the process and a power cut. Foreign keys are on.
//
// Concurrency: one connection per Store, guarded by a mutex, so calls from many threads
// serialise inside the process. Several Stores, or several processes, may open the same file:
// writes take the database write lock up front (BEGIN IMMEDIATE) and wait for it up to the
// busy timeout; a call that still cannot get it returns Unavailable.
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
  // How long a write waits for another connection's write lock before giving up.
  std::chrono::milliseconds busy_timeout{10000};
};

// Opens (creating the file and its parent directories if needed) the database at `path`,
// relative to the working directory unless absolute, and applies pending migrations.
// ":memory:" gives a private in-memory database.
absl::StatusOr<std::unique_ptr<Store>> OpenSqliteStore(const std::string& path,
                                                       const SqliteStoreOptions& options = {});

}  // namespace eph::state
