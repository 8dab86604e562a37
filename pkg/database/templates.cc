#include "pkg/database/templates.h"

#include <optional>
#include <pqxx/pqxx>
#include <vector>

#include "absl/strings/str_cat.h"
#include "pkg/database/managed_objects.h"
#include "spdlog/spdlog.h"

namespace eph::database {
namespace {

using Clock = std::chrono::steady_clock;
using Mode = AdvisoryLock::Mode;

// Debian's abseil has its own string_view.
absl::string_view S(std::string_view s) { return {s.data(), s.size()}; }

struct TemplateRow {
  std::string state;  // building, ready, failed, orphaned
  std::string error;
};

std::optional<TemplateRow> ReadTemplate(pqxx::connection_base& conn, const std::string& tpl) {
  pqxx::nontransaction tx(conn);
  pqxx::result r =
      tx.exec_params("SELECT state, error FROM eph_meta.templates WHERE name = $1", tpl);
  if (r.empty()) return std::nullopt;
  return TemplateRow{r[0][0].c_str(), r[0][1].c_str()};
}

bool Ready(pqxx::connection_base& conn, const std::optional<TemplateRow>& row,
           const std::string& tpl) {
  return row && row->state == "ready" && DatabaseInfo(conn, tpl).exists;
}

void ForgetTemplate(pqxx::connection_base& conn, const std::string& tpl) {
  pqxx::nontransaction tx(conn);
  tx.exec_params("DELETE FROM eph_meta.templates WHERE name = $1", tpl);
}

// Objects of a name that exist and carry no marker: not Eph's.
bool Foreign(const ObjectInfo& db, const ObjectInfo& role) {
  return (db.exists && !db.marker) || (role.exists && !role.marker);
}

int64_t Millis(Clock::time_point since) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - since).count();
}

}  // namespace

std::string NewestTemplateSql(std::string_view project_sql) {
  return absl::StrCat("(SELECT n.name FROM eph_meta.templates n WHERE n.project = ", S(project_sql),
                      " AND n.state = 'ready' ORDER BY n.updated_at DESC, n.name LIMIT 1)");
}

const char* CopyClause(CloneCopy copy) {
  switch (copy) {
    case CloneCopy::kWalLog:
      return " STRATEGY WAL_LOG";
    case CloneCopy::kFileCopy:
      return " STRATEGY FILE_COPY";
    case CloneCopy::kServerDefault:
      break;
  }
  return "";
}

absl::StatusOr<HeldTemplate> TemplateBuilder::Acquire(pqxx::connection_base& conn,
                                                      const std::string& project, const Seed& seed,
                                                      Clock::time_point deadline,
                                                      std::chrono::seconds timeout) {
  const std::string tpl = TemplateObjectName(project, seed.content_hash);
  const int64_t key = TemplateLockKey(tpl);
  const std::string waiting = absl::StrCat("template database ", tpl);
  for (int attempt = 0; attempt < 3; ++attempt) {
    std::optional<TemplateRow> row;
    {
      absl::StatusOr<AdvisoryLock> shared =
          AdvisoryLock::Acquire(conn, key, Mode::kShared, deadline, waiting);
      if (!shared.ok()) return shared.status();
      row = ReadTemplate(conn, tpl);
      if (Ready(conn, row, tpl)) return HeldTemplate{tpl, *std::move(shared)};
    }
    if (row && row->state == "failed") return absl::FailedPreconditionError(row->error);

    absl::StatusOr<AdvisoryLock> exclusive =
        AdvisoryLock::Acquire(conn, key, Mode::kExclusive, deadline, waiting);
    if (!exclusive.ok()) return exclusive.status();
    row = ReadTemplate(conn, tpl);
    if (row && row->state == "failed") return absl::FailedPreconditionError(row->error);
    if (!Ready(conn, row, tpl)) {
      if (absl::Status st = Build(conn, project, seed, tpl, deadline, timeout); !st.ok()) return st;
    }
  }
  return absl::AbortedError(
      absl::StrCat("template database ", tpl, " was dropped while being cloned; retry"));
}

absl::Status TemplateBuilder::Build(pqxx::connection_base& conn, const std::string& project,
                                    const Seed& seed, const std::string& tpl,
                                    Clock::time_point deadline, std::chrono::seconds timeout) {
  const auto started = Clock::now();
  spdlog::info("database: building template {} for project {}", tpl, project);
  {
    pqxx::nontransaction tx(conn);
    tx.exec_params(
        "INSERT INTO eph_meta.templates (name, project, content_hash, state) "
        "VALUES ($1, $2, $3, 'building') ON CONFLICT (name) DO UPDATE "
        "SET state = 'building', error = '', updated_at = now()",
        tpl, project, seed.content_hash);
  }
  // Leftovers of an interrupted build (ours by marker only).
  if (Foreign(DatabaseInfo(conn, tpl), RoleInfo(conn, tpl))) {
    return absl::FailedPreconditionError(absl::StrCat("a database or role named ", tpl,
                                                      " exists and is not Eph's; not touching it"));
  }
  DropObjects(conn, tpl, tpl);

  const std::string password = random_.Hex(24);
  const std::string marker = TemplateMarker(project, seed.content_hash);
  if (absl::Status st = CreateObjects(conn, tpl, password, marker); !st.ok()) return st;
  absl::Status st = RunScripts(RoleParams(server_.params(), tpl, password, tpl),
                               seed.WithSanitizer(), deadline, timeout, {password});
  if (!st.ok()) {
    spdlog::warn("database: template {} for project {} failed: {}", tpl, project,
                 std::string(st.message()));
    RecordFailure(conn, tpl, st);
    return st;
  }
  Seal(conn, tpl);
  builds_.fetch_add(1);
  spdlog::info("database: template {} for project {} ready in {} ms", tpl, project,
               Millis(started));
  return absl::OkStatus();
}

