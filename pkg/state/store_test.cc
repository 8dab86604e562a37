// The Store conformance suite: every backend must pass all of it, with the same results.
#include "pkg/state/store_test.h"

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <latch>
#include <map>
#include <mutex>
#include <regex>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "pkg/state/migrations.h"

namespace eph::state::testing {
namespace {

using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

Delivery NewDelivery(const std::string& id, TimePoint at) {
  Delivery d;
  d.id = id;
  d.forge = "github";
  d.event = "pull_request";
  d.action = "labeled";
  d.repo = "acme/shop";
  d.pr_number = 42;
  d.body = R"({"action":"labeled","number":42})";
  d.received_at = at;
  return d;
}

// --- schema and opening ---

TEST_P(StoreTest, OpensAtTheLatestSchemaVersion) {
  EPH_EXPECT_OK(store_->Ping());
  EXPECT_EQ(MUST(store_->SchemaVersion()), LatestSchemaVersion());
}

TEST_P(StoreTest, InstallationIdIsMadeOnceAndKept) {
  const std::string id = MUST(store_->InstallationId());
  EXPECT_TRUE(std::regex_match(id, std::regex("[0-9a-f]{16}"))) << id;
  store_.reset();
  std::unique_ptr<Store> again = OpenAgain();
  EXPECT_EQ(MUST(again->InstallationId()), id);
}

TEST_P(StoreTest, ReopeningAppliesNothingAndKeepsData) {
  MUST(store_->CreateEnvironment(NewEnv("shop-calm-river-1", "acme/shop", 1)));
  EXPECT_TRUE(MUST(store_->RecordDelivery(NewDelivery("d1", clock_.Now()), "acme/shop#1")));
  store_.reset();
  for (int i = 0; i < 2; ++i) {
    std::unique_ptr<Store> again = OpenAgain();
    EXPECT_EQ(MUST(again->SchemaVersion()), LatestSchemaVersion());
    EXPECT_TRUE(MUST(again->GetEnvironment("shop-calm-river-1")).has_value());
    EXPECT_EQ(MUST(again->CountDeliveries()), 1);
    EXPECT_EQ(MUST(again->QueueDepth()), 1);
    EXPECT_EQ(MUST(again->EventsFor("shop-calm-river-1")).size(), 1u);
  }
}

TEST_P(StoreTest, ConcurrentOpensOfOneNewDatabaseMigrateOnce) {
  const std::string url = env_->FreshUrl();
  constexpr int kOpeners = 6;
  std::latch start(kOpeners);
  std::vector<absl::StatusOr<std::unique_ptr<Store>>> results(kOpeners);
  std::vector<std::thread> threads;
  threads.reserve(kOpeners);
  for (int i = 0; i < kOpeners; ++i) {
    threads.emplace_back([&, i] {
      start.arrive_and_wait();
      results[i] = OpenStore(url);
    });
  }
  for (auto& t : threads) t.join();
  for (auto& r : results) {
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(MUST((*r)->SchemaVersion()), LatestSchemaVersion());
  }
  // They all see one database.
  MUST((*results[0])->CreateEnvironment(NewEnv("shop-one-db-1", "acme/shop", 1)));
  EXPECT_TRUE(MUST((*results[kOpeners - 1])->NameTaken("shop-one-db-1")));
}

// --- deliveries ---

TEST_P(StoreTest, DeliveryIsStoredOnceAndEnqueuesItsKeyOnce) {
  const Delivery d = NewDelivery("72d3162e-cc78-11e3-81ab-4c9367dc0958", clock_.Now());
  EXPECT_TRUE(MUST(store_->RecordDelivery(d, "acme/shop#42")));

  Delivery redelivered = d;
  redelivered.body = "{}";
  EXPECT_FALSE(MUST(store_->RecordDelivery(redelivered, "acme/shop#42")));

  EXPECT_EQ(MUST(store_->CountDeliveries()), 1);
  EXPECT_EQ(MUST(store_->QueueDepth()), 1);
  const std::optional<Delivery> got = MUST(store_->GetDelivery(d.id));
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->forge, "github");
  EXPECT_EQ(got->event, "pull_request");
  EXPECT_EQ(got->action, "labeled");
  EXPECT_EQ(got->repo, "acme/shop");
  EXPECT_EQ(got->pr_number, 42);
  EXPECT_EQ(got->body, d.body) << "a redelivery must not overwrite the first body";
  EXPECT_EQ(got->received_at, d.received_at);
  EXPECT_FALSE(MUST(store_->GetDelivery("no-such-delivery")).has_value());

