#include "pkg/database/database_manager.h"

#include <optional>
#include <pqxx/pqxx>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "pkg/database/admin_sql.h"
#include "pkg/database/advisory_lock.h"
#include "pkg/database/bookkeeping.h"
#include "pkg/database/conninfo.h"
#include "pkg/database/managed_objects.h"
#include "pkg/database/pg_status.h"
#include "pkg/database/seed_scripts.h"
#include "pkg/database/spares_pool.h"
#include "pkg/database/templates.h"
#include "spdlog/spdlog.h"

namespace eph::database {
namespace {

using Clock = std::chrono::steady_clock;
using Mode = AdvisoryLock::Mode;

// The lock of operations on an environment; Drop waits up to this long for it.
constexpr std::chrono::minutes kDropLockWait{10};

absl::Status ValidateRequest(const EnsureRequest& req) {
  if (!IsDnsLabel(req.environment)) {
    return absl::InvalidArgumentError(absl::StrCat("environment name `", req.environment,
                                                   "` is not a DNS label (a-z, 0-9, '-', <= 63)"));
  }
  if (!ValidProject(req.project)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "project `", req.project, "` is not a repository (owner/repo) or a DNS label"));
  }
  if (!req.instance.empty() && !IsDnsLabel(req.instance)) {
    return absl::InvalidArgumentError(absl::StrCat("database instance name `", req.instance,
                                                   "` is not a DNS label (a-z, 0-9, '-', <= 63)"));
  }
  const DatabaseSpec& spec = req.database;
  if (spec.timeout.count() <= 0) {
    return absl::InvalidArgumentError("the database seed timeout must be positive");
  }
  if (spec.strategy != SeedStrategy::kEmpty && spec.scripts.empty()) {
    return absl::InvalidArgumentError("the `seed` and `clone` strategies need seed scripts");
  }
  if (!spec.sanitize_script.empty() && spec.strategy != SeedStrategy::kClone) {
    return absl::InvalidArgumentError("a sanitising script only applies to `strategy: clone`");
  }
  return absl::OkStatus();
}

const char* StrategyName(SeedStrategy strategy) {
  switch (strategy) {
    case SeedStrategy::kSeed:
      return "seed";
    case SeedStrategy::kClone:
      return "clone";
    case SeedStrategy::kEmpty:
      break;
  }
  return "empty";
}

int64_t Millis(Clock::time_point since) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - since).count();
}

// What Ensure found of the environment's instance on the server.
struct Found {
  std::optional<EnvironmentRow> row;
  ObjectInfo db;
  ObjectInfo role;
};

// The owned object of a ListOwned row, or nullopt when it is not (this installation's) Eph's.
std::optional<OwnedObject> OwnedFrom(std::string kind, std::string name, std::string_view comment,
                                     const std::string& installation) {
  std::optional<Marker> marker = ParseMarker(comment);
  if (!marker) return std::nullopt;
  OwnedObject o;
  o.kind = std::move(kind);
  o.name = std::move(name);
  o.project = (*marker)["project"];
  // Another installation's (or unstamped, when this one is named): never swept by us.
  const bool other_installation =
      !installation.empty() && (*marker)["installation"] != installation;
  if (marker->count("spare")) {
    if (o.kind != "database" || !absl::StartsWith(o.name, kSparePrefix)) return std::nullopt;
    if (other_installation) return std::nullopt;
    o.kind = "spare";
    o.of = (*marker)["of"];
  } else if (marker->count("template")) {
    if (!absl::StartsWith(o.name, kTemplatePrefix)) return std::nullopt;
    o.kind = o.kind == "database" ? "template" : "template-role";
  } else {
    o.environment = (*marker)["environment"];
    o.instance = (*marker)["instance"];
    if (o.environment.empty() || o.name != EnvironmentObjectName(o.environment, o.instance)) {
      return std::nullopt;
    }
    if (other_installation) return std::nullopt;
  }
  return o;
}

}  // namespace