// The role (which runs the scripts and owns what they make) and the database, which the admin
// owns with its `public` schema the role's.
absl::Status TemplateBuilder::CreateObjects(pqxx::connection_base& conn, const std::string& tpl,
                                            const std::string& password,
                                            const std::string& marker) {
  if (absl::Status st = CreateLoginRole(conn, tpl, password, marker); !st.ok()) return st;
  const std::string qtpl = QuoteName(conn, tpl);
  Exec(conn, absl::StrCat("CREATE DATABASE ", qtpl));
  Exec(conn, absl::StrCat("COMMENT ON DATABASE ", qtpl, " IS ", Quote(conn, marker)));
  Exec(conn, absl::StrCat("REVOKE ALL ON DATABASE ", qtpl, " FROM PUBLIC"));
  Exec(conn, absl::StrCat("GRANT CONNECT, TEMPORARY ON DATABASE ", qtpl, " TO ", qtpl));
  std::unique_ptr<pqxx::connection> in_db = server_.Connect(tpl);
  Exec(*in_db, absl::StrCat("ALTER SCHEMA public OWNER TO ", qtpl));
  return absl::OkStatus();
}

void TemplateBuilder::RecordFailure(pqxx::connection_base& conn, const std::string& tpl,
                                    const absl::Status& failure) {
  DropObjects(conn, tpl, tpl);
  if (failure.code() != absl::StatusCode::kFailedPrecondition) {
    ForgetTemplate(conn, tpl);
    return;
  }
  // Same content, same failure: waiters get this error instead of building again.
  pqxx::nontransaction tx(conn);
  tx.exec_params(
      "UPDATE eph_meta.templates SET state = 'failed', error = $2, updated_at = now() "
      "WHERE name = $1",
      tpl, std::string(failure.message()));
}

// Nobody connects to a template: CREATE DATABASE ... TEMPLATE fails while anyone does.
void TemplateBuilder::Seal(pqxx::connection_base& conn, const std::string& tpl) {
  const std::string qtpl = QuoteName(conn, tpl);
  Exec(conn, absl::StrCat("ALTER ROLE ", qtpl, " NOLOGIN"));
  Exec(conn, absl::StrCat("ALTER DATABASE ", qtpl, " WITH ALLOW_CONNECTIONS false"));
  pqxx::nontransaction tx(conn);
  tx.exec_params("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", tpl);
  tx.exec_params(
      "UPDATE eph_meta.templates SET state = 'ready', updated_at = now() WHERE name = $1", tpl);
}

void TemplateBuilder::DropUnused(pqxx::connection_base& conn, const std::string& project) {
  pqxx::result r;
  {
    pqxx::nontransaction tx(conn);
    r = tx.exec_params(
        absl::StrCat("SELECT t.name, t.state, t.project, "
                     "  EXISTS (SELECT 1 FROM eph_meta.environments e WHERE e.template = t.name), "
                     "  t.name = ",
                     NewestTemplateSql("t.project"),
                     " FROM eph_meta.templates t WHERE $1 = '' OR t.project = $1"),
        project);
  }
  for (const pqxx::row& row : r) {
    const std::string state = row[1].c_str();
    const bool used = row[3].as<bool>();
    const bool newest = !row[4].is_null() && row[4].as<bool>();
    if (state == "ready" && (used || newest)) continue;
    if (state == "failed" && !project.empty()) continue;  // only the sweep forgets failures
    DropIfUnused(conn, row[0].c_str(), row[2].c_str());
  }
}

void TemplateBuilder::DropIfUnused(pqxx::connection_base& conn, const std::string& name,
                                   const std::string& project) {
  std::optional<AdvisoryLock> lock = AdvisoryLock::TryAcquire(conn, TemplateLockKey(name));
  if (!lock) return;  // being built or cloned
  if (Foreign(DatabaseInfo(conn, name), RoleInfo(conn, name))) return;
  DropObjects(conn, name, name);
  ForgetTemplate(conn, name);
  spdlog::info("database: dropped unused template {} of project {}", name, project);
}

void TemplateBuilder::Adopt(pqxx::connection_base& conn, const std::string& name,
                            const std::string& project) {
  pqxx::nontransaction tx(conn);
  tx.exec_params(
      "INSERT INTO eph_meta.templates (name, project, content_hash, state) "
      "VALUES ($1, $2, '', 'orphaned') ON CONFLICT (name) DO NOTHING",
      name, project);
}

}  // namespace eph::database