  // The key is due at once.
  const std::optional<Lease> lease = MUST(store_->ClaimWork("w1", clock_.Now(), seconds(30)));
  ASSERT_TRUE(lease.has_value());
  EXPECT_EQ(lease->key, "acme/shop#42");
}

TEST_P(StoreTest, PullRequestDeliveriesAreListedByKindOldestFirstFromATime) {
  const TimePoint start = clock_.Now();
  auto comment = [&](const std::string& id, int64_t pr) {
    Delivery d = NewDelivery(id, clock_.Now());
    d.event = "issue_comment";
    d.action = "created";
    d.pr_number = pr;
    d.kind = kDeliveryComment;
    d.comment_id = 1000 + pr;
    d.author = "alice";
    d.text = "/eph redeploy";
    clock_.Advance(seconds(1));
    return d;
  };
  MUST(store_->RecordDelivery(comment("c1", 42), "acme/shop#42"));
  MUST(store_->RecordDelivery(NewDelivery("label", clock_.Now()), "acme/shop#42"));
  MUST(store_->RecordDelivery(comment("c2", 42), "acme/shop#42"));
  MUST(store_->RecordDelivery(comment("other-pr", 7), "acme/shop#7"));
  MUST(store_->RecordDelivery(comment("c3", 42), "acme/shop#42"));
  auto ids = [](const std::vector<Delivery>& ds) {
    std::vector<std::string> out;
    for (const Delivery& d : ds) out.push_back(d.id);
    return out;
  };
  EXPECT_EQ(ids(MUST(store_->ListPullRequestDeliveries("acme/shop", 42, "comment", start, 10))),
            (std::vector<std::string>{"c1", "c2", "c3"}));
  EXPECT_EQ(ids(MUST(store_->ListPullRequestDeliveries("acme/shop", 42, "comment",
                                                       start + seconds(1), 10))),
            (std::vector<std::string>{"c2", "c3"}));
  EXPECT_EQ(ids(MUST(store_->ListPullRequestDeliveries("acme/shop", 42, "comment", start, 1))),
            (std::vector<std::string>{"c1"}));
  EXPECT_TRUE(MUST(store_->ListPullRequestDeliveries("acme/other", 42, "comment", start, 10))
                  .empty());
  const Delivery c1 = MUST(store_->GetDelivery("c1")).value();
  EXPECT_EQ(c1.kind, "comment");
  EXPECT_EQ(c1.comment_id, 1042);
  EXPECT_EQ(c1.author, "alice");
  EXPECT_EQ(c1.text, "/eph redeploy");
}

TEST_P(StoreTest, DeliveryWithoutWorkKeyEnqueuesNothing) {
  EXPECT_TRUE(MUST(store_->RecordDelivery(NewDelivery("ping-1", clock_.Now()), std::nullopt)));
  EXPECT_EQ(MUST(store_->CountDeliveries()), 1);
  EXPECT_EQ(MUST(store_->QueueDepth()), 0);
  EXPECT_FALSE(MUST(store_->NextDue()).has_value());
}

TEST_P(StoreTest, DeliveriesForOnePullRequestShareOneQueueEntry) {
  for (int i = 0; i < 5; ++i) {
    clock_.Advance(seconds(1));
    EXPECT_TRUE(MUST(
        store_->RecordDelivery(NewDelivery(absl::StrCat("d", i), clock_.Now()), "acme/shop#42")));
  }
  EXPECT_EQ(MUST(store_->CountDeliveries()), 5);
  EXPECT_EQ(MUST(store_->QueueDepth()), 1);
  // It keeps the earliest due time: the first delivery's.
  EXPECT_EQ(MUST(store_->NextDue()), clock_.Now() - seconds(4));
}

TEST_P(StoreTest, ConcurrentDeliveriesAreEachStoredAndEachCallerGetsItsOwnAnswer) {
  // 16 senders at once (ephd's intake runs on many handler threads): each records 20 deliveries
  // of its own and races the others for 10 ids that every sender sends. Concurrent calls share
  // commits (group commit), so duplicates also meet inside one group.
  constexpr int kSenders = 16;
  constexpr int kOwn = 20;
  constexpr int kShared = 10;
  std::latch start(kSenders);
  std::vector<std::vector<absl::StatusOr<bool>>> own(kSenders), shared(kSenders);
  std::vector<std::thread> threads;
  threads.reserve(kSenders);
  for (int t = 0; t < kSenders; ++t) {
    threads.emplace_back([&, t] {
      start.arrive_and_wait();
      for (int i = 0; i < kOwn; ++i) {
        Delivery d = NewDelivery(absl::StrCat("own-", t, "-", i), clock_.Now());
        d.body = absl::StrCat("{\"sender\":", t, ",\"i\":", i, "}");
        own[t].push_back(store_->RecordDelivery(d, absl::StrCat("acme/shop#", t * 100 + i)));
        if (i < kShared) {
          const int k = (i + t) % kShared;  // senders reach the shared ids in different orders
          shared[t].push_back(
              store_->RecordDelivery(NewDelivery(absl::StrCat("shared-", k), clock_.Now()),
                                     absl::StrCat("acme/shop#", 9000 + k)));
        }
      }
    });
  }
  for (auto& th : threads) th.join();

  std::map<int, int> firsts;  // shared id -> callers told "new"
  for (int t = 0; t < kSenders; ++t) {
    for (int i = 0; i < kOwn; ++i) {
      ASSERT_TRUE(own[t][i].ok()) << own[t][i].status();
      EXPECT_TRUE(*own[t][i]) << "own-" << t << "-" << i;
    }
    for (int i = 0; i < kShared; ++i) {
      ASSERT_TRUE(shared[t][i].ok()) << shared[t][i].status();
      if (*shared[t][i]) ++firsts[(i + t) % kShared];
    }
  }
  for (int k = 0; k < kShared; ++k) EXPECT_EQ(firsts[k], 1) << "shared-" << k;
  EXPECT_EQ(MUST(store_->CountDeliveries()), kSenders * kOwn + kShared);
  EXPECT_EQ(MUST(store_->QueueDepth()), kSenders * kOwn + kShared);
  const std::optional<Delivery> got = MUST(store_->GetDelivery("own-7-13"));
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->body, R"({"sender":7,"i":13})");

  const DeliveryCommitStats stats = store_->DeliveryCommits();
  EXPECT_EQ(stats.deliveries, uint64_t{kSenders * (kOwn + kShared)});
  EXPECT_EQ(stats.retried_alone, 0u);
  EXPECT_EQ(stats.waiting, 0u);
  // Fewer transactions than deliveries: calls that arrived together were committed together.
  EXPECT_LT(stats.groups, stats.deliveries);

  MetricsRegistry metrics;
  ExportDeliveryCommitMetrics(*store_, metrics);
  const std::string text = metrics.RenderPrometheus();
  EXPECT_THAT(text, HasSubstr("# TYPE eph_delivery_commit_groups_total counter\n"));
  EXPECT_THAT(text, HasSubstr(fmt::format("eph_delivery_commit_groups_total {}\n", stats.groups)));
  EXPECT_THAT(text, HasSubstr(fmt::format("eph_delivery_commit_deliveries_total {}\n",
                                          stats.deliveries)));
  EXPECT_THAT(text, HasSubstr("eph_delivery_commit_retried_alone_total 0\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE eph_delivery_commit_waiting gauge\neph_delivery_commit_waiting 0\n"));
}

// --- the work queue ---

