#include "pkg/database/managed_objects.h"

#include <algorithm>
#include <pqxx/pqxx>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "pkg/base/random.h"
#include "pkg/base/sha256.h"
#include "pkg/database/admin_sql.h"
#include "pkg/database/scram.h"

namespace eph::database {
namespace {

constexpr size_t kMaxIdentifier = 63;

// Debian's abseil has its own string_view.
absl::string_view S(std::string_view s) { return {s.data(), s.size()}; }

ObjectInfo InfoOf(const pqxx::result& r) {
  ObjectInfo info;
  if (r.empty()) return info;
  info.exists = true;
  info.commented = !r[0][0].is_null() && *r[0][0].c_str() != '\0';
  info.marker = ParseMarker(r[0][0].c_str());
  return info;
}

void TerminateSessions(pqxx::connection_base& conn, const char* column, const std::string& value) {
  pqxx::nontransaction tx(conn);
  tx.exec_params(absl::StrCat("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE ",
                              column, " = $1 AND pid <> pg_backend_pid()"),
                 value);
}

void DropDatabase(pqxx::connection_base& conn, const std::string& dbname) {
  const ObjectInfo db = DatabaseInfo(conn, dbname);
  if (!db.exists) return;
  const std::string qdb = QuoteName(conn, dbname);
  // An invalid database (an earlier drop cut short) has no sessions and refuses ALTER:
  // straight to DROP.
  if (!db.invalid) {
    Exec(conn, absl::StrCat("REVOKE CONNECT ON DATABASE ", qdb, " FROM PUBLIC"));
    Exec(conn, absl::StrCat("ALTER DATABASE ", qdb, " WITH ALLOW_CONNECTIONS false"));
    TerminateSessions(conn, "datname", dbname);
  }
  Exec(conn, absl::StrCat("DROP DATABASE IF EXISTS ", qdb, " WITH (FORCE)"));
}

}  // namespace

std::optional<Marker> ParseMarker(std::string_view comment) {
  std::vector<std::string> words = absl::StrSplit(S(comment), ' ', absl::SkipEmpty());
  if (words.empty() || words[0] != kMarker) return std::nullopt;
  Marker out;
  for (size_t i = 1; i < words.size(); ++i) {
    const size_t eq = words[i].find('=');
    if (eq == std::string::npos) {
      out[words[i]] = "";
    } else {
      out[words[i].substr(0, eq)] = words[i].substr(eq + 1);
    }
  }
  return out;
}

std::string EnvMarker(std::string_view environment, std::string_view project,
                      std::string_view installation, std::string_view instance) {
  std::string marker =
      absl::StrCat(kMarker, " environment=", S(environment), " project=", S(project));
  if (!instance.empty()) absl::StrAppend(&marker, " instance=", S(instance));
  if (!installation.empty()) absl::StrAppend(&marker, " installation=", S(installation));
  return marker;
}

std::string TemplateMarker(std::string_view project, std::string_view hash) {
  return absl::StrCat(kMarker, " template project=", S(project), " hash=", S(hash));
}

std::string SpareMarker(std::string_view project, std::string_view tpl,
                        std::string_view installation) {
  std::string marker = absl::StrCat(kMarker, " spare of=", S(tpl), " project=", S(project));
  if (!installation.empty()) absl::StrAppend(&marker, " installation=", S(installation));
  return marker;
}

bool IsDnsLabel(std::string_view s) {
  if (s.empty() || s.size() > 63 || s.front() == '-' || s.back() == '-') return false;
  for (char c : s) {
    if (!(absl::ascii_islower(c) || absl::ascii_isdigit(c) || c == '-')) return false;
  }
  return true;
}

bool ValidProject(std::string_view project) {
  if (project.empty() || project.size() > 200) return false;
  for (char c : project) {
    if (!absl::ascii_isalnum(c) && c != '-' && c != '_' && c != '.' && c != '/') return false;
  }
  return true;
}

std::string EnvironmentObjectName(std::string_view environment, std::string_view instance) {
  std::string name(kEnvPrefix);
  auto append = [&](std::string_view part) {
    for (char c : part) name.push_back(absl::ascii_isalnum(c) ? absl::ascii_tolower(c) : '_');
  };
  append(environment);
  if (!instance.empty()) {
    // Always hashed: "__" could also come from an environment name with "--".
    name += "__";
    append(instance);
    const std::string hash = Sha256Hex(absl::StrCat(S(environment), "/", S(instance))).substr(0, 8);
    return absl::StrCat(name.substr(0, std::min(name.size(), kMaxIdentifier - 9)), "_", hash);
  }
  if (name.size() > kMaxIdentifier || !IsDnsLabel(environment)) {
    // Distinct environments keep distinct names when cut (or when mapped lossily).
    const std::string hash = Sha256Hex(environment).substr(0, 8);
    name = absl::StrCat(name.substr(0, std::min(name.size(), kMaxIdentifier - 9)), "_", hash);
  }
  return name;
}

std::string TemplateObjectName(std::string_view project, std::string_view content_hash) {
  return absl::StrCat(kTemplatePrefix, Sha256Hex(project).substr(0, 12), "_",
                      S(content_hash.substr(0, 16)));
}

ObjectInfo DatabaseInfo(pqxx::connection_base& conn, const std::string& name) {
  pqxx::nontransaction tx(conn);
  pqxx::result r = tx.exec_params(
      "SELECT coalesce(shobj_description(oid, 'pg_database'), ''), datconnlimit = -2 "
      "FROM pg_database WHERE datname = $1",
      name);
  ObjectInfo info = InfoOf(r);
  if (info.exists) info.invalid = r[0][1].as<bool>();
  return info;
}

ObjectInfo RoleInfo(pqxx::connection_base& conn, const std::string& name) {
  pqxx::nontransaction tx(conn);
  return InfoOf(tx.exec_params(
      "SELECT coalesce(shobj_description(oid, 'pg_authid'), '') FROM pg_roles WHERE rolname = $1",
      name));
}

bool MarksInstance(const ObjectInfo& info, const std::string& environment,
                   const std::string& instance) {
  if (!info.marker) return false;
  const auto env = info.marker->find("environment");
  const auto inst = info.marker->find("instance");
  return env != info.marker->end() && env->second == environment &&
         (inst == info.marker->end() ? std::string() : inst->second) == instance;
}

absl::Status CreateLoginRole(pqxx::connection_base& conn, const std::string& role,
                             const std::string& password, const std::string& marker) {
  absl::StatusOr<std::string> verifier = ScramSha256Verifier(password, SecureRandom::Instance());
  if (!verifier.ok()) return verifier.status();
  const std::string qrole = QuoteName(conn, role);
  if (RoleInfo(conn, role).exists) {
    Exec(conn, absl::StrCat("ALTER ROLE ", qrole, " WITH LOGIN PASSWORD ", Quote(conn, *verifier)));
  } else {
    Exec(conn, absl::StrCat("CREATE ROLE ", qrole,
                            " WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE "
                            "NOREPLICATION NOBYPASSRLS PASSWORD ",
                            Quote(conn, *verifier)));
  }
  Exec(conn, absl::StrCat("COMMENT ON ROLE ", qrole, " IS ", Quote(conn, marker)));
  return absl::OkStatus();
}

void DropObjects(pqxx::connection_base& conn, const std::string& dbname, const std::string& role) {
  if (!role.empty() && RoleInfo(conn, role).exists) {
    Exec(conn, absl::StrCat("ALTER ROLE ", QuoteName(conn, role), " NOLOGIN"));
  }
  if (!dbname.empty()) DropDatabase(conn, dbname);
  if (!role.empty() && RoleInfo(conn, role).exists) {
    const std::string qrole = QuoteName(conn, role);
    TerminateSessions(conn, "usename", role);
    // Privileges or temporary objects in the admin's database would block DROP ROLE.
    Exec(conn, absl::StrCat("DROP OWNED BY ", qrole));
    Exec(conn, absl::StrCat("DROP ROLE IF EXISTS ", qrole));
  }
}

}  // namespace eph::database
