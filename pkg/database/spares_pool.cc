#include "pkg/database/spares_pool.h"

#include <optional>
#include <pqxx/pqxx>

#include "absl/strings/str_cat.h"
#include "pkg/base/sha256.h"
#include "pkg/database/advisory_lock.h"
#include "pkg/database/managed_objects.h"
#include "pkg/database/pg_status.h"
#include "pkg/database/templates.h"
#include "spdlog/spdlog.h"

namespace eph::database {
namespace {

using Clock = std::chrono::steady_clock;

void RecordMaking(pqxx::connection_base& conn, const std::string& name, const std::string& tpl,
                  const std::string& project, const std::string& installation) {
  pqxx::nontransaction tx(conn);
  tx.exec_params(
      "INSERT INTO eph_meta.spares (name, template, project, installation, state) "
      "VALUES ($1, $2, $3, $4, 'making')",
      name, tpl, project, installation);
}

// In `tx`: takes the oldest ready spare of `tpl` off the list; "" when there is none.
std::string Claim(pqxx::work& tx, const std::string& tpl) {
  pqxx::result r = tx.exec_params(
      "SELECT name FROM eph_meta.spares WHERE template = $1 AND state = 'ready' "
      "ORDER BY updated_at, name LIMIT 1 FOR UPDATE SKIP LOCKED",
      tpl);
  if (r.empty()) return "";
  std::string spare = r[0][0].c_str();
  tx.exec_params("DELETE FROM eph_meta.spares WHERE name = $1", spare);
  return spare;
}

// In `tx`: whether `spare` is a database marked as a spare of `tpl`.
bool IsSpareOf(pqxx::work& tx, const std::string& spare, const std::string& tpl) {
  pqxx::result d = tx.exec_params(
      "SELECT coalesce(shobj_description(oid, 'pg_database'), '') FROM pg_database "
      "WHERE datname = $1",
      spare);
  std::optional<Marker> marker;
  if (!d.empty()) marker = ParseMarker(d[0][0].c_str());
  return marker && marker->count("spare") && (*marker)["of"] == tpl;
}

}  // namespace

void SparesPool::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool SparesPool::Stopping() {
  std::lock_guard<std::mutex> lock(mu_);
  return stopping_;
}

void SparesPool::QueueRefill(const std::string& project, const std::string& tpl) {
  std::lock_guard<std::mutex> lock(mu_);
  if (stopping_) return;
  for (const auto& queued : refills_) {
    if (queued.second == tpl) return;
  }
  refills_.emplace_back(project, tpl);
  if (!thread_.joinable()) thread_ = std::thread([this] { RefillLoop(); });
  cv_.notify_all();
}

void SparesPool::RefillLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    cv_.wait(lock, [this] { return stopping_ || !refills_.empty(); });
    if (stopping_) break;
    const auto [project, tpl] = refills_.front();
    refills_.pop_front();
    refilling_ = true;
    lock.unlock();
    Refill(project, tpl);
    lock.lock();
    refilling_ = false;
    cv_.notify_all();
  }
  refilling_ = false;
  cv_.notify_all();
}

bool SparesPool::WaitIdle(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, timeout, [this] { return refills_.empty() && !refilling_; });
}

void SparesPool::Refill(const std::string& project, const std::string& tpl) {
  try {
    std::unique_ptr<pqxx::connection> conn = server_.Connect();
    meta_.Ensure(*conn);
    std::optional<AdvisoryLock> refill = AdvisoryLock::TryAcquire(*conn, SpareRefillLockKey(tpl));
    if (!refill) return;  // another refiller has it
    while (!Stopping() && Wanted(*conn, project, tpl)) {
      std::optional<AdvisoryLock> shared =
          AdvisoryLock::TryAcquire(*conn, TemplateLockKey(tpl), AdvisoryLock::Mode::kShared);
      if (!shared) break;  // being rebuilt or dropped
      if (DatabaseInfo(*conn, tpl).exists) Make(*conn, project, tpl);
    }
  } catch (...) {
    const absl::Status st =
        CurrentExceptionStatus(absl::StrCat("making a spare of template ", tpl), server_.secrets());
    // No retry loop: the next clone of the project asks again.
    spdlog::warn("database: {}", std::string(st.message()));
  }
}

