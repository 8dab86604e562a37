#include "pkg/controller/decision.h"

#include <gtest/gtest.h>

namespace eph::controller {
namespace {

using forge::CheckResult;
using forge::CheckState;
using Want = Decision::Want;

config::ProjectConfig Config(std::vector<config::Trigger> triggers) {
  config::ProjectConfig c;
  c.name = "my-app";
  c.triggers = std::move(triggers);
  c.kubernetes = config::KubernetesSettings{};
  return c;
}

forge::PullRequest Pr(std::vector<std::string> labels) {
  forge::PullRequest pr;
  pr.repo = "acme/shop";
  pr.number = 1;
  pr.labels = std::move(labels);
  pr.head_sha = "abc";
  return pr;
}

struct Sources {
  std::vector<std::string> files;
  std::vector<CheckResult> checks;
  int file_calls = 0;
  int check_calls = 0;
  DecisionSources Get() {
    return {[this]() -> absl::StatusOr<std::vector<std::string>> {
              ++file_calls;
              return files;
            },
            [this]() -> absl::StatusOr<std::vector<CheckResult>> {
              ++check_calls;
              return checks;
            }};
  }
};

Decision Decide(const forge::PullRequest& pr, const config::ProjectConfig& c, Sources& s) {
  absl::StatusOr<Decision> d = DecideEnvironment(pr, c, s.Get());
  EXPECT_TRUE(d.ok()) << d.status();
  return d.ok() ? *d : Decision{};
}

TEST(DecisionTest, LabelDecides) {
  Sources s;
  const auto c = Config({{.labels = {"preview"}}});
  EXPECT_EQ(Decide(Pr({"bug", "preview"}), c, s).want, Want::kYes);
  const Decision no = Decide(Pr({"bug"}), c, s);
  EXPECT_EQ(no.want, Want::kNo);
  EXPECT_EQ(no.reason, "label preview removed");
  EXPECT_TRUE(no.label_absent);
  EXPECT_EQ(s.file_calls + s.check_calls, 0);  // nothing fetched that was not needed
}

TEST(DecisionTest, ClosedMergedAndForksComeFirst) {
  Sources s;
  const auto c = Config({{.labels = {"preview"}}});
  forge::PullRequest pr = Pr({"preview"});
  pr.state = forge::PullRequestState::kMerged;
  EXPECT_EQ(Decide(pr, c, s).reason, "pull request merged");
  pr.state = forge::PullRequestState::kClosed;
  EXPECT_EQ(Decide(pr, c, s).reason, "pull request closed");
  pr.state = forge::PullRequestState::kOpen;
  pr.from_fork = true;
  EXPECT_EQ(Decide(pr, c, s).reason, "pull request is from a fork");
  EXPECT_FALSE(Decide(pr, c, s).label_absent);
  auto allowed = c;
  allowed.environment.allow_forks = true;
  EXPECT_EQ(Decide(pr, allowed, s).want, Want::kYes);
}

TEST(DecisionTest, NoTriggersMeansTheDefaultLabel) {
  Sources s;
  EXPECT_EQ(Decide(Pr({"preview"}), Config({}), s).want, Want::kYes);
  EXPECT_EQ(Decide(Pr({}), Config({}), s).reason, "label preview removed");
}

TEST(DecisionTest, ChecksPendingMissingFailedAndGreen) {
  Sources s;
  const auto c = Config({{.labels = {"preview"}, .wait_for_checks = {"build", "test"}}});
  s.checks = {{"build", CheckState::kSuccess}};
  Decision d = Decide(Pr({"preview"}), c, s);
  EXPECT_EQ(d.want, Want::kWait);
  EXPECT_EQ(d.reason, "waiting for check test");
  s.checks = {{"build", CheckState::kSuccess}, {"test", CheckState::kPending}};
  EXPECT_EQ(Decide(Pr({"preview"}), c, s).want, Want::kWait);
  s.checks = {{"build", CheckState::kFailure}, {"test", CheckState::kPending}};
  d = Decide(Pr({"preview"}), c, s);
  EXPECT_EQ(d.want, Want::kNo);
  EXPECT_EQ(d.reason, "check build failed");
  s.checks = {{"build", CheckState::kSuccess},
              {"test", CheckState::kSuccess},
              {"lint", CheckState::kFailure}};  // not waited for
  EXPECT_EQ(Decide(Pr({"preview"}), c, s).want, Want::kYes);
}

TEST(DecisionTest, EitherTriggerMayCreate) {
  Sources s;
  const auto c = Config({{.labels = {"preview"}, .skip_labels = {"wip"}},
                         {.labels = {"preview-draft"}, .include_drafts = true}});
  forge::PullRequest pr = Pr({"preview", "wip"});
  EXPECT_EQ(Decide(pr, c, s).reason, "label wip added");
  pr.labels.push_back("preview-draft");
  pr.draft = true;
  EXPECT_EQ(Decide(pr, c, s).want, Want::kYes);
  pr.labels = {"preview"};
  EXPECT_EQ(Decide(pr, c, s).reason, "pull request is a draft");
  EXPECT_EQ(Decide(Pr({}), c, s).reason, "labels preview, preview-draft removed");
}

TEST(DecisionTest, PathsNeedAMatchingChangedFile) {
  Sources s;
  const auto c = Config({{.labels = {"preview"}, .paths = {"services/**", "!services/docs"}}});
  s.files = {"README.md", "services/docs/x.md"};
  EXPECT_EQ(Decide(Pr({"preview"}), c, s).reason, "no changed file matches triggers[].paths");
  s.files.push_back("services/api/main.go");
  EXPECT_EQ(Decide(Pr({"preview"}), c, s).want, Want::kYes);
}

TEST(DecisionTest, SourceErrorsPassThrough) {
  const auto c = Config({{.labels = {"preview"}, .wait_for_checks = {"build"}}});
  DecisionSources broken{nullptr, []() -> absl::StatusOr<std::vector<CheckResult>> {
                           return absl::UnavailableError("github down");
                         }};
  EXPECT_EQ(DecideEnvironment(Pr({"preview"}), c, broken).status().code(),
            absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace eph::controller
