#include "pkg/base/clock.h"

#include <gtest/gtest.h>

namespace eph {
namespace {

TEST(ClockTest, FakeClockMovesOnlyWhenTold) {
  FakeClock clock;
  const TimePoint start = clock.Now();
  EXPECT_EQ(clock.Now(), start);
  clock.Advance(std::chrono::hours(72));
  EXPECT_EQ(clock.Now() - start, std::chrono::hours(72));
}

TEST(ClockTest, FormatsRfc3339InUtc) {
  EXPECT_EQ(FormatRfc3339(FromUnixMillis(1767225600000)), "2026-01-01T00:00:00.000Z");
  EXPECT_EQ(FormatRfc3339(FromUnixMillis(1767225600123 + 3723000)), "2026-01-01T01:02:03.123Z");
}

TEST(ClockTest, MillisRoundTrip) {
  EXPECT_EQ(ToUnixMillis(FromUnixMillis(1234567890123)), 1234567890123);
}

}  // namespace
}  // namespace eph
