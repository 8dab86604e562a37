#include "pkg/workkey/work_key.h"

#include <gtest/gtest.h>

namespace eph {
namespace {

TEST(WorkKeyTest, PullRequestKeysRoundTrip) {
  EXPECT_EQ(PullRequestKey("acme/shop", 42), "acme/shop#42");
  absl::StatusOr<WorkKey> k = ParseWorkKey("acme/shop#42");
  ASSERT_TRUE(k.ok());
  EXPECT_EQ(k->kind, WorkKey::Kind::kPullRequest);
  EXPECT_EQ(k->repo, "acme/shop");
  EXPECT_EQ(k->pr_number, 42);
}

TEST(WorkKeyTest, EnvironmentKeysRoundTrip) {
  EXPECT_EQ(EnvironmentKey("my-app-gentle-stream-42"), "env:my-app-gentle-stream-42");
  absl::StatusOr<WorkKey> k = ParseWorkKey("env:my-app-gentle-stream-42");
  ASSERT_TRUE(k.ok());
  EXPECT_EQ(k->kind, WorkKey::Kind::kEnvironment);
  EXPECT_EQ(k->environment, "my-app-gentle-stream-42");
}

TEST(WorkKeyTest, KeyForAnEnvironment) {
  state::Environment env;
  env.name = "x";
  env.project = "acme/shop";
  EXPECT_EQ(WorkKeyFor(env), "env:x");
  env.pr_number = 7;
  EXPECT_EQ(WorkKeyFor(env), "acme/shop#7");
}

TEST(WorkKeyTest, RejectsMalformedKeys) {
  for (const char* bad :
       {"", "acme/shop", "acme#1", "/shop#1", "acme/#1", "a/b/c#1", "acme/shop#", "acme/shop#0",
        "acme/shop#-3", "acme/shop#12x", "env:", "acme/shop#99999999999999999999"}) {
    absl::StatusOr<WorkKey> k = ParseWorkKey(bad);
    EXPECT_EQ(k.status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

}  // namespace
}  // namespace eph
