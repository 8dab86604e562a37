// The Store suite on the test bed's PostgreSQL 15, plus what only the PostgreSQL store does:
// connection failures, reconnecting after the server drops connections, pooling.
//
// Each test gets its own database (created through the admin URL, dropped afterwards), so tests
// are independent and may run in parallel.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <latch>
#include <map>
#include <mutex>
#include <pqxx/pqxx>
#include <random>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "pkg/state/postgres_store.h"
#include "pkg/state/store_test.h"
#include "test/support/testbed.h"

// For builds with EPH_SANITIZE: libpqxx 6.4 leaks the PGresult of a statement whose connection
// broke (make_result() calls encoding_id(), which throws broken_connection, before it owns the
// result; fixed in libpqxx 7). About 2 KB per lost connection, which these tests provoke.
// NOLINTNEXTLINE(bugprone-reserved-identifier): the name LeakSanitizer looks up.
extern "C" const char* __lsan_default_suppressions() {
  return "leak:pqxx::connection_base::exec\n";
}

namespace eph::state::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::string TestUrl() { return eph::testing::TestbedValue("postgres", "EPH_TEST_POSTGRES_URL"); }
std::string AdminUrl() {
  return eph::testing::TestbedValue("postgres", "EPH_TEST_POSTGRES_ADMIN_URL");
}

// `url` with its database replaced by `db`.
std::string WithDatabase(const std::string& url, const std::string& db) {
  const size_t authority = url.find("://") + 3;
  const size_t at = url.find('@', authority);
  const size_t path = url.find('/', at == std::string::npos ? authority : at);
  const size_t query = url.find('?', authority);
  std::string out = url.substr(0, path == std::string::npos ? query : path);
  absl::StrAppend(&out, "/", db);
  if (query != std::string::npos) absl::StrAppend(&out, url.substr(query));
  return out;
}

// Runs statements outside a transaction (CREATE/DROP DATABASE need that) as the admin role.
pqxx::result Admin(const std::string& sql) {
  pqxx::connection conn(AdminUrl());
  pqxx::nontransaction tx(conn);
  return tx.exec(sql);
}

class PostgresEnv final : public StoreBackendEnv {
 public:
  ~PostgresEnv() override {
    for (const std::string& db : databases_) {
      try {
        Admin(absl::StrCat("DROP DATABASE IF EXISTS ", db, " WITH (FORCE)"));
      } catch (const std::exception& e) {
        ADD_FAILURE() << "dropping " << db << ": " << e.what();
      }
    }
  }

  std::string FreshUrl() override {
    std::random_device rd;
    const std::string db = absl::StrFormat("eph_store_test_%08x%08x", rd(), rd());
    Admin(absl::StrCat("CREATE DATABASE ", db));
    databases_.push_back(db);
    return WithDatabase(TestUrl(), db);
  }

  const std::string& last_database() const { return databases_.back(); }

 private:
  std::vector<std::string> databases_;
};

INSTANTIATE_TEST_SUITE_P(Postgres, StoreTest,
                         ::testing::Values(StoreBackendParam{
                             "postgres", [] { return std::make_unique<PostgresEnv>(); }}),
                         BackendName);

class PostgresStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { url_ = env_.FreshUrl(); }

  // Terminates every server process serving the test database: what a PostgreSQL restart (or
  // an operator's pg_terminate_backend) does to the store's open connections.
  int TerminateBackends() {
    const pqxx::result r = Admin(
        absl::StrCat("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '",
                     env_.last_database(), "'"));
    WaitUntil("the terminated backends are gone", [&] { return BackendCount() == 0; });
    return static_cast<int>(r.size());
  }

  int BackendCount() {
    return Admin(absl::StrCat("SELECT count(*) FROM pg_stat_activity WHERE datname = '",
                              env_.last_database(), "'"))[0][0]
        .as<int>();
  }

  template <typename Pred>
  void WaitUntil(const char* what, Pred pred) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (!pred()) {
      ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "timed out waiting until " << what;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }

  FakeClock clock_;
  PostgresEnv env_;
  std::string url_;
};

TEST_F(PostgresStoreTest, UnreachableServerIsUnavailableAndTheMessageHidesThePassword) {
  const absl::StatusOr<std::unique_ptr<Store>> store =
      OpenStore("postgresql://eph:hunter2-secret@127.0.0.1:1/eph");
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kUnavailable);
  const std::string msg(store.status().message());
  EXPECT_THAT(msg,
              HasSubstr("cannot connect to PostgreSQL at postgresql://eph:***@127.0.0.1:1/eph"));
  EXPECT_THAT(msg, HasSubstr("127.0.0.1"));
  EXPECT_THAT(msg, Not(HasSubstr("hunter2")));
}