TEST_P(StoreTest, EnqueueMergesKeysAtTheEarliestTime) {
  const TimePoint t0 = clock_.Now();
  EPH_ASSERT_OK(store_->Enqueue("k", t0 + seconds(10)));
  EPH_ASSERT_OK(store_->Enqueue("k", t0 + seconds(5)));
  EPH_ASSERT_OK(store_->Enqueue("k", t0 + seconds(20)));
  EXPECT_EQ(MUST(store_->QueueDepth()), 1);
  EXPECT_EQ(MUST(store_->NextDue()), t0 + seconds(5));

  EXPECT_FALSE(MUST(store_->ClaimWork("w1", t0 + seconds(4), seconds(30))).has_value());
  const std::optional<Lease> lease = MUST(store_->ClaimWork("w1", t0 + seconds(5), seconds(30)));
  ASSERT_TRUE(lease.has_value());
  EXPECT_EQ(lease->key, "k");
  EXPECT_EQ(lease->owner, "w1");
  EXPECT_EQ(lease->attempts, 0);
  EXPECT_EQ(lease->expires_at, t0 + seconds(35));
}

TEST_P(StoreTest, ClaimTakesTheLongestWaitingKeyFirst) {
  const TimePoint t0 = clock_.Now();
  EPH_ASSERT_OK(store_->Enqueue("a", t0 + seconds(2)));
  EPH_ASSERT_OK(store_->Enqueue("b", t0 + seconds(1)));
  EPH_ASSERT_OK(store_->Enqueue("c", t0 + seconds(3)));
  std::vector<std::string> order;
  while (true) {
    const std::optional<Lease> lease = MUST(store_->ClaimWork("w", t0 + minutes(1), minutes(1)));
    if (!lease.has_value()) break;
    order.push_back(lease->key);
  }
  EXPECT_THAT(order, ElementsAre("b", "a", "c"));
  EXPECT_EQ(MUST(store_->QueueDepth()), 3) << "claimed keys stay queued until completed";
  EXPECT_FALSE(MUST(store_->NextDue()).has_value()) << "leased keys are not due";
}

TEST_P(StoreTest, RenewedLeaseKeepsOtherOwnersOutAndStillCompletes) {
  const TimePoint t0 = clock_.Now();
  EPH_ASSERT_OK(store_->Enqueue("k", t0));
  const Lease first = *MUST(store_->ClaimWork("w1", t0, seconds(30)));
  const Lease renewed = MUST(store_->RenewLease(first, t0 + seconds(20), seconds(30)));
  EXPECT_EQ(renewed.expires_at, t0 + seconds(50));
  EXPECT_FALSE(MUST(store_->ClaimWork("w2", t0 + seconds(40), seconds(30))).has_value());
  // The old lease value is stale after renewal.
  EPH_EXPECT_CODE(store_->CompleteWork(first, t0 + seconds(41)), kAborted);
  EPH_EXPECT_OK(store_->CompleteWork(renewed, t0 + seconds(42)));
  EXPECT_EQ(MUST(store_->QueueDepth()), 0);
}

TEST_P(StoreTest, ExpiredAndReclaimedLeaseCannotBeRenewed) {
  const TimePoint t0 = clock_.Now();
  EPH_ASSERT_OK(store_->Enqueue("k", t0));
  const Lease first = *MUST(store_->ClaimWork("w1", t0, seconds(30)));
  ASSERT_TRUE(MUST(store_->ClaimWork("w2", t0 + seconds(31), seconds(30))).has_value());
  EPH_EXPECT_CODE(store_->RenewLease(first, t0 + seconds(32), seconds(30)), kAborted);
}

TEST_P(StoreTest, EnqueueManyMergesLikeEnqueue) {
  const TimePoint t0 = clock_.Now();
  EPH_ASSERT_OK(store_->Enqueue("a", t0 + seconds(60)));
  EPH_ASSERT_OK(store_->EnqueueMany({"a", "b", "c"}, t0));
  EXPECT_EQ(MUST(store_->QueueDepth()), 3);
  EXPECT_EQ(*MUST(store_->NextDue()), t0) << "the earlier time wins for a merged key";
  EPH_EXPECT_OK(store_->EnqueueMany({}, t0));
  EPH_EXPECT_CODE(store_->EnqueueMany({"x", ""}, t0), kInvalidArgument);
  EXPECT_EQ(MUST(store_->QueueDepth()), 3) << "a bad batch changes nothing";
}

TEST_P(StoreTest, LeasedKeyCanBeClaimedByAnotherOwnerOnlyAfterItsLeaseExpires) {
  const TimePoint t0 = clock_.Now();
  EPH_ASSERT_OK(store_->Enqueue("k", t0));
  const Lease first = *MUST(store_->ClaimWork("w1", t0, seconds(30)));
  EXPECT_FALSE(MUST(store_->ClaimWork("w2", t0 + seconds(29), seconds(30))).has_value());

  const std::optional<Lease> second = MUST(store_->ClaimWork("w2", t0 + seconds(30), seconds(30)));
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(second->key, "k");
  EXPECT_EQ(second->owner, "w2");

  // The first owner lost the key: its outcome is refused, whatever it is.
  EPH_EXPECT_CODE(store_->CompleteWork(first, t0 + seconds(31)), kAborted);
  EPH_EXPECT_CODE(store_->RetryWork(first, t0 + seconds(40), "late"), kAborted);
  EPH_EXPECT_OK(store_->CompleteWork(*second, t0 + seconds(32)));
  EXPECT_EQ(MUST(store_->QueueDepth()), 0);
  EPH_EXPECT_CODE(store_->CompleteWork(*second, t0 + seconds(33)), kAborted);
}

TEST_P(StoreTest, CompletedKeyLeavesTheQueue) {
  EPH_ASSERT_OK(store_->Enqueue("k", clock_.Now()));
  const Lease lease = *MUST(store_->ClaimWork("w1", clock_.Now(), seconds(30)));
  EPH_ASSERT_OK(store_->CompleteWork(lease, clock_.Now()));
  EXPECT_EQ(MUST(store_->QueueDepth()), 0);
  EXPECT_FALSE(MUST(store_->ClaimWork("w1", clock_.Now() + hours(1), seconds(30))).has_value());
}

