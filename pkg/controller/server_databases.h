// ServerDatabases: EnvironmentDatabases (databases.h) on PostgreSQL servers through
// pkg/database: one database per environment, on the shared server ephd is given
// (EPH_DATABASE_ADMIN_URL, optional) or on the environment's own server.
//
// Thread-safety: as DatabaseManager, safe from many threads.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "pkg/controller/databases.h"
#include "pkg/database/database_manager.h"

namespace eph::controller {

// The shared server, as ephd is configured; an empty admin_url means none.
struct SharedDatabaseServer {
  std::string admin_url;  // secret
  std::string app_host;   // how apps reach it (empty: the admin URL's host)
  int app_port = 0;       // 0: the admin URL's port
  int clone_spares = 0;
};

// `address` as apps reach the shared server: "host:port" (or "[v6]:port") sets both, a host
// alone ("db", "[fd00::5]", "fd00::5") only the host, "" nothing. InvalidArgument, naming the
// text, for a port that is missing after ':' or not 1-65535.
absl::Status SetAppAddress(SharedDatabaseServer& shared, const std::string& address);

class ServerDatabases final : public EnvironmentDatabases {
 public:
  // `shared` may be null: then only servers of the environments' own are served.
  ServerDatabases(std::unique_ptr<database::DatabaseManager> shared, std::string installation)
      : shared_(std::move(shared)), installation_(std::move(installation)) {}

  // Connects to the shared server, if any. The error names "database server".
  static absl::StatusOr<std::unique_ptr<ServerDatabases>> Create(
      const SharedDatabaseServer& shared, const std::string& installation);

  absl::StatusOr<std::map<std::string, std::string>> Ensure(
      const std::string& environment, const std::string& key, const std::string& project,
      const std::string& source_dir, const config::DatabaseInstance& instance,
      const DatabaseServerAccess* server) override;
  absl::Status Drop(const std::string& environment) override;
  absl::StatusOr<std::set<std::string>> EnvironmentsWithDatabases() override;

 private:
  std::unique_ptr<database::DatabaseManager> shared_;
  const std::string installation_;
};

}  // namespace eph::controller
