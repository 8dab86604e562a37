// DeliveryCommitQueue against a transactional fake: which deliveries share a commit, what each
// caller is told, and what a failing group does. The real transaction (both backends) is
// covered by store_test.cc and store_postgres_test.cc.
#include "pkg/state/delivery_commit_queue.h"

#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace eph::state {
namespace {

using std::chrono::steady_clock;

// A database of delivery ids with all-or-nothing transactions. The first commit can be held
// until the test releases it, so that callers queue behind it.
class FakeDeliveries {
 public:
  absl::Status Commit(std::span<DeliveryCommitQueue::Entry* const> group) {
    std::shared_future<void> gate;
    {
      std::lock_guard<std::mutex> lock(mu_);
      group_sizes_.push_back(group.size());
      if (group_sizes_.size() == 1) gate = gate_;
    }
    if (gate.valid()) gate.wait();
    std::lock_guard<std::mutex> lock(mu_);
    std::set<std::string> staged = stored_;
    for (DeliveryCommitQueue::Entry* e : group) {
      if (e->delivery.id == throwing_id_) throw std::runtime_error("client library threw");
      if (e->delivery.id == bad_id_) return absl::InvalidArgumentError("bad delivery");
      if (group.size() > 1 && unavailable_groups_) return absl::UnavailableError("down");
      e->inserted = staged.insert(e->delivery.id).second;
    }
    stored_ = std::move(staged);
    return absl::OkStatus();
  }

  void HoldFirstCommit() { gate_ = release_.get_future().share(); }
  void ReleaseFirstCommit() { release_.set_value(); }
  void FailDelivery(std::string id) { bad_id_ = std::move(id); }
  void ThrowOnDelivery(std::string id) { throwing_id_ = std::move(id); }
  void FailGroupsUnavailable() { unavailable_groups_ = true; }

  std::set<std::string> stored() {
    std::lock_guard<std::mutex> lock(mu_);
    return stored_;
  }
  std::vector<size_t> group_sizes() {
    std::lock_guard<std::mutex> lock(mu_);
    return group_sizes_;
  }

 private:
  std::mutex mu_;
  std::set<std::string> stored_;
  std::vector<size_t> group_sizes_;
  std::promise<void> release_;
  std::shared_future<void> gate_;
  std::string bad_id_;
  std::string throwing_id_;
  bool unavailable_groups_ = false;
};

class DeliveryCommitQueueTest : public ::testing::Test {
 protected:
  explicit DeliveryCommitQueueTest(size_t max_group = 32, int max_in_flight = 1)
      : queue_([this](std::span<DeliveryCommitQueue::Entry* const> g) { return db_.Commit(g); },
               max_group, max_in_flight) {}

  ~DeliveryCommitQueueTest() override {
    for (std::thread& t : threads_) {
      if (t.joinable()) t.join();
    }
  }

  // Starts a caller recording `id` in a thread of its own; its answer lands in results_[id]
  // (the answer of the second caller started with that id under "id#2", and so on).
  void Start(const std::string& id) {
    std::string slot = id;
    for (int n = 2; slots_.count(slot) > 0; ++n) slot = id + "#" + std::to_string(n);
    slots_.insert(slot);
    threads_.emplace_back([this, id, slot] {
      Delivery d;
      d.id = id;
      const std::optional<std::string> key = "acme/shop#1";
      absl::StatusOr<bool> r = queue_.Record(d, key);
      std::lock_guard<std::mutex> lock(mu_);
      results_.emplace(slot, std::move(r));
    });
  }

  // Waits (bounded) until `n` callers are queued behind the commit in flight.
  bool WaitForWaiting(uint64_t n) {
    const auto deadline = steady_clock::now() + std::chrono::seconds(10);
    while (queue_.Stats().waiting != n) {
      if (steady_clock::now() > deadline) return false;
      std::this_thread::yield();
    }
    return true;
  }

