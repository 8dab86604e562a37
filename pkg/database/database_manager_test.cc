// Against the test bed's PostgreSQL 15 (FIXTURES postgres). Every test uses its own project and
// environment names, so tests may run in parallel; *.Serial* tests sweep the whole server and
// run alone.
#include "pkg/database/database_manager.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>
#include <pqxx/pqxx>
#include <sstream>
#include <thread>

#include "pkg/base/random.h"
#include "spdlog/sinks/ostream_sink.h"
#include "spdlog/spdlog.h"
#include "test/support/testbed.h"

namespace eph::database {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
namespace fs = std::filesystem;

std::string AdminUrl() {
  return eph::testing::TestbedValue("postgres", "EPH_TEST_POSTGRES_ADMIN_URL");
}

class DatabaseManagerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    repo_ = eph::testing::MakeTempDir("database");
    // Unique per test and run: parallel tests and reruns never share objects.
    const std::string suffix = SecureRandom::Instance().Hex(3);
    const std::string test = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    tag_ = absl_lower(test.substr(0, 20)) + "-" + suffix;
    project_ = "p-" + tag_;
    manager_ = MakeManager();
  }

  static std::string absl_lower(std::string s) {
    std::string out;
    for (char c : s)
      out.push_back(std::isalnum(static_cast<unsigned char>(c)) ? std::tolower(c) : '-');
    return out;
  }

  std::unique_ptr<DatabaseManager> MakeManager(Random* random = nullptr,
                                               CloneCopy copy = CloneCopy::kWalLog,
                                               std::string installation = "", int spares = 0) {
    DatabaseManagerOptions options;
    options.clone_spares = spares;
    options.admin_url = AdminUrl();
    options.installation = std::move(installation);
    options.random = random;
    options.clone_copy = copy;
    absl::StatusOr<std::unique_ptr<DatabaseManager>> m = DatabaseManager::Create(options);
    EXPECT_TRUE(m.ok()) << m.status();
    return m.ok() ? *std::move(m) : nullptr;
  }

  std::string Env(const std::string& n) { return n + "-" + tag_; }

  void Write(const std::string& rel, const std::string& text) {
    const fs::path p = fs::path(repo_) / rel;
    fs::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary | std::ios::trunc) << text;
  }

  EnsureRequest Request(const std::string& env, SeedStrategy strategy,
                        std::vector<std::string> scripts) {
    EnsureRequest r;
    r.environment = env;
    r.project = project_;
    r.source_dir = repo_;
    r.database.strategy = strategy;
    r.database.scripts = std::move(scripts);
    r.database.timeout = std::chrono::seconds(60);
    return r;
  }

  // One value, as the environment's own role (the credentials must work).
  static std::string QueryAs(const Credentials& c, const std::string& sql) {
    pqxx::connection conn(c.database_url);
    pqxx::work tx(conn);
    pqxx::result r = tx.exec(sql);
    tx.commit();
    return r.empty() || r[0][0].is_null() ? "" : r[0][0].c_str();
  }

  static int64_t AdminCount(const std::string& sql, const std::string& param) {
    pqxx::connection conn(AdminUrl());
    pqxx::nontransaction tx(conn);
    return tx.exec_params(sql, param)[0][0].as<int64_t>();
  }
  static bool DatabaseExists(const std::string& name) {
    return AdminCount("SELECT count(*) FROM pg_database WHERE datname = $1", name) > 0;
  }
  static bool RoleExists(const std::string& name) {
    return AdminCount("SELECT count(*) FROM pg_roles WHERE rolname = $1", name) > 0;
  }
  // This test's project's spares, as ListOwned reports them.
  std::vector<OwnedObject> Spares(DatabaseManager& m) {
    std::vector<OwnedObject> out;
    absl::StatusOr<std::vector<OwnedObject>> owned = m.ListOwned();
    EXPECT_TRUE(owned.ok()) << owned.status();
    if (!owned.ok()) return out;
    for (const OwnedObject& o : *owned) {
      if (o.kind == "spare" && o.project == project_) out.push_back(o);
    }
    return out;
  }
  static void ExpectGone(const std::string& env) {
    const std::string name = DatabaseManager::ObjectName(env);
    EXPECT_FALSE(DatabaseExists(name)) << name;
    EXPECT_FALSE(RoleExists(name)) << name;
  }

  std::string repo_;
  std::string tag_;
  std::string project_;
  std::unique_ptr<DatabaseManager> manager_;
};

constexpr char kSchema[] =
    "-- schema\n"
    "CREATE TABLE users (id int PRIMARY KEY, email text NOT NULL);\n"
    "CREATE TABLE orders (id serial PRIMARY KEY, user_id int REFERENCES users(id));\n";
constexpr char kData[] =
    "INSERT INTO users SELECT g, 'user' || g || '@example.com' FROM generate_series(1, 100) g;\n"
    "COPY orders (user_id) FROM stdin;\n1\n2\n3\n\\.\n"
    "VACUUM ANALYZE users;\n";

