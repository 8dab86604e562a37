// The Store suite on SQLite, plus what only the SQLite store does: files and directories,
// journal mode, durability across kill -9, and the URL handling of OpenStore.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "pkg/state/sqlite_store.h"
#include "pkg/state/store_test.h"
#include "test/support/testbed.h"

namespace eph::state::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class SqliteEnv final : public StoreBackendEnv {
 public:
  // A nested path, so every test also checks that parent directories are created.
  std::string FreshUrl() override {
    return absl::StrCat("sqlite:", eph::testing::MakeTempDir("store-sqlite"), "/state/eph.db");
  }
};

INSTANTIATE_TEST_SUITE_P(Sqlite, StoreTest,
                         ::testing::Values(StoreBackendParam{
                             "sqlite", [] { return std::make_unique<SqliteEnv>(); }}),
                         BackendName);

std::string TempDir() { return eph::testing::MakeTempDir("store-sqlite"); }

// Runs one statement on the file with the plain sqlite3 API, as an operator with the sqlite3
// shell would; returns the first column of the first row.
std::string RawQuery(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  EXPECT_EQ(sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr), SQLITE_OK)
      << sqlite3_errmsg(db);
  std::string out;
  if (sqlite3_step(stmt) == SQLITE_ROW && sqlite3_column_text(stmt, 0) != nullptr) {
    out = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
  }
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return out;
}

TEST(SqliteStoreTest, CreatesTheFileAndItsParentDirectories) {
  const std::string path = TempDir() + "/a/b/c/eph.db";
  std::unique_ptr<Store> store = MUST(OpenStore("sqlite:" + path));
  EXPECT_TRUE(std::filesystem::exists(path));
}

TEST(SqliteStoreTest, RelativePathIsUnderTheWorkingDirectory) {
  const std::string dir = TempDir();
  const std::filesystem::path cwd = std::filesystem::current_path();
  std::filesystem::current_path(dir);
  absl::StatusOr<std::unique_ptr<Store>> store = OpenStore("sqlite:eph-data/eph.db");
  std::filesystem::current_path(cwd);
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_TRUE(std::filesystem::exists(dir + "/eph-data/eph.db"));
}

TEST(SqliteStoreTest, AcceptsTheUrlSpellingWithSlashes) {
  const std::string path = TempDir() + "/eph.db";
  std::unique_ptr<Store> store = MUST(OpenStore("sqlite://" + path));  // sqlite:///abs/path
  EXPECT_TRUE(std::filesystem::exists(path));
}

TEST(SqliteStoreTest, InMemoryDatabaseWorks) {
  std::unique_ptr<Store> store = MUST(OpenStore("sqlite::memory:"));
  EXPECT_TRUE(MUST(store->RecordDelivery(Delivery{.id = "d", .forge = "github"}, "k")));
  EXPECT_EQ(MUST(store->QueueDepth()), 1);
}

TEST(SqliteStoreTest, UsesTheWalJournal) {
  const std::string path = TempDir() + "/eph.db";
  std::unique_ptr<Store> store = MUST(OpenStore("sqlite:" + path));
  EPH_ASSERT_OK(store->Enqueue("k", FakeClock().Now()));
  EXPECT_EQ(RawQuery(path, "PRAGMA journal_mode"), "wal");
  EXPECT_EQ(RawQuery(path, "SELECT key FROM work_queue"), "k");
}

TEST(SqliteStoreTest, AcknowledgedDeliverySurvivesKill9) {
  const std::string url = "sqlite:" + TempDir() + "/eph.db";
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // The ephd stand-in: store the delivery, and die hard the moment it is acknowledged.
    absl::StatusOr<std::unique_ptr<Store>> store = OpenStore(url);
    if (!store.ok()) _exit(2);
    Delivery d{.id = "acked-1", .forge = "github", .event = "pull_request", .body = "{}"};
    absl::StatusOr<bool> stored = (*store)->RecordDelivery(d, "acme/shop#1");
    if (!stored.ok() || !*stored) _exit(3);
    kill(getpid(), SIGKILL);
    _exit(4);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
      << "child exited with " << (WIFEXITED(status) ? WEXITSTATUS(status) : -1);

  std::unique_ptr<Store> store = MUST(OpenStore(url));
  EXPECT_TRUE(MUST(store->GetDelivery("acked-1")).has_value());
  EXPECT_EQ(MUST(store->QueueDepth()), 1);
}