TEST_P(StoreTest, KeyEnqueuedWhileLeasedRunsAgainAfterCompletion) {
  const TimePoint t0 = clock_.Now();
  EPH_ASSERT_OK(store_->Enqueue("k", t0));
  const Lease lease = *MUST(store_->ClaimWork("w1", t0, seconds(30)));
  // A webhook arrives while the reconcile runs.
  EPH_ASSERT_OK(store_->Enqueue("k", t0 + seconds(1)));
  EXPECT_EQ(MUST(store_->QueueDepth()), 1);
  EXPECT_FALSE(MUST(store_->ClaimWork("w2", t0 + seconds(2), seconds(30))).has_value())
      << "a key never runs on two workers at once";

  EPH_ASSERT_OK(store_->CompleteWork(lease, t0 + seconds(3)));
  EXPECT_EQ(MUST(store_->QueueDepth()), 1);
  const std::optional<Lease> again = MUST(store_->ClaimWork("w2", t0 + seconds(3), seconds(30)));
  ASSERT_TRUE(again.has_value()) << "due at once after the attempt finished";
  EXPECT_EQ(again->attempts, 0);
  EPH_ASSERT_OK(store_->CompleteWork(*again, t0 + seconds(4)));
  EXPECT_EQ(MUST(store_->QueueDepth()), 0);
}

TEST_P(StoreTest, KeyEnqueuedForLaterWhileLeasedKeepsItsLaterTime) {
  const TimePoint t0 = clock_.Now();
  EPH_ASSERT_OK(store_->Enqueue("k", t0));
  const Lease lease = *MUST(store_->ClaimWork("w1", t0, seconds(30)));
  // The reconcile schedules its TTL check.
  EPH_ASSERT_OK(store_->Enqueue("k", t0 + hours(4)));
  EPH_ASSERT_OK(store_->CompleteWork(lease, t0 + seconds(1)));
  EXPECT_EQ(MUST(store_->NextDue()), t0 + hours(4));
  EXPECT_FALSE(MUST(store_->ClaimWork("w1", t0 + hours(3), seconds(30))).has_value());
  EXPECT_TRUE(MUST(store_->ClaimWork("w1", t0 + hours(4), seconds(30))).has_value());
}

TEST_P(StoreTest, ClaimAfterAnExpiredLeaseSatisfiesEarlierReruns) {
  const TimePoint t0 = clock_.Now();
  EPH_ASSERT_OK(store_->Enqueue("k", t0));
  ASSERT_TRUE(MUST(store_->ClaimWork("w1", t0, seconds(10))).has_value());
  EPH_ASSERT_OK(store_->Enqueue("k", t0 + seconds(1)));  // dirty while w1 holds it
  // w1 dies; w2 takes over after the lease and runs with the latest state.
  const Lease taken = *MUST(store_->ClaimWork("w2", t0 + seconds(10), seconds(10)));
  EPH_ASSERT_OK(store_->CompleteWork(taken, t0 + seconds(11)));
  EXPECT_EQ(MUST(store_->QueueDepth()), 0);
}

TEST_P(StoreTest, RetryWorkBacksOffAndCountsAttempts) {
  const TimePoint t0 = clock_.Now();
  EPH_ASSERT_OK(store_->Enqueue("k", t0));
  Lease lease = *MUST(store_->ClaimWork("w1", t0, seconds(30)));
  EXPECT_EQ(lease.attempts, 0);

  EPH_ASSERT_OK(store_->RetryWork(lease, t0 + seconds(5), "cluster unreachable"));
  EXPECT_EQ(MUST(store_->NextDue()), t0 + seconds(5));
  EXPECT_FALSE(MUST(store_->ClaimWork("w1", t0 + seconds(4), seconds(30))).has_value());
  lease = *MUST(store_->ClaimWork("w1", t0 + seconds(5), seconds(30)));
  EXPECT_EQ(lease.attempts, 1);

  // A webhook meanwhile does not cut the backoff short.
  EPH_ASSERT_OK(store_->Enqueue("k", t0 + seconds(6)));
  EPH_ASSERT_OK(store_->RetryWork(lease, t0 + seconds(15), "cluster unreachable"));
  EXPECT_FALSE(MUST(store_->ClaimWork("w1", t0 + seconds(14), seconds(30))).has_value());
  lease = *MUST(store_->ClaimWork("w1", t0 + seconds(15), seconds(30)));
  EXPECT_EQ(lease.attempts, 2);

  // Success forgets the failures.
  EPH_ASSERT_OK(store_->CompleteWork(lease, t0 + seconds(16)));
  EPH_ASSERT_OK(store_->Enqueue("k", t0 + seconds(17)));
  EXPECT_EQ(MUST(store_->ClaimWork("w1", t0 + seconds(17), seconds(30)))->attempts, 0);
}

TEST_P(StoreTest, CompletionAfterEnqueueWhileLeasedResetsAttempts) {
  const TimePoint t0 = clock_.Now();
  EPH_ASSERT_OK(store_->Enqueue("k", t0));
  Lease lease = *MUST(store_->ClaimWork("w1", t0, seconds(30)));
  EPH_ASSERT_OK(store_->RetryWork(lease, t0 + seconds(1), "boom"));
  lease = *MUST(store_->ClaimWork("w1", t0 + seconds(1), seconds(30)));
  ASSERT_EQ(lease.attempts, 1);
  EPH_ASSERT_OK(store_->Enqueue("k", t0 + seconds(2)));
  EPH_ASSERT_OK(store_->CompleteWork(lease, t0 + seconds(3)));
  EXPECT_EQ(MUST(store_->ClaimWork("w1", t0 + seconds(3), seconds(30)))->attempts, 0);
}