TEST_F(DatabaseManagerTest, SeedRunsScriptsInOrderAndTheAppSeesItsData) {
  Write("db/schema.sql", kSchema);
  Write("db/data.sql", kData);
  const EnsureRequest req =
      Request(Env("a"), SeedStrategy::kSeed, {"./db/schema.sql", "db/data.sql"});
  absl::StatusOr<EnsureResult> r = manager_->Ensure(req);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->outcome, EnsureOutcome::kCreated);
  const Credentials& c = r->credentials;
  EXPECT_EQ(c.dbname, DatabaseManager::ObjectName(req.environment));
  EXPECT_EQ(c.user, c.dbname);
  EXPECT_GE(c.password.size(), 32u);
  for (const char* key :
       {"DATABASE_URL", "PGHOST", "PGPORT", "PGDATABASE", "PGUSER", "PGPASSWORD"}) {
    EXPECT_TRUE(c.env.count(key)) << key;
  }
  EXPECT_EQ(QueryAs(c, "SELECT count(*) FROM users"), "100");
  EXPECT_EQ(QueryAs(c, "SELECT count(*) FROM orders"), "3");
  // The role owns what it seeded and can change it.
  EXPECT_EQ(QueryAs(c, "SELECT tableowner FROM pg_tables WHERE tablename = 'users'"), c.user);
  EXPECT_EQ(QueryAs(c, "SELECT current_setting('is_superuser')"), "off");
  EXPECT_EQ(manager_->seeds_run(), 1);

  // A repeated Ensure runs nothing and returns the same credentials.
  absl::StatusOr<EnsureResult> again = manager_->Ensure(req);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->outcome, EnsureOutcome::kUnchanged);
  EXPECT_EQ(again->credentials.database_url, c.database_url);
  EXPECT_EQ(manager_->seeds_run(), 1);
  ASSERT_TRUE(manager_->Drop(req.environment).ok());
  ExpectGone(req.environment);
}

TEST_F(DatabaseManagerTest, FailingScriptNamesScriptLineAndMessageAndLeavesNothing) {
  Write("db/schema.sql", kSchema);
  Write("db/bad.sql",
        "INSERT INTO users VALUES (1, 'a');\n"
        "-- the next statement spans lines\n"
        "SELECT id,\n"
        "       no_such_column\n"
        "FROM users;\n");
  const EnsureRequest req = Request(Env("a"), SeedStrategy::kSeed, {"db/schema.sql", "db/bad.sql"});
  absl::StatusOr<EnsureResult> r = manager_->Ensure(req);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(r.status().message(), HasSubstr("seed script db/bad.sql line 4:"));
  EXPECT_THAT(r.status().message(), HasSubstr("column \"no_such_column\" does not exist"));
  ExpectGone(req.environment);

  // A run-time error (no position): the line where the failing statement starts.
  Write("db/dup.sql", "INSERT INTO users VALUES (1, 'a');\n\nINSERT INTO users VALUES (1, 'b');\n");
  r = manager_->Ensure(Request(Env("b"), SeedStrategy::kSeed, {"db/schema.sql", "db/dup.sql"}));
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("seed script db/dup.sql line 3:"));
  EXPECT_THAT(r.status().message(), HasSubstr("duplicate key"));
  ExpectGone(Env("b"));
  absl::StatusOr<std::vector<OwnedObject>> owned = manager_->ListOwned();
  ASSERT_TRUE(owned.ok()) << owned.status();
  for (const OwnedObject& o : *owned) EXPECT_NE(o.environment, Env("b"));
}

TEST_F(DatabaseManagerTest, ScriptPathsOutsideTheRepositoryOrMissingAreClearErrors) {
  Write("db/schema.sql", kSchema);
  const std::string outside = eph::testing::MakeTempDir("database-outside");
  std::ofstream(fs::path(outside) / "secret.sql") << "SELECT 1;\n";
  fs::create_symlink(fs::path(outside) / "secret.sql", fs::path(repo_) / "db" / "link.sql");
  struct Case {
    std::string path;
    absl::StatusCode code;
    std::string says;
  };
  for (const Case& c :
       {Case{"../secret.sql", absl::StatusCode::kInvalidArgument, ".."},
        Case{"/etc/passwd", absl::StatusCode::kInvalidArgument, "absolute"},
        Case{"db/link.sql", absl::StatusCode::kInvalidArgument, "outside"},
        Case{"db/missing.sql", absl::StatusCode::kFailedPrecondition, "does not exist"}}) {
    absl::StatusOr<EnsureResult> r =
        manager_->Ensure(Request(Env("a"), SeedStrategy::kSeed, {"db/schema.sql", c.path}));
    ASSERT_FALSE(r.ok()) << c.path;
    EXPECT_EQ(r.status().code(), c.code) << c.path << ": " << r.status();
    EXPECT_THAT(r.status().message(), HasSubstr(c.says)) << c.path;
    ExpectGone(Env("a"));
  }
}

TEST_F(DatabaseManagerTest, SeedOverItsTimeLimitIsDeadlineExceeded) {
  Write("db/slow.sql", "CREATE TABLE t (x int);\nSELECT pg_sleep(60);\n");
  EnsureRequest req = Request(Env("a"), SeedStrategy::kSeed, {"db/slow.sql"});
  req.database.timeout = std::chrono::seconds(2);
  const auto start = std::chrono::steady_clock::now();
  absl::StatusOr<EnsureResult> r = manager_->Ensure(req);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDeadlineExceeded) << r.status();
  EXPECT_THAT(r.status().message(), HasSubstr("db/slow.sql line 2"));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(20));
  ExpectGone(req.environment);
}