struct DatabaseManager::Impl {
  explicit Impl(DatabaseManagerOptions opts, ConnParams admin)
      : options(std::move(opts)), server(std::move(admin)) {}

  // Called once the manager, whose counters the parts update, exists.
  void Wire(DatabaseManager* manager) {
    self = manager;
    templates =
        std::make_unique<TemplateBuilder>(server, *options.random, manager->template_builds_);
    spares = std::make_unique<SparesPool>(server, meta,
                                          SparesOptions{options.clone_spares, options.clone_copy,
                                                        options.installation, options.random},
                                          manager->spares_made_, manager->spares_taken_);
  }

  Credentials MakeCredentials(const std::string& name, const std::string& password) const {
    return AppCredentials(server.params(),
                          AppEndpoint{options.app_host, options.app_port, options.app_sslmode},
                          name, password);
  }

  std::string EnvMarkerOf(const EnsureRequest& req) const {
    return EnvMarker(req.environment, req.project, options.installation, req.instance);
  }

  // Old templates and the spares nobody will take (spares first: they hold their template).
  void DropUnused(pqxx::connection_base& conn, const std::string& project) {
    SparesPool::DropStale(conn, project);
    templates->DropUnused(conn, project);
  }

  absl::StatusOr<EnsureResult> Ensure(pqxx::connection_base& conn, const EnsureRequest& req,
                                      const Seed& seed, Clock::time_point deadline,
                                      std::vector<std::string>& secrets);
  absl::StatusOr<Found> Inspect(pqxx::connection_base& conn, const EnsureRequest& req,
                                const std::string& name, std::vector<std::string>& secrets);
  std::optional<EnsureResult> Existing(pqxx::connection_base& conn, const EnsureRequest& req,
                                       const std::string& name, const Found& found,
                                       const std::string& content_hash);
  absl::StatusOr<std::string> Fill(pqxx::connection_base& conn, const EnsureRequest& req,
                                   const std::string& name, const std::string& password,
                                   const Seed& seed, Clock::time_point deadline,
                                   const std::vector<std::string>& secrets);
  absl::StatusOr<std::string> CreateAndFill(pqxx::connection_base& conn, const EnsureRequest& req,
                                            const std::string& name, const std::string& password,
                                            const Seed& seed, Clock::time_point deadline);
  absl::StatusOr<std::string> Clone(pqxx::connection_base& conn, const EnsureRequest& req,
                                    const std::string& name, const Seed& seed,
                                    Clock::time_point deadline);
  void HandOver(pqxx::connection_base& conn, const std::string& tpl, const std::string& name);
  absl::Status DropInstance(pqxx::connection_base& conn, const EnvironmentKey& key);
  absl::Status DropEnvironment(pqxx::connection_base& conn, const std::string& environment);
  void SweepTemplatesAndSpares(pqxx::connection_base& conn, const std::vector<OwnedObject>& owned);

  DatabaseManagerOptions options;
  AdminServer server;
  MetaSchema meta;
  DatabaseManager* self = nullptr;
  std::unique_ptr<TemplateBuilder> templates;
  std::unique_ptr<SparesPool> spares;
};

// What the environment's instance is now (adding its password to `secrets`); FailedPrecondition
// when an object of its name is not Eph's (or is another installation's).
absl::StatusOr<Found> DatabaseManager::Impl::Inspect(pqxx::connection_base& conn,
                                                     const EnsureRequest& req,
                                                     const std::string& name,
                                                     std::vector<std::string>& secrets) {
  const EnvironmentKey key{req.environment, req.instance};
  Found found;
  found.row = ReadEnvironment(conn, key);
  if (found.row) secrets.push_back(found.row->password);
  found.db = DatabaseInfo(conn, name);
  found.role = RoleInfo(conn, name);
  const bool interrupted = RecordNames(conn, key, name, options.installation);
  auto ours = [&](const ObjectInfo& info) {
    if (interrupted && !info.commented) return true;
    if (!MarksInstance(info, req.environment, req.instance)) return false;
    // Another installation's environment of the same name is not ours either.
    const auto installation = info.marker->find("installation");
    return installation == info.marker->end() || installation->second.empty() ||
           installation->second == options.installation;
  };
  if ((found.db.exists && !ours(found.db)) || (found.role.exists && !ours(found.role))) {
    return absl::FailedPreconditionError(
        absl::StrCat("a database or role named ", name,
                     " exists on the shared PostgreSQL server and is not "
                     "Eph's (no `eph:managed environment=",
                     req.environment, "` comment); not touching it"));
  }
  return found;
}