TEST(SqliteStoreTest, FileThatIsNotADatabaseIsAClearError) {
  const std::string path = TempDir() + "/eph.db";
  std::ofstream(path) << std::string(8192, 'x');
  const absl::StatusOr<std::unique_ptr<Store>> store = OpenStore("sqlite:" + path);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(store.status().message()), HasSubstr(path));
  EXPECT_THAT(std::string(store.status().message()), HasSubstr("not an SQLite database"));
}

TEST(SqliteStoreTest, DirectoryThatCannotBeCreatedIsAClearError) {
  const std::string dir = TempDir();
  std::ofstream(dir + "/blocker") << "a file where a directory should be";
  const absl::StatusOr<std::unique_ptr<Store>> store =
      OpenStore("sqlite:" + dir + "/blocker/eph.db");
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(store.status().message()), HasSubstr("cannot create directory"));
}

// A GitHub comment delivery as an ephd before schema 8 stored it: no kind, the body only.
Delivery OldGitHubComment(const std::string& id, int64_t comment_id, const std::string& type,
                          TimePoint at) {
  Delivery d;
  d.id = id;
  d.forge = "github";
  d.event = "issue_comment";
  d.action = "created";
  d.repo = "acme/shop";
  d.pr_number = 4;
  d.body = R"({"action":"created","issue":{"number":4,"pull_request":{}},"comment":{"id":)" +
           std::to_string(comment_id) + R"(,"body":"/eph keep","user":{"login":"alice","type":")" +
           type + R"("}}})";
  d.received_at = at;
  return d;
}

// Version 8 decodes the comments stored before it (the controller reads only the neutral
// columns).
TEST(SqliteStoreTest, StoredCommentsAreDecodedWhenMigrating) {
  const std::string path = TempDir() + "/eph.db";
  {
    std::unique_ptr<Store> store = MUST(OpenStore("sqlite:" + path));
    FakeClock clock;
    MUST(store->RecordDelivery(OldGitHubComment("person", 77, "User", clock.Now()), std::nullopt));
    MUST(store->RecordDelivery(OldGitHubComment("bot", 78, "Bot", clock.Now()), std::nullopt));
  }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db,
                         "DROP INDEX deliveries_by_kind;"
                         "ALTER TABLE deliveries DROP COLUMN kind;"
                         "ALTER TABLE deliveries DROP COLUMN comment_id;"
                         "ALTER TABLE deliveries DROP COLUMN author;"
                         "ALTER TABLE deliveries DROP COLUMN text;"
                         "DELETE FROM schema_migrations WHERE version = 8;",
                         nullptr, nullptr, nullptr),
            SQLITE_OK)
      << sqlite3_errmsg(db);
  sqlite3_close(db);
  std::unique_ptr<Store> store = MUST(OpenStore("sqlite:" + path));
  const Delivery person = MUST(store->GetDelivery("person")).value();
  EXPECT_EQ(person.kind, "comment");
  EXPECT_EQ(person.comment_id, 77);
  EXPECT_EQ(person.author, "alice");
  EXPECT_EQ(person.text, "/eph keep");
  EXPECT_EQ(MUST(store->GetDelivery("bot")).value().kind, "");
}

// Version 7 moved three fields of spec_json into columns: a database written before it keeps
// them. Simulated by taking the columns away again and forgetting the migration.
TEST(SqliteStoreTest, EnvironmentFieldsAreFilledFromSpecJsonWhenMigrating) {
  const std::string path = TempDir() + "/eph.db";
  {
    std::unique_ptr<Store> store = MUST(OpenStore("sqlite:" + path));
    FakeClock clock;
    for (const std::string name : {"shop-old-1", "shop-old-2"}) {
      Environment e;
      e.name = name;
      e.project = "acme/shop";
      e.pr_number = name == "shop-old-1" ? 1 : 2;
      e.created_at = e.updated_at = clock.Now();
      MUST(store->CreateEnvironment(e));
    }
  }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db,
                         "UPDATE environments SET spec_json = '{\"namespace\":\"eph-shop-old-1\","
                         "\"forced\":true,\"controller\":{\"backend_url\":"
                         "\"http://127.0.0.1:9\"}}' WHERE name = 'shop-old-1';"
                         "UPDATE environments SET spec_json = 'not json' WHERE name = 'shop-old-2';"
                         "ALTER TABLE environments DROP COLUMN namespace_name;"
                         "ALTER TABLE environments DROP COLUMN forced;"
                         "ALTER TABLE environments DROP COLUMN backend_url;"
                         "DELETE FROM schema_migrations WHERE version = 7;",
                         nullptr, nullptr, nullptr),
            SQLITE_OK)
      << sqlite3_errmsg(db);
  sqlite3_close(db);
  std::unique_ptr<Store> store = MUST(OpenStore("sqlite:" + path));
  const Environment old = MUST(store->GetEnvironment("shop-old-1")).value();
  EXPECT_EQ(old.namespace_name, "eph-shop-old-1");
  EXPECT_TRUE(old.forced);
  EXPECT_EQ(old.backend_url, "http://127.0.0.1:9");
  const Environment broken = MUST(store->GetEnvironment("shop-old-2")).value();
  EXPECT_EQ(broken.namespace_name, "");
  EXPECT_FALSE(broken.forced);
}

