// The databases and roles Eph makes on a shared server and how it knows them for its own: their
// names (`eph_env_...`, `eph_tpl_...`, `eph_spr_...`), the `eph:managed ...` COMMENT each carries
// (its marker), what an existing object of a name is, creating a login role, and dropping a
// database and a role. Eph never changes or drops an object without both its name and marker;
// the checks are the callers', with MarksInstance and ObjectInfo.
//
// Thread-safety: pure functions, or statements on the connection passed (one thread at a time).
#pragma once

#include <map>
#include <optional>
#include <pqxx/types>
#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace eph::database {

inline constexpr char kMarker[] = "eph:managed";
inline constexpr char kEnvPrefix[] = "eph_env_";
inline constexpr char kTemplatePrefix[] = "eph_tpl_";
inline constexpr char kSparePrefix[] = "eph_spr_";

// A marker's words: "eph:managed environment=foo project=bar" -> {environment: foo, project: bar};
// a word without '=' ("template", "spare") maps to "".
using Marker = std::map<std::string, std::string>;

// nullopt when `comment` is not a marker.
std::optional<Marker> ParseMarker(std::string_view comment);
std::string EnvMarker(std::string_view environment, std::string_view project,
                      std::string_view installation, std::string_view instance);
std::string TemplateMarker(std::string_view project, std::string_view hash);
std::string SpareMarker(std::string_view project, std::string_view tpl,
                        std::string_view installation);

// a-z, 0-9 and '-', 1 to 63 characters, no '-' at either end.
bool IsDnsLabel(std::string_view s);
// "owner/repo" (GitHub's characters) or a DNS label: it goes into markers split on spaces.
bool ValidProject(std::string_view project);

// DatabaseManager::ObjectName and TemplateName (see there).
std::string EnvironmentObjectName(std::string_view environment, std::string_view instance);
std::string TemplateObjectName(std::string_view project, std::string_view content_hash);

// What a database or role of a name is.
struct ObjectInfo {
  bool exists = false;
  bool commented = false;  // any comment at all, Eph's marker or not
  std::optional<Marker> marker;
  // A database whose DROP was cut short (the server crashed or stopped `immediate` meanwhile):
  // PostgreSQL (15.4 and later) marks it invalid with datconnlimit -2. Nobody can connect to
  // it, ALTER DATABASE on it is FATAL for the session, and only DROP DATABASE finishes it.
  bool invalid = false;
};
ObjectInfo DatabaseInfo(pqxx::connection_base& conn, const std::string& name);
ObjectInfo RoleInfo(pqxx::connection_base& conn, const std::string& name);

// Whether the object's marker names this environment's database of `instance` ("" when none).
bool MarksInstance(const ObjectInfo& info, const std::string& environment,
                   const std::string& instance);

// Creates (or resets the password of) a login role of Eph's, without any privilege, carrying
// `marker`. The password reaches the server only as a SCRAM verifier.
absl::Status CreateLoginRole(pqxx::connection_base& conn, const std::string& role,
                             const std::string& password, const std::string& marker);

// Stops the sessions of a database and a role of Eph's and drops them. Either may be "" or
// absent. The caller has checked both are Eph's.
void DropObjects(pqxx::connection_base& conn, const std::string& dbname, const std::string& role);

}  // namespace eph::database