// The result when the environment's database is ready and stays as it is; nullopt when it must
// be made (again). Drops the database to reseed it.
std::optional<EnsureResult> DatabaseManager::Impl::Existing(pqxx::connection_base& conn,
                                                            const EnsureRequest& req,
                                                            const std::string& name,
                                                            const Found& found,
                                                            const std::string& content_hash) {
  EnsureResult result;
  result.seed_hash = content_hash;
  result.credentials = MakeCredentials(name, found.row->password);
  if (found.row->seed_hash == content_hash) {
    result.outcome = EnsureOutcome::kUnchanged;
    return result;
  }
  if (req.database.on_seed_change == OnSeedChange::kKeep) {
    spdlog::info("database: seed of environment {} changed; keeping its data as configured",
                 req.environment);
    result.outcome = EnsureOutcome::kKeptData;
    result.seed_hash = found.row->seed_hash;
    return result;
  }
  spdlog::info("database: seed of environment {} changed; reseeding {}", req.environment, name);
  DropObjects(conn, name, "");
  return std::nullopt;
}

// With the environment's lock held.
absl::StatusOr<EnsureResult> DatabaseManager::Impl::Ensure(pqxx::connection_base& conn,
                                                           const EnsureRequest& req,
                                                           const Seed& seed,
                                                           Clock::time_point deadline,
                                                           std::vector<std::string>& secrets) {
  const std::string name = ObjectName(req.environment, req.instance);
  absl::StatusOr<Found> found = Inspect(conn, req, name, secrets);
  if (!found.ok()) return found.status();
  EnsureResult result;
  result.outcome = EnsureOutcome::kCreated;
  if (found->row && found->row->ready && found->db.exists && found->role.exists) {
    if (std::optional<EnsureResult> kept = Existing(conn, req, name, *found, seed.content_hash)) {
      return *kept;
    }
    result.outcome = EnsureOutcome::kReseeded;
  }
  const std::string password = found->row ? found->row->password : options.random->Hex(24);
  secrets.push_back(password);
  const EnvironmentKey key{req.environment, req.instance};
  RecordEnvironment(conn, key, req.project, name, password, options.installation);
  if (result.outcome == EnsureOutcome::kCreated) {
    if (found->db.exists) DropObjects(conn, name, "");  // half-made by an interrupted call
    absl::Status created = CreateLoginRole(conn, name, password, EnvMarkerOf(req));
    if (!created.ok()) return created;
  }
  const auto started = Clock::now();
  absl::StatusOr<std::string> tpl = Fill(conn, req, name, password, seed, deadline, secrets);
  if (!tpl.ok()) return tpl.status();
  MarkEnvironmentReady(conn, key, seed.content_hash, *tpl);
  spdlog::info("database: {} {} for environment {} ({}) in {} ms",
               result.outcome == EnsureOutcome::kReseeded ? "reseeded" : "created", name,
               req.environment, StrategyName(req.database.strategy), Millis(started));
  if (req.database.strategy == SeedStrategy::kClone) {
    DropUnused(conn, req.project);
    if (options.clone_spares > 0) spares->QueueRefill(req.project, *tpl);
  }
  result.seed_hash = seed.content_hash;
  result.credentials = MakeCredentials(name, password);
  return result;
}

