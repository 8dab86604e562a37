#include "pkg/controller/resync.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "pkg/controller/test_world.h"
#include "pkg/workkey/work_key.h"
#include "pkg/controller/work_queue_runner.h"

namespace eph::controller::testing {
namespace {

using providers::OwnedObject;
using state::EnvState;

constexpr Duration kDeadline = std::chrono::seconds(20);

TEST(ResyncTest, CatchesAMissedWebhook) {
  World w;
  ControllerMetrics metrics;
  WorkQueueRunner runner(*w.store, *w.reconciler, w.clock, w.random, metrics, {});
  w.OpenPr(1);
  ASSERT_TRUE(w.store->Enqueue(PullRequestKey(kRepo, 1), w.clock.Now()).ok());
  ASSERT_TRUE(*runner.RunOnce("t"));
  const std::string name = w.Live(1)->name;
  // The key now waits for the idle deadline, hours away.
  w.clock.Advance(std::chrono::hours(2));

  // The pull request is merged, and the webhook never arrives.
  w.forge.SetState(kRepo, 1, forge::PullRequestState::kMerged);
  EXPECT_FALSE(*runner.RunOnce("t"));
  EXPECT_TRUE(w.Live(1).has_value());

  int notified = 0;
  Resyncer resync(*w.store, w.registry, w.clock, metrics, {}, [&] { ++notified; });
  absl::StatusOr<ResyncReport> report = resync.RunOnce();
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->enqueued, 1);
  EXPECT_EQ(notified, 1);
  ASSERT_TRUE(*runner.RunOnce("t"));
  EXPECT_FALSE(w.Live(1).has_value());
  EXPECT_EQ(w.History(1).back().reason, "pull request merged");
  EXPECT_FALSE(w.provider->Exists(name));
  EXPECT_EQ(metrics.Take().resync_passes, 1);
  EXPECT_EQ(metrics.Take().resync_enqueued, 1);
}

TEST(ResyncTest, EnqueuesEveryLiveEnvironmentOnce) {
  World w;
  ControllerMetrics metrics;
  for (int pr = 1; pr <= 3; ++pr) {
    w.OpenPr(pr);
    w.MustReconcile(pr);
  }
  w.forge.SetState(kRepo, 3, forge::PullRequestState::kClosed);
  w.MustReconcile(3);  // destroyed: not live, not enqueued
  state::Environment by_hand;
  by_hand.name = "by-hand";
  by_hand.project = kRepo;
  by_hand.created_at = w.clock.Now();
  ASSERT_TRUE(w.store->CreateEnvironment(by_hand).ok());

  Resyncer resync(*w.store, w.registry, w.clock, metrics, {});
  absl::StatusOr<int64_t> enqueued = resync.EnqueueLive();
  ASSERT_TRUE(enqueued.ok());
  EXPECT_EQ(*enqueued, 3);  // #1, #2 and env:by-hand
  EXPECT_EQ(*w.store->QueueDepth(), 3);
}

TEST(ResyncTest, SweepDestroysOrphansAndNothingElse) {
  World w;
  ControllerMetrics metrics;
  w.OpenPr(1);
  w.MustReconcile(1);
  const std::string live = w.Live(1)->name;
  w.OpenPr(2);
  w.MustReconcile(2);
  const std::string gone = w.Live(2)->name;
  w.forge.SetState(kRepo, 2, forge::PullRequestState::kClosed);
  w.MustReconcile(2);

  // Left behind: by an environment that was destroyed, by one Eph never recorded (a crash
  // between Apply and the store), and an object without the environment label.
  w.provider->AddForeignObject({"Deployment", "api", "eph-" + gone, gone});
  w.provider->AddForeignObject({"Namespace", "eph-ghost", "", "ghost"});
  w.provider->AddForeignObject({"ConfigMap", "mystery", "default", ""});

  Resyncer resync(*w.store, w.registry, w.clock, metrics, {});
  std::vector<std::string> errors;
  EXPECT_EQ(resync.SweepOrphans(errors), 2);
  EXPECT_TRUE(errors.empty());

  std::vector<OwnedObject> left = *w.provider->ListOwned();
  std::set<std::string> environments;
  for (const OwnedObject& o : left) environments.insert(o.environment);
  EXPECT_EQ(environments, (std::set<std::string>{live, ""}));
  EXPECT_TRUE(w.provider->Exists(live));
  EXPECT_EQ(metrics.Take().orphans_destroyed, 2);

  // Nothing left to sweep.
  EXPECT_EQ(resync.SweepOrphans(errors), 0);
}

TEST(ResyncTest, SweepTouchesOnlyThisInstallationsObjects) {
  World w;
  ControllerMetrics metrics;
  w.provider->AddForeignObject({"Namespace", "eph-mine", "", "mine", "0123456789abcdef"});
  w.provider->AddForeignObject({"Namespace", "eph-theirs", "", "theirs", "fedcba9876543210"});
  w.provider->AddForeignObject({"Namespace", "eph-unstamped", "", "unstamped", ""});
  ResyncOptions options;
  options.installation = "0123456789abcdef";
  Resyncer resync(*w.store, w.registry, w.clock, metrics, options);
  std::vector<std::string> errors;
  EXPECT_EQ(resync.SweepOrphans(errors), 1);
  EXPECT_TRUE(errors.empty());
  std::set<std::string> left;
  const std::vector<OwnedObject> owned = *w.provider->ListOwned();
  for (const OwnedObject& o : owned) left.insert(o.environment);
  EXPECT_EQ(left, (std::set<std::string>{"theirs", "unstamped"}));
}

// A pull request labelled while ephd missed the webhook: the pass lists the open pull requests of
// every project it knows and enqueues the labelled ones that have no environment.
TEST(ResyncTest, FindsALabelledPullRequestWhoseWebhookWasLost) {
  World w;
  ControllerMetrics metrics;
  w.OpenPr(1);
  w.MustReconcile(1);  // the project and its trigger labels become known
  const std::optional<state::Project> project = *w.store->GetProject(kRepo);
  ASSERT_TRUE(project.has_value());
  EXPECT_EQ(project->trigger_labels, std::vector<std::string>{"preview"});
  w.OpenPr(2);            // labelled; its webhook never arrived
  w.OpenPr(3, {"docs"});  // not a trigger label

  ResyncOptions options;
  options.forge = &w.forge;
  Resyncer resync(*w.store, w.registry, w.clock, metrics, options);
  absl::StatusOr<ResyncReport> report = resync.RunOnce();
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->labelled_found, 1);
  EXPECT_TRUE(report->errors.empty());
  std::set<std::string> queued;
  while (true) {
    absl::StatusOr<std::optional<state::Lease>> lease =
        w.store->ClaimWork("test", w.clock.Now(), std::chrono::minutes(1));
    ASSERT_TRUE(lease.ok());
    if (!lease->has_value()) break;
    queued.insert((*lease)->key);
    ASSERT_TRUE(w.store->CompleteWork(**lease, w.clock.Now()).ok());
  }
  EXPECT_EQ(queued, (std::set<std::string>{PullRequestKey(kRepo, 1), PullRequestKey(kRepo, 2)}));

