// The start_interval emulation without an engine: a scripted runner stands in for the exec API
// and a FakeClock for time, so every check's timing is exact and no test sleeps.
#include "pkg/providers/docker/start_probe.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "pkg/providers/docker/container_spec.h"

namespace eph::providers::docker {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using ::testing::ElementsAre;

// Runs the prober on a FakeClock; each check takes `check_takes` and answers from `answers`
// (exit code or error), in order, then 1 (unhealthy) forever.
class StartProberTest : public ::testing::Test {
 protected:
  StartProberTest()
      : prober_(
            clock_, [this](const StartProbe& p) { return Run(p); },
            StartProber::Options{.background = false, .max_tracked = 2, .max_passed = 2}) {
    sink_ = prober_.AddSink(
        [this](const EnvironmentChange& c) { announced_.push_back(c.environment); });
  }

  absl::StatusOr<int> Run(const StartProbe& p) {
    checks_at_.push_back(clock_.Now() - start_);
    EXPECT_THAT(p.command, ElementsAre("/app", "--check"));
    clock_.Advance(check_takes_);
    if (answers_.empty()) return 1;
    absl::StatusOr<int> a = answers_.front();
    answers_.erase(answers_.begin());
    return a;
  }

  StartProbe Probe(const std::string& id) {
    return StartProbe{.container_id = id,
                      .environment = "env-" + id,
                      .command = {"/app", "--check"},
                      .started = start_,
                      .start_interval = milliseconds(100),
                      .start_period = milliseconds(1000),
                      .timeout = milliseconds(500)};
  }

  // Calls RunDue at each due time until nothing is tracked (bounded).
  void RunUntilIdle() {
    for (int i = 0; i < 100; ++i) {
      std::optional<TimePoint> next = prober_.RunDue();
      if (!next) return;
      if (*next > clock_.Now()) clock_.Set(*next);
    }
    FAIL() << "still probing after 100 rounds";
  }

