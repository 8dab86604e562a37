#include "pkg/database/bookkeeping.h"

#include <cstdint>
#include <pqxx/pqxx>

#include "absl/strings/str_cat.h"

namespace eph::database {
namespace {

constexpr int64_t kMetaLockKey = 0x6570682E64626D74;  // "eph.dbmt"

void CreateEnvironmentsTable(pqxx::work& tx) {
  tx.exec(
      "CREATE TABLE IF NOT EXISTS eph_meta.environments ("
      " environment text PRIMARY KEY, project text NOT NULL, object_name text NOT NULL,"
      " password text NOT NULL, seed_hash text NOT NULL DEFAULT '',"
      " template text NOT NULL DEFAULT '', ready boolean NOT NULL DEFAULT false,"
      " updated_at timestamptz NOT NULL DEFAULT now())");
  // Which installation of Eph the environment belongs to (several may share a server).
  tx.exec(
      "ALTER TABLE eph_meta.environments "
      "ADD COLUMN IF NOT EXISTS installation text NOT NULL DEFAULT ''");
  // Several databases per environment: one row per (environment, instance).
  tx.exec(
      "ALTER TABLE eph_meta.environments ADD COLUMN IF NOT EXISTS instance text NOT NULL "
      "DEFAULT ''");
  if (tx.exec("SELECT cardinality(conkey) FROM pg_constraint WHERE conrelid = "
              "'eph_meta.environments'::regclass AND contype = 'p'")[0][0]
          .as<int>() == 1) {
    tx.exec(
        "ALTER TABLE eph_meta.environments DROP CONSTRAINT environments_pkey, "
        "ADD PRIMARY KEY (environment, instance)");
  }
}

void CreateTemplateTables(pqxx::work& tx) {
  tx.exec(
      "CREATE TABLE IF NOT EXISTS eph_meta.templates ("
      " name text PRIMARY KEY, project text NOT NULL, content_hash text NOT NULL,"
      " state text NOT NULL, error text NOT NULL DEFAULT '',"
      " updated_at timestamptz NOT NULL DEFAULT now())");
  // Spares: copies of a template made ahead of time (state making -> ready; a clone that
  // takes one deletes its row in the transaction that renames it).
  tx.exec(
      "CREATE TABLE IF NOT EXISTS eph_meta.spares ("
      " name text PRIMARY KEY, template text NOT NULL, project text NOT NULL,"
      " installation text NOT NULL DEFAULT '', state text NOT NULL,"
      " updated_at timestamptz NOT NULL DEFAULT now())");
}

}  // namespace

void MetaSchema::Ensure(pqxx::connection_base& conn) {
  std::lock_guard<std::mutex> lock(mu_);
  if (ready_) return;
  pqxx::work tx(conn);
  tx.exec(absl::StrCat("SELECT pg_advisory_xact_lock(", kMetaLockKey, ")"));
  tx.exec("CREATE SCHEMA IF NOT EXISTS eph_meta");
  tx.exec("REVOKE ALL ON SCHEMA eph_meta FROM PUBLIC");
  CreateEnvironmentsTable(tx);
  CreateTemplateTables(tx);
  tx.exec("REVOKE ALL ON eph_meta.environments, eph_meta.templates, eph_meta.spares FROM PUBLIC");
  tx.commit();
  ready_ = true;
}

std::optional<EnvironmentRow> ReadEnvironment(pqxx::connection_base& conn,
                                              const EnvironmentKey& key) {
  pqxx::nontransaction tx(conn);
  pqxx::result r = tx.exec_params(
      "SELECT password, seed_hash, ready FROM eph_meta.environments "
      "WHERE environment = $1 AND instance = $2",
      key.environment, key.instance);
  if (r.empty()) return std::nullopt;
  return EnvironmentRow{r[0][0].c_str(), r[0][1].c_str(), r[0][2].as<bool>()};
}

void RecordEnvironment(pqxx::connection_base& conn, const EnvironmentKey& key,
                       const std::string& project, const std::string& object_name,
                       const std::string& password, const std::string& installation) {
  pqxx::nontransaction tx(conn);
  tx.exec_params(
      "INSERT INTO eph_meta.environments "
      "(environment, project, object_name, password, installation, instance) "
      "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (environment, instance) DO UPDATE "
      "SET ready = false, updated_at = now()",
      key.environment, project, object_name, password, installation, key.instance);
}

void MarkEnvironmentReady(pqxx::connection_base& conn, const EnvironmentKey& key,
                          const std::string& seed_hash, const std::string& tpl) {
  pqxx::nontransaction tx(conn);
  tx.exec_params(
      "UPDATE eph_meta.environments SET ready = true, seed_hash = $2, template = $3, "
      "updated_at = now() WHERE environment = $1 AND instance = $4",
      key.environment, seed_hash, tpl, key.instance);
}

void ForgetEnvironment(pqxx::connection_base& conn, const EnvironmentKey& key) {
  pqxx::nontransaction tx(conn);
  tx.exec_params("DELETE FROM eph_meta.environments WHERE environment = $1 AND instance = $2",
                 key.environment, key.instance);
}

bool RecordNames(pqxx::connection_base& conn, const EnvironmentKey& key,
                 const std::string& object_name, const std::string& installation) {
  pqxx::nontransaction tx(conn);
  return !tx.exec_params(
                "SELECT 1 FROM eph_meta.environments WHERE environment = $1 AND instance = $2 "
                "AND object_name = $3 AND installation = $4",
                key.environment, key.instance, object_name, installation)
              .empty();
}

std::vector<std::string> RecordedInstances(pqxx::connection_base& conn,
                                           const std::string& environment) {
  pqxx::nontransaction tx(conn);
  std::vector<std::string> out;
  for (const pqxx::row& row : tx.exec_params(
           "SELECT instance FROM eph_meta.environments WHERE environment = $1", environment)) {
    out.emplace_back(row[0].c_str());
  }
  return out;
}

std::string RecordedProject(pqxx::connection_base& conn, const std::string& environment) {
  pqxx::nontransaction tx(conn);
  pqxx::result r = tx.exec_params(
      "SELECT project FROM eph_meta.environments WHERE environment = $1 LIMIT 1", environment);
  return r.empty() ? "" : r[0][0].c_str();
}

std::vector<std::string> RecordedEnvironments(pqxx::connection_base& conn,
                                              const std::string& installation) {
  pqxx::nontransaction tx(conn);
  std::vector<std::string> out;
  for (const pqxx::row& row : tx.exec_params("SELECT environment FROM eph_meta.environments "
                                             "WHERE $1 = '' OR installation = $1",
                                             installation)) {
    out.emplace_back(row[0].c_str());
  }
  return out;
}

}  // namespace eph::database
