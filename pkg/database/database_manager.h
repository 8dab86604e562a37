// DatabaseManager: one PostgreSQL database and one login role per environment on a shared server
// that ephd is given an admin connection for (issue 8, the "shared server" placement).
//
// Strategies:
//   kEmpty  an empty database.
//   kSeed   the repository's SQL scripts run in order on an empty database, as the environment's
//           role (never as the admin: the scripts come from the pull request).
//   kClone  `CREATE DATABASE ... TEMPLATE` from a template database kept per project and seed
//           content (SHA-256 of the scripts and the sanitising script). The template is built
//           once (seed + sanitise must both succeed before it is marked ready), rebuilt only
//           when the content changes, and concurrent Ensure calls wait for a build in progress.
//           With `clone_spares` > 0, copies of each project's newest template are made ahead of
//           time in the background ("spares"); a clone then takes one (a rename and an owner
//           change, no copying) and a new spare is made after it.
//
// Every database and role it creates is named `eph_env_...` / `eph_tpl_...` and carries a
// COMMENT `eph:managed ...`; it never changes or drops an object without both. Bookkeeping
// (passwords, seed hashes, template state) lives in schema `eph_meta` of the admin connection's
// database, with all privileges revoked from PUBLIC. Passwords never appear in logs or Status
// messages.
//
// The admin role needs CREATEDB and CREATEROLE; `clone` also runs REASSIGN OWNED in the clone,
// which needs a superuser (or an admin that is a member of the template and environment roles).
//
// Thread-safety: all methods may be called concurrently, also from several processes sharing
// one server; cross-process exclusion uses PostgreSQL advisory locks (per environment, per
// template). Each call opens its own connections.
//
// This class only orchestrates; its parts (connection parameters, markers, seed scripts,
// templates, spares, advisory locks, ...) are files of their own in this directory, listed in
// docs/databases.md ("Inside pkg/database").
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "pkg/base/random.h"
#include "pkg/config/config.h"

namespace eph::database {

enum class SeedStrategy { kEmpty, kSeed, kClone };
// What a later Ensure does when the seed content differs from what the database was made from.
enum class OnSeedChange { kKeep, kReseed };
// How PostgreSQL copies a template (CREATE DATABASE ... STRATEGY, PostgreSQL 15+). WAL_LOG is
// the default: its cost is proportional to the template only, while FILE_COPY's two checkpoints
// flush every dirty page on the server, which on a shared server is other tenants' too (see
// docs/databases.md for the measurements).
enum class CloneCopy { kWalLog, kFileCopy, kServerDefault };

struct DatabaseSpec {
  SeedStrategy strategy = SeedStrategy::kEmpty;
  std::vector<std::string> scripts;  // relative to the source dir, run in order
  OnSeedChange on_seed_change = OnSeedChange::kKeep;
  std::string sanitize_script;        // kClone only; empty for none. Runs after the scripts.
  std::chrono::seconds timeout{300};  // the whole seed (or template build)
};

// The settings of one `database.instances[]` entry of eph.yaml. (`clone` without seed scripts,
// a template the provider keeps, is not a shared-server strategy: Ensure refuses it.)
DatabaseSpec SpecFromConfig(const config::DatabaseInstance& instance);

struct EnsureRequest {
  std::string environment;  // the environment's name (a DNS label)
  // Which of the environment's databases: "" for an environment's only one, else the eph.yaml
  // instance's name (a DNS label). Each (environment, instance) has its own database and role.
  std::string instance;
  std::string project;
  std::filesystem::path source_dir;  // the repository at the head commit
  DatabaseSpec database;
};

// What the app needs. `env` holds DATABASE_URL, PGHOST, PGPORT, PGDATABASE, PGUSER, PGPASSWORD
// (and PGSSLMODE when configured): put it in a Secret, never in a log line or comment.
struct Credentials {
  std::string host;
  int port = 5432;
  std::string dbname;
  std::string user;
  std::string password;
  std::string database_url;
  std::map<std::string, std::string> env;
};

enum class EnsureOutcome {
  kCreated,    // new database, seeded or cloned now
  kUnchanged,  // existed with the same seed content; nothing ran
  kReseeded,   // the seed changed and `on_seed_change: reseed`: the data was replaced
  kKeptData,   // the seed changed and `on_seed_change: keep`: the old data stays
};

struct EnsureResult {
  Credentials credentials;
  EnsureOutcome outcome = EnsureOutcome::kCreated;
  std::string seed_hash;  // hex SHA-256 of the seed content the database was made from
};

// An object carrying Eph's marker. kind: "database", "role", "template", "template-role",
// "spare".
struct OwnedObject {
  std::string kind;
  std::string name;
  std::string environment;  // empty for templates and spares
  std::string instance;     // environments' databases and roles: "" or the instance's name
  std::string project;      // templates and spares
  std::string of;           // spares: the template it is a copy of
};

struct DatabaseManagerOptions {
  std::string admin_url;  // postgres://admin:pw@host:port/db (or a libpq key=value string)
  // Host and port the apps should use, when they reach the server differently from ephd (an
  // in-cluster Service name, say). Default: the admin URL's.
  std::string app_host;
  int app_port = 0;
  std::string app_sslmode;  // adds ?sslmode= and PGSSLMODE when set
  // The Store's InstallationId, written into every marker: ListOwned and SweepOrphans see only
  // this installation's environments, so installations sharing a server never drop each other's.
  // Empty: every environment on the server is this installation's. Letters, digits and '-'.
  std::string installation;
  CloneCopy clone_copy = CloneCopy::kWalLog;
  // Spares: ready copies of each project's newest template, made in the background after a
  // clone, so the next clone is a rename instead of a copy of the whole template. Each spare
  // costs the template's size on disk. 0: none made (spares another process made are still
  // taken). Spares of older templates are dropped when a newer one is built.
  int clone_spares = 0;
  std::chrono::seconds connect_timeout{10};
  Random* random = nullptr;  // passwords; default SecureRandom
};

class DatabaseManager {
 public:
  // Parses the options; connects lazily (the first call creates schema eph_meta).
  static absl::StatusOr<std::unique_ptr<DatabaseManager>> Create(DatabaseManagerOptions options);

