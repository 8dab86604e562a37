#include "pkg/controller/env_record.h"

#include <gtest/gtest.h>

namespace eph::controller {
namespace {

TEST(EnvRecordTest, RoundTrips) {
  EnvRecord r;
  r.trigger_labels = {"preview", "deploy"};
  r.idle_timeout_ms = 14400000;
  r.images = {{"api", "pr-42"}};
  r.applied_sha = "abc";
  r.failed_sha = "def";
  r.provider_touched = true;
  r.block_recreate = false;
  r.deployment_id = 17;
  r.deployment_sha = "abc";
  r.reported = "ready|...";
  r.apply_started_ms = 1765000000123;
  r.apply_sha = "abc";
  const EnvRecord back = ParseEnvRecord(EnvRecordJson(r));
  EXPECT_EQ(back.trigger_labels, r.trigger_labels);
  EXPECT_EQ(back.idle_timeout_ms, 14400000);
  ASSERT_EQ(back.images.size(), 1u);
  EXPECT_EQ(back.images[0].tag, "pr-42");
  EXPECT_EQ(back.applied_sha, "abc");
  EXPECT_EQ(back.failed_sha, "def");
  EXPECT_TRUE(back.provider_touched);
  EXPECT_EQ(back.block_recreate, std::optional<bool>(false));
  EXPECT_EQ(back.deployment_id, 17);
  EXPECT_EQ(back.reported, "ready|...");
  EXPECT_EQ(back.apply_started_ms, 1765000000123);
  EXPECT_EQ(back.apply_sha, "abc");
}

TEST(EnvRecordTest, ForeignOrBrokenSpecReadsAsDefaults) {
  for (const char* spec : {"", "null", "[1,2]", "{", R"({"controller": 5})",
                           R"({"namespace": 3, "controller": {"applied_sha": []}})"}) {
    const EnvRecord r = ParseEnvRecord(spec);
    EXPECT_EQ(r.applied_sha, "") << spec;
    EXPECT_FALSE(r.provider_touched) << spec;
    EXPECT_FALSE(r.block_recreate.has_value()) << spec;
  }
}

}  // namespace
}  // namespace eph::controller