  // Its pass creates the environment; the next resync finds nothing more to do.
  w.MustReconcile(2);
  ASSERT_TRUE(w.Live(2).has_value());
  report = resync.RunOnce();
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->labelled_found, 0);

  // A forge that cannot list is reported and the pass goes on.
  w.forge.FailNext(forge::FakeForge::Method::kListOpenPullRequests,
                   absl::UnavailableError("rate limited"));
  report = resync.RunOnce();
  ASSERT_TRUE(report.ok());
  ASSERT_EQ(report->errors.size(), 1u);
  EXPECT_THAT(report->errors[0], ::testing::HasSubstr("rate limited"));
}

TEST(ResyncTest, SweepGoesOnPastAProviderError) {
  World w;
  ControllerMetrics metrics;
  w.provider->AddForeignObject({"Namespace", "eph-ghost", "", "ghost"});
  w.provider->FailNext(providers::FakeProvider::Method::kListOwned,
                       absl::UnavailableError("apiserver down"));
  Resyncer resync(*w.store, w.registry, w.clock, metrics, {});
  absl::StatusOr<ResyncReport> report = resync.RunOnce();
  ASSERT_TRUE(report.ok());
  ASSERT_EQ(report->errors.size(), 1u);
  EXPECT_THAT(report->errors[0], ::testing::HasSubstr("apiserver down"));
  report = resync.RunOnce();
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->orphans_destroyed, 1);
}

TEST(ResyncTest, BackgroundPassesFollowTheClock) {
  World w;
  ControllerMetrics metrics;
  ResyncOptions options;
  options.interval = std::chrono::minutes(5);
  Resyncer resync(*w.store, w.registry, w.clock, metrics, options);
  resync.Start();
  ASSERT_TRUE(resync.WaitForPasses(1, kDeadline));  // one pass at start

  w.clock.Advance(std::chrono::minutes(4));
  resync.Wake();
  w.clock.Advance(std::chrono::minutes(1));
  resync.Wake();
  ASSERT_TRUE(resync.WaitForPasses(2, kDeadline));
  resync.Stop();
  EXPECT_EQ(resync.passes(), 2);
}

}  // namespace
}  // namespace eph::controller::testing
