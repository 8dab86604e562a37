#include "pkg/base/metrics.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace eph {
namespace {

using ::testing::HasSubstr;

TEST(MetricsTest, RendersCountersGaugesAndHistograms) {
  MetricsRegistry m;
  m.GetCounter("eph_webhooks_total", "Webhooks received", R"(event="ping")").Inc(2);
  m.AddGauge("eph_queue_depth", "Keys waiting", [] { return 3.0; });
  auto& h = m.GetHistogram("eph_http_seconds", "Latency", {0.1, 1});
  h.Observe(0.05);
  h.Observe(0.5);
  h.Observe(5);
  const std::string text = m.RenderPrometheus();
  EXPECT_THAT(text, HasSubstr("# TYPE eph_webhooks_total counter"));
  EXPECT_THAT(text, HasSubstr("eph_webhooks_total{event=\"ping\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("eph_queue_depth 3\n"));
  EXPECT_THAT(text, HasSubstr("eph_http_seconds_bucket{le=\"0.1\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("eph_http_seconds_bucket{le=\"1\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("eph_http_seconds_bucket{le=\"+Inf\"} 3\n"));
  EXPECT_THAT(text, HasSubstr("eph_http_seconds_count 3\n"));
}

TEST(MetricsTest, CounterFuncsAreReadAtEachRender) {
  MetricsRegistry m;
  int64_t commits = 4;
  m.AddCounterFunc("eph_commits_total", "Commits", [&] { return static_cast<double>(commits); });
  EXPECT_THAT(m.RenderPrometheus(),
              HasSubstr("# TYPE eph_commits_total counter\neph_commits_total 4\n"));
  commits = 9;
  EXPECT_THAT(m.RenderPrometheus(), HasSubstr("eph_commits_total 9\n"));
}

TEST(MetricsTest, SameNameAndLabelsIsSameCounter) {
  MetricsRegistry m;
  m.GetCounter("c", "h").Inc();
  m.GetCounter("c", "h").Inc();
  EXPECT_EQ(m.GetCounter("c", "h").Value(), 2);
}

}  // namespace
}  // namespace eph