TEST_F(DatabaseManagerTest, ClonesNeverSeeEachOthersWrites) {
  Write("db/schema.sql", kSchema);
  Write("db/data.sql", kData);
  absl::StatusOr<EnsureResult> a =
      manager_->Ensure(Request(Env("a"), SeedStrategy::kClone, {"db/schema.sql", "db/data.sql"}));
  ASSERT_TRUE(a.ok()) << a.status();
  // Both copy strategies give the same, independent data.
  std::unique_ptr<DatabaseManager> file_copy = MakeManager(nullptr, CloneCopy::kFileCopy);
  absl::StatusOr<EnsureResult> b =
      file_copy->Ensure(Request(Env("b"), SeedStrategy::kClone, {"db/schema.sql", "db/data.sql"}));
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(manager_->template_builds(), 1);
  EXPECT_EQ(file_copy->template_builds(), 0);
  EXPECT_EQ(QueryAs(a->credentials, "SELECT count(*) FROM users"), "100");
  EXPECT_EQ(QueryAs(b->credentials, "SELECT count(*) FROM users"), "100");
  QueryAs(a->credentials, "INSERT INTO users VALUES (1000, 'only-in-a')");
  QueryAs(a->credentials, "CREATE TABLE a_only (x int)");
  EXPECT_EQ(QueryAs(a->credentials, "SELECT count(*) FROM users"), "101");
  EXPECT_EQ(QueryAs(b->credentials, "SELECT count(*) FROM users"), "100");
  EXPECT_EQ(QueryAs(b->credentials, "SELECT count(*) FROM pg_tables WHERE tablename = 'a_only'"),
            "0");
  // The clone's objects belong to the environment's role, as with `seed`.
  EXPECT_EQ(QueryAs(b->credentials, "SELECT tableowner FROM pg_tables WHERE tablename = 'users'"),
            b->credentials.user);
  ASSERT_TRUE(manager_->Drop(Env("a")).ok());
  ASSERT_TRUE(manager_->Drop(Env("b")).ok());
  ExpectGone(Env("a"));
  ExpectGone(Env("b"));
}

TEST_F(DatabaseManagerTest, TemplateIsRebuiltOnlyWhenSeedContentChanges) {
  Write("db/schema.sql", kSchema);
  Write("db/data.sql", kData);
  const std::vector<std::string> scripts = {"db/schema.sql", "db/data.sql"};
  ASSERT_TRUE(manager_->Ensure(Request(Env("a"), SeedStrategy::kClone, scripts)).ok());
  ASSERT_TRUE(manager_->Ensure(Request(Env("b"), SeedStrategy::kClone, scripts)).ok());
  ASSERT_TRUE(manager_->Ensure(Request(Env("a"), SeedStrategy::kClone, scripts)).ok());
  EXPECT_EQ(manager_->template_builds(), 1);

  Write("db/data.sql", std::string(kData) + "INSERT INTO users VALUES (500, 'new');\n");
  // `keep`: the old data stays, nothing is built for it.
  absl::StatusOr<EnsureResult> kept =
      manager_->Ensure(Request(Env("a"), SeedStrategy::kClone, scripts));
  ASSERT_TRUE(kept.ok()) << kept.status();
  EXPECT_EQ(kept->outcome, EnsureOutcome::kKeptData);
  EXPECT_EQ(manager_->template_builds(), 1);
  EXPECT_EQ(QueryAs(kept->credentials, "SELECT count(*) FROM users"), "100");
  // `reseed`: the new template is built once and the data replaced; the password stays.
  EnsureRequest reseed = Request(Env("b"), SeedStrategy::kClone, scripts);
  reseed.database.on_seed_change = OnSeedChange::kReseed;
  absl::StatusOr<EnsureResult> r = manager_->Ensure(reseed);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->outcome, EnsureOutcome::kReseeded);
  EXPECT_EQ(QueryAs(r->credentials, "SELECT count(*) FROM users"), "101");
  EXPECT_EQ(manager_->template_builds(), 2);
  ASSERT_TRUE(manager_->Ensure(Request(Env("c"), SeedStrategy::kClone, scripts)).ok());
  EXPECT_EQ(manager_->template_builds(), 2);

  // Once no environment records the old template and a newer one exists, it goes.
  for (const char* e : {"a", "b", "c"}) ASSERT_TRUE(manager_->Drop(Env(e)).ok());
  absl::StatusOr<std::vector<OwnedObject>> owned = manager_->ListOwned();
  ASSERT_TRUE(owned.ok());
  int templates = 0;
  for (const OwnedObject& o : *owned) templates += o.kind == "template" && o.project == project_;
  EXPECT_EQ(templates, 1);  // the newest stays for the next environment
}

TEST_F(DatabaseManagerTest, ConcurrentEnsuresWaitForTheTemplateBuild) {
  Write("db/schema.sql", kSchema);
  // Slow enough that every caller arrives while the template is being built.
  Write("db/data.sql", std::string("SELECT pg_sleep(2);\n") + kData);
  const std::vector<std::string> scripts = {"db/schema.sql", "db/data.sql"};
  constexpr int kEnvs = 10;
  // Ten environments ask at once; returns their results.
  auto ensure_all = [&](const std::string& prefix) {
    std::vector<absl::StatusOr<EnsureResult>> results(kEnvs, absl::UnknownError(""));
    std::vector<std::thread> threads;
    for (int i = 0; i < kEnvs; ++i) {
      threads.emplace_back([&, i] {
        results[i] = manager_->Ensure(
            Request(Env(prefix + std::to_string(i)), SeedStrategy::kClone, scripts));
      });
    }
    for (std::thread& t : threads) t.join();
    return results;
  };
  std::vector<absl::StatusOr<EnsureResult>> results = ensure_all("e");
  for (int i = 0; i < kEnvs; ++i) {
    ASSERT_TRUE(results[i].ok()) << results[i].status();
    EXPECT_EQ(QueryAs(results[i]->credentials, "SELECT count(*) FROM users"), "100");
    EXPECT_EQ(QueryAs(results[i]->credentials, "SELECT count(*) FROM orders"), "3");
  }
  EXPECT_EQ(manager_->template_builds(), 1);

  // The seed changes (a push): the template is rebuilt once while ten new environments wait.
  Write("db/data.sql", std::string("SELECT pg_sleep(1);\n") + kData +
                           "INSERT INTO orders (user_id) VALUES (4);\n");
  results = ensure_all("f");
  for (int i = 0; i < kEnvs; ++i) {
    ASSERT_TRUE(results[i].ok()) << results[i].status();
    EXPECT_EQ(QueryAs(results[i]->credentials, "SELECT count(*) FROM orders"), "4");
  }
  EXPECT_EQ(manager_->template_builds(), 2);
  for (const char* prefix : {"e", "f"}) {
    for (int i = 0; i < kEnvs; ++i) {
      ASSERT_TRUE(manager_->Drop(Env(prefix + std::to_string(i))).ok());
    }
  }
}

