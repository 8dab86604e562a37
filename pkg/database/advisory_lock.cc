#include "pkg/database/advisory_lock.h"

#include <pqxx/pqxx>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "pkg/base/sha256.h"
#include "pkg/database/admin_sql.h"
#include "pkg/database/pg_status.h"
#include "spdlog/spdlog.h"

namespace eph::database {
namespace {

using Mode = AdvisoryLock::Mode;

// Debian's abseil has its own string_view.
absl::string_view S(std::string_view s) { return {s.data(), s.size()}; }

const char* LockFunction(Mode mode) {
  return mode == Mode::kShared ? "pg_advisory_lock_shared" : "pg_advisory_lock";
}
const char* TryLockFunction(Mode mode) {
  return mode == Mode::kShared ? "pg_try_advisory_lock_shared" : "pg_try_advisory_lock";
}
const char* UnlockFunction(Mode mode) {
  return mode == Mode::kShared ? "pg_advisory_unlock_shared" : "pg_advisory_unlock";
}

}  // namespace

int64_t AdvisoryLockKey(std::string_view what) {
  const std::string hex = Sha256Hex(what).substr(0, 16);
  uint64_t v = 0;
  for (char c : hex)
    v = v * 16 + static_cast<uint64_t>(absl::ascii_isdigit(c) ? c - '0' : c - 'a' + 10);
  return static_cast<int64_t>(v);
}

int64_t EnvironmentLockKey(std::string_view environment) {
  return AdvisoryLockKey(absl::StrCat("eph.env:", S(environment)));
}
int64_t TemplateLockKey(std::string_view tpl) {
  return AdvisoryLockKey(absl::StrCat("eph.tpl:", S(tpl)));
}
int64_t TemplateOwnerLockKey(std::string_view tpl) {
  return AdvisoryLockKey(absl::StrCat("eph.tpl-owner:", S(tpl)));
}
int64_t SpareRefillLockKey(std::string_view tpl) {
  return AdvisoryLockKey(absl::StrCat("eph.spares:", S(tpl)));
}

absl::StatusOr<AdvisoryLock> AdvisoryLock::Acquire(pqxx::connection_base& conn, int64_t key,
                                                   Mode mode,
                                                   std::chrono::steady_clock::time_point deadline,
                                                   std::string_view what) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                        deadline - std::chrono::steady_clock::now())
                        .count();
  auto timed_out = [&] {
    return absl::DeadlineExceededError(absl::StrCat("timed out waiting for ", S(what)));
  };
  if (left <= 0) return timed_out();
  // The limit is for this wait only: RESET gives the session back its own setting.
  auto restore = [&] { Exec(conn, "RESET lock_timeout"); };
  Exec(conn, absl::StrCat("SET lock_timeout = ", left));
  try {
    Exec(conn, absl::StrCat("SELECT ", LockFunction(mode), "(", key, ")"));
  } catch (const pqxx::sql_error& e) {
    if (e.sqlstate() == "55P03") {
      restore();
      return timed_out();
    }
    try {
      restore();
    } catch (...) {
      // The connection is gone, and its setting with it.
    }
    throw;
  }
  AdvisoryLock lock(conn, key, mode);  // held from here, also if the restore throws
  restore();
  return lock;
}

AdvisoryLock AdvisoryLock::AcquireUnbounded(pqxx::connection_base& conn, int64_t key, Mode mode) {
  Exec(conn, absl::StrCat("SELECT ", LockFunction(mode), "(", key, ")"));
  return AdvisoryLock(conn, key, mode);
}

std::optional<AdvisoryLock> AdvisoryLock::TryAcquire(pqxx::connection_base& conn, int64_t key,
                                                     Mode mode) {
  pqxx::nontransaction tx(conn);
  if (!tx.exec(absl::StrCat("SELECT ", TryLockFunction(mode), "(", key, ")"))[0][0].as<bool>()) {
    return std::nullopt;
  }
  return AdvisoryLock(conn, key, mode);
}

AdvisoryLock::AdvisoryLock(AdvisoryLock&& other) noexcept
    : conn_(other.conn_), key_(other.key_), mode_(other.mode_) {
  other.conn_ = nullptr;
}

AdvisoryLock::~AdvisoryLock() {
  if (conn_ == nullptr) return;
  try {
    Exec(*conn_, absl::StrCat("SELECT ", UnlockFunction(mode_), "(", key_, ")"));
  } catch (...) {
    const absl::Status st = CurrentExceptionStatus("releasing an advisory lock", {});
    spdlog::debug("database: {} (the connection's end releases it)", std::string(st.message()));
  }
}

}  // namespace eph::database