// CreateAndFill; on failure drops what it made of the instance and returns the error, scrubbed.
absl::StatusOr<std::string> DatabaseManager::Impl::Fill(
    pqxx::connection_base& conn, const EnsureRequest& req, const std::string& name,
    const std::string& password, const Seed& seed, Clock::time_point deadline,
    const std::vector<std::string>& secrets) {
  absl::StatusOr<std::string> tpl = absl::InternalError("unreached");
  try {
    tpl = CreateAndFill(conn, req, name, password, seed, deadline);
  } catch (...) {
    tpl = CurrentExceptionStatus(
        absl::StrCat("creating the database of environment ", req.environment), secrets);
  }
  if (tpl.ok()) return tpl;
  const std::string message = Scrub(std::string(tpl.status().message()), secrets);
  spdlog::warn("database: environment {} failed ({}): {}; dropping its database and role",
               req.environment, StrategyName(req.database.strategy), message);
  absl::Status dropped = DropInstance(conn, EnvironmentKey{req.environment, req.instance});
  if (!dropped.ok()) {
    spdlog::warn("database: cleaning up environment {}: {}", req.environment,
                 std::string(dropped.message()));
  }
  return absl::Status(tpl.status().code(), message);
}

// Creates database `name` (owned by role `name`) and fills it per the request's strategy.
// Returns the template used ("" for none).
absl::StatusOr<std::string> DatabaseManager::Impl::CreateAndFill(
    pqxx::connection_base& conn, const EnsureRequest& req, const std::string& name,
    const std::string& password, const Seed& seed, Clock::time_point deadline) {
  if (req.database.strategy == SeedStrategy::kClone) {
    return Clone(conn, req, name, seed, deadline);
  }
  const std::string qname = QuoteName(conn, name);
  Exec(conn, absl::StrCat("CREATE DATABASE ", qname, " OWNER ", qname));
  Exec(conn, absl::StrCat("COMMENT ON DATABASE ", qname, " IS ", Quote(conn, EnvMarkerOf(req))));
  Exec(conn, absl::StrCat("REVOKE ALL ON DATABASE ", qname, " FROM PUBLIC"));
  if (req.database.strategy == SeedStrategy::kSeed) {
    self->seeds_run_.fetch_add(1);
    absl::Status st = RunScripts(RoleParams(server.params(), name, password, name), seed.scripts,
                                 deadline, req.database.timeout, {password});
    if (!st.ok()) return st;
  }
  return std::string();
}

absl::StatusOr<std::string> DatabaseManager::Impl::Clone(pqxx::connection_base& conn,
                                                         const EnsureRequest& req,
                                                         const std::string& name, const Seed& seed,
                                                         Clock::time_point deadline) {
  // The template's shared lock is held from here until the clone is the environment's: the
  // template (and its role, which owns the copied objects until the hand-over) cannot be dropped
  // or rebuilt meanwhile.
  absl::StatusOr<HeldTemplate> tpl =
      templates->Acquire(conn, req.project, seed, deadline, req.database.timeout);
  if (!tpl.ok()) return tpl.status();
  const std::string qname = QuoteName(conn, name);
  const bool took = spares->Take(conn, tpl->name, name);
  if (!took) {
    Exec(conn, absl::StrCat("CREATE DATABASE ", qname, " TEMPLATE ", QuoteName(conn, tpl->name),
                            " OWNER ", qname, CopyClause(options.clone_copy)));
  }
  Exec(conn, absl::StrCat("COMMENT ON DATABASE ", qname, " IS ", Quote(conn, EnvMarkerOf(req))));
  Exec(conn, absl::StrCat("REVOKE ALL ON DATABASE ", qname, " FROM PUBLIC"));
  if (took) Exec(conn, absl::StrCat("ALTER DATABASE ", qname, " ALLOW_CONNECTIONS true"));
  HandOver(conn, tpl->name, name);
  return tpl->name;
}