TEST_F(DatabaseManagerTest, ClonesTakeReadySparesAndSparesFollowTheNewestTemplate) {
  Write("db/schema.sql", kSchema);
  Write("db/data.sql", kData);
  const std::vector<std::string> scripts = {"db/schema.sql", "db/data.sql"};
  std::unique_ptr<DatabaseManager> manager = MakeManager(nullptr, CloneCopy::kWalLog, "", 1);
  // Another process's manager that makes no spares (but takes them).
  std::unique_ptr<DatabaseManager> other = MakeManager();
  ASSERT_TRUE(manager && other);
  constexpr auto kWait = std::chrono::seconds(60);

  // The first clone builds the template and copies it; one spare is made after it.
  absl::StatusOr<EnsureResult> a =
      manager->Ensure(Request(Env("a"), SeedStrategy::kClone, scripts));
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(manager->WaitForSpares(kWait));
  EXPECT_EQ(manager->spares_taken(), 0);
  EXPECT_EQ(manager->spares_made(), 1);
  std::vector<OwnedObject> spares = Spares(*manager);
  ASSERT_EQ(spares.size(), 1u);
  const std::string first_spare = spares[0].name;
  const std::string old_template = spares[0].of;
  EXPECT_TRUE(DatabaseExists(first_spare));

  // The next clone takes it: the environment's database and role, the template's data, and
  // writes neither way are seen by the other environment.
  absl::StatusOr<EnsureResult> b =
      manager->Ensure(Request(Env("b"), SeedStrategy::kClone, scripts));
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(manager->spares_taken(), 1);
  EXPECT_FALSE(DatabaseExists(first_spare));
  EXPECT_EQ(b->credentials.dbname, DatabaseManager::ObjectName(Env("b")));
  EXPECT_EQ(QueryAs(b->credentials, "SELECT count(*) FROM users"), "100");
  EXPECT_EQ(QueryAs(b->credentials, "SELECT tableowner FROM pg_tables WHERE tablename = 'users'"),
            b->credentials.user);
  EXPECT_EQ(AdminCount("SELECT count(*) FROM pg_database d JOIN pg_roles r ON r.oid = d.datdba "
                       "WHERE d.datname = $1 AND r.rolname = d.datname AND d.datallowconn",
                       b->credentials.dbname),
            1);
  QueryAs(a->credentials, "INSERT INTO users VALUES (1000, 'only-in-a')");
  QueryAs(b->credentials, "INSERT INTO users VALUES (2000, 'only-in-b')");
  EXPECT_EQ(QueryAs(a->credentials, "SELECT count(*) FROM users WHERE id = 2000"), "0");
  EXPECT_EQ(QueryAs(b->credentials, "SELECT count(*) FROM users WHERE id = 1000"), "0");
  ASSERT_TRUE(manager->WaitForSpares(kWait));
  EXPECT_EQ(manager->spares_made(), 2);
  spares = Spares(*manager);
  ASSERT_EQ(spares.size(), 1u);
  EXPECT_NE(spares[0].name, first_spare);
  {
    pqxx::connection conn(AdminUrl());
    pqxx::nontransaction tx(conn);
    EXPECT_EQ(tx.exec_params("SELECT datallowconn FROM pg_database WHERE datname = $1",
                             spares[0].name)[0][0]
                  .as<bool>(),
              false);  // nobody can connect to a spare, so nobody wrote to it
  }

  // A manager without spares of its own still takes one, and makes none.
  absl::StatusOr<EnsureResult> c = other->Ensure(Request(Env("c"), SeedStrategy::kClone, scripts));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(other->spares_taken(), 1);
  EXPECT_EQ(QueryAs(c->credentials, "SELECT count(*) FROM users"), "100");
  EXPECT_TRUE(Spares(*manager).empty());
  // With none ready, a clone copies the template as before, then the pool is refilled.
  absl::StatusOr<EnsureResult> e =
      manager->Ensure(Request(Env("e"), SeedStrategy::kClone, scripts));
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(manager->spares_taken(), 1);
  ASSERT_TRUE(manager->WaitForSpares(kWait));
  ASSERT_EQ(Spares(*manager).size(), 1u);

  // The seed changes: the new template is built, the old template's spare is dropped (no clone
  // would take it) and the spare made is of the new one.
  Write("db/data.sql", std::string(kData) + "INSERT INTO users VALUES (500, 'new');\n");
  absl::StatusOr<EnsureResult> d =
      manager->Ensure(Request(Env("d"), SeedStrategy::kClone, scripts));
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(QueryAs(d->credentials, "SELECT count(*) FROM users"), "101");
  ASSERT_TRUE(manager->WaitForSpares(kWait));
  spares = Spares(*manager);
  ASSERT_EQ(spares.size(), 1u);
  EXPECT_NE(spares[0].of, old_template);
  absl::StatusOr<EnsureResult> f =
      manager->Ensure(Request(Env("f"), SeedStrategy::kClone, scripts));
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(manager->spares_taken(), 2);
  EXPECT_EQ(QueryAs(f->credentials, "SELECT count(*) FROM users"), "101");

  for (const char* env : {"a", "b", "c", "d", "e", "f"}) {
    ASSERT_TRUE(manager->Drop(Env(env)).ok());
    ExpectGone(Env(env));
  }
}

