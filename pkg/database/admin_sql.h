// The admin's side of the server: connections as the admin through libpqxx, and the few helpers
// every statement Eph runs as the admin needs (quoting, a statement outside a transaction).
// Identifiers and literals always go through QuoteName / Quote.
//
// libpqxx throws: callers turn its exceptions into a Status at the module's boundary
// (CurrentExceptionStatus, with AdminServer::secrets()).
//
// Thread-safety: AdminServer is immutable after construction; a connection is used by one thread.
#pragma once

#include <memory>
#include <pqxx/connection>
#include <string>
#include <vector>

#include "pkg/database/conninfo.h"

namespace eph::database {

class AdminServer {
 public:
  explicit AdminServer(ConnParams params);

  // A new connection as the admin to its own database, or to `dbname`. Throws pqxx errors.
  std::unique_ptr<pqxx::connection> Connect(const std::string& dbname = "") const;

  const ConnParams& params() const { return params_; }
  // What no message may carry: the admin's password.
  const std::vector<std::string>& secrets() const { return secrets_; }

 private:
  ConnParams params_;
  std::vector<std::string> secrets_;
};

// Runs `sql` outside a transaction block (CREATE DATABASE, DROP DATABASE need that).
void Exec(pqxx::connection_base& conn, const std::string& sql);
// `s` as an SQL literal / identifier.
std::string Quote(pqxx::connection_base& conn, const std::string& s);
std::string QuoteName(pqxx::connection_base& conn, const std::string& s);

}  // namespace eph::database