  FakeClock clock_;
  const TimePoint start_ = clock_.Now();
  Duration check_takes_ = milliseconds(10);
  std::vector<absl::StatusOr<int>> answers_;
  std::vector<Duration> checks_at_;
  std::vector<std::string> announced_;
  StartProber prober_;
  uint64_t sink_ = 0;
};

TEST_F(StartProberTest, ChecksEveryStartIntervalAndPassesOnTheFirstSuccess) {
  answers_ = {1, 1, 0};
  prober_.Track(Probe("c1"));
  prober_.Track(Probe("c1"));  // Observe again: no second schedule
  EXPECT_EQ(prober_.RunDue(), start_ + milliseconds(100)) << "the first check waits an interval";
  EXPECT_TRUE(checks_at_.empty());
  RunUntilIdle();
  // 100, then each check 10 ms long and the next 100 ms after it ended.
  EXPECT_THAT(checks_at_, ElementsAre(milliseconds(100), milliseconds(210), milliseconds(320)));
  EXPECT_TRUE(prober_.Passed("c1"));
  EXPECT_THAT(announced_, ElementsAre("env-c1"));
  prober_.Track(Probe("c1"));
  EXPECT_EQ(prober_.Tracked(), 0u) << "a container that passed is not checked again";
}

TEST_F(StartProberTest, NoCheckStartsAfterTheStartPeriod) {
  prober_.Track(Probe("c1"));  // always unhealthy
  RunUntilIdle();
  EXPECT_FALSE(prober_.Passed("c1"));
  EXPECT_TRUE(announced_.empty());
  ASSERT_FALSE(checks_at_.empty());
  EXPECT_LT(checks_at_.back(), milliseconds(1000));
  EXPECT_EQ(checks_at_.size(), 9u) << "at 100, 210, ..., 980 ms";
  clock_.Set(start_ + milliseconds(1000));
  prober_.Track(Probe("c2"));
  EXPECT_EQ(prober_.Tracked(), 0u) << "tracked after its start period";
}

TEST_F(StartProberTest, AGoneOrStoppedContainerIsDroppedAndErrorsAreFailedChecks) {
  answers_ = {absl::UnavailableError("engine busy"), absl::NotFoundError("No such container")};
  prober_.Track(Probe("c1"));
  RunUntilIdle();
  EXPECT_EQ(checks_at_.size(), 2u) << "an engine error is retried, a missing container is not";
  EXPECT_FALSE(prober_.Passed("c1"));
  answers_ = {absl::FailedPreconditionError("is not running")};
  checks_at_.clear();
  prober_.Track(Probe("c2"));
  RunUntilIdle();
  EXPECT_EQ(checks_at_.size(), 1u);
  EXPECT_TRUE(announced_.empty());
}

TEST_F(StartProberTest, ForgetStopsChecksAndPassesAreBounded) {
  prober_.Track(Probe("c1"));
  prober_.Forget("c1");
  RunUntilIdle();
  EXPECT_TRUE(checks_at_.empty());
  prober_.Track(Probe("a"));
  prober_.Track(Probe("b"));
  prober_.Track(Probe("c"));  // over max_tracked: left to the engine's own check
  EXPECT_EQ(prober_.Tracked(), 2u);
  answers_ = {0, 0};
  RunUntilIdle();
  prober_.Track(Probe("c"));
  answers_ = {0};
  RunUntilIdle();
  EXPECT_FALSE(prober_.Passed("a")) << "the oldest pass is forgotten beyond max_passed";
  EXPECT_TRUE(prober_.Passed("b"));
  EXPECT_TRUE(prober_.Passed("c"));
  prober_.Forget("c");
  EXPECT_FALSE(prober_.Passed("c"));
  prober_.RemoveSink(sink_);
  prober_.Track(Probe("d"));
  answers_ = {0};
  RunUntilIdle();
  EXPECT_THAT(announced_, ElementsAre("env-a", "env-b", "env-c")) << "no call after RemoveSink";
}

json Inspect(const std::string& label, json health) {
  return {{"Id", "abc"},
          {"Config", {{"Labels", {{kStartIntervalLabel, label}}}, {"Healthcheck", health}}},
          {"State", {{"Status", "running"}, {"StartedAt", "2026-01-01T00:00:01.5Z"}}}};
}

TEST(StartProbeOfTest, ReadsWhatAnOlderEngineKeptAndTheLabel) {
  const json health = {{"Test", {"CMD-SHELL", "curl -f localhost"}},
                       {"Interval", 30'000'000'000},
                       {"StartPeriod", 10'000'000'000}};
  std::optional<StartProbe> p = StartProbeOf(Inspect("100000000", health), "foo");
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->container_id, "abc");
  EXPECT_EQ(p->environment, "foo");
  EXPECT_THAT(p->command, ElementsAre("/bin/sh", "-c", "curl -f localhost"));
  EXPECT_EQ(p->start_interval, milliseconds(100));
  EXPECT_EQ(p->start_period, milliseconds(10'000));
  EXPECT_EQ(p->timeout, milliseconds(30'000)) << "the engine's default";
  EXPECT_EQ(ToUnixMillis(p->started), ToUnixMillis(FakeClock().Now()) + 1500);
  json cmd = health;
  cmd["Test"] = {"CMD", "/app", "--check"};
  cmd["Timeout"] = 2'000'000'000;
  p = StartProbeOf(Inspect("100000000", cmd), "foo");
  ASSERT_TRUE(p.has_value());
  EXPECT_THAT(p->command, ElementsAre("/app", "--check"));
  EXPECT_EQ(p->timeout, milliseconds(2000));
}

TEST(StartProbeOfTest, NothingToEmulate) {
  const json health = {{"Test", {"CMD", "/app", "--check"}}, {"StartPeriod", 10'000'000'000}};
  json native = health;
  native["StartInterval"] = 100'000'000;
  EXPECT_FALSE(StartProbeOf(Inspect("100000000", native), "foo")) << "the engine checks itself";
  EXPECT_FALSE(StartProbeOf(Inspect("", health), "foo")) << "no start_interval";
  EXPECT_FALSE(StartProbeOf(Inspect("1e8", health), "foo"));
  EXPECT_FALSE(StartProbeOf(Inspect("99999999999999999999", health), "foo"));
  json none = health;
  none["Test"] = {"NONE"};
  EXPECT_FALSE(StartProbeOf(Inspect("100000000", none), "foo"));
  json bad_start = Inspect("100000000", health);
  bad_start["State"]["StartedAt"] = "yesterday";
  EXPECT_FALSE(StartProbeOf(bad_start, "foo"));
  EXPECT_FALSE(StartProbeOf(json::array(), "foo"));
}

}  // namespace
}  // namespace eph::providers::docker
