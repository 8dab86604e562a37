#include "pkg/config/duration.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

namespace eph::config {
namespace {

using ::testing::HasSubstr;

TEST(ParseDurationTest, AcceptsGoSyntaxAndDays) {
  EXPECT_EQ(*ParseDuration("90s"), absl::Seconds(90));
  EXPECT_EQ(*ParseDuration("30m"), absl::Minutes(30));
  EXPECT_EQ(*ParseDuration("4h"), absl::Hours(4));
  EXPECT_EQ(*ParseDuration("72h"), absl::Hours(72));
  EXPECT_EQ(*ParseDuration("1h30m"), absl::Minutes(90));
  EXPECT_EQ(*ParseDuration("500ms"), absl::Milliseconds(500));
  EXPECT_EQ(*ParseDuration("7d"), absl::Hours(7 * 24));
  EXPECT_EQ(*ParseDuration("1d12h"), absl::Hours(36));
  EXPECT_EQ(*ParseDuration("1.5h"), absl::Minutes(90));
  EXPECT_EQ(*ParseDuration(".5s"), absl::Milliseconds(500));
  EXPECT_EQ(*ParseDuration("2.s"), absl::Seconds(2));
  EXPECT_EQ(*ParseDuration("10us"), absl::Microseconds(10));
  EXPECT_EQ(*ParseDuration("10\xC2\xB5s"), absl::Microseconds(10));
  EXPECT_EQ(*ParseDuration("10\xCE\xBCs"), absl::Microseconds(10));
  EXPECT_EQ(*ParseDuration("3ns"), absl::Nanoseconds(3));
  EXPECT_EQ(*ParseDuration("0"), absl::ZeroDuration());
  EXPECT_EQ(*ParseDuration("0s"), absl::ZeroDuration());
  EXPECT_EQ(*ParseDuration("0.000000001s"), absl::Nanoseconds(1));
}

TEST(ParseDurationTest, RejectsWithMessagesThatSayWhatIsWrong) {
  struct Case {
    std::string input;
    std::string fragment;
  };
  const Case cases[] = {
      {"", "empty"},
      {"-5m", "cannot be negative"},
      {"+5m", "no sign"},
      {"72", "missing unit"},
      {"4hr", "unknown unit \"hr\""},
      {"4H", "unknown unit \"H\""},
      {"1 h", "spaces are not allowed"},
      {"h", "expected a number"},
      {"1h.", "digits around the '.'"},
      {"1h30", "missing unit"},
      {"2562048h", "too large"},
      {"9223372036854775808ns", "too large"},
      {"99999999999999999999999999h", "too large"},
      {"106751d23h47m16s854ms775us808ns", "too large"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<absl::Duration> parsed = ParseDuration(c.input);
    ASSERT_FALSE(parsed.ok()) << c.input;
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(parsed.status().message(), HasSubstr(c.fragment)) << c.input;
  }
}

TEST(ParseDurationTest, LargestValueStillFits) {
  EXPECT_EQ(*ParseDuration("2562047h"), absl::Hours(2562047));
  EXPECT_EQ(*ParseDuration("9223372036854775807ns"), absl::Nanoseconds(INT64_MAX));
  EXPECT_EQ(*ParseDuration("106751d23h47m16s854ms775us807ns"), absl::Nanoseconds(INT64_MAX));
}

TEST(DurationStringTest, ShortestFormWithoutDays) {
  EXPECT_EQ(DurationString(absl::Hours(72)), "72h");
  EXPECT_EQ(DurationString(absl::Minutes(90)), "1h30m");
  EXPECT_EQ(DurationString(absl::Milliseconds(500)), "500ms");
  EXPECT_EQ(DurationString(absl::Milliseconds(1500)), "1s500ms");
  EXPECT_EQ(DurationString(absl::ZeroDuration()), "0s");
  EXPECT_EQ(DurationString(absl::Minutes(-5)), "-5m");
  EXPECT_EQ(DurationString(absl::InfiniteDuration()), "inf");
  EXPECT_EQ(DurationString(absl::Nanoseconds(1001)), "1us1ns");
}

TEST(DurationStringTest, RoundTripsThroughParse) {
  const absl::Duration values[] = {
      absl::Nanoseconds(1),           absl::Seconds(59),
      absl::Hours(24 * 365),          absl::Nanoseconds(INT64_MAX),
      absl::Milliseconds(86'400'001), absl::Minutes(61),
  };
  for (absl::Duration d : values) {
    absl::StatusOr<absl::Duration> parsed = ParseDuration(DurationString(d));
    ASSERT_TRUE(parsed.ok()) << DurationString(d) << ": " << parsed.status();
    EXPECT_EQ(*parsed, d) << DurationString(d);
  }
}

}  // namespace
}  // namespace eph::config