  // Creates the environment's database (or leaves it as it is) and returns its credentials.
  // Idempotent; a repeated call returns the same credentials.
  // Errors: InvalidArgument (a script path outside the repository, bad names),
  // FailedPrecondition (a missing script, a failing script: "seed script db/a.sql line 12:
  // <PostgreSQL's message>", a failing sanitiser, a same-named object that is not Eph's),
  // DeadlineExceeded (the seed or the wait for a template build exceeded `timeout`),
  // Unavailable (the server). After a failing script nothing of the environment is left.
  [[nodiscard]] absl::StatusOr<EnsureResult> Ensure(const EnsureRequest& request);

  // Revokes CONNECT, terminates the environment's sessions, drops its databases and roles (every
  // instance's). OK when there is nothing to drop. Also drops templates no environment needs any
  // more.
  [[nodiscard]] absl::Status Drop(std::string_view environment);

  // Waits until no spare is being made or waiting to be made by this manager, up to `timeout`.
  // True when idle. For tests and benchmarks; ephd never needs to wait.
  bool WaitForSpares(std::chrono::milliseconds timeout);

  // Databases, roles, templates and spares carrying Eph's marker (kinds "database", "role",
  // "template", "template-role", "spare"; spares of this installation only).
  [[nodiscard]] absl::StatusOr<std::vector<OwnedObject>> ListOwned();

  // Drops the databases and roles of environments not in `live`, and unused templates.
  // Returns the environments dropped.
  [[nodiscard]] absl::StatusOr<std::vector<std::string>> SweepOrphans(
      const std::set<std::string>& live);

  // Names derived from an environment (and instance): the database and the role share it.
  // `eph_env_<environment>` for instance "", `eph_env_<environment>__<instance>_<hash>` else.
  static std::string ObjectName(std::string_view environment, std::string_view instance = "");
  // The template of a project and seed content hash.
  static std::string TemplateName(std::string_view project, std::string_view content_hash);

  // Counters for tests and metrics.
  int64_t template_builds() const { return template_builds_.load(); }
  int64_t seeds_run() const { return seeds_run_.load(); }
  int64_t spares_made() const { return spares_made_.load(); }
  int64_t spares_taken() const { return spares_taken_.load(); }

  ~DatabaseManager();
  DatabaseManager(const DatabaseManager&) = delete;
  DatabaseManager& operator=(const DatabaseManager&) = delete;

 private:
  struct Impl;
  explicit DatabaseManager(std::unique_ptr<Impl> impl);

  std::unique_ptr<Impl> impl_;
  std::atomic<int64_t> template_builds_{0};
  std::atomic<int64_t> seeds_run_{0};
  std::atomic<int64_t> spares_made_{0};
  std::atomic<int64_t> spares_taken_{0};
};

}  // namespace eph::database