// N workers over two Stores (two ephd processes), keys enqueued again while they run: no key is
// ever held by two workers at once, every key runs, and the queue drains.
TEST_P(StoreTest, ClaimsAreExclusiveAcrossThreadsAndStores) {
  std::unique_ptr<Store> other = OpenAgain();
  Store* stores[] = {store_.get(), other.get()};
  constexpr int kKeys = 30;
  constexpr int kWorkers = 8;
  constexpr int kReenqueues = 90;
  const TimePoint now = clock_.Now();
  for (int k = 0; k < kKeys; ++k) EPH_ASSERT_OK(store_->Enqueue(absl::StrCat("key-", k), now));

  std::mutex mu;
  std::set<std::string> held;
  std::map<std::string, int> runs;
  std::vector<std::string> problems;
  std::atomic<bool> producer_done{false};
  auto problem = [&](std::string p) {
    std::lock_guard<std::mutex> lock(mu);
    problems.push_back(std::move(p));
  };

  std::vector<std::thread> threads;
  threads.emplace_back([&] {
    for (int i = 0; i < kReenqueues; ++i) {
      absl::Status s = stores[i % 2]->Enqueue(absl::StrCat("key-", (i * 7) % kKeys), now);
      if (!s.ok()) problem(absl::StrCat("enqueue: ", s.ToString()));
      std::this_thread::yield();
    }
    producer_done = true;
  });
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  for (int w = 0; w < kWorkers; ++w) {
    threads.emplace_back([&, w] {
      Store* store = stores[w % 2];
      const std::string owner = absl::StrCat("worker-", w);
      while (std::chrono::steady_clock::now() < deadline) {
        absl::StatusOr<std::optional<Lease>> lease = store->ClaimWork(owner, now, hours(1));
        if (!lease.ok()) {
          problem(absl::StrCat("claim: ", lease.status().ToString()));
          return;
        }
        if (!lease->has_value()) {
          if (!producer_done) continue;
          absl::StatusOr<int64_t> depth = store->QueueDepth();
          if (!depth.ok()) {
            problem(absl::StrCat("depth: ", depth.status().ToString()));
            return;
          }
          if (*depth == 0) return;
          continue;
        }
        const std::string key = (*lease)->key;
        {
          std::lock_guard<std::mutex> lock(mu);
          if (!held.insert(key).second) problems.push_back(absl::StrCat(key, " held twice"));
          ++runs[key];
        }
        std::this_thread::yield();
        {
          std::lock_guard<std::mutex> lock(mu);
          held.erase(key);
        }
        absl::Status s = store->CompleteWork(**lease, now);
        if (!s.ok()) problem(absl::StrCat("complete: ", s.ToString()));
      }
      problem("deadline passed before the queue drained");
    });
  }
  for (auto& t : threads) t.join();

  EXPECT_THAT(problems, ::testing::IsEmpty());
  EXPECT_EQ(runs.size(), static_cast<size_t>(kKeys)) << "every key ran";
  EXPECT_EQ(MUST(store_->QueueDepth()), 0);
}

// --- environments ---

TEST_P(StoreTest, EnvironmentFieldsOfTheControllerRoundTrip) {
  Environment e = NewEnv("shop-typed-fields-7", "acme/shop", 7);
  e.namespace_name = "eph-shop-typed-fields-7";
  e.forced = true;
  const Environment created = MUST(store_->CreateEnvironment(e));
  EXPECT_EQ(created.namespace_name, "eph-shop-typed-fields-7");
  EXPECT_TRUE(created.forced);
  Environment changed = created;
  changed.backend_url = "http://127.0.0.1:32001";
  changed.forced = false;
  changed.namespace_name = "other";
  MUST(store_->UpdateEnvironment(changed));
  const std::optional<Environment> got = MUST(store_->GetEnvironment(e.name));
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->backend_url, "http://127.0.0.1:32001");
  EXPECT_FALSE(got->forced);
  EXPECT_EQ(got->namespace_name, "other");
}

TEST_P(StoreTest, EnvironmentRoundTrips) {
  Environment e = NewEnv("shop-gentle-stream-42", "acme/shop", 42);
  e.reason = "opened";
  e.url = "https://shop-gentle-stream-42.preview.example.com";
  e.head_sha = "4c1d9a1";
  e.spec_json = R"({"images":[{"name":"web","newTag":"4c1d9a1"}]})";
  e.expires_at = clock_.Now() + hours(72);
  e.last_activity_at = clock_.Now();
  const Environment created = MUST(store_->CreateEnvironment(e));
  EXPECT_EQ(created.version, 1);

  const std::optional<Environment> got = MUST(store_->GetEnvironment(e.name));
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->name, e.name);
  EXPECT_EQ(got->project, "acme/shop");
  EXPECT_EQ(got->pr_number, 42);
  EXPECT_EQ(got->state, EnvState::kPending);
  EXPECT_EQ(got->reason, "opened");
  EXPECT_EQ(got->url, e.url);
  EXPECT_EQ(got->provider, "kubernetes");
  EXPECT_EQ(got->head_sha, "4c1d9a1");
  EXPECT_EQ(got->spec_json, e.spec_json);
  EXPECT_EQ(got->created_at, e.created_at);
  EXPECT_EQ(got->updated_at, e.updated_at);
  EXPECT_EQ(got->expires_at, e.expires_at);
  EXPECT_EQ(got->last_activity_at, e.last_activity_at);
  EXPECT_EQ(got->version, 1);
  EXPECT_EQ(got->namespace_name, "");
  EXPECT_FALSE(got->forced);
  EXPECT_EQ(got->backend_url, "");

  const std::optional<Environment> live = MUST(store_->FindLiveEnvironment("acme/shop", 42));
  ASSERT_TRUE(live.has_value());
  EXPECT_EQ(live->name, e.name);
  EXPECT_FALSE(MUST(store_->FindLiveEnvironment("acme/shop", 43)).has_value());
  EXPECT_FALSE(MUST(store_->GetEnvironment("nope")).has_value());

  // No TTL and no activity read back as nullopt.
  MUST(store_->CreateEnvironment(NewEnv("shop-no-ttl-43", "acme/shop", 43)));
  const Environment plain = *MUST(store_->GetEnvironment("shop-no-ttl-43"));
  EXPECT_FALSE(plain.expires_at.has_value());
  EXPECT_FALSE(plain.last_activity_at.has_value());
}