TEST_F(DatabaseManagerTest, AnEnvironmentsInstancesAreSeparateDatabasesDroppedTogether) {
  Write("db/schema.sql", kSchema);
  Write("db/bad.sql", "CREATE TABLE ok (x int);\nSELECT * FROM nowhere;\n");
  EnsureRequest main = Request(Env("a"), SeedStrategy::kSeed, {"db/schema.sql"});
  main.instance = "main";
  EnsureRequest analytics = Request(Env("a"), SeedStrategy::kClone, {"db/schema.sql"});
  analytics.instance = "analytics";
  absl::StatusOr<EnsureResult> m = manager_->Ensure(main);
  absl::StatusOr<EnsureResult> an = manager_->Ensure(analytics);
  ASSERT_TRUE(m.ok()) << m.status();
  ASSERT_TRUE(an.ok()) << an.status();
  EXPECT_NE(m->credentials.dbname, an->credentials.dbname);
  EXPECT_NE(m->credentials.password, an->credentials.password);
  EXPECT_EQ(m->credentials.dbname, DatabaseManager::ObjectName(Env("a"), "main"));
  EXPECT_THAT(m->credentials.dbname, ::testing::StartsWith("eph_env_"));
  QueryAs(m->credentials, "INSERT INTO users VALUES (1, 'main')");
  EXPECT_EQ(QueryAs(an->credentials, "SELECT count(*) FROM users"), "0");
  // Repeated: the same credentials, nothing runs.
  absl::StatusOr<EnsureResult> again = manager_->Ensure(main);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->outcome, EnsureOutcome::kUnchanged);
  EXPECT_EQ(again->credentials.password, m->credentials.password);
  // A third instance whose seed fails is dropped alone.
  EnsureRequest broken = Request(Env("a"), SeedStrategy::kSeed, {"db/bad.sql"});
  broken.instance = "broken";
  absl::StatusOr<EnsureResult> b = manager_->Ensure(broken);
  ASSERT_FALSE(b.ok());
  EXPECT_THAT(b.status().message(), HasSubstr("db/bad.sql line 2"));
  EXPECT_FALSE(DatabaseExists(DatabaseManager::ObjectName(Env("a"), "broken")));
  EXPECT_EQ(QueryAs(m->credentials, "SELECT count(*) FROM users"), "1");
  // Listed with their instance; one Drop takes them all.
  absl::StatusOr<std::vector<OwnedObject>> owned = manager_->ListOwned();
  ASSERT_TRUE(owned.ok()) << owned.status();
  std::set<std::string> instances;
  for (const OwnedObject& o : *owned) {
    if (o.environment == Env("a") && o.kind == "database") instances.insert(o.instance);
  }
  EXPECT_EQ(instances, (std::set<std::string>{"main", "analytics"}));
  ASSERT_TRUE(manager_->Drop(Env("a")).ok());
  for (const char* instance : {"main", "analytics"}) {
    EXPECT_FALSE(DatabaseExists(DatabaseManager::ObjectName(Env("a"), instance))) << instance;
    EXPECT_FALSE(RoleExists(DatabaseManager::ObjectName(Env("a"), instance))) << instance;
  }
  // Names stay within PostgreSQL's 63 bytes and apart from the environment's only database.
  const std::string long_env(63, 'e');
  EXPECT_LE(DatabaseManager::ObjectName(long_env, std::string(63, 'i')).size(), 63u);
  EXPECT_NE(DatabaseManager::ObjectName("x--y"), DatabaseManager::ObjectName("x", "y"));
  EXPECT_EQ(DatabaseManager::ObjectName("x", ""), DatabaseManager::ObjectName("x"));
}

TEST_F(DatabaseManagerTest, FailingSanitiserMeansNoClone) {
  Write("db/schema.sql", kSchema);
  Write("db/data.sql", kData);
  Write("db/sanitize.sql", "UPDATE users SET email = 'x';\nUPDATE nowhere SET a = 1;\n");
  EnsureRequest req = Request(Env("a"), SeedStrategy::kClone, {"db/schema.sql", "db/data.sql"});
  req.database.sanitize_script = "db/sanitize.sql";
  absl::StatusOr<EnsureResult> r = manager_->Ensure(req);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(r.status().message(), HasSubstr("sanitising script db/sanitize.sql line 2"));
  ExpectGone(req.environment);
  // Another environment gets the same answer without a second build.
  req.environment = Env("b");
  r = manager_->Ensure(req);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("sanitising script db/sanitize.sql"));
  EXPECT_EQ(manager_->template_builds(), 0);
  ExpectGone(Env("b"));

  // A working sanitiser runs before anyone gets the data.
  Write("db/sanitize.sql", "UPDATE users SET email = 'user' || id || '@invalid';\n");
  r = manager_->Ensure(req);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(QueryAs(r->credentials, "SELECT count(*) FROM users WHERE email LIKE '%@example.com'"),
            "0");
  ASSERT_TRUE(manager_->Drop(req.environment).ok());
}

TEST_F(DatabaseManagerTest, DropWithAnOpenConnectionLeavesNothing) {
  Write("db/schema.sql", kSchema);
  absl::StatusOr<EnsureResult> r =
      manager_->Ensure(Request(Env("a"), SeedStrategy::kSeed, {"db/schema.sql"}));
  ASSERT_TRUE(r.ok()) << r.status();
  pqxx::connection app(r->credentials.database_url);
  {
    pqxx::work tx(app);
    tx.exec("INSERT INTO users VALUES (1, 'x')");
    tx.commit();
  }
  absl::Status dropped = manager_->Drop(Env("a"));
  ASSERT_TRUE(dropped.ok()) << dropped;
  ExpectGone(Env("a"));
  EXPECT_ANY_THROW({
    pqxx::nontransaction tx(app);
    tx.exec("SELECT 1");
  });
  EXPECT_ANY_THROW(pqxx::connection again(r->credentials.database_url));
  // Dropping what is gone is fine.
  EXPECT_TRUE(manager_->Drop(Env("a")).ok());
}

