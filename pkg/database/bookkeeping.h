// Eph's bookkeeping on the server: schema `eph_meta` in the admin connection's database (all
// privileges revoked from PUBLIC), with tables `environments` (one row per environment and
// instance: object name, password, seed hash, template, ready), `templates` and `spares`. This
// file creates the schema and reads and writes `environments`; templates.h and spares_pool.h own
// the other two tables.
//
// Thread-safety: MetaSchema may be used from any thread; the functions run statements on the
// connection passed (one thread at a time).
#pragma once

#include <mutex>
#include <optional>
#include <pqxx/types>
#include <string>
#include <vector>

namespace eph::database {

// Creates or upgrades schema eph_meta once per manager (under a transaction-level advisory lock,
// so processes starting together do not race).
class MetaSchema {
 public:
  void Ensure(pqxx::connection_base& conn);

 private:
  std::mutex mu_;
  bool ready_ = false;
};

// Which (environment, instance) row: every function below names one or all of an environment's.
struct EnvironmentKey {
  std::string environment;
  std::string instance;  // "" for an environment's only database
};

struct EnvironmentRow {
  std::string password;
  std::string seed_hash;
  bool ready = false;
};

std::optional<EnvironmentRow> ReadEnvironment(pqxx::connection_base& conn,
                                              const EnvironmentKey& key);

// Writes the row (not ready) before anything is created, so a call cut short leaves a trace
// that names the objects (see RecordNames).
void RecordEnvironment(pqxx::connection_base& conn, const EnvironmentKey& key,
                       const std::string& project, const std::string& object_name,
                       const std::string& password, const std::string& installation);

void MarkEnvironmentReady(pqxx::connection_base& conn, const EnvironmentKey& key,
                          const std::string& seed_hash, const std::string& tpl);

void ForgetEnvironment(pqxx::connection_base& conn, const EnvironmentKey& key);

// Whether this installation's bookkeeping names `object_name` as the object of `key`. The row
// is written before the role and the database are created, and each gets its marker comment in
// a statement after its CREATE: an object without any comment that the row names was made by a
// call cut short between the two (ephd killed, the server stopped).
bool RecordNames(pqxx::connection_base& conn, const EnvironmentKey& key,
                 const std::string& object_name, const std::string& installation);

// The instances recorded for `environment`.
std::vector<std::string> RecordedInstances(pqxx::connection_base& conn,
                                           const std::string& environment);
// The project of `environment`'s rows; "" when it has none.
std::string RecordedProject(pqxx::connection_base& conn, const std::string& environment);
// Every environment with a row, of `installation` ("" for all).
std::vector<std::string> RecordedEnvironments(pqxx::connection_base& conn,
                                              const std::string& installation);

}  // namespace eph::database
