#include "pkg/database/conninfo.h"

#include <libpq-fe.h>

#include <initializer_list>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "pkg/database/pg_status.h"

namespace eph::database {
namespace {

std::string QuoteConninfoValue(std::string_view v) {
  std::string out = "'";
  for (char c : v) {
    if (c == '\'' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  out.push_back('\'');
  return out;
}

std::string PercentEncode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (absl::ascii_isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xF]);
    }
  }
  return out;
}

std::string AppHost(const ConnParams& admin, const AppEndpoint& app) {
  if (!app.host.empty()) return app.host;
  if (admin.count("host")) return admin.at("host");
  if (admin.count("hostaddr")) return admin.at("hostaddr");
  return "localhost";
}

int AppPort(const ConnParams& admin, const AppEndpoint& app) {
  int port = 5432;
  if (app.port > 0) return app.port;
  if (admin.count("port")) (void)absl::SimpleAtoi(admin.at("port"), &port);
  return port;
}

}  // namespace

absl::StatusOr<ConnParams> ParseAdminUrl(const std::string& admin_url,
                                         std::chrono::seconds connect_timeout) {
  char* err = nullptr;
  PQconninfoOption* parsed = PQconninfoParse(admin_url.c_str(), &err);
  if (parsed == nullptr) {
    std::string message = err == nullptr ? "out of memory" : OneLine(err);
    if (err != nullptr) PQfreemem(err);
    return absl::InvalidArgumentError(
        absl::StrCat("the admin connection for databases is not a valid PostgreSQL URL: ",
                     Scrub(message, {admin_url})));
  }
  ConnParams params;
  for (PQconninfoOption* o = parsed; o->keyword != nullptr; ++o) {
    if (o->val != nullptr && *o->val != '\0') params[o->keyword] = o->val;
  }
  PQconninfoFree(parsed);
  params.try_emplace("connect_timeout", absl::StrCat(connect_timeout.count()));
  for (const auto& [key, value] : std::initializer_list<std::pair<const char*, const char*>>{
           {"application_name", "ephd-database"},
           {"keepalives_idle", "30"},
           {"keepalives_interval", "10"},
           {"keepalives_count", "3"}}) {
    params.try_emplace(key, value);
  }
  return params;
}

std::string ConninfoString(const ConnParams& params) {
  std::string out;
  for (const auto& [k, v] : params) {
    if (!out.empty()) out.push_back(' ');
    absl::StrAppend(&out, k, "=", QuoteConninfoValue(v));
  }
  return out;
}

ConnParams RoleParams(const ConnParams& admin, const std::string& role, const std::string& password,
                      const std::string& dbname) {
  ConnParams p = admin;
  p["user"] = role;
  p["password"] = password;
  p["dbname"] = dbname;
  p["application_name"] = "ephd-seed";
  return p;
}

Credentials AppCredentials(const ConnParams& admin, const AppEndpoint& app, const std::string& name,
                           const std::string& password) {
  Credentials c;
  c.host = AppHost(admin, app);
  c.port = AppPort(admin, app);
  c.dbname = name;
  c.user = name;
  c.password = password;
  const bool socket = absl::StartsWith(c.host, "/");
  const bool ipv6 = absl::StrContains(c.host, ":");
  const std::string url_host = socket ? "" : ipv6 ? absl::StrCat("[", c.host, "]") : c.host;
  c.database_url =
      absl::StrCat("postgresql://", PercentEncode(c.user), ":", PercentEncode(c.password), "@",
                   url_host, ":", c.port, "/", PercentEncode(c.dbname));
  if (socket) absl::StrAppend(&c.database_url, "?host=", PercentEncode(c.host));
  if (!app.sslmode.empty()) {
    absl::StrAppend(&c.database_url, socket ? "&" : "?", "sslmode=", app.sslmode);
    c.env["PGSSLMODE"] = app.sslmode;
  }
  c.env["DATABASE_URL"] = c.database_url;
  c.env["PGHOST"] = c.host;
  c.env["PGPORT"] = absl::StrCat(c.port);
  c.env["PGDATABASE"] = c.dbname;
  c.env["PGUSER"] = c.user;
  c.env["PGPASSWORD"] = c.password;
  return c;
}

}  // namespace eph::database
