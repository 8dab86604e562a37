#include "pkg/database/admin_sql.h"

#include <pqxx/pqxx>
#include <utility>

namespace eph::database {

AdminServer::AdminServer(ConnParams params) : params_(std::move(params)) {
  if (params_.count("password")) secrets_.push_back(params_.at("password"));
}

std::unique_ptr<pqxx::connection> AdminServer::Connect(const std::string& dbname) const {
  ConnParams p = params_;
  if (!dbname.empty()) p["dbname"] = dbname;
  auto conn = std::make_unique<pqxx::connection>(ConninfoString(p));
  Exec(*conn, "SET client_min_messages TO WARNING");
  return conn;
}

void Exec(pqxx::connection_base& conn, const std::string& sql) {
  pqxx::nontransaction tx(conn);
  tx.exec(sql);
}

std::string Quote(pqxx::connection_base& conn, const std::string& s) {
  pqxx::nontransaction tx(conn);
  return tx.quote(s);
}

std::string QuoteName(pqxx::connection_base& conn, const std::string& s) {
  pqxx::nontransaction tx(conn);
  return tx.quote_name(s);
}

}  // namespace eph::database
