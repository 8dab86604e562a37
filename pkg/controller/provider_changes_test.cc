#include "pkg/controller/provider_changes.h"

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <mutex>

#include "pkg/controller/test_world.h"
#include "pkg/workkey/work_key.h"

namespace eph::controller {
namespace {

using testing::World;

// A provider whose change stream announces `environment` once per WatchChanges call, then
// waits for stop; `fail_first` streams end with an error before that.
class StreamingProvider final : public providers::Provider {
 public:
  StreamingProvider(std::string environment, int fail_first)
      : environment_(std::move(environment)), fail_first_(fail_first) {}
  providers::ProviderInfo Info() const override { return {"streaming", "test"}; }
  absl::StatusOr<providers::ApplyResult> Apply(const providers::ApplyRequest&) override {
    return providers::ApplyResult{};
  }
  absl::StatusOr<providers::Observation> Observe(const providers::EnvironmentRef&) override {
    return providers::Observation{};
  }
  absl::StatusOr<providers::DestroyResult> Destroy(const providers::EnvironmentRef&) override {
    return providers::DestroyResult{true, ""};
  }
  absl::Status Logs(const providers::LogsRequest&, const providers::LogSink&) override {
    return absl::OkStatus();
  }
  absl::StatusOr<std::vector<providers::OwnedObject>> ListOwned() override {
    return std::vector<providers::OwnedObject>{};
  }
  absl::Status WatchChanges(const providers::ChangeSink& sink, std::stop_token stop) override {
    calls_.fetch_add(1);
    if (fail_first_-- > 0) return absl::UnavailableError("engine restarting");
    sink({environment_});
    std::mutex mu;
    std::condition_variable_any cv;
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, stop, [] { return false; });
    return absl::OkStatus();
  }
  int calls() const { return calls_.load(); }

 private:
  const std::string environment_;
  std::atomic<int> fail_first_;
  std::atomic<int> calls_{0};
};

std::optional<std::string> ClaimedKey(World& w) {
  absl::StatusOr<std::optional<state::Lease>> lease =
      w.store->ClaimWork("test", w.clock.Now(), std::chrono::seconds(30));
  EXPECT_TRUE(lease.ok()) << lease.status();
  if (!lease.ok() || !lease->has_value()) return std::nullopt;
  return (*lease)->key;
}

TEST(ProviderChangeFeedTest, AChangeEnqueuesTheEnvironmentsKeyAndWakesTheWorkers) {
  World w;
  w.OpenPr(1);
  w.MustReconcile(1);
  const std::optional<state::Environment> env = w.Live(1);
  ASSERT_TRUE(env.has_value());
  while (ClaimedKey(w)) {
  }  // whatever the set-up queued
  int notified = 0;
  ProviderChangeFeed feed(*w.store, w.registry, w.clock, [&] { ++notified; });
  EXPECT_TRUE(feed.Deliver({env->name}));
  EXPECT_EQ(notified, 1);
  EXPECT_EQ(ClaimedKey(w), WorkKeyFor(*env));
  // Names the store does not know (another installation's, or not created yet) are dropped.
  EXPECT_FALSE(feed.Deliver({"somebody-elses-env-1"}));
  EXPECT_EQ(notified, 1);
  EXPECT_EQ(feed.enqueued(), 1);
}

TEST(ProviderChangeFeedTest, WatchesEveryStreamingProviderAndRestartsAStreamThatFailed) {
  World w;
  w.OpenPr(1);
  w.MustReconcile(1);
  const std::optional<state::Environment> env = w.Live(1);
  ASSERT_TRUE(env.has_value());
  providers::ProviderRegistry registry;
  auto owned = std::make_unique<StreamingProvider>(env->name, /*fail_first=*/1);
  StreamingProvider* streaming = owned.get();
  ASSERT_TRUE(registry.Add(std::move(owned)).ok());
  // The fake provider has no stream (the default Unimplemented): its thread just ends.
  ASSERT_TRUE(registry.Add(std::make_unique<providers::FakeProvider>()).ok());
  std::mutex mu;
  std::condition_variable cv;
  int notified = 0;
  ProviderChangeFeed feed(*w.store, registry, w.clock,
                          [&] {
                            std::lock_guard<std::mutex> lock(mu);
                            ++notified;
                            cv.notify_all();
                          },
                          ProviderChangeFeedOptions{.retry_after = std::chrono::milliseconds(10)});
  feed.Start();
  {
    std::unique_lock<std::mutex> lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(10), [&] { return notified > 0; }));
  }
  EXPECT_EQ(streaming->calls(), 2);  // the failed stream, then the one that delivered
  const auto stopping = std::chrono::steady_clock::now();
  feed.Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - stopping, std::chrono::seconds(2));
  EXPECT_EQ(feed.enqueued(), 1);
}

}  // namespace
}  // namespace eph::controller
