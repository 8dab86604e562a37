// EnvironmentDatabases: what the reconciler and the resync need from the per-environment
// database module (pkg/database's DatabaseManager, adapted by ephd). An interface here keeps the
// controller testable without PostgreSQL and free of the database module's dependencies.
//
// Thread-safety: implementations must be safe to call from many threads at once.
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "pkg/config/config.h"

namespace eph::controller {

// A PostgreSQL server of the environment's own (`placement: environment`), as the provider's
// EnsureDatabaseServer reports it.
struct DatabaseServerAccess {
  std::string admin_url;  // how ephd connects as its superuser. Secret.
  std::string app_host;   // how the app's containers reach it
  int app_port = 0;
};

class EnvironmentDatabases {
 public:
  virtual ~EnvironmentDatabases() = default;

  // Creates (or finds) the environment's database as `instance` describes, seeded from the
  // repository checkout at `source_dir`, and returns the settings the app gets as environment
  // variables (DATABASE_URL, PG*). On `server` when given (the environment's own), else on the
  // shared server. `key` tells an environment's databases apart: "" when eph.yaml lists one,
  // else the instance's name. Idempotent. Errors: InvalidArgument / FailedPrecondition for what
  // only a change to the repository or the configuration fixes (a failing or missing script: the
  // message names it; no shared server configured), Unavailable for the server.
  virtual absl::StatusOr<std::map<std::string, std::string>> Ensure(
      const std::string& environment, const std::string& key, const std::string& project,
      const std::string& source_dir, const config::DatabaseInstance& instance,
      const DatabaseServerAccess* server) = 0;

  // Drops the environment's databases and roles (every instance's) on the shared server,
  // closing their connections first. Idempotent. (A server of the environment's own goes with the
  // environment.)
  virtual absl::Status Drop(const std::string& environment) = 0;

  // The environments that have a database or role of Eph's on the server, for the orphan
  // sweep (which checks each against the store, then calls Drop).
  virtual absl::StatusOr<std::set<std::string>> EnvironmentsWithDatabases() = 0;
};

}  // namespace eph::controller