TEST_F(PostgresStoreTest, WrongPasswordSaysSoWithoutTheSecret) {
  const std::string url = TestUrl();
  const size_t colon = url.find(':', url.find("://") + 3);
  const size_t at = url.find('@');
  const std::string wrong = url.substr(0, colon + 1) + "wrong-horse-battery" + url.substr(at);
  const absl::StatusOr<std::unique_ptr<Store>> store = OpenStore(wrong);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(store.status().message()), HasSubstr("password authentication failed"));
  EXPECT_THAT(std::string(store.status().message()), Not(HasSubstr("wrong-horse-battery")));
}

TEST_F(PostgresStoreTest, MissingDatabaseIsNamed) {
  const absl::StatusOr<std::unique_ptr<Store>> store =
      OpenStore(WithDatabase(TestUrl(), "eph_no_such_database"));
  ASSERT_FALSE(store.ok());
  EXPECT_THAT(std::string(store.status().message()), HasSubstr("eph_no_such_database"));
  EXPECT_THAT(std::string(store.status().message()), HasSubstr("does not exist"));
}

TEST_F(PostgresStoreTest, ReconnectsAfterTheServerDropsIdleConnections) {
  std::unique_ptr<Store> store = MUST(OpenPostgresStore(url_, {.pool_size = 4}));
  // Fill the pool: four calls at once.
  {
    std::latch start(4);
    std::vector<std::thread> threads;
    threads.reserve(4);
    for (int i = 0; i < 4; ++i) {
      threads.emplace_back([&, i] {
        start.arrive_and_wait();
        EPH_EXPECT_OK(store->Enqueue(absl::StrCat("k", i), clock_.Now()));
      });
    }
    for (auto& t : threads) t.join();
  }
  ASSERT_GE(TerminateBackends(), 1);

  // Idle connections are checked before use: the restart costs no failed call.
  EPH_EXPECT_OK(store->Ping());
  EXPECT_EQ(MUST(store->QueueDepth()), 4);
  EPH_EXPECT_OK(store->Enqueue("k-after", clock_.Now()));
  EXPECT_EQ(MUST(store->QueueDepth()), 5);
}

TEST_F(PostgresStoreTest, ConnectionLostMidCallIsUnavailableAndTheNextCallReconnects) {
  std::unique_ptr<Store> store = MUST(OpenPostgresStore(url_, {.pool_size = 2}));
  Environment e;
  e.name = "shop-mid-call-1";
  e.project = "acme/shop";
  e.created_at = clock_.Now();
  // Hold the lock every event append takes, so the create below blocks inside its
  // transaction; then cut its connection.
  pqxx::connection blocker(WithDatabase(AdminUrl(), env_.last_database()));
  pqxx::nontransaction lock(blocker);
  lock.exec("SELECT pg_advisory_lock(" + std::to_string(0x6570682E65767473) + ")");

  absl::Status result;
  std::thread creator([&] { result = store->CreateEnvironment(e).status(); });
  WaitUntil("the create waits for the lock", [&] {
    return Admin(absl::StrCat("SELECT count(*) FROM pg_stat_activity WHERE datname = '",
                              env_.last_database(), "' AND wait_event_type = 'Lock'"))[0][0]
               .as<int>() == 1;
  });
  Admin(absl::StrCat("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '",
                     env_.last_database(), "' AND wait_event_type = 'Lock'"));
  creator.join();
  EXPECT_EQ(result.code(), absl::StatusCode::kUnavailable) << result;
  // The message may reach an API client: no server address; the detail is in the log.
  EXPECT_EQ(result.message(), kStoreUnavailableMessage);
  lock.exec("SELECT pg_advisory_unlock_all()");

  // Nothing of the failed call was committed, and the store works again.
  EXPECT_FALSE(MUST(store->NameTaken("shop-mid-call-1")));
  EXPECT_EQ(MUST(store->CreateEnvironment(e)).version, 1);
}