// The template's objects belong to the template's role: hands them to the environment's. DROP
// OWNED also revokes the template role's grants on shared objects (the template database's ACL),
// which concurrent clones would update at once ("tuple concurrently updated"): one clone at a
// time per template does this step, serialised on the admin connection (advisory locks are per
// database, and each clone is its own database).
void DatabaseManager::Impl::HandOver(pqxx::connection_base& conn, const std::string& tpl,
                                     const std::string& name) {
  AdvisoryLock owner =
      AdvisoryLock::AcquireUnbounded(conn, TemplateOwnerLockKey(tpl), Mode::kExclusive);
  std::unique_ptr<pqxx::connection> in_db = server.Connect(name);
  const std::string qtpl = QuoteName(*in_db, tpl);
  Exec(*in_db, absl::StrCat("REASSIGN OWNED BY ", qtpl, " TO ", QuoteName(*in_db, name)));
  Exec(*in_db, absl::StrCat("DROP OWNED BY ", qtpl));
}

// Drops one instance's database and role of an environment; the caller holds its lock.
absl::Status DatabaseManager::Impl::DropInstance(pqxx::connection_base& conn,
                                                 const EnvironmentKey& key) {
  const std::string name = ObjectName(key.environment, key.instance);
  const ObjectInfo db = DatabaseInfo(conn, name);
  const ObjectInfo role = RoleInfo(conn, name);
  const bool interrupted = RecordNames(conn, key, name, options.installation);
  auto ours = [&](const ObjectInfo& info) {
    return MarksInstance(info, key.environment, key.instance) || (interrupted && !info.commented);
  };
  std::string problems;
  if (db.exists && !ours(db)) {
    absl::StrAppend(&problems, "database ", name, " exists but is not Eph's; ");
  }
  if (role.exists && !ours(role)) {
    absl::StrAppend(&problems, "role ", name, " exists but is not Eph's; ");
  }
  DropObjects(conn, db.exists && ours(db) ? name : "", role.exists && ours(role) ? name : "");
  ForgetEnvironment(conn, key);
  if (!problems.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("environment ", key.environment, ": ", problems, "left untouched"));
  }
  return absl::OkStatus();
}

// Drops every instance's database and role of an environment: those its bookkeeping lists and
// those whose marker names it (a call interrupted before its row was written).
absl::Status DatabaseManager::Impl::DropEnvironment(pqxx::connection_base& conn,
                                                    const std::string& environment) {
  std::set<std::string> instances = {""};
  for (std::string& instance : RecordedInstances(conn, environment)) {
    instances.insert(std::move(instance));
  }
  {
    pqxx::nontransaction tx(conn);
    const std::string prefix = absl::StrCat(kMarker, " environment=", environment, " ");
    for (const pqxx::row& row :
         tx.exec_params("SELECT shobj_description(oid, 'pg_database') FROM pg_database "
                        "WHERE starts_with(shobj_description(oid, 'pg_database'), $1) UNION ALL "
                        "SELECT shobj_description(oid, 'pg_authid') FROM pg_roles "
                        "WHERE starts_with(shobj_description(oid, 'pg_authid'), $1)",
                        prefix)) {
      std::optional<Marker> marker = ParseMarker(row[0].c_str());
      if (marker && (*marker)["environment"] == environment) {
        instances.insert((*marker)["instance"]);
      }
    }
  }
  absl::Status first;
  for (const std::string& instance : instances) {
    first.Update(DropInstance(conn, EnvironmentKey{environment, instance}));
  }
  return first;
}