TEST_P(StoreTest, ListEnvironmentsFiltersByProjectAndLiveness) {
  MUST(store_->CreateEnvironment(NewEnv("shop-a-1", "acme/shop", 1)));
  clock_.Advance(seconds(1));
  MUST(store_->CreateEnvironment(NewEnv("shop-b-2", "acme/shop", 2)));
  clock_.Advance(seconds(1));
  MUST(store_->CreateEnvironment(NewEnv("blog-c-1", "acme/blog", 1)));
  Environment gone = *MUST(store_->GetEnvironment("shop-a-1"));
  gone.state = EnvState::kDestroyed;
  gone.reason = "pull request closed";
  MUST(store_->UpdateEnvironment(gone));

  auto names = [](const std::vector<Environment>& envs) {
    std::vector<std::string> out;
    out.reserve(envs.size());
    for (const auto& e : envs) out.push_back(e.name);
    return out;
  };
  EXPECT_THAT(names(MUST(store_->ListEnvironments({}))), ElementsAre("shop-b-2", "blog-c-1"));
  EXPECT_THAT(names(MUST(store_->ListEnvironments({.include_destroyed = true}))),
              ElementsAre("shop-a-1", "shop-b-2", "blog-c-1"));
  EXPECT_THAT(names(MUST(store_->ListEnvironments({.project = "acme/shop"}))),
              ElementsAre("shop-b-2"));
  EXPECT_THAT(
      names(MUST(store_->ListEnvironments({.include_destroyed = true, .project = "acme/shop"}))),
      ElementsAre("shop-a-1", "shop-b-2"));
  EXPECT_THAT(names(MUST(store_->ListEnvironments({.project = "acme/none"}))),
              ::testing::IsEmpty());
}

