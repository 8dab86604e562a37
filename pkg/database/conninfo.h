// libpq connection parameters: parsing the admin URL ephd is given, writing parameters back as
// a conninfo string for libpqxx, and the credentials (DATABASE_URL and PG*) an app gets.
//
// Thread-safety: pure functions.
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "pkg/database/database_manager.h"

namespace eph::database {

// libpq keyword -> value ("host", "port", "dbname", "user", "password", ...).
using ConnParams = std::map<std::string, std::string>;

// Parses `admin_url` (postgres://... or key=value) and adds what ephd always wants unless the URL
// sets it: `connect_timeout`, an application_name, and TCP keepalives so a silently dead server
// ends a seed in about a minute. InvalidArgument (the URL itself never in the message: it may
// hold the password).
[[nodiscard]] absl::StatusOr<ConnParams> ParseAdminUrl(const std::string& admin_url,
                                                       std::chrono::seconds connect_timeout);

// `params` as a libpq conninfo string, every value quoted.
std::string ConninfoString(const ConnParams& params);

// The admin's parameters with another login and database: how a role's scripts connect.
ConnParams RoleParams(const ConnParams& admin, const std::string& role, const std::string& password,
                      const std::string& dbname);

// Where apps reach the server, when not where ephd does. Empty / 0: the admin's host and port.
struct AppEndpoint {
  std::string host;
  int port = 0;
  std::string sslmode;  // adds ?sslmode= and PGSSLMODE when set
};

// What the app of database (and role) `name` needs, at `app` or else the admin's address.
Credentials AppCredentials(const ConnParams& admin, const AppEndpoint& app, const std::string& name,
                           const std::string& password);

}  // namespace eph::database