// Template objects without bookkeeping (an interrupted build) are adopted, then dropped; spare
// databases without a row (a maker that died between CREATE and its bookkeeping's cleanup) are
// dropped; then stale spares and unused templates of every project.
void DatabaseManager::Impl::SweepTemplatesAndSpares(pqxx::connection_base& conn,
                                                    const std::vector<OwnedObject>& owned) {
  for (const OwnedObject& o : owned) {
    if (o.kind == "template" || o.kind == "template-role") {
      TemplateBuilder::Adopt(conn, o.name, o.project);
    }
  }
  for (const OwnedObject& o : owned) {
    if (o.kind != "spare") continue;
    bool known = false;
    {
      pqxx::nontransaction tx(conn);
      known = !tx.exec_params("SELECT 1 FROM eph_meta.spares WHERE name = $1", o.name).empty();
    }
    if (!known) {
      SparesPool::Drop(conn, o.name);
      spdlog::info("database: dropped spare {} that had no bookkeeping", o.name);
    }
  }
  DropUnused(conn, "");
}

DatabaseSpec SpecFromConfig(const config::DatabaseInstance& instance) {
  DatabaseSpec spec;
  switch (instance.strategy) {
    case config::DatabaseTemplateStrategy::kEmpty:
      spec.strategy = SeedStrategy::kEmpty;
      break;
    case config::DatabaseTemplateStrategy::kSeed:
      spec.strategy = SeedStrategy::kSeed;
      break;
    case config::DatabaseTemplateStrategy::kClone:
      spec.strategy = SeedStrategy::kClone;
      break;
  }
  spec.scripts = instance.seed_scripts;
  spec.on_seed_change = instance.on_seed_change == config::DatabaseSeedChange::kReseed
                            ? OnSeedChange::kReseed
                            : OnSeedChange::kKeep;
  spec.sanitize_script = instance.sanitize_script;
  spec.timeout = std::max(std::chrono::seconds(1),
                          std::chrono::seconds(absl::ToInt64Seconds(instance.seed_timeout)));
  return spec;
}