// A DROP DATABASE cut short by a crash (seen in the chaos test: PostgreSQL stopped `immediate`
// mid-destroy) leaves the database invalid, datconnlimit -2, as PostgreSQL 15.4+ marks it before
// removing its files. ALTER DATABASE on it is FATAL; the next Drop must finish it all the same.
TEST_F(DatabaseManagerTest, DropFinishesADropCutShortByACrash) {
  Write("db/schema.sql", kSchema);
  absl::StatusOr<EnsureResult> r =
      manager_->Ensure(Request(Env("a"), SeedStrategy::kSeed, {"db/schema.sql"}));
  ASSERT_TRUE(r.ok()) << r.status();
  const std::string name = DatabaseManager::ObjectName(Env("a"));
  {
    pqxx::connection admin(AdminUrl());
    pqxx::nontransaction tx(admin);
    tx.exec_params("UPDATE pg_database SET datconnlimit = -2 WHERE datname = $1", name);
  }
  ASSERT_EQ(AdminCount("SELECT count(*) FROM pg_database WHERE datname = $1 AND "
                       "datconnlimit = -2",
                       name),
            1);
  absl::Status dropped = manager_->Drop(Env("a"));
  ASSERT_TRUE(dropped.ok()) << dropped;
  ExpectGone(Env("a"));
}

// ephd killed (or the server stopped) between CREATE and COMMENT ON (seen in the chaos test):
// the role and database exist without Eph's marker, but the bookkeeping row written before them
// names them. The next Ensure finishes the job and the next Drop removes them, where both used to
// refuse them as "not Eph's" for good.
TEST_F(DatabaseManagerTest, ObjectsOfACallCutShortBeforeTheirMarkerAreStillEphs) {
  Write("db/schema.sql", kSchema);
  const std::string name = DatabaseManager::ObjectName(Env("a"));
  auto cut_short = [&] {
    pqxx::connection admin(AdminUrl());
    pqxx::nontransaction tx(admin);
    tx.exec("COMMENT ON DATABASE " + tx.quote_name(name) + " IS NULL");
    tx.exec("COMMENT ON ROLE " + tx.quote_name(name) + " IS NULL");
    tx.exec_params("UPDATE eph_meta.environments SET ready = false WHERE environment = $1",
                   Env("a"));
  };
  auto marked = [&] {
    return AdminCount(
        "SELECT count(*) FROM pg_database WHERE datname = $1 AND "
        "shobj_description(oid, 'pg_database') LIKE 'eph:managed %'",
        name);
  };
  ASSERT_TRUE(manager_->Ensure(Request(Env("a"), SeedStrategy::kSeed, {"db/schema.sql"})).ok());
  cut_short();
  ASSERT_EQ(marked(), 0);
  absl::StatusOr<EnsureResult> again =
      manager_->Ensure(Request(Env("a"), SeedStrategy::kSeed, {"db/schema.sql"}));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(marked(), 1);
  EXPECT_EQ(QueryAs(again->credentials, "SELECT count(*) FROM users"), "0");

  cut_short();
  absl::Status dropped = manager_->Drop(Env("a"));
  ASSERT_TRUE(dropped.ok()) << dropped;
  ExpectGone(Env("a"));
}

TEST_F(DatabaseManagerTest, EnvironmentsCannotReachEachOthersDatabases) {
  Write("db/schema.sql", kSchema);
  absl::StatusOr<EnsureResult> a =
      manager_->Ensure(Request(Env("a"), SeedStrategy::kSeed, {"db/schema.sql"}));
  absl::StatusOr<EnsureResult> b = manager_->Ensure(Request(Env("b"), SeedStrategy::kEmpty, {}));
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(b.ok()) << b.status();
  Credentials a_into_b = a->credentials;
  a_into_b.database_url = "postgresql://" + a->credentials.user + ":" + a->credentials.password +
                          "@" + a->credentials.host + ":" + std::to_string(a->credentials.port) +
                          "/" + b->credentials.dbname;
  try {
    pqxx::connection conn(a_into_b.database_url);
    ADD_FAILURE() << "env a's role connected to env b's database";
  } catch (const std::exception& e) {
    EXPECT_THAT(std::string(e.what()), HasSubstr("permission denied"));
  }
  ASSERT_TRUE(manager_->Drop(Env("a")).ok());
  ASSERT_TRUE(manager_->Drop(Env("b")).ok());
}