TEST_P(StoreTest, EnvironmentNamesAreNeverReused) {
  Environment e = MUST(store_->CreateEnvironment(NewEnv("shop-calm-river-7", "acme/shop", 7)));
  EPH_EXPECT_CODE(store_->CreateEnvironment(NewEnv("shop-calm-river-7", "acme/other", 1)),
                  kAlreadyExists);
  e.state = EnvState::kDestroyed;
  MUST(store_->UpdateEnvironment(e));
  const absl::StatusOr<Environment> again =
      store_->CreateEnvironment(NewEnv("shop-calm-river-7", "acme/shop", 7));
  EXPECT_EQ(again.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(std::string(again.status().message()), HasSubstr("shop-calm-river-7"));
  EXPECT_TRUE(MUST(store_->NameTaken("shop-calm-river-7")));
  EXPECT_FALSE(MUST(store_->NameTaken("shop-calm-river-8")));
}

TEST_P(StoreTest, PullRequestHasAtMostOneLiveEnvironment) {
  Environment first = MUST(store_->CreateEnvironment(NewEnv("shop-one-7", "acme/shop", 7)));
  const absl::StatusOr<Environment> dup =
      store_->CreateEnvironment(NewEnv("shop-two-7", "acme/shop", 7));
  EXPECT_EQ(dup.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(std::string(dup.status().message()), HasSubstr("shop-one-7"));
  EXPECT_FALSE(MUST(store_->NameTaken("shop-two-7")));

  // Same number in another project, and hand-made environments (PR 0), are independent.
  MUST(store_->CreateEnvironment(NewEnv("blog-one-7", "acme/blog", 7)));
  MUST(store_->CreateEnvironment(NewEnv("shop-manual-a", "acme/shop", 0)));
  MUST(store_->CreateEnvironment(NewEnv("shop-manual-b", "acme/shop", 0)));

  // Once the first is destroyed, the pull request may get a new one...
  first.state = EnvState::kDestroyed;
  first = MUST(store_->UpdateEnvironment(first));
  MUST(store_->CreateEnvironment(NewEnv("shop-two-7", "acme/shop", 7)));
  EXPECT_EQ(MUST(store_->FindLiveEnvironment("acme/shop", 7))->name, "shop-two-7");
  // ...and the destroyed one cannot come back to life beside it.
  first.state = EnvState::kPending;
  EPH_EXPECT_CODE(store_->UpdateEnvironment(first), kAlreadyExists);
}

TEST_P(StoreTest, UpdateIsACompareAndSwapOnVersion) {
  const Environment created = MUST(store_->CreateEnvironment(NewEnv("shop-cas-1", "acme/shop", 1)));
  Environment next = created;
  clock_.Advance(seconds(5));
  next.state = EnvState::kProvisioning;
  next.head_sha = "abc123";
  next.updated_at = clock_.Now();
  const Environment stored = MUST(store_->UpdateEnvironment(next));
  EXPECT_EQ(stored.version, 2);
  EXPECT_EQ(stored.state, EnvState::kProvisioning);
  EXPECT_EQ(stored.head_sha, "abc123");
  EXPECT_EQ(stored.updated_at, clock_.Now());
  EXPECT_EQ(stored.created_at, created.created_at);

  Environment stale = created;  // still version 1
  stale.state = EnvState::kFailed;
  stale.reason = "stale writer";
  EPH_EXPECT_CODE(store_->UpdateEnvironment(stale), kAborted);
  const Environment now = *MUST(store_->GetEnvironment("shop-cas-1"));
  EXPECT_EQ(now.version, 2);
  EXPECT_EQ(now.state, EnvState::kProvisioning);

  Environment missing = NewEnv("shop-missing-9", "acme/shop", 9);
  missing.version = 1;
  EPH_EXPECT_CODE(store_->UpdateEnvironment(missing), kNotFound);
}

TEST_P(StoreTest, ConcurrentUpdatesFromOneVersionHaveOneWinner) {
  const Environment created =
      MUST(store_->CreateEnvironment(NewEnv("shop-race-1", "acme/shop", 1)));
  std::unique_ptr<Store> other = OpenAgain();
  constexpr int kWriters = 8;
  std::latch start(kWriters);
  std::vector<absl::Status> results(kWriters);
  std::vector<std::thread> threads;
  threads.reserve(kWriters);
  for (int i = 0; i < kWriters; ++i) {
    threads.emplace_back([&, i] {
      Environment e = created;
      e.state = EnvState::kProvisioning;
      e.reason = absl::StrCat("writer ", i);
      start.arrive_and_wait();
      results[i] = (i % 2 == 0 ? store_.get() : other.get())->UpdateEnvironment(e).status();
    });
  }
  for (auto& t : threads) t.join();
  int won = 0;
  for (const absl::Status& s : results) {
    if (s.ok()) {
      ++won;
    } else {
      EXPECT_EQ(s.code(), absl::StatusCode::kAborted) << s;
    }
  }
  EXPECT_EQ(won, 1);
  EXPECT_EQ(MUST(store_->GetEnvironment("shop-race-1"))->version, 2);
  EXPECT_EQ(MUST(store_->EventsFor("shop-race-1")).size(), 2u);
}

TEST_P(StoreTest, StateChangesAreRecordedAsEventsWithIncreasingIds) {
  Environment e = MUST(store_->CreateEnvironment(NewEnv("shop-events-3", "acme/shop", 3)));
  auto step = [&](EnvState state, std::string reason) {
    clock_.Advance(seconds(1));
    e.state = state;
    e.reason = std::move(reason);
    e.updated_at = clock_.Now();
    e = MUST(store_->UpdateEnvironment(e));
  };
  step(EnvState::kProvisioning, "");
  e.url = "https://shop-events-3.example.com";
  step(EnvState::kProvisioning, "");  // not a state change: no event
  step(EnvState::kReady, "");
  step(EnvState::kFailed, "image pull failed: web:4c1d9a1");

  const std::vector<EnvEvent> events = MUST(store_->EventsFor("shop-events-3"));
  ASSERT_EQ(events.size(), 4u);
  std::vector<std::pair<std::string, std::string>> transitions;
  for (size_t i = 0; i < events.size(); ++i) {
    transitions.emplace_back(events[i].from_state, events[i].to_state);
    EXPECT_EQ(events[i].environment, "shop-events-3");
    if (i > 0) {
      EXPECT_GT(events[i].id, events[i - 1].id);
      EXPECT_GT(events[i].at, events[i - 1].at);
    }
  }
  using P = std::pair<std::string, std::string>;
  EXPECT_THAT(transitions, ElementsAre(P{"", "pending"}, P{"pending", "provisioning"},
                                       P{"provisioning", "ready"}, P{"ready", "failed"}));
  EXPECT_EQ(events[3].reason, "image pull failed: web:4c1d9a1");
  EXPECT_EQ(events[0].at, e.created_at);

  // Paging as the SSE stream does: after an id, at most `limit`.
  EXPECT_EQ(MUST(store_->ListEvents(0, 100)).size(), 4u);
  const std::vector<EnvEvent> page = MUST(store_->ListEvents(events[1].id, 2));
  ASSERT_EQ(page.size(), 2u);
  EXPECT_EQ(page[0].id, events[2].id);
  EXPECT_EQ(page[1].id, events[3].id);
  EXPECT_TRUE(MUST(store_->ListEvents(events[3].id, 10)).empty());
  EXPECT_TRUE(MUST(store_->ListEvents(0, 0)).empty());
  EPH_EXPECT_CODE(store_->ListEvents(0, -1), kInvalidArgument);
  EXPECT_TRUE(MUST(store_->EventsFor("no-such-env")).empty());

  // A new expiry (an extension, or `keep`) is an event in the same state, saying what changed.
  const TimePoint expiry = clock_.Now() + std::chrono::hours(48);
  e.expires_at = expiry;
  step(EnvState::kFailed, e.reason);
  e.expires_at.reset();
  step(EnvState::kFailed, e.reason);
  const std::vector<EnvEvent> after = MUST(store_->EventsFor("shop-events-3"));
  ASSERT_EQ(after.size(), 6u);
  EXPECT_EQ(after[4].from_state, "failed");
  EXPECT_EQ(after[4].to_state, "failed");
  EXPECT_EQ(after[4].reason, "expires " + FormatRfc3339(expiry));
  EXPECT_EQ(after[5].reason, "kept: no TTL");
}

// An SSE follower pages through events while writers commit concurrently: it must see every
// event, in id order, without gaps that fill in later.
TEST_P(StoreTest, EventFollowerMissesNoEventUnderConcurrentWriters) {
  std::unique_ptr<Store> other = OpenAgain();
  constexpr int kWriters = 4;
  constexpr int kEnvsPerWriter = 8;
  std::atomic<int> writers_left{kWriters};
  std::vector<std::string> problems;
  std::mutex mu;
  std::vector<std::thread> threads;
  threads.reserve(kWriters);
  for (int w = 0; w < kWriters; ++w) {
    threads.emplace_back([&, w] {
      Store* store = w % 2 == 0 ? store_.get() : other.get();
      for (int i = 0; i < kEnvsPerWriter; ++i) {
        absl::StatusOr<Environment> e =
            store->CreateEnvironment(NewEnv(absl::StrCat("env-", w, "-", i), "acme/shop", 0));
        if (e.ok()) {
          e->state = EnvState::kProvisioning;
          e = store->UpdateEnvironment(*e);
        }
        if (!e.ok()) {
          std::lock_guard<std::mutex> lock(mu);
          problems.push_back(e.status().ToString());
        }
      }
      --writers_left;
    });
  }
  std::vector<int64_t> seen;
  int64_t after = 0;
  while (true) {
    const bool last_round = writers_left == 0;
    const std::vector<EnvEvent> page = MUST(store_->ListEvents(after, 5));
    for (const EnvEvent& ev : page) {
      seen.push_back(ev.id);
      after = ev.id;
    }
    if (page.empty() && last_round) break;
  }
  for (auto& t : threads) t.join();
  EXPECT_THAT(problems, ::testing::IsEmpty());
  const std::vector<EnvEvent> all = MUST(store_->ListEvents(0, 1000));
  ASSERT_EQ(all.size(), static_cast<size_t>(kWriters * kEnvsPerWriter * 2));
  std::vector<int64_t> all_ids;
  all_ids.reserve(all.size());
  for (const EnvEvent& ev : all) all_ids.push_back(ev.id);
  EXPECT_EQ(seen, all_ids);
}

TEST_P(StoreTest, TouchOnlyMovesActivityForwardAndKeepsTheVersion) {
  const TimePoint t0 = clock_.Now();
  MUST(store_->CreateEnvironment(NewEnv("shop-touch-5", "acme/shop", 5)));
  EPH_ASSERT_OK(store_->TouchEnvironment("shop-touch-5", t0 + minutes(10)));
  EPH_ASSERT_OK(store_->TouchEnvironment("shop-touch-5", t0 + minutes(5)));
  Environment e = *MUST(store_->GetEnvironment("shop-touch-5"));
  EXPECT_EQ(e.last_activity_at, t0 + minutes(10));
  EXPECT_EQ(e.version, 1) << "activity must not conflict with reconciles";

  // A reconcile that read an older activity time does not turn it back either.
  e.last_activity_at = t0 + minutes(1);
  e.state = EnvState::kReady;
  EXPECT_EQ(MUST(store_->UpdateEnvironment(e)).last_activity_at, t0 + minutes(10));
  EPH_ASSERT_OK(store_->TouchEnvironment("shop-touch-5", t0 + minutes(11)));
  EXPECT_EQ(MUST(store_->GetEnvironment("shop-touch-5"))->last_activity_at, t0 + minutes(11));

  EPH_EXPECT_CODE(store_->TouchEnvironment("no-such-env", t0), kNotFound);
}

// --- projects ---

TEST_P(StoreTest, UpsertProjectInsertsThenUpdatesKeepingCreationTime) {
  const TimePoint t0 = clock_.Now();
  Project p;
  p.repo = "acme/shop";
  p.installation_id = 1001;
  p.created_at = t0;
  p.updated_at = t0;
  EPH_ASSERT_OK(store_->UpsertProject(p));

  EXPECT_TRUE(MUST(store_->GetProject("acme/shop"))->trigger_labels.empty());
  Project changed = p;
  changed.installation_id = 2002;
  changed.enabled = false;
  changed.trigger_labels = {"preview", "deploy me"};
  changed.created_at = t0 + hours(1);
  changed.updated_at = t0 + hours(1);
  EPH_ASSERT_OK(store_->UpsertProject(changed));

  Project other;
  other.repo = "acme/blog";
  other.forge = "gitlab";
  other.created_at = t0;
  other.updated_at = t0;
  EPH_ASSERT_OK(store_->UpsertProject(other));

  const Project got = *MUST(store_->GetProject("acme/shop"));
  EXPECT_EQ(got.forge, "github");
  EXPECT_EQ(got.installation_id, 2002);
  EXPECT_FALSE(got.enabled);
  EXPECT_EQ(got.created_at, t0);
  EXPECT_EQ(got.updated_at, t0 + hours(1));
  EXPECT_EQ(got.trigger_labels, (std::vector<std::string>{"preview", "deploy me"}));
  EXPECT_FALSE(MUST(store_->GetProject("acme/none")).has_value());

  const std::vector<Project> all = MUST(store_->ListProjects());
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].repo, "acme/blog");
  EXPECT_EQ(all[0].forge, "gitlab");
  EXPECT_TRUE(all[0].enabled);
  EXPECT_EQ(all[1].repo, "acme/shop");
}

