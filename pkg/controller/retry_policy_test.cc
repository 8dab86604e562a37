#include "pkg/controller/retry_policy.h"

#include <gtest/gtest.h>

namespace eph::controller {
namespace {

using std::chrono::duration;
using std::chrono::seconds;

TEST(RetryPolicyTest, TerminalCodes) {
  EXPECT_TRUE(IsTerminalError(absl::InvalidArgumentError("")));
  EXPECT_TRUE(IsTerminalError(absl::FailedPreconditionError("")));
  EXPECT_FALSE(IsTerminalError(absl::UnavailableError("")));
  EXPECT_FALSE(IsTerminalError(absl::AbortedError("")));
  EXPECT_FALSE(IsTerminalError(absl::DeadlineExceededError("")));
  EXPECT_FALSE(IsTerminalError(absl::ResourceExhaustedError("")));
  EXPECT_FALSE(IsTerminalError(absl::InternalError("")));
}

TEST(RetryPolicyTest, BackoffDoublesWithinJitterAndIsCapped) {
  SeededRandom random(1);
  BackoffOptions options;
  options.base = seconds(1);
  options.max = seconds(60);
  options.jitter = 0.25;
  for (int attempt = 0; attempt < 12; ++attempt) {
    const double nominal = std::min(60.0, static_cast<double>(1 << attempt));
    for (int i = 0; i < 50; ++i) {
      const double d = duration<double>(BackoffDelay(attempt, options, random)).count();
      EXPECT_GE(d, nominal * 0.75 - 1e-9) << attempt;
      EXPECT_LE(d, nominal * 1.25 + 1e-9) << attempt;
    }
  }
  EXPECT_GT(BackoffDelay(1000000, options, random), Duration::zero());
}

TEST(RetryPolicyTest, JitterSpreadsKeysThatFailedTogether) {
  SeededRandom random(2);
  BackoffOptions options;
  std::set<Duration::rep> seen;
  for (int i = 0; i < 20; ++i) seen.insert(BackoffDelay(3, options, random).count());
  EXPECT_GT(seen.size(), 15u);
  options.jitter = 0;
  EXPECT_EQ(BackoffDelay(3, options, random), seconds(8));
}

}  // namespace
}  // namespace eph::controller