DatabaseManager::DatabaseManager(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {
  impl_->Wire(this);
}
DatabaseManager::~DatabaseManager() {
  impl_->spares->Stop();  // before the counters the spare maker updates go
}

bool DatabaseManager::WaitForSpares(std::chrono::milliseconds timeout) {
  return impl_->spares->WaitIdle(timeout);
}

absl::StatusOr<std::unique_ptr<DatabaseManager>> DatabaseManager::Create(
    DatabaseManagerOptions options) {
  if (options.random == nullptr) options.random = &SecureRandom::Instance();
  for (char c : options.installation) {
    if (!absl::ascii_isalnum(c) && c != '-') {
      return absl::InvalidArgumentError(absl::StrCat("the installation id `", options.installation,
                                                     "` may hold letters, digits and '-' only"));
    }
  }
  absl::StatusOr<ConnParams> admin = ParseAdminUrl(options.admin_url, options.connect_timeout);
  if (!admin.ok()) return admin.status();
  auto impl = std::make_unique<Impl>(std::move(options), *std::move(admin));
  return std::unique_ptr<DatabaseManager>(new DatabaseManager(std::move(impl)));
}

std::string DatabaseManager::ObjectName(std::string_view environment, std::string_view instance) {
  return EnvironmentObjectName(environment, instance);
}

std::string DatabaseManager::TemplateName(std::string_view project, std::string_view content_hash) {
  return TemplateObjectName(project, content_hash);
}

absl::StatusOr<EnsureResult> DatabaseManager::Ensure(const EnsureRequest& req) {
  if (absl::Status st = ValidateRequest(req); !st.ok()) return st;
  // Every script is read before the server is touched: bad paths fail fast and nothing is made.
  absl::StatusOr<Seed> seed = LoadSeed(req.source_dir, req.database);
  if (!seed.ok()) return seed.status();
  const auto deadline = Clock::now() + req.database.timeout;
  std::vector<std::string> secrets = impl_->server.secrets();
  try {
    std::unique_ptr<pqxx::connection> conn = impl_->server.Connect();
    impl_->meta.Ensure(*conn);
    absl::StatusOr<AdvisoryLock> lock = AdvisoryLock::Acquire(
        *conn, EnvironmentLockKey(req.environment), Mode::kExclusive, deadline,
        absl::StrCat("another operation on environment ", req.environment));
    if (!lock.ok()) return lock.status();
    return impl_->Ensure(*conn, req, *seed, deadline, secrets);
  } catch (...) {
    return CurrentExceptionStatus(absl::StrCat("database of environment ", req.environment),
                                  secrets);
  }
}

absl::Status DatabaseManager::Drop(std::string_view environment_view) {
  const std::string environment(environment_view);
  try {
    std::unique_ptr<pqxx::connection> conn = impl_->server.Connect();
    impl_->meta.Ensure(*conn);
    absl::StatusOr<AdvisoryLock> lock = AdvisoryLock::Acquire(
        *conn, EnvironmentLockKey(environment), Mode::kExclusive, Clock::now() + kDropLockWait,
        absl::StrCat("another operation on environment ", environment));
    if (!lock.ok()) return lock.status();
    const std::string project = RecordedProject(*conn, environment);
    absl::Status st = impl_->DropEnvironment(*conn, environment);
    spdlog::info("database: dropped the databases and roles of environment {}", environment);
    if (!project.empty()) impl_->DropUnused(*conn, project);
    return st;
  } catch (...) {
    return CurrentExceptionStatus(
        absl::StrCat("dropping the database of environment ", environment),
        impl_->server.secrets());
  }
}

absl::StatusOr<std::vector<OwnedObject>> DatabaseManager::ListOwned() {
  try {
    std::unique_ptr<pqxx::connection> conn = impl_->server.Connect();
    pqxx::nontransaction tx(*conn);
    pqxx::result r = tx.exec(
        "SELECT 'database', datname, shobj_description(oid, 'pg_database') FROM pg_database "
        "WHERE shobj_description(oid, 'pg_database') LIKE 'eph:managed %' "
        "UNION ALL "
        "SELECT 'role', rolname, shobj_description(oid, 'pg_authid') FROM pg_roles "
        "WHERE shobj_description(oid, 'pg_authid') LIKE 'eph:managed %' ORDER BY 1, 2");
    std::vector<OwnedObject> out;
    for (const pqxx::row& row : r) {
      std::optional<OwnedObject> o =
          OwnedFrom(row[0].c_str(), row[1].c_str(), row[2].c_str(), impl_->options.installation);
      if (o) out.push_back(*std::move(o));
    }
    return out;
  } catch (...) {
    return CurrentExceptionStatus("listing Eph's databases", impl_->server.secrets());
  }
}

absl::StatusOr<std::vector<std::string>> DatabaseManager::SweepOrphans(
    const std::set<std::string>& live) {
  absl::StatusOr<std::vector<OwnedObject>> owned = ListOwned();
  if (!owned.ok()) return owned.status();
  std::set<std::string> orphans;
  for (const OwnedObject& o : *owned) {
    if (!o.environment.empty() && !live.count(o.environment)) orphans.insert(o.environment);
  }
  try {
    std::unique_ptr<pqxx::connection> conn = impl_->server.Connect();
    impl_->meta.Ensure(*conn);
    for (const std::string& env : RecordedEnvironments(*conn, impl_->options.installation)) {
      if (!live.count(env)) orphans.insert(env);
    }
    std::vector<std::string> dropped;
    absl::Status first_error;
    for (const std::string& env : orphans) {
      if (absl::Status st = Drop(env); !st.ok()) {
        spdlog::warn("database: sweeping environment {}: {}", env, std::string(st.message()));
        first_error.Update(st);
        continue;
      }
      dropped.push_back(env);
    }
    impl_->SweepTemplatesAndSpares(*conn, *owned);
    if (!first_error.ok() && dropped.empty()) return first_error;
    return dropped;
  } catch (...) {
    return CurrentExceptionStatus("sweeping Eph's databases", impl_->server.secrets());
  }
}

}  // namespace eph::database