// --- API tokens ---

TEST_P(StoreTest, TokensAreFoundByHashUntilRevoked) {
  const TimePoint t0 = clock_.Now();
  ApiToken t;
  t.name = "ci";
  t.scope = TokenScope::kWrite;
  t.hash = std::string(64, 'a');
  t.created_at = t0;
  const ApiToken created = MUST(store_->CreateToken(t));
  EXPECT_GT(created.id, 0);

  const std::optional<ApiToken> found = MUST(store_->FindTokenByHash(t.hash));
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->id, created.id);
  EXPECT_EQ(found->name, "ci");
  EXPECT_EQ(found->scope, TokenScope::kWrite);
  EXPECT_EQ(found->created_at, t0);
  EXPECT_FALSE(found->revoked_at.has_value());
  EXPECT_FALSE(MUST(store_->FindTokenByHash(std::string(64, 'b'))).has_value());

  ApiToken same_name = t;
  same_name.hash = std::string(64, 'c');
  EPH_EXPECT_CODE(store_->CreateToken(same_name), kAlreadyExists);
  ApiToken same_hash = t;
  same_hash.name = "other";
  EPH_EXPECT_CODE(store_->CreateToken(same_hash), kAlreadyExists);

  EPH_ASSERT_OK(store_->RevokeToken("ci", t0 + hours(1)));
  EXPECT_FALSE(MUST(store_->FindTokenByHash(t.hash)).has_value());
  EPH_EXPECT_CODE(store_->RevokeToken("ci", t0 + hours(2)), kNotFound);
  EPH_EXPECT_CODE(store_->RevokeToken("never-existed", t0), kNotFound);

  // The name is free again; the revoked token stays listed for audit.
  ApiToken replacement = same_name;
  replacement.scope = TokenScope::kRead;
  const ApiToken second = MUST(store_->CreateToken(replacement));
  EXPECT_GT(second.id, created.id);
  const std::vector<ApiToken> all = MUST(store_->ListTokens());
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].revoked_at, t0 + hours(1));
  EXPECT_EQ(all[1].scope, TokenScope::kRead);
  EXPECT_FALSE(all[1].revoked_at.has_value());
}

// --- input errors ---

TEST_P(StoreTest, InvalidInputIsRejectedWithoutChangingAnything) {
  const TimePoint now = clock_.Now();
  EPH_EXPECT_CODE(store_->RecordDelivery(NewDelivery("", now), "k"), kInvalidArgument);
  EPH_EXPECT_CODE(store_->RecordDelivery(NewDelivery("d", now), ""), kInvalidArgument);
  EPH_EXPECT_CODE(store_->Enqueue("", now), kInvalidArgument);
  EPH_EXPECT_CODE(store_->ClaimWork("", now, seconds(1)), kInvalidArgument);
  EPH_EXPECT_CODE(store_->ClaimWork("w", now, seconds(0)), kInvalidArgument);
  EPH_EXPECT_CODE(store_->CreateEnvironment(NewEnv("", "acme/shop", 1)), kInvalidArgument);
  EPH_EXPECT_CODE(store_->CreateEnvironment(NewEnv("x", "acme/shop", -1)), kInvalidArgument);
  EPH_EXPECT_CODE(store_->UpsertProject(Project{}), kInvalidArgument);
  EPH_EXPECT_CODE(store_->CreateToken(ApiToken{.name = "n"}), kInvalidArgument);
  EXPECT_EQ(MUST(store_->CountDeliveries()), 0);
  EXPECT_EQ(MUST(store_->QueueDepth()), 0);
  EXPECT_TRUE(MUST(store_->ListEnvironments({.include_destroyed = true})).empty());
}

}  // namespace
}  // namespace eph::state::testing
