#include "pkg/database/pg_connection.h"

#include <libpq-fe.h>

#include <cstdlib>
#include <vector>

#include "absl/strings/str_cat.h"
#include "pkg/database/pg_status.h"

namespace eph::database {
namespace {

struct PgResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using Result = std::unique_ptr<PGresult, PgResultDeleter>;

std::string Field(const PGresult* r, int code) {
  const char* v = PQresultErrorField(r, code);
  return v == nullptr ? "" : v;
}

ServerError ErrorOf(const PGresult* r) {
  ServerError e;
  e.severity = Field(r, PG_DIAG_SEVERITY);
  e.message = OneLine(Field(r, PG_DIAG_MESSAGE_PRIMARY));
  e.detail = OneLine(Field(r, PG_DIAG_MESSAGE_DETAIL));
  e.sqlstate = Field(r, PG_DIAG_SQLSTATE);
  e.position = std::atoi(Field(r, PG_DIAG_STATEMENT_POSITION).c_str());
  return e;
}

StatementResult Lost(const std::string& message) {
  return StatementResult{absl::UnavailableError(message), std::nullopt};
}

}  // namespace

absl::StatusOr<std::unique_ptr<ScriptConnection>> ScriptConnection::Open(const ConnParams& params) {
  std::vector<const char*> keys, values;
  for (const auto& [k, v] : params) {
    keys.push_back(k.c_str());
    values.push_back(v.c_str());
  }
  keys.push_back(nullptr);
  values.push_back(nullptr);
  PGconn* conn = PQconnectdbParams(keys.data(), values.data(), 0);
  if (conn == nullptr) return absl::UnavailableError("out of memory");
  std::unique_ptr<ScriptConnection> out(new ScriptConnection(conn));
  if (PQstatus(conn) != CONNECTION_OK) {
    return absl::UnavailableError(OneLine(PQerrorMessage(conn)));
  }
  // Notices (a script's RAISE NOTICE, "table does not exist, skipping") are not Eph's to log.
  PQsetNoticeProcessor(
      conn, [](void*, const char*) {}, nullptr);
  return out;
}

ScriptConnection::~ScriptConnection() { PQfinish(conn_); }

StatementResult ScriptConnection::Run(const std::string& sql,
                                      const std::optional<std::string>& copy_data) {
  Result r(PQexec(conn_, sql.c_str()));
  if (r == nullptr) {
    return Lost(absl::StrCat("lost the connection: ", OneLine(PQerrorMessage(conn_))));
  }
  switch (PQresultStatus(r.get())) {
    case PGRES_COPY_IN:
      return CopyIn(copy_data);
    case PGRES_COPY_OUT:
      return CopyOut();
    case PGRES_FATAL_ERROR:
      return StatementResult{absl::OkStatus(), ErrorOf(r.get())};
    default:
      return StatementResult{};
  }
}

StatementResult ScriptConnection::CopyIn(const std::optional<std::string>& copy_data) {
  const std::string& data = copy_data ? *copy_data : std::string();
  const bool sent =
      PQputCopyData(conn_, data.data(), static_cast<int>(data.size())) == 1 &&
      PQputCopyEnd(conn_,
                   copy_data ? nullptr : "COPY FROM STDIN needs its data after the statement") == 1;
  if (!sent) return Lost("lost the connection during COPY");
  StatementResult result;
  while (Result next{PQgetResult(conn_)}) {
    if (PQresultStatus(next.get()) == PGRES_FATAL_ERROR && !result.refused) {
      result.refused = ErrorOf(next.get());
    }
  }
  return result;
}

StatementResult ScriptConnection::CopyOut() {
  char* buf = nullptr;
  while (PQgetCopyData(conn_, &buf, 0) > 0) PQfreemem(buf);
  while (Result next{PQgetResult(conn_)}) {
  }
  return StatementResult{};
}

bool ScriptConnection::InTransaction() const { return PQtransactionStatus(conn_) != PQTRANS_IDLE; }

StatementWatchdog::StatementWatchdog(ScriptConnection& connection,
                                     std::chrono::steady_clock::time_point deadline)
    : cancel_(PQgetCancel(connection.raw())) {
  thread_ = std::thread([this, deadline] {
    std::unique_lock<std::mutex> lock(mu_);
    if (!cv_.wait_until(lock, deadline, [this] { return stop_; })) {
      fired_ = true;
      char err[256];
      if (cancel_ != nullptr) PQcancel(cancel_, err, sizeof err);
    }
  });
}

StatementWatchdog::~StatementWatchdog() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_one();
  thread_.join();
  if (cancel_ != nullptr) PQfreeCancel(cancel_);
}

bool StatementWatchdog::fired() {
  std::lock_guard<std::mutex> lock(mu_);
  return fired_;
}

}  // namespace eph::database