bool SparesPool::Wanted(pqxx::connection_base& conn, const std::string& project,
                        const std::string& tpl) {
  pqxx::nontransaction tx(conn);
  pqxx::result r = tx.exec_params(
      absl::StrCat("SELECT ", NewestTemplateSql("$1"),
                   " = $2, (SELECT count(*) FROM eph_meta.spares WHERE template = $2) < $3"),
      project, tpl, options_.clone_spares);
  return !r[0][0].is_null() && r[0][0].as<bool>() && r[0][1].as<bool>();
}

void SparesPool::Make(pqxx::connection_base& conn, const std::string& project,
                      const std::string& tpl) {
  const auto started = Clock::now();
  const std::string name =
      absl::StrCat(kSparePrefix, Sha256Hex(project).substr(0, 12), "_", options_.random->Hex(8));
  RecordMaking(conn, name, tpl, project, options_.installation);
  const std::string qname = QuoteName(conn, name);
  try {
    // Nobody may connect to a spare: renaming it needs it unused.
    Exec(conn, absl::StrCat("CREATE DATABASE ", qname, " TEMPLATE ", QuoteName(conn, tpl),
                            " ALLOW_CONNECTIONS false", CopyClause(options_.clone_copy)));
    Exec(conn, absl::StrCat("COMMENT ON DATABASE ", qname, " IS ",
                            Quote(conn, SpareMarker(project, tpl, options_.installation))));
    Exec(conn, absl::StrCat("REVOKE ALL ON DATABASE ", qname, " FROM PUBLIC"));
    pqxx::nontransaction tx(conn);
    tx.exec_params("UPDATE eph_meta.spares SET state = 'ready', updated_at = now() WHERE name = $1",
                   name);
  } catch (...) {
    try {
      Drop(conn, name);
    } catch (...) {
      // The sweep finds it by its row or its marker.
    }
    throw;
  }
  made_.fetch_add(1);
  spdlog::info(
      "database: spare {} of template {} ready in {} ms", name, tpl,
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started).count());
}

bool SparesPool::Take(pqxx::connection_base& conn, const std::string& tpl,
                      const std::string& name) {
  std::string spare;
  try {
    pqxx::work tx(conn);
    spare = Claim(tx, tpl);
    if (spare.empty()) return false;
    if (!IsSpareOf(tx, spare, tpl)) {
      tx.commit();  // forget a row whose database is gone or not a spare of this template
      spdlog::warn("database: spare {} of template {} is missing; copying the template", spare,
                   tpl);
      return false;
    }
    tx.exec(absl::StrCat("ALTER DATABASE ", conn.quote_name(spare), " RENAME TO ",
                         conn.quote_name(name)));
    tx.exec(absl::StrCat("ALTER DATABASE ", conn.quote_name(name), " OWNER TO ",
                         conn.quote_name(name)));
    tx.commit();
  } catch (const pqxx::sql_error& e) {
    spdlog::warn("database: spare {} of template {} could not be taken ({}); copying the template",
                 spare, tpl, OneLine(e.what()));
    return false;
  }
  taken_.fetch_add(1);
  spdlog::debug("database: {} is spare {} of template {}", name, spare, tpl);
  return true;
}

void SparesPool::Drop(pqxx::connection_base& conn, const std::string& name) {
  {
    pqxx::work tx(conn);
    tx.exec_params("DELETE FROM eph_meta.spares WHERE name = $1", name);
    tx.commit();
  }
  const ObjectInfo info = DatabaseInfo(conn, name);
  if (info.exists && info.marker && info.marker->count("spare")) {
    Exec(conn, absl::StrCat("DROP DATABASE IF EXISTS ", QuoteName(conn, name), " WITH (FORCE)"));
  }
}

void SparesPool::DropStale(pqxx::connection_base& conn, const std::string& project) {
  pqxx::result r;
  {
    pqxx::nontransaction tx(conn);
    r = tx.exec_params(absl::StrCat("SELECT s.name, s.template, s.state FROM eph_meta.spares s "
                                    "WHERE ($1 = '' OR s.project = $1) AND (s.state <> 'ready' OR "
                                    "s.template IS DISTINCT FROM ",
                                    NewestTemplateSql("s.project"), ")"),
                       project);
  }
  for (const pqxx::row& row : r) {
    const std::string name = row[0].c_str();
    // A spare being made: its template's refill lock is held. (The probe is released at once.)
    if (std::string_view(row[2].c_str()) != "ready" &&
        !AdvisoryLock::TryAcquire(conn, SpareRefillLockKey(row[1].c_str()))) {
      continue;
    }
    Drop(conn, name);
    spdlog::info("database: dropped spare {} of template {}", name, row[1].c_str());
  }
}

}  // namespace eph::database
