#include "pkg/controller/lifecycle.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace eph::controller {
namespace {

using ::testing::HasSubstr;
using std::chrono::hours;

state::Environment Live(TimePoint now) {
  state::Environment env;
  env.name = "shop-calm-river-1";
  env.state = state::EnvState::kReady;
  env.expires_at = now + hours(72);
  return env;
}

TEST(LifecycleTest, EnvironmentUrlFillsEveryHost) {
  EXPECT_EQ(EnvironmentUrl("https://{host}", "a.example.com"), "https://a.example.com");
  EXPECT_EQ(EnvironmentUrl("http://{host}:8081/?h={host}", "x.y"), "http://x.y:8081/?h=x.y");
  EXPECT_EQ(EnvironmentUrl("https://fixed", "x.y"), "https://fixed");
}

TEST(LifecycleTest, NamespaceIsTheRecordedOneElsePrefixAndName) {
  state::Environment env;
  env.name = "shop-1";
  EXPECT_EQ(NamespaceOf(env, "eph-"), "eph-shop-1");
  env.namespace_name = "custom";
  EXPECT_EQ(NamespaceOf(env, "eph-"), "custom");
}

TEST(LifecycleTest, ExtendCountsFromTheLaterOfNowAndTheExpiry) {
  const TimePoint now = FakeClock().Now();
  state::Environment env = Live(now);
  ASSERT_TRUE(Extend(env, hours(24), now).ok());
  EXPECT_EQ(*env.expires_at, now + hours(96));
  env.expires_at = now - hours(5);
  ASSERT_TRUE(Extend(env, hours(1), now).ok());
  EXPECT_EQ(*env.expires_at, now + hours(1));
}

TEST(LifecycleTest, ExtendStopsAt366DaysFromNow) {
  const TimePoint now = FakeClock().Now();
  state::Environment env = Live(now);
  ASSERT_TRUE(Extend(env, kMaxExpiryAhead - hours(72), now).ok());
  EXPECT_EQ(*env.expires_at, now + kMaxExpiryAhead);
  const state::Environment before = env;
  const absl::Status s = Extend(env, hours(1), now);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(s.message()), HasSubstr("366 days"));
  EXPECT_EQ(env.expires_at, before.expires_at) << "unchanged on error";
  // Huge durations are refused, not overflowed.
  state::Environment fresh = Live(now);
  EXPECT_EQ(Extend(fresh, Duration::max(), now).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Extend(fresh, -hours(1), now).code(), absl::StatusCode::kInvalidArgument);
  const TimePoint expiry = *fresh.expires_at;
  EXPECT_TRUE(Extend(fresh, Duration::zero(), now).ok());
  EXPECT_EQ(*fresh.expires_at, expiry);
}

TEST(LifecycleTest, NothingToExtendOrKeepWithoutTtlOrLife) {
  const TimePoint now = FakeClock().Now();
  state::Environment kept = Live(now);
  ASSERT_TRUE(Keep(kept).ok());
  EXPECT_FALSE(kept.expires_at.has_value());
  const absl::Status s = Extend(kept, hours(1), now);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(s.message()), HasSubstr("no TTL"));
  EXPECT_FALSE(kept.expires_at.has_value()) << "a kept environment gets no TTL by extending";

  for (state::EnvState st : {state::EnvState::kDestroyed, state::EnvState::kDestroying}) {
    state::Environment ending = Live(now);
    ending.state = st;
    EXPECT_EQ(Extend(ending, hours(1), now).code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_EQ(Keep(ending).code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_FALSE(StartDestroy(ending, "again", now));
  }
}

TEST(LifecycleTest, StartDestroyRecordsTheReason) {
  const TimePoint now = FakeClock().Now();
  state::Environment env = Live(now);
  ASSERT_TRUE(StartDestroy(env, "destroyed on request", now));
  EXPECT_EQ(env.state, state::EnvState::kDestroying);
  EXPECT_EQ(env.reason, "destroyed on request");
}

}  // namespace
}  // namespace eph::controller