TEST(SqliteStoreTest, NewerSchemaThanThisBuildIsRefused) {
  const std::string path = TempDir() + "/eph.db";
  MUST(OpenStore("sqlite:" + path)).reset();
  RawQuery(path,
           "INSERT INTO schema_migrations (version, name, applied_at) "
           "VALUES (9999, 'from the future', 0)");
  const absl::StatusOr<std::unique_ptr<Store>> store = OpenStore("sqlite:" + path);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(store.status().message()), HasSubstr("9999"));
}

TEST(SqliteStoreTest, WriterWaitsForAnotherConnectionsLock) {
  const std::string path = TempDir() + "/eph.db";
  std::unique_ptr<Store> store =
      MUST(OpenSqliteStore(path, {.busy_timeout = std::chrono::milliseconds(100)}));
  // Another process holds the write lock and does not let go.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);
  const absl::Status s = store->Enqueue("k", FakeClock().Now());
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
  // The message may reach an API client: it says what to do, not where the data lives.
  EXPECT_EQ(s.message(), kStoreUnavailableMessage);
  EXPECT_THAT(std::string(s.message()), Not(HasSubstr(path)));
  // Ping proves the store would take a write, so /readyz fails while the lock is held...
  const absl::Status ping = store->Ping();
  EXPECT_EQ(ping.code(), absl::StatusCode::kUnavailable) << ping;
  EXPECT_THAT(std::string(ping.message()), Not(HasSubstr(path)));
  // ...though reads are not blocked by a writer (WAL).
  EXPECT_EQ(MUST(store->QueueDepth()), 0);
  ASSERT_EQ(sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  EPH_EXPECT_OK(store->Enqueue("k", FakeClock().Now()));
  EPH_EXPECT_OK(store->Ping());
}

TEST(SqliteStoreTest, CallsGiveUpAtTheBusyTimeoutEvenWhenQueuedBehindEachOther) {
  const std::string path = TempDir() + "/eph.db";
  constexpr auto kBusy = std::chrono::milliseconds(300);
  std::unique_ptr<Store> store = MUST(OpenSqliteStore(path, {.busy_timeout = kBusy}));
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);
  // Four writers queue for the one write connection; each must still answer within its own
  // budget, not after the ones before it each used theirs.
  std::vector<std::thread> writers;
  std::vector<std::chrono::steady_clock::duration> took(4);
  for (size_t i = 0; i < took.size(); ++i) {
    writers.emplace_back([&, i] {
      const auto start = std::chrono::steady_clock::now();
      const absl::Status s = store->Enqueue(absl::StrCat("k", i), FakeClock().Now());
      took[i] = std::chrono::steady_clock::now() - start;
      EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
    });
  }
  for (auto& t : writers) t.join();
  for (const auto& d : took) EXPECT_LT(d, kBusy * 2);
  ASSERT_EQ(sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
}

TEST(SqliteStoreTest, TheDatabaseAndItsDirectoryArePrivate) {
  namespace fs = std::filesystem;
  constexpr auto kOthers = fs::perms::group_all | fs::perms::others_all;
  const std::string dir = TempDir() + "/state";
  std::unique_ptr<Store> store = MUST(OpenStore("sqlite:" + dir + "/eph.db"));
  EPH_EXPECT_OK(store->Enqueue("k", FakeClock().Now()));
  EXPECT_EQ(fs::status(dir).permissions() & fs::perms::all, fs::perms::owner_all);
  for (const std::string name : {"/eph.db", "/eph.db-wal", "/eph.db-shm"}) {
    ASSERT_TRUE(fs::exists(dir + name)) << name;
    EXPECT_EQ(fs::status(dir + name).permissions() & kOthers, fs::perms::none) << name;
  }
  store.reset();

  // Left open by an older ephd: tightened on the next start.
  fs::permissions(dir,
                  fs::perms::group_read | fs::perms::group_exec | fs::perms::others_read |
                      fs::perms::others_exec,
                  fs::perm_options::add);
  fs::permissions(dir + "/eph.db", fs::perms::group_read | fs::perms::others_read,
                  fs::perm_options::add);
  store = MUST(OpenStore("sqlite:" + dir + "/eph.db"));
  EXPECT_EQ(fs::status(dir).permissions() & kOthers, fs::perms::none);
  EXPECT_EQ(fs::status(dir + "/eph.db").permissions() & kOthers, fs::perms::none);

  // A directory shared with other files is left as it is; the database itself is private.
  const std::string shared = TempDir();
  std::ofstream(shared + "/README") << "not ours";
  fs::permissions(shared, fs::perms::others_read | fs::perms::others_exec, fs::perm_options::add);
  store = MUST(OpenStore("sqlite:" + shared + "/eph.db"));
  EXPECT_NE(fs::status(shared).permissions() & fs::perms::others_read, fs::perms::none);
  EXPECT_EQ(fs::status(shared + "/eph.db").permissions() & kOthers, fs::perms::none);
}

// --- OpenStore and RedactStoreUrl (backend independent) ---

TEST(OpenStoreTest, UnknownSchemeIsInvalidArgument) {
  for (const std::string url : {"mysql://eph:hunter22@db/eph", "eph.db", "", "file:eph.db"}) {
    const absl::StatusOr<std::unique_ptr<Store>> store = OpenStore(url);
    ASSERT_FALSE(store.ok()) << url;
    EXPECT_EQ(store.status().code(), absl::StatusCode::kInvalidArgument) << url;
    EXPECT_THAT(std::string(store.status().message()), HasSubstr("sqlite:PATH"));
    EXPECT_THAT(std::string(store.status().message()), Not(HasSubstr("hunter22")));
  }
}

TEST(OpenStoreTest, SqliteWithoutPathIsInvalidArgument) {
  for (const std::string url : {"sqlite:", "sqlite://"}) {
    EXPECT_EQ(OpenStore(url).status().code(), absl::StatusCode::kInvalidArgument) << url;
  }
}

TEST(RedactStoreUrlTest, HidesPasswordsOnly) {
  EXPECT_EQ(RedactStoreUrl("postgres://eph:s3cret@db.internal:5432/eph"),
            "postgres://eph:***@db.internal:5432/eph");
  EXPECT_EQ(RedactStoreUrl("postgresql://eph@db/eph?sslmode=require"),
            "postgresql://eph@db/eph?sslmode=require");
  EXPECT_EQ(RedactStoreUrl("postgresql://db/eph?user=eph&password=s3cret&sslmode=require"),
            "postgresql://db/eph?user=eph&password=***&sslmode=require");
  EXPECT_EQ(RedactStoreUrl("postgresql://eph:p@ss@db/eph"), "postgresql://eph:***@db/eph");
  EXPECT_EQ(RedactStoreUrl("host=db password=s3cret user=eph"), "host=db password=*** user=eph");
  EXPECT_EQ(RedactStoreUrl("sqlite:eph-data/eph.db"), "sqlite:eph-data/eph.db");
  EXPECT_EQ(RedactStoreUrl("postgresql:///eph"), "postgresql:///eph");
}

TEST(EnvStateTest, NamesRoundTrip) {
  for (EnvState s :
       {EnvState::kPending, EnvState::kProvisioning, EnvState::kReady, EnvState::kUpdating,
        EnvState::kDestroying, EnvState::kDestroyed, EnvState::kFailed, EnvState::kSleeping}) {
    EXPECT_EQ(ParseEnvState(EnvStateName(s)), s);
    EXPECT_EQ(IsLive(s), s != EnvState::kDestroyed);
  }
  EXPECT_EQ(EnvStateName(EnvState::kProvisioning), "provisioning");
  EXPECT_FALSE(ParseEnvState("Ready").has_value());
  EXPECT_FALSE(ParseEnvState("").has_value());
}

}  // namespace
}  // namespace eph::state::testing
