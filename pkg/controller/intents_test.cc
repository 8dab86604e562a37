#include "pkg/controller/intents.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "pkg/controller/env_record.h"
#include "pkg/workkey/work_key.h"

namespace eph::controller {
namespace {

using std::chrono::hours;
using ::testing::HasSubstr;

class IntentsTest : public ::testing::Test {
 protected:
  IntentsTest()
      : store_(state::OpenStore("sqlite::memory:").value()),
        intents_(*store_, clock_, random_,
                 LifecyclePolicy{.base_domain = "pv.example.com",
                                 .url_template = "http://{host}:8081",
                                 .namespace_prefix = "pv-",
                                 .default_ttl = hours(10)},
                 [this] { ++woken_; }) {}

  // The keys waiting in the queue, taken out one by one.
  std::vector<std::string> QueuedKeys() {
    std::vector<std::string> keys;
    for (;;) {
      absl::StatusOr<std::optional<state::Lease>> lease =
          store_->ClaimWork("test", clock_.Now(), hours(1));
      if (!lease.ok() || !lease->has_value()) return keys;
      keys.push_back((*lease)->key);
      EXPECT_TRUE(store_->CompleteWork(**lease, clock_.Now()).ok());
    }
  }

  FakeClock clock_;
  SeededRandom random_{3};
  std::unique_ptr<state::Store> store_;
  int woken_ = 0;
  EnvironmentIntents intents_;
};

TEST_F(IntentsTest, CreateForAPullRequestFollowsThePolicyAndQueuesIt) {
  const state::Environment env =
      intents_.Create({.project = "acme/shop", .pr = 5, .name = ""}).value();
  EXPECT_THAT(env.name, ::testing::MatchesRegex("shop-[a-z]+-[a-z]+-5-[a-z2-7]{10}"));
  EXPECT_EQ(env.state, state::EnvState::kPending);
  EXPECT_EQ(env.url, "http://" + env.name + ".pv.example.com:8081");
  EXPECT_EQ(env.namespace_name, "pv-" + env.name);
  EXPECT_TRUE(env.forced);
  EXPECT_EQ(*env.expires_at, clock_.Now() + hours(10));
  EXPECT_EQ(woken_, 1);
  EXPECT_EQ(QueuedKeys(), std::vector<std::string>{PullRequestKey("acme/shop", 5)});

  const absl::StatusOr<state::Environment> again =
      intents_.Create({.project = "acme/shop", .pr = 5, .name = ""});
  EXPECT_EQ(again.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(std::string(again.status().message()), HasSubstr(env.name));
}

TEST_F(IntentsTest, CreateByNameIsNotForcedAndQueuesItsName) {
  const state::Environment env =
      intents_.Create({.project = "acme/shop", .pr = 0, .name = "demo"}).value();
  EXPECT_FALSE(env.forced);
  EXPECT_EQ(QueuedKeys(), std::vector<std::string>{EnvironmentKey("demo")});
  EXPECT_EQ(intents_.Create({.project = "acme/shop", .pr = 0, .name = "demo"}).status().code(),
            absl::StatusCode::kAlreadyExists);
}

TEST_F(IntentsTest, DestroyIsRecordedOnceAndQueued) {
  intents_.Create({.project = "acme/shop", .pr = 0, .name = "demo"}).value();
  QueuedKeys();
  const state::Environment destroying = intents_.Destroy("demo", "on request").value();
  EXPECT_EQ(destroying.state, state::EnvState::kDestroying);
  EXPECT_EQ(QueuedKeys(), std::vector<std::string>{EnvironmentKey("demo")});
  const state::Environment again = intents_.Destroy("demo", "twice").value();
  EXPECT_EQ(again.version, destroying.version) << "nothing written the second time";
  EXPECT_EQ(intents_.Destroy("nobody", "x").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(IntentsTest, ExtendAndKeepApplyTheOnePolicy) {
  intents_.Create({.project = "acme/shop", .pr = 0, .name = "demo"}).value();
  EXPECT_EQ(*intents_.Extend("demo", hours(2)).value().expires_at, clock_.Now() + hours(12));
  EXPECT_EQ(intents_.Extend("demo", hours(24 * 366)).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_FALSE(intents_.Keep("demo").value().expires_at.has_value());
  EXPECT_EQ(intents_.Extend("demo", hours(1)).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(intents_.NamespaceOf(store_->GetEnvironment("demo").value().value()), "pv-demo");
}

TEST_F(IntentsTest, RedeployMakesTheNextPassApplyAgainAndIsQueued) {
  state::Environment env =
      intents_.Create({.project = "acme/shop", .pr = 0, .name = "demo"}).value();
  EnvRecord record;
  record.applied_sha = "abc";
  record.failed_sha = "abc";
  env.spec_json = EnvRecordJson(record);
  env = store_->UpdateEnvironment(env).value();
  QueuedKeys();
  woken_ = 0;

  clock_.Advance(hours(1));
  const state::Environment redeployed =
      intents_
          .Redeploy("demo", [](state::Environment& e) { e.reason = "written in the same swap"; })
          .value();
  EXPECT_EQ(ParseEnvRecord(redeployed.spec_json).applied_sha, "") << "applied again";
  EXPECT_EQ(ParseEnvRecord(redeployed.spec_json).failed_sha, "") << "the failure is retried";
  EXPECT_EQ(redeployed.updated_at, clock_.Now());
  EXPECT_EQ(redeployed.reason, "written in the same swap");
  EXPECT_EQ(redeployed.version, env.version + 1) << "one write";
  EXPECT_EQ(woken_, 1);
  EXPECT_EQ(QueuedKeys(), std::vector<std::string>{EnvironmentKey("demo")});
}

TEST_F(IntentsTest, RedeployLiftsADestroyedEnvironmentsBlockButNotWhileDestroying) {
  intents_.Create({.project = "acme/shop", .pr = 7, .name = ""}).value();
  const std::string name = store_->FindLiveEnvironment("acme/shop", 7).value()->name;
  const state::Environment destroying = intents_.Destroy(name, "on request").value();
  EXPECT_EQ(intents_.Redeploy(name).status().code(), absl::StatusCode::kFailedPrecondition);

  state::Environment destroyed = destroying;
  destroyed.state = state::EnvState::kDestroyed;
  EnvRecord record;
  record.block_recreate = true;
  destroyed.spec_json = EnvRecordJson(record);
  store_->UpdateEnvironment(destroyed).value();
  QueuedKeys();
  const state::Environment lifted = intents_.Redeploy(name).value();
  EXPECT_EQ(lifted.state, state::EnvState::kDestroyed);
  EXPECT_EQ(ParseEnvRecord(lifted.spec_json).block_recreate, std::optional<bool>(false));
  EXPECT_EQ(QueuedKeys(), std::vector<std::string>{PullRequestKey("acme/shop", 7)});
  EXPECT_EQ(intents_.Redeploy("nobody").status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace eph::controller
