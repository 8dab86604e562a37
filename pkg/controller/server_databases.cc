#include "pkg/controller/server_databases.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "pkg/base/host_port.h"

namespace eph::controller {

absl::Status SetAppAddress(SharedDatabaseServer& shared, const std::string& address) {
  if (address.empty()) return absl::OkStatus();
  const size_t colons = std::count(address.begin(), address.end(), ':');
  const bool bracketed = address.front() == '[';
  if (bracketed && address.back() == ']') {  // "[v6]": a host alone
    shared.app_host = address.substr(1, address.size() - 2);
    return absl::OkStatus();
  }
  if (colons == 0 || (colons > 1 && !bracketed)) {  // "db", or a bare IPv6 address "fd00::5"
    shared.app_host = address;
    return absl::OkStatus();
  }
  std::string host;
  uint16_t port = 0;
  if (absl::Status s = SplitHostPort(address, host, port); !s.ok() || host.empty() || port == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("database app host \"", address,
                     "\": expected a host, or host:port with a port from 1 to 65535"));
  }
  shared.app_host = host;
  shared.app_port = port;
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<ServerDatabases>> ServerDatabases::Create(
    const SharedDatabaseServer& shared, const std::string& installation) {
  std::unique_ptr<database::DatabaseManager> manager;
  if (!shared.admin_url.empty()) {
    database::DatabaseManagerOptions options;
    options.admin_url = shared.admin_url;
    options.installation = installation;
    options.clone_spares = shared.clone_spares;
    options.app_host = shared.app_host;
    if (shared.app_port != 0) options.app_port = shared.app_port;
    absl::StatusOr<std::unique_ptr<database::DatabaseManager>> made =
        database::DatabaseManager::Create(std::move(options));
    if (!made.ok()) {
      return absl::Status(made.status().code(),
                          absl::StrCat("database server: ", made.status().message()));
    }
    manager = std::move(*made);
  }
  return std::make_unique<ServerDatabases>(std::move(manager), installation);
}

absl::StatusOr<std::map<std::string, std::string>> ServerDatabases::Ensure(
    const std::string& environment, const std::string& key, const std::string& project,
    const std::string& source_dir, const config::DatabaseInstance& instance,
    const DatabaseServerAccess* server) {
  database::EnsureRequest request;
  request.environment = environment;
  request.instance = key;
  request.project = project;
  request.source_dir = source_dir;
  request.database = database::SpecFromConfig(instance);
  std::unique_ptr<database::DatabaseManager> own;
  database::DatabaseManager* manager = shared_.get();
  if (server != nullptr) {
    // One manager per call: the server is the environment's, reached at the address the
    // provider reports now (a Docker port can change when the container is replaced).
    database::DatabaseManagerOptions options;
    options.admin_url = server->admin_url;
    options.app_host = server->app_host;
    options.app_port = server->app_port;
    options.installation = installation_;
    absl::StatusOr<std::unique_ptr<database::DatabaseManager>> made =
        database::DatabaseManager::Create(std::move(options));
    if (!made.ok()) return made.status();
    own = std::move(*made);
    manager = own.get();
  } else if (manager == nullptr) {
    return absl::FailedPreconditionError(
        "eph.yaml asks for a database on the shared server, but this ephd has none (set "
        "EPH_DATABASE_ADMIN_URL), or give the environment a server of its own with "
        "`placement: environment`");
  }
  absl::StatusOr<database::EnsureResult> ensured = manager->Ensure(request);
  if (!ensured.ok()) return ensured.status();
  return ensured->credentials.env;
}

absl::Status ServerDatabases::Drop(const std::string& environment) {
  if (shared_ == nullptr) return absl::OkStatus();  // nothing of it can be on a shared server
  return shared_->Drop(environment);
}

absl::StatusOr<std::set<std::string>> ServerDatabases::EnvironmentsWithDatabases() {
  std::set<std::string> out;
  if (shared_ == nullptr) return out;
  absl::StatusOr<std::vector<database::OwnedObject>> owned = shared_->ListOwned();
  if (!owned.ok()) return owned.status();
  for (const database::OwnedObject& o : *owned) {
    if (!o.environment.empty()) out.insert(o.environment);
  }
  return out;
}

}  // namespace eph::controller
