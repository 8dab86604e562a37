#include "pkg/forge/fake_forge.h"

#include <gtest/gtest.h>

namespace eph::forge {
namespace {

PullRequest Pr() {
  PullRequest pr;
  pr.repo = "acme/shop";
  pr.number = 1;
  pr.head_sha = "a1";
  pr.labels = {"preview"};
  return pr;
}

TEST(FakeForgeTest, PullRequestsAndNotFound) {
  FakeForge forge;
  EXPECT_EQ(forge.GetPullRequest("acme/shop", 1).status().code(), absl::StatusCode::kNotFound);
  forge.SetPullRequest(Pr());
  forge.AddLabel("acme/shop", 1, "bug");
  forge.AddLabel("acme/shop", 1, "bug");
  forge.RemoveLabel("acme/shop", 1, "preview");
  forge.SetDraft("acme/shop", 1, true);
  forge.SetState("acme/shop", 1, PullRequestState::kMerged);
  absl::StatusOr<PullRequest> pr = forge.GetPullRequest("acme/shop", 1);
  ASSERT_TRUE(pr.ok());
  EXPECT_EQ(pr->labels, std::vector<std::string>{"bug"});
  EXPECT_TRUE(pr->draft);
  EXPECT_EQ(pr->state, PullRequestState::kMerged);
}

TEST(FakeForgeTest, FilesPerCommitAndPushCarriesThemOver) {
  FakeForge forge;
  forge.SetPullRequest(Pr());
  forge.SetFile("acme/shop", "a1", "eph.yaml", "v1");
  EXPECT_EQ(*forge.ReadFile("acme/shop", "a1", "eph.yaml"), "v1");
  EXPECT_EQ(forge.ReadFile("acme/shop", "a1", "other").status().code(),
            absl::StatusCode::kNotFound);
  forge.Push("acme/shop", 1, "b2");
  EXPECT_EQ(forge.GetPullRequest("acme/shop", 1)->head_sha, "b2");
  EXPECT_EQ(*forge.ReadFile("acme/shop", "b2", "eph.yaml"), "v1");
  forge.SetFile("acme/shop", "b2", "eph.yaml", "v2");
  EXPECT_EQ(*forge.ReadFile("acme/shop", "a1", "eph.yaml"), "v1");
  forge.RemoveFile("acme/shop", "b2", "eph.yaml");
  EXPECT_EQ(forge.ReadFile("acme/shop", "b2", "eph.yaml").status().code(),
            absl::StatusCode::kNotFound);
}

TEST(FakeForgeTest, ChecksAndChangedFiles) {
  FakeForge forge;
  forge.SetPullRequest(Pr());
  EXPECT_TRUE(forge.ListChecks("acme/shop", "a1")->empty());
  forge.SetCheck("acme/shop", "a1", "build", CheckState::kPending);
  forge.SetCheck("acme/shop", "a1", "build", CheckState::kSuccess);
  std::vector<CheckResult> checks = *forge.ListChecks("acme/shop", "a1");
  ASSERT_EQ(checks.size(), 1u);
  EXPECT_EQ(checks[0].state, CheckState::kSuccess);
  forge.SetChangedFiles("acme/shop", 1, {"a.go"});
  EXPECT_EQ(*forge.ListChangedFiles("acme/shop", 1), std::vector<std::string>{"a.go"});
}

TEST(FakeForgeTest, OneCommentPerMarker) {
  FakeForge forge;
  forge.SetPullRequest(Pr());
  const std::string m1 = "<!-- eph:environment=a -->";
  const std::string m2 = "<!-- eph:environment=b -->";
  ASSERT_TRUE(forge.UpsertComment("acme/shop", 1, m1, m1 + " pending").ok());
  ASSERT_TRUE(forge.UpsertComment("acme/shop", 1, m1, m1 + " ready").ok());
  ASSERT_TRUE(forge.UpsertComment("acme/shop", 1, m1, m1 + " ready").ok());
  ASSERT_TRUE(forge.UpsertComment("acme/shop", 1, m2, m2 + " pending").ok());
  EXPECT_EQ(forge.Comments("acme/shop", 1).size(), 2u);
  std::optional<FakeForge::Comment> c = forge.CommentWithMarker("acme/shop", 1, m1);
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->body, m1 + " ready");
  EXPECT_EQ(c->edits, 1);
  EXPECT_EQ(forge.UpsertComment("acme/shop", 1, m1, "no marker").code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(FakeForgeTest, DeploymentsKeepEveryStatus) {
  FakeForge forge;
  absl::StatusOr<int64_t> id = forge.CreateDeployment({"acme/shop", "a1", "env-a", "", true});
  ASSERT_TRUE(id.ok());
  ASSERT_TRUE(forge.SetDeploymentStatus("acme/shop", *id, {DeploymentState::kInProgress}).ok());
  ASSERT_TRUE(
      forge.SetDeploymentStatus("acme/shop", *id, {DeploymentState::kSuccess, "https://x", "ready"})
          .ok());
  EXPECT_EQ(forge.SetDeploymentStatus("acme/shop", *id + 1, {}).code(),
            absl::StatusCode::kNotFound);
  std::vector<FakeForge::Deployment> d = forge.Deployments("acme/shop");
  ASSERT_EQ(d.size(), 1u);
  ASSERT_EQ(d[0].statuses.size(), 2u);
  EXPECT_EQ(d[0].statuses[1].environment_url, "https://x");
}

TEST(FakeForgeTest, ScriptedFailuresAreConsumedInOrder) {
  FakeForge forge;
  forge.SetPullRequest(Pr());
  forge.FailNext(FakeForge::Method::kGetPullRequest, absl::UnavailableError("502"));
  forge.FailNext(FakeForge::Method::kGetPullRequest, absl::PermissionDeniedError("403"));
  EXPECT_EQ(forge.GetPullRequest("acme/shop", 1).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(forge.GetPullRequest("acme/shop", 1).status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(forge.GetPullRequest("acme/shop", 1).ok());
  EXPECT_EQ(forge.Calls(FakeForge::Method::kGetPullRequest), 3);
  EXPECT_EQ(forge.Writes(), 0);
}

TEST(ForgeTest, Names) {
  EXPECT_EQ(PullRequestStateName(PullRequestState::kMerged), "merged");
  EXPECT_EQ(CheckStateName(CheckState::kFailure), "failure");
  EXPECT_EQ(DeploymentStateName(DeploymentState::kInProgress), "in_progress");
}

}  // namespace
}  // namespace eph::forge