TEST_F(DatabaseManagerTest, PasswordsNeverReachLogsOrErrors) {
  std::ostringstream captured;
  auto previous = spdlog::default_logger();
  auto logger = std::make_shared<spdlog::logger>(
      "capture", std::make_shared<spdlog::sinks::ostream_sink_mt>(captured));
  logger->set_level(spdlog::level::trace);
  spdlog::set_default_logger(logger);

  // The passwords the manager will pick, known in advance from the seeded generator.
  SeededRandom random(42), predict(42);
  std::vector<std::string> passwords;
  for (int i = 0; i < 8; ++i) passwords.push_back(predict.Hex(24));
  std::unique_ptr<DatabaseManager> manager = MakeManager(&random);
  std::vector<std::string> messages;

  Write("db/schema.sql", kSchema);
  Write("db/bad.sql", "SELECT current_user || ' oops' FROM nowhere;\n");
  Write("db/sanitize.sql", "SELECT * FROM nowhere;\n");
  absl::StatusOr<EnsureResult> ok =
      manager->Ensure(Request(Env("a"), SeedStrategy::kSeed, {"db/schema.sql"}));
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->credentials.password, passwords[0]);
  absl::StatusOr<EnsureResult> bad =
      manager->Ensure(Request(Env("b"), SeedStrategy::kSeed, {"db/schema.sql", "db/bad.sql"}));
  ASSERT_FALSE(bad.ok());
  messages.emplace_back(bad.status().message());
  EnsureRequest clone = Request(Env("c"), SeedStrategy::kClone, {"db/schema.sql"});
  clone.database.sanitize_script = "db/sanitize.sql";
  absl::StatusOr<EnsureResult> sanitize = manager->Ensure(clone);
  ASSERT_FALSE(sanitize.ok());
  messages.emplace_back(sanitize.status().message());
  EnsureRequest slow = Request(Env("d"), SeedStrategy::kSeed, {"db/schema.sql"});
  Write("db/slow.sql", "SELECT pg_sleep(30);\n");
  slow.database.scripts.push_back("db/slow.sql");
  slow.database.timeout = std::chrono::seconds(1);
  absl::StatusOr<EnsureResult> timed_out = manager->Ensure(slow);
  ASSERT_FALSE(timed_out.ok());
  messages.emplace_back(timed_out.status().message());
  absl::Status dropped = manager->Drop(Env("a"));
  EXPECT_TRUE(dropped.ok()) << dropped;

  spdlog::set_default_logger(previous);
  const std::string log = captured.str();
  EXPECT_THAT(log, HasSubstr("environment " + Env("a")));  // the capture works
  const std::string admin_password =
      eph::testing::TestbedValue("postgres", "EPH_TEST_POSTGRES_PASSWORD");
  passwords.push_back(admin_password);
  for (const std::string& pw : passwords) {
    EXPECT_THAT(log, Not(HasSubstr(pw)));
    for (const std::string& m : messages) EXPECT_THAT(m, Not(HasSubstr(pw)));
  }
}

// Sweeps the whole server: runs alone (see CMakeLists.txt).
TEST_F(DatabaseManagerTest, SerialOrphanSweepDropsOnlyMarkedObjectsWithoutALiveEnvironment) {
  Write("db/schema.sql", kSchema);
  ASSERT_TRUE(manager_->Ensure(Request(Env("live"), SeedStrategy::kSeed, {"db/schema.sql"})).ok());
  ASSERT_TRUE(manager_->Ensure(Request(Env("gone"), SeedStrategy::kClone, {"db/schema.sql"})).ok());
  // Foreign objects, one even named like Eph's: never touched.
  const std::string foreign_db = "foreign_" + absl_lower(tag_).substr(0, 20);
  const std::string lookalike = DatabaseManager::ObjectName(Env("lookalike"));
  {
    pqxx::connection conn(AdminUrl());
    pqxx::nontransaction tx(conn);
    tx.exec("CREATE DATABASE " + tx.quote_name(foreign_db));
    tx.exec("CREATE DATABASE " + tx.quote_name(lookalike));
    tx.exec("CREATE ROLE " + tx.quote_name(lookalike));
  }
  absl::StatusOr<std::vector<std::string>> swept = manager_->SweepOrphans({Env("live")});
  ASSERT_TRUE(swept.ok()) << swept.status();
  EXPECT_THAT(*swept, ::testing::Contains(Env("gone")));
  EXPECT_THAT(*swept, Not(::testing::Contains(Env("live"))));
  ExpectGone(Env("gone"));
  EXPECT_TRUE(DatabaseExists(DatabaseManager::ObjectName(Env("live"))));
  EXPECT_TRUE(DatabaseExists(foreign_db));
  EXPECT_TRUE(DatabaseExists(lookalike));
  EXPECT_TRUE(RoleExists(lookalike));
  // The swept environment's template is its project's newest: it stays for the next one.
  absl::StatusOr<std::vector<OwnedObject>> owned = manager_->ListOwned();
  ASSERT_TRUE(owned.ok()) << owned.status();
  EXPECT_THAT(*owned, ::testing::Contains(::testing::Field(&OwnedObject::project, project_)));
  // Ensure refuses to adopt the look-alike.
  absl::StatusOr<EnsureResult> r =
      manager_->Ensure(Request(Env("lookalike"), SeedStrategy::kEmpty, {}));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(r.status().message(), HasSubstr("not Eph's"));

  ASSERT_TRUE(manager_->Drop(Env("live")).ok());
  pqxx::connection conn(AdminUrl());
  pqxx::nontransaction tx(conn);
  tx.exec("DROP DATABASE " + tx.quote_name(foreign_db));
  tx.exec("DROP DATABASE " + tx.quote_name(lookalike));
  tx.exec("DROP ROLE " + tx.quote_name(lookalike));
}

