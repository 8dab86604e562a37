// The PostgreSQL Store (`postgres://...` / `postgresql://...`), for several ephd sharing state
// or for a managed database.
//
// Connections: a fixed-size pool, opened lazily. A connection found broken (server restarted,
// network cut, backend terminated) fails its call with Unavailable and is dropped with every
// idle connection; the next call connects afresh, so a restarted PostgreSQL is survived
// without restarting ephd. Idle connections are checked before reuse, so a restart between
// calls usually costs no failed call at all.
//
// Concurrency: READ COMMITTED transactions. ClaimWork locks the row it takes with
// FOR UPDATE SKIP LOCKED, so any number of ephd processes on one database never hold one key
// at once. Serialization failures and deadlocks come back as Aborted (re-read and retry).
//
// Errors never carry the password: while opening, messages name the server by
// RedactStoreUrl(url); once open, errors that would name it are logged and replaced by a generic
// message (store.h).
//
// Thread-safety: safe to use from many threads at once; at most pool_size calls run in
// parallel, the others wait up to acquire_timeout for a connection.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "pkg/state/store.h"

namespace eph::state {

struct PostgresStoreOptions {
  int pool_size = 8;
  // All three are short so that a webhook gets its answer (a 503 when the database is stuck)
  // well inside GitHub's 10 s.
  // Added to the URL as libpq's connect_timeout unless the URL sets it.
  std::chrono::seconds connect_timeout{3};
  // How long a call waits for a free pooled connection before returning Unavailable.
  std::chrono::seconds acquire_timeout{3};
  // Each statement's limit (PostgreSQL's statement_timeout, unless the URL sets one; also
  // libpq's tcp_user_timeout); migrations are exempt.
  std::chrono::milliseconds statement_timeout{5000};
};

// Connects, applies pending migrations (under a PostgreSQL advisory lock, so several ephd
// starting together migrate once) and returns the store.
absl::StatusOr<std::unique_ptr<Store>> OpenPostgresStore(const std::string& url,
                                                         const PostgresStoreOptions& options = {});

}  // namespace eph::state