  // One caller committing (held by the fake), then `ids` queued behind it in this order.
  void QueueBehindAHeldCommit(const std::vector<std::string>& ids) {
    db_.HoldFirstCommit();
    Start("first");
    const auto deadline = steady_clock::now() + std::chrono::seconds(10);
    while (db_.group_sizes().empty() && steady_clock::now() < deadline) std::this_thread::yield();
    ASSERT_EQ(db_.group_sizes().size(), 1u) << "the first commit never started";
    for (size_t i = 0; i < ids.size(); ++i) {
      Start(ids[i]);
      ASSERT_TRUE(WaitForWaiting(i + 1)) << ids[i] << " never queued";
    }
  }

  void JoinAll() {
    for (std::thread& t : threads_) t.join();
    threads_.clear();
  }

  FakeDeliveries db_;
  DeliveryCommitQueue queue_;
  std::vector<std::thread> threads_;
  std::set<std::string> slots_;
  std::mutex mu_;
  std::map<std::string, absl::StatusOr<bool>> results_;
};

TEST_F(DeliveryCommitQueueTest, ALoneCallerCommitsAtOnceByItself) {
  Delivery d;
  d.id = "only";
  EXPECT_EQ(queue_.Record(d, std::nullopt).value_or(false), true);
  EXPECT_EQ(queue_.Record(d, std::nullopt).value_or(true), false);
  EXPECT_EQ(db_.group_sizes(), (std::vector<size_t>{1, 1}));
  const DeliveryCommitStats stats = queue_.Stats();
  EXPECT_EQ(stats.groups, 2u);
  EXPECT_EQ(stats.deliveries, 2u);
  EXPECT_EQ(stats.waiting, 0u);
}

TEST_F(DeliveryCommitQueueTest, CallersArrivingDuringACommitShareTheNextOne) {
  std::vector<std::string> ids;
  for (int i = 0; i < 12; ++i) ids.push_back("d" + std::to_string(i));
  QueueBehindAHeldCommit(ids);
  db_.ReleaseFirstCommit();
  JoinAll();

  // Thirteen deliveries, two commits: the held one, then everything that queued behind it.
  EXPECT_EQ(db_.group_sizes(), (std::vector<size_t>{1, 12}));
  EXPECT_EQ(queue_.Stats().groups, 2u);
  EXPECT_EQ(queue_.Stats().deliveries, 13u);
  ASSERT_EQ(results_.size(), 13u);
  for (const auto& [id, r] : results_) {
    ASSERT_TRUE(r.ok()) << id << ": " << r.status();
    EXPECT_TRUE(*r) << id;
  }
  EXPECT_EQ(db_.stored().size(), 13u);
}

TEST_F(DeliveryCommitQueueTest, RepeatedIdInsideOneGroupIsStoredOnceAndAnsweredDuplicate) {
  QueueBehindAHeldCommit({"a", "b", "a", "first"});
  db_.ReleaseFirstCommit();
  JoinAll();

  EXPECT_EQ(db_.group_sizes(), (std::vector<size_t>{1, 4}));
  // Queue order decides which of the two is the original, as two calls in a row would.
  EXPECT_EQ(results_.at("a").value_or(false), true);
  EXPECT_EQ(results_.at("a#2").value_or(true), false);
  EXPECT_EQ(results_.at("b").value_or(false), true);
  EXPECT_EQ(results_.at("first").value_or(false), true);    // the held one, committed first
  EXPECT_EQ(results_.at("first#2").value_or(true), false);  // its repeat, in the group
  EXPECT_EQ(db_.stored(), (std::set<std::string>{"a", "b", "first"}));
}

TEST_F(DeliveryCommitQueueTest, OneBadDeliveryFailsAloneAndTheOthersAreCommitted) {
  db_.FailDelivery("bad");
  QueueBehindAHeldCommit({"d1", "bad", "d2", "d1"});
  db_.ReleaseFirstCommit();
  JoinAll();

  // The group failed as a whole, so each of its four was committed by itself.
  EXPECT_EQ(db_.group_sizes(), (std::vector<size_t>{1, 4, 1, 1, 1, 1}));
  EXPECT_EQ(queue_.Stats().retried_alone, 4u);
  EXPECT_EQ(results_.at("bad").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(results_.at("d1").value_or(false), true);
  EXPECT_EQ(results_.at("d1#2").value_or(true), false);
  EXPECT_EQ(results_.at("d2").value_or(false), true);
  EXPECT_EQ(db_.stored(), (std::set<std::string>{"first", "d1", "d2"}));
}

TEST_F(DeliveryCommitQueueTest, AnUnavailableGroupFailsEveryCallerWithoutRetrying) {
  db_.FailGroupsUnavailable();
  QueueBehindAHeldCommit({"d1", "d2", "d3"});
  db_.ReleaseFirstCommit();
  JoinAll();

  // No one-by-one retries against a database that is down: each sender gets 503 and retries.
  EXPECT_EQ(db_.group_sizes(), (std::vector<size_t>{1, 3}));
  EXPECT_EQ(queue_.Stats().retried_alone, 0u);
  for (const char* id : {"d1", "d2", "d3"}) {
    EXPECT_EQ(results_.at(id).status().code(), absl::StatusCode::kUnavailable) << id;
  }
  EXPECT_EQ(results_.at("first").value_or(false), true);
  EXPECT_EQ(db_.stored(), (std::set<std::string>{"first"}));
}

TEST_F(DeliveryCommitQueueTest, AThrowingCommitIsAnErrorAndTheQueueKeepsWorking) {
  db_.ThrowOnDelivery("boom");
  Delivery boom;
  boom.id = "boom";
  EXPECT_EQ(queue_.Record(boom, std::nullopt).status().code(), absl::StatusCode::kInternal);
  Delivery next;
  next.id = "next";
  EXPECT_EQ(queue_.Record(next, std::nullopt).value_or(false), true);
}

class SmallGroupTest : public DeliveryCommitQueueTest {
 protected:
  SmallGroupTest() : DeliveryCommitQueueTest(4) {}
};

TEST_F(SmallGroupTest, NoGroupIsLargerThanTheBound) {
  std::vector<std::string> ids;
  for (int i = 0; i < 10; ++i) ids.push_back("d" + std::to_string(i));
  QueueBehindAHeldCommit(ids);
  db_.ReleaseFirstCommit();
  JoinAll();

  EXPECT_EQ(db_.group_sizes(), (std::vector<size_t>{1, 4, 4, 2}));
  EXPECT_EQ(db_.stored().size(), 11u);
  for (const auto& [id, r] : results_) EXPECT_EQ(r.value_or(false), true) << id;
}

class TwoInFlightTest : public DeliveryCommitQueueTest {
 protected:
  TwoInFlightTest() : DeliveryCommitQueueTest(32, 2) {}
};

TEST_F(TwoInFlightTest, ASecondGroupCommitsWhileTheFirstIsStillInFlight) {
  db_.HoldFirstCommit();
  Start("first");
  const auto deadline = steady_clock::now() + std::chrono::seconds(10);
  while (db_.group_sizes().empty() && steady_clock::now() < deadline) std::this_thread::yield();
  // A free slot: committed at once, while the first is still held.
  Delivery second;
  second.id = "second";
  EXPECT_EQ(queue_.Record(second, std::nullopt).value_or(false), true);
  EXPECT_EQ(db_.group_sizes(), (std::vector<size_t>{1, 1}));
  EXPECT_EQ(db_.stored(), (std::set<std::string>{"second"}));
  db_.ReleaseFirstCommit();
  JoinAll();
  EXPECT_EQ(results_.at("first").value_or(false), true);
  EXPECT_EQ(db_.stored(), (std::set<std::string>{"first", "second"}));
}

}  // namespace
}  // namespace eph::state