// Two installations of Eph on one server: neither lists, sweeps or adopts the other's. Sweeps
// templates server-wide, so it runs alone like the other Serial tests.
TEST_F(DatabaseManagerTest, SerialInstallationsSharingAServerLeaveEachOthersDatabasesAlone) {
  std::unique_ptr<DatabaseManager> ours = MakeManager(nullptr, CloneCopy::kWalLog, "aaaa-" + tag_);
  std::unique_ptr<DatabaseManager> theirs =
      MakeManager(nullptr, CloneCopy::kWalLog, "bbbb-" + tag_);
  ASSERT_TRUE(ours && theirs);
  Write("db/schema.sql", kSchema);
  ASSERT_TRUE(ours->Ensure(Request(Env("a"), SeedStrategy::kSeed, {"db/schema.sql"})).ok());
  ASSERT_TRUE(theirs->Ensure(Request(Env("b"), SeedStrategy::kEmpty, {})).ok());

  auto environments = [](DatabaseManager& m) {
    std::set<std::string> out;
    absl::StatusOr<std::vector<OwnedObject>> owned = m.ListOwned();
    EXPECT_TRUE(owned.ok()) << owned.status();
    if (!owned.ok()) return out;
    for (const OwnedObject& o : *owned) {
      if (!o.environment.empty()) out.insert(o.environment);
    }
    return out;
  };
  EXPECT_EQ(environments(*ours), std::set<std::string>{Env("a")});
  EXPECT_EQ(environments(*theirs), std::set<std::string>{Env("b")});
  // "Nothing is live" for the other installation still drops only its own environment.
  absl::StatusOr<std::vector<std::string>> swept = theirs->SweepOrphans({});
  ASSERT_TRUE(swept.ok()) << swept.status();
  EXPECT_EQ(*swept, std::vector<std::string>{Env("b")});
  EXPECT_TRUE(DatabaseExists(DatabaseManager::ObjectName(Env("a"))));
  ExpectGone(Env("b"));
  // Nor does it take over an environment of the same name.
  absl::StatusOr<EnsureResult> taken = theirs->Ensure(Request(Env("a"), SeedStrategy::kEmpty, {}));
  ASSERT_FALSE(taken.ok());
  EXPECT_EQ(taken.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(ours->Drop(Env("a")).ok());
  ExpectGone(Env("a"));
}

// A spare maker that died leaves a half-made spare (its row says `making`) or a spare database
// without a row: the sweep drops both. Sweeps templates server-wide: runs alone.
TEST_F(DatabaseManagerTest, SerialSweepDropsSparesNobodyIsMaking) {
  const std::string installation = "sp-" + tag_;
  std::unique_ptr<DatabaseManager> manager =
      MakeManager(nullptr, CloneCopy::kWalLog, installation, 1);
  ASSERT_TRUE(manager);
  Write("db/schema.sql", kSchema);
  ASSERT_TRUE(manager->Ensure(Request(Env("a"), SeedStrategy::kClone, {"db/schema.sql"})).ok());
  ASSERT_TRUE(manager->WaitForSpares(std::chrono::seconds(60)));
  std::vector<OwnedObject> spares = Spares(*manager);
  ASSERT_EQ(spares.size(), 1u);
  const std::string tpl = spares[0].of;
  const std::string half_made = "eph_spr_halfmade_" + absl_lower(tag_).substr(0, 8);
  const std::string rowless = "eph_spr_rowless_" + absl_lower(tag_).substr(0, 8);
  {
    pqxx::connection conn(AdminUrl());
    pqxx::nontransaction tx(conn);
    for (const std::string& name : {half_made, rowless}) {
      tx.exec("CREATE DATABASE " + tx.quote_name(name));
      tx.exec("COMMENT ON DATABASE " + tx.quote_name(name) + " IS " +
              tx.quote("eph:managed spare of=" + tpl + " project=" + project_ +
                       " installation=" + installation));
    }
    tx.exec_params(
        "INSERT INTO eph_meta.spares (name, template, project, installation, state) "
        "VALUES ($1, $2, $3, $4, 'making')",
        half_made, tpl, project_, installation);
  }
  EXPECT_EQ(Spares(*manager).size(), 3u);
  absl::StatusOr<std::vector<std::string>> swept = manager->SweepOrphans({Env("a")});
  ASSERT_TRUE(swept.ok()) << swept.status();
  EXPECT_FALSE(DatabaseExists(half_made));
  EXPECT_FALSE(DatabaseExists(rowless));
  spares = Spares(*manager);
  ASSERT_EQ(spares.size(), 1u);  // the ready one stays for the next clone
  EXPECT_TRUE(DatabaseExists(spares[0].name));
  ASSERT_TRUE(manager->Drop(Env("a")).ok());
}

TEST(SpecFromConfigTest, CarriesEveryDatabaseSetting) {
  config::DatabaseInstance instance;
  instance.strategy = config::DatabaseTemplateStrategy::kClone;
  instance.seed_scripts = {"db/a.sql", "db/b.sql"};
  instance.seed_timeout = absl::Minutes(2);
  instance.on_seed_change = config::DatabaseSeedChange::kReseed;
  instance.sanitize_script = "db/scrub.sql";
  const DatabaseSpec spec = SpecFromConfig(instance);
  EXPECT_EQ(spec.strategy, SeedStrategy::kClone);
  EXPECT_EQ(spec.scripts, instance.seed_scripts);
  EXPECT_EQ(spec.timeout, std::chrono::seconds(120));
  EXPECT_EQ(spec.on_seed_change, OnSeedChange::kReseed);
  EXPECT_EQ(spec.sanitize_script, "db/scrub.sql");
}

TEST(DatabaseNamesTest, AreSafeIdentifiersAndDistinct) {
  const std::string long_a(63, 'a');
  std::string long_b = long_a;
  long_b.back() = 'b';
  EXPECT_EQ(DatabaseManager::ObjectName("my-app-gentle-stream-42"),
            "eph_env_my_app_gentle_stream_42");
  EXPECT_LE(DatabaseManager::ObjectName(long_a).size(), 63u);
  EXPECT_NE(DatabaseManager::ObjectName(long_a), DatabaseManager::ObjectName(long_b));
  EXPECT_LE(DatabaseManager::TemplateName("my-app", std::string(64, 'f')).size(), 63u);
}

}  // namespace
}  // namespace eph::database