TEST_F(PostgresStoreTest, CallsWaitForAFreeConnectionWhenThePoolIsBusy) {
  std::unique_ptr<Store> store = MUST(OpenPostgresStore(url_, {.pool_size = 1}));
  constexpr int kThreads = 6;
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      for (int j = 0; j < 10; ++j) {
        EPH_EXPECT_OK(store->Enqueue(absl::StrCat("k", i, "-", j), clock_.Now()));
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(MUST(store->QueueDepth()), kThreads * 10);
  EXPECT_EQ(BackendCount(), 1);
}

TEST_F(PostgresStoreTest, PoolSizeMustBePositive) {
  EXPECT_EQ(OpenPostgresStore(url_, {.pool_size = 0}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// --- group commit of deliveries (delivery_commit_queue.h) ---

Delivery NewDelivery(const std::string& id) {
  Delivery d;
  d.id = id;
  d.forge = "github";
  d.event = "pull_request";
  d.action = "labeled";
  d.repo = "acme/shop";
  d.pr_number = 1;
  d.body = absl::StrCat(R"({"delivery":")", id, R"("})");
  return d;
}

class PostgresGroupCommitTest : public PostgresStoreTest {
 protected:
  void SetUp() override {
    PostgresStoreTest::SetUp();
    store_ = MUST(OpenStore(url_));
  }

  void TearDown() override {
    for (std::thread& t : threads_) {
      if (t.joinable()) t.join();
    }
  }

  // The store commits up to two groups at once (sql_store.cc). Another client inserts
  // deliveries "held-1" and "held-2" and keeps its transaction open; the store's own inserts of
  // them (a group each, started here) wait for it, so both commit slots stay busy and the calls
  // that follow queue up.
  void HoldTheCommitSlots() {
    holder_ = std::make_unique<pqxx::connection>(url_);
    held_ = std::make_unique<pqxx::work>(*holder_);
    held_->exec(
        "INSERT INTO deliveries (id, forge, event, body, received_at) "
        "VALUES ('held-1', 'github', 'pull_request', '{}', 0), "
        "('held-2', 'github', 'pull_request', '{}', 0)");
    for (const char* id : {"held-1", "held-2"}) {
      Start(id);
      WaitUntil("the store's insert waits for the other client", [&] {
        return Admin(absl::StrCat("SELECT count(*) FROM pg_stat_activity WHERE datname = '",
                                  env_.last_database(), "' AND wait_event_type = 'Lock'"))[0][0]
                   .as<int>() == (id == std::string("held-1") ? 1 : 2);
      });
    }
  }
  // The other client gives up its inserts: the held groups go on (and store them themselves).
  void ReleaseTheSlots() {
    held_->abort();
    held_.reset();
    holder_.reset();
  }

  // RecordDelivery(id) in a thread of its own, after the calls started before it have queued.
  // Its answer lands in results_[id], the second caller's with that id in results_[id + "#2"].
  void Start(const std::string& id) {
    std::string slot = id;
    if (slots_.count(slot) > 0) slot += "#2";
    slots_.insert(slot);
    const uint64_t ahead = store_->DeliveryCommits().waiting;
    threads_.emplace_back([this, id, slot] {
      absl::StatusOr<bool> r =
          store_->RecordDelivery(NewDelivery(id), absl::StrCat("acme/shop#", id));
      std::lock_guard<std::mutex> lock(mu_);
      results_.emplace(slot, std::move(r));
    });
    if (id.rfind("held-", 0) != 0) {
      WaitUntil("the caller queues",
                [&] { return store_->DeliveryCommits().waiting == ahead + 1; });
    }
  }

  void JoinAll() {
    for (std::thread& t : threads_) t.join();
    threads_.clear();
  }

  // The transaction that inserted each delivery.
  std::map<std::string, std::string> InsertingTransactions() {
    pqxx::connection conn(url_);
    pqxx::nontransaction tx(conn);
    std::map<std::string, std::string> out;
    for (const pqxx::row& row : tx.exec("SELECT id, xmin::text FROM deliveries")) {
      out[row[0].as<std::string>()] = row[1].as<std::string>();
    }
    return out;
  }

  std::unique_ptr<Store> store_;
  std::unique_ptr<pqxx::connection> holder_;
  std::unique_ptr<pqxx::work> held_;
  std::vector<std::thread> threads_;
  std::set<std::string> slots_;
  std::mutex mu_;
  std::map<std::string, absl::StatusOr<bool>> results_;
};

TEST_F(PostgresGroupCommitTest, CallersQueuedTogetherShareOneTransactionAndDuplicatesStayOne) {
  HoldTheCommitSlots();
  Start("x");
  Start("y");
  Start("x");
  ReleaseTheSlots();
  JoinAll();

  EXPECT_EQ(results_.at("held-1").value_or(false), true);
  EXPECT_EQ(results_.at("held-2").value_or(false), true);
  EXPECT_EQ(results_.at("x").value_or(false), true);
  EXPECT_EQ(results_.at("y").value_or(false), true);
  EXPECT_EQ(results_.at("x#2").value_or(true), false) << "a repeat inside the group is a duplicate";
  EXPECT_EQ(MUST(store_->CountDeliveries()), 4);
  EXPECT_EQ(MUST(store_->QueueDepth()), 4);

  // One transaction for the three queued calls, as the database itself records it.
  const std::map<std::string, std::string> xmin = InsertingTransactions();
  EXPECT_EQ(xmin.at("x"), xmin.at("y"));
  EXPECT_NE(xmin.at("x"), xmin.at("held-1"));
  EXPECT_NE(xmin.at("x"), xmin.at("held-2"));
  const DeliveryCommitStats stats = store_->DeliveryCommits();
  EXPECT_EQ(stats.groups, 3u);
  EXPECT_EQ(stats.deliveries, 5u);
}

TEST_F(PostgresGroupCommitTest, OneRefusedDeliveryInAGroupFailsAloneAndTheOthersAreStored) {
  {
    pqxx::connection conn(url_);
    pqxx::nontransaction tx(conn);
    tx.exec("ALTER TABLE deliveries ADD CONSTRAINT test_refuses_bad CHECK (id <> 'bad')");
  }
  HoldTheCommitSlots();
  Start("d1");
  Start("bad");
  Start("d2");
  ReleaseTheSlots();
  JoinAll();

  EXPECT_EQ(results_.at("held-1").value_or(false), true);
  EXPECT_EQ(results_.at("held-2").value_or(false), true);
  EXPECT_EQ(results_.at("d1").value_or(false), true);
  EXPECT_EQ(results_.at("d2").value_or(false), true);
  EXPECT_EQ(results_.at("bad").status().code(), absl::StatusCode::kInvalidArgument)
      << results_.at("bad").status();
  EXPECT_FALSE(MUST(store_->GetDelivery("bad")).has_value());
  EXPECT_TRUE(MUST(store_->GetDelivery("d1")).has_value());
  EXPECT_TRUE(MUST(store_->GetDelivery("d2")).has_value());
  EXPECT_EQ(MUST(store_->QueueDepth()), 4) << "held-1, held-2, d1 and d2 enqueued; bad not";
  EXPECT_EQ(store_->DeliveryCommits().retried_alone, 3u);
}

TEST_F(PostgresGroupCommitTest, ConcurrentSendersNeedFewerCommitsThanDeliveries) {
  constexpr int kSenders = 16;
  constexpr int kEach = 30;
  std::latch start(kSenders);
  std::atomic<int> stored{0};
  for (int t = 0; t < kSenders; ++t) {
    threads_.emplace_back([&, t] {
      start.arrive_and_wait();
      for (int i = 0; i < kEach; ++i) {
        const std::string id = absl::StrCat("d-", t, "-", i);
        if (store_->RecordDelivery(NewDelivery(id), absl::StrCat("acme/shop#", id))
                .value_or(false)) {
          ++stored;
        }
      }
    });
  }
  JoinAll();
  EXPECT_EQ(stored.load(), kSenders * kEach);
  EXPECT_EQ(MUST(store_->CountDeliveries()), kSenders * kEach);

  // Counted by the database, not by the store: the distinct transactions that inserted them.
  std::set<std::string> transactions;
  for (const auto& [id, xmin] : InsertingTransactions()) transactions.insert(xmin);
  EXPECT_LT(transactions.size(), size_t{kSenders * kEach});
  EXPECT_EQ(transactions.size(), store_->DeliveryCommits().groups);
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
TEST_F(PostgresStoreTest, StoredCommentsAreDecodedWhenMigrating) {
  {
    std::unique_ptr<Store> store = MUST(OpenStore(url_));
    FakeClock clock;
    MUST(store->RecordDelivery(OldGitHubComment("person", 77, "User", clock.Now()), std::nullopt));
    MUST(store->RecordDelivery(OldGitHubComment("bot", 78, "Bot", clock.Now()), std::nullopt));
  }
  {
    pqxx::connection conn(url_);
    pqxx::work tx(conn);
    tx.exec("DROP INDEX deliveries_by_kind");
    tx.exec(
        "ALTER TABLE deliveries DROP COLUMN kind, DROP COLUMN comment_id, "
        "DROP COLUMN author, DROP COLUMN text");
    tx.exec("DELETE FROM schema_migrations WHERE version = 8");
    tx.commit();
  }
  std::unique_ptr<Store> store = MUST(OpenStore(url_));
  const Delivery person = MUST(store->GetDelivery("person")).value();
  EXPECT_EQ(person.kind, "comment");
  EXPECT_EQ(person.comment_id, 77);
  EXPECT_EQ(person.author, "alice");
  EXPECT_EQ(person.text, "/eph keep");
  EXPECT_EQ(MUST(store->GetDelivery("bot")).value().kind, "");
}

// Version 7 moved three fields of spec_json into columns: a database written before it keeps
// them. Simulated by taking the columns away again and forgetting the migration.
TEST_F(PostgresStoreTest, EnvironmentFieldsAreFilledFromSpecJsonWhenMigrating) {
  {
    std::unique_ptr<Store> store = MUST(OpenStore(url_));
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
  {
    pqxx::connection conn(url_);
    pqxx::work tx(conn);
    tx.exec(
        "UPDATE environments SET spec_json = '{\"namespace\":\"eph-shop-old-1\",\"forced\":true,"
        "\"controller\":{\"backend_url\":\"http://127.0.0.1:9\"}}' WHERE name = 'shop-old-1'");
    tx.exec("UPDATE environments SET spec_json = '' WHERE name = 'shop-old-2'");
    tx.exec(
        "ALTER TABLE environments DROP COLUMN namespace_name, DROP COLUMN forced, "
        "DROP COLUMN backend_url");
    tx.exec("DELETE FROM schema_migrations WHERE version = 7");
    tx.commit();
  }
  std::unique_ptr<Store> store = MUST(OpenStore(url_));
  const Environment old = MUST(store->GetEnvironment("shop-old-1")).value();
  EXPECT_EQ(old.namespace_name, "eph-shop-old-1");
  EXPECT_TRUE(old.forced);
  EXPECT_EQ(old.backend_url, "http://127.0.0.1:9");
  const Environment empty = MUST(store->GetEnvironment("shop-old-2")).value();
  EXPECT_EQ(empty.namespace_name, "");
  EXPECT_FALSE(empty.forced);
}

TEST_F(PostgresStoreTest, NewerSchemaThanThisBuildIsRefused) {
  MUST(OpenStore(url_)).reset();
  pqxx::connection conn(url_);
  pqxx::work tx(conn);
  tx.exec("INSERT INTO schema_migrations (version, name, applied_at) VALUES (9999, 'x', 0)");
  tx.commit();
  const absl::StatusOr<std::unique_ptr<Store>> store = OpenStore(url_);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(store.status().message()), HasSubstr("9999"));
}

// Runs a test-bed script of the PostgreSQL service (stop-server, start-server).
void RunBedScript(const std::string& script, const std::string& arg = "") {
  const char* dir = std::getenv("EPH_TESTBED_DIR");  // NOLINT(concurrency-mt-unsafe): no setenv
  const std::string cmd =
      absl::StrCat("EPH_TESTBED_DIR='", dir != nullptr ? dir : EPH_TESTBED_DIR, "' '",
                   eph::testing::SourceDir(), "/test/bed/postgres/", script, "' ", arg);
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;  // NOLINT(concurrency-mt-unsafe): one thread
}

// Restarts the shared test-bed server, so CTest runs it alone (RUN_SERIAL, see CMakeLists.txt).
TEST_F(PostgresStoreTest, SerialSurvivesAServerCrashAndRestart) {
  std::unique_ptr<Store> store = MUST(OpenPostgresStore(url_, {.pool_size = 4}));
  const Delivery d{.id = "before-crash", .forge = "github", .event = "pull_request", .body = "{}"};
  ASSERT_TRUE(MUST(store->RecordDelivery(d, "acme/shop#1")));

  RunBedScript("stop-server", "immediate");  // like kill -9 of the postmaster
  const absl::Status down = store->Ping();
  EXPECT_EQ(down.code(), absl::StatusCode::kUnavailable) << down;
  EXPECT_EQ(down.message(), kStoreUnavailableMessage);
  RunBedScript("start-server");

  // The acknowledged delivery survived, and the store carries on without being reopened.
  EPH_EXPECT_OK(store->Ping());
  EXPECT_TRUE(MUST(store->GetDelivery("before-crash")).has_value());
  EXPECT_TRUE(MUST(store->RecordDelivery(
      Delivery{.id = "after-restart", .forge = "github", .event = "ping", .body = "{}"},
      std::nullopt)));
  EXPECT_EQ(MUST(store->CountDeliveries()), 2);
}

TEST_F(PostgresStoreTest, AcceptsBothSchemesAndExtraParameters) {
  const std::string postgres = "postgres" + url_.substr(url_.find("://"));
  EPH_EXPECT_OK(MUST(OpenStore(postgres))->Ping());
  const std::string with_params = url_ + "?sslmode=disable&connect_timeout=3";
  EPH_EXPECT_OK(MUST(OpenStore(with_params))->Ping());
}

}  // namespace
}  // namespace eph::state::testing
