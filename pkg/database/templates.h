// Template databases for the `clone` strategy, one per project and seed content
// (`eph_tpl_<project hash>_<content hash>`, a database and a role of the same name): built once
// by running the seed and the sanitiser as the template's role, recorded in eph_meta.templates
// (building -> ready, or failed with the message every later Ensure of that content gets), and
// dropped when no environment records it and it is not its project's newest.
//
// Locking: a builder holds the template's advisory lock exclusively, a cloner (and a spare
// maker) shares it, so nobody clones a half-built template and nobody rebuilds or drops one
// being copied; the locks are PostgreSQL's, so this holds across processes.
//
// Thread-safety: TemplateBuilder may be used from any thread; each call uses the connection
// passed (one thread at a time).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <pqxx/types>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "pkg/base/random.h"
#include "pkg/database/admin_sql.h"
#include "pkg/database/advisory_lock.h"
#include "pkg/database/database_manager.h"
#include "pkg/database/seed_scripts.h"

namespace eph::database {

// SQL for the name of the newest ready template of the project `project_sql` evaluates to:
// the one new environments of that project clone, which old templates and spares are judged by.
std::string NewestTemplateSql(std::string_view project_sql);

// The STRATEGY clause of CREATE DATABASE ... TEMPLATE for `copy` ("" for the server's default).
const char* CopyClause(CloneCopy copy);

// A ready template, with its shared advisory lock held on the connection it was acquired on.
struct HeldTemplate {
  std::string name;
  AdvisoryLock lock;
};

class TemplateBuilder {
 public:
  // `builds` counts the builds that finished (DatabaseManager::template_builds).
  TemplateBuilder(const AdminServer& server, Random& random, std::atomic<int64_t>& builds)
      : server_(server), random_(random), builds_(builds) {}

  // The ready template of `project` and `seed`, built first when needed; when another process
  // builds it, waits for that build (until `deadline`). Errors: FailedPrecondition (the build
  // failed, now or earlier: the seed's or sanitiser's message), DeadlineExceeded, Aborted (the
  // template was dropped again and again while this call waited). Throws pqxx errors.
  [[nodiscard]] absl::StatusOr<HeldTemplate> Acquire(pqxx::connection_base& conn,
                                                     const std::string& project, const Seed& seed,
                                                     std::chrono::steady_clock::time_point deadline,
                                                     std::chrono::seconds timeout);

  // Drops templates of `project` (all projects when empty) that are not ready and not being
  // built, or ready but neither the newest of their project nor recorded by any environment.
  // Failed templates are forgotten only by the sweep (project ""). Throws pqxx errors.
  void DropUnused(pqxx::connection_base& conn, const std::string& project);

  // Records template objects found without bookkeeping (an interrupted build) so DropUnused
  // drops them.
  static void Adopt(pqxx::connection_base& conn, const std::string& name,
                    const std::string& project);

 private:
  // Called with the template's exclusive lock held.
  absl::Status Build(pqxx::connection_base& conn, const std::string& project, const Seed& seed,
                     const std::string& tpl, std::chrono::steady_clock::time_point deadline,
                     std::chrono::seconds timeout);
  absl::Status CreateObjects(pqxx::connection_base& conn, const std::string& tpl,
                             const std::string& password, const std::string& marker);
  static void RecordFailure(pqxx::connection_base& conn, const std::string& tpl,
                            const absl::Status& failure);
  static void Seal(pqxx::connection_base& conn, const std::string& tpl);
  static void DropIfUnused(pqxx::connection_base& conn, const std::string& name,
                           const std::string& project);

  const AdminServer& server_;
  Random& random_;
  std::atomic<int64_t>& builds_;
};

}  // namespace eph::database
