// GitHubForge against the GitHub stand-in: every Forge method, both authentication modes, token
// caching, rate limits and error mapping. Each test ends with the stand-in reporting no request
// that GitHub's OpenAPI description would refuse.
#include "pkg/forge/github/github_forge.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>

#include "pkg/base/clock.h"
#include "test/github/standin_process.h"
#include "test/support/process.h"
#include "test/support/testbed.h"

namespace eph::forge::github {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;
using json = nlohmann::json;
using namespace std::chrono_literals;

constexpr char kEphYaml[] = "version: 1\nname: shop\n";

class GitHubForgeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(standin_.url().empty());
    clock_ = std::make_unique<FakeClock>(standin_.Now());
  }
  void TearDown() override { EXPECT_EQ(standin_.Violations(), json::array()); }

  std::unique_ptr<GitHubForge> PatForge(std::string api_suffix = "") {
    auto forge = GitHubForge::Create({.api_url = standin_.url() + api_suffix,
                                      .token = testing::kStandInToken,
                                      .clock = clock_.get()});
    EXPECT_TRUE(forge.ok()) << forge.status();
    return forge.ok() ? std::move(*forge) : nullptr;
  }

  // A repository with eph.yaml on main and pull request #7 from branch feature-7 changing two
  // files, labelled preview.
  std::string MakeRepoWithPullRequest(const std::string& repo = "shop") {
    standin_.Request("POST", "/_standin/repos",
                     {{"owner", "acme"},
                      {"repo", repo},
                      {"files", {{"eph.yaml", kEphYaml}, {"src/app.js", "v1"}}}});
    json commit = standin_.Request(
        "POST", "/_standin/repos/acme/" + repo + "/commits",
        {{"files", {{"src/app.js", "v2"}, {"docs/guide.md", "new"}}}, {"branch", nullptr}});
    const std::string sha = commit.value("sha", "");
    standin_.Request("PUT", "/_standin/repos/acme/" + repo + "/pulls/7",
                     {{"labels", {"preview", "area/web"}},
                      {"head_sha", sha},
                      {"head_ref", "feature-7"},
                      {"user", "octocat"}});
    return sha;
  }

  int CountRequests(const std::string& path_regex) {
    int n = 0;
    for (const json& r : standin_.Requests()) {
      if (std::regex_search(r.value("path", ""), std::regex(path_regex))) ++n;
    }
    return n;
  }

  testing::StandInProcess standin_;
  std::unique_ptr<FakeClock> clock_;
};

// The default branch's commit, where the project's policy (its eph.yaml) is read (issue 16).
TEST_F(GitHubForgeTest, ResolvesABranchToItsCommit) {
  const std::string head = MakeRepoWithPullRequest();
  auto forge = PatForge();
  absl::StatusOr<std::string> main_sha = forge->ResolveBranch("acme/shop", "main");
  ASSERT_TRUE(main_sha.ok()) << main_sha.status();
  EXPECT_EQ(main_sha->size(), 40u);
  EXPECT_NE(*main_sha, head);  // the pull request's commit is not on main
  auto policy = forge->ReadFile("acme/shop", *main_sha, "eph.yaml");
  ASSERT_TRUE(policy.ok()) << policy.status();
  EXPECT_EQ(*policy, kEphYaml);
  // A push to main moves it.
  json pushed = standin_.Request("POST", "/_standin/repos/acme/shop/commits",
                                 {{"files", {{"eph.yaml", "moved"}}}, {"branch", "main"}});
  EXPECT_EQ(*forge->ResolveBranch("acme/shop", "main"), pushed.value("sha", ""));
  EXPECT_EQ(forge->ResolveBranch("acme/shop", "no-such-branch").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(CountRequests("/git/ref/heads/main$"), 2);
}

TEST_F(GitHubForgeTest, ReadsThePullRequestItsFilesAndChecks) {
  const std::string sha = MakeRepoWithPullRequest();
  auto forge = PatForge();
  auto pr = forge->GetPullRequest("acme/shop", 7);
  ASSERT_TRUE(pr.ok()) << pr.status();
  EXPECT_EQ(pr->repo, "acme/shop");
  EXPECT_EQ(pr->number, 7);
  EXPECT_EQ(pr->state, PullRequestState::kOpen);
  EXPECT_THAT(pr->labels, UnorderedElementsAre("preview", "area/web"));
  EXPECT_EQ(pr->head_sha, sha);
  EXPECT_EQ(pr->head_branch, "feature-7");
  EXPECT_EQ(pr->base_branch, "main");
  EXPECT_EQ(pr->default_branch, "main");
  EXPECT_FALSE(pr->draft);
  EXPECT_FALSE(pr->from_fork);
  EXPECT_EQ(pr->author, "octocat");

  auto file = forge->ReadFile("acme/shop", sha, "eph.yaml");
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ(*file, kEphYaml);
  auto changed_file = forge->ReadFile("acme/shop", sha, "src/app.js");
  ASSERT_TRUE(changed_file.ok()) << changed_file.status();
  EXPECT_EQ(*changed_file, "v2");
  EXPECT_EQ(forge->ReadFile("acme/shop", sha, "missing.yaml").status().code(),
            absl::StatusCode::kNotFound);

  auto files = forge->ListChangedFiles("acme/shop", 7);
  ASSERT_TRUE(files.ok()) << files.status();
  EXPECT_THAT(*files, UnorderedElementsAre("src/app.js", "docs/guide.md"));

  standin_.Request("PUT", "/_standin/repos/acme/shop/checks/" + sha,
                   {{"check_runs",
                     {{{"name", "build"}, {"status", "completed"}, {"conclusion", "success"}},
                      {{"name", "lint"}, {"status", "in_progress"}},
                      {{"name", "e2e"}, {"status", "completed"}, {"conclusion", "timed_out"}},
                      {{"name", "docs"}, {"status", "completed"}, {"conclusion", "skipped"}}}},
                    {"statuses", {{{"context", "ci/legacy"}, {"state", "error"}}}}});
  auto checks = forge->ListChecks("acme/shop", sha);
  ASSERT_TRUE(checks.ok()) << checks.status();
  std::map<std::string, CheckState> by_name;
  for (const CheckResult& c : *checks) by_name[c.name] = c.state;
  EXPECT_EQ(by_name, (std::map<std::string, CheckState>{{"build", CheckState::kSuccess},
                                                        {"lint", CheckState::kPending},
                                                        {"e2e", CheckState::kFailure},
                                                        {"docs", CheckState::kSuccess},
                                                        {"ci/legacy", CheckState::kFailure}}));
  // Every request carried GitHub's media type, API version and a User-Agent.
  for (const json& r : standin_.Requests()) {
    EXPECT_EQ(r["headers"].value("accept", ""), "application/vnd.github+json");
    EXPECT_EQ(r["headers"].value("x-github-api-version", ""), "2022-11-28");
    EXPECT_EQ(r["headers"].value("user-agent", ""), "eph");
  }
}

TEST_F(GitHubForgeTest, FetchesTheRepositoryAtACommitThroughTheTarballRedirect) {
  const std::string sha = MakeRepoWithPullRequest();
  const std::string deep = "services/" + std::string(110, 's') + "/k8s/app.yaml";
  json commit = standin_.Request(
      "POST", "/_standin/repos/acme/shop/commits",
      {{"files", {{deep, "kind: Deployment\n"}}}, {"parent", sha}, {"branch", nullptr}});
  auto forge = PatForge("/api/v3");
  const std::string dir = testing::MakeTempDir("fetch-source");
  auto fetched = forge->FetchSource("acme/shop", commit["sha"], dir);
  ASSERT_TRUE(fetched.ok()) << fetched;
  auto read = [](const std::string& path) {
    std::ifstream in(path);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  EXPECT_EQ(read(dir + "/eph.yaml"), kEphYaml);
  EXPECT_EQ(read(dir + "/src/app.js"), "v2");
  EXPECT_EQ(read(dir + "/docs/guide.md"), "new");
  EXPECT_EQ(read(dir + "/" + deep), "kind: Deployment\n");
  const std::string missing = testing::MakeTempDir("fetch-missing");
  EXPECT_EQ(forge->FetchSource("acme/shop", std::string(40, 'f'), missing).code(),
            absl::StatusCode::kNotFound);
  standin_.Request("POST", "/_standin/fail",
                   {{"path", "^/_codeload/"}, {"preset", "server-error"}});
  EXPECT_EQ(forge->FetchSource("acme/shop", sha, missing).code(), absl::StatusCode::kUnavailable);
  standin_.Request("DELETE", "/_standin/violations");  // the unknown commit was on purpose
}

TEST_F(GitHubForgeTest, WorksThroughTheEnterpriseServerPrefix) {
  MakeRepoWithPullRequest();
  auto forge = PatForge("/api/v3/");
  auto pr = forge->GetPullRequest("acme/shop", 7);
  ASSERT_TRUE(pr.ok()) << pr.status();
  auto files = forge->ListChangedFiles("acme/shop", 7);  // pagination links under /api/v3
  ASSERT_TRUE(files.ok()) << files.status();
  EXPECT_EQ(files->size(), 2u);
}

TEST_F(GitHubForgeTest, PaginatesChangedFiles) {
  standin_.Request("POST", "/_standin/repos",
                   {{"owner", "acme"}, {"repo", "big"}, {"files", {{"eph.yaml", kEphYaml}}}});
  json files = json::object();
  for (int i = 0; i < 250; ++i) files["f/" + std::to_string(i) + ".txt"] = "x";
  json commit = standin_.Request("POST", "/_standin/repos/acme/big/commits",
                                 {{"files", files}, {"branch", nullptr}});
  standin_.Request("PUT", "/_standin/repos/acme/big/pulls/1",
                   {{"head_sha", commit["sha"]}, {"head_ref", "many"}});
  auto forge = PatForge();
  auto changed = forge->ListChangedFiles("acme/big", 1);
  ASSERT_TRUE(changed.ok()) << changed.status();
  EXPECT_EQ(changed->size(), 250u);
  EXPECT_EQ(CountRequests("/pulls/1/files$"), 3);
}

TEST_F(GitHubForgeTest, ListsOpenPullRequestsNewestFirstAcrossPages) {
  const std::string sha = MakeRepoWithPullRequest();
  for (int n = 10; n < 110; ++n) {
    standin_.Request("PUT", "/_standin/repos/acme/shop/pulls/" + std::to_string(n),
                     {{"head_sha", sha}, {"head_ref", "b" + std::to_string(n)}});
  }
  standin_.Request("PUT", "/_standin/repos/acme/shop/pulls/8",
                   {{"head_sha", sha}, {"fork", true}, {"user", "stranger"}, {"state", "closed"}});
  auto forge = PatForge();
  auto open = forge->ListOpenPullRequests("acme/shop");
  ASSERT_TRUE(open.ok()) << open.status();
  ASSERT_EQ(open->size(), 101u);  // #7 and #10..#109; #8 is closed
  EXPECT_EQ(open->front().number, 109);
  EXPECT_EQ(open->back().number, 7);
  EXPECT_THAT(open->back().labels, UnorderedElementsAre("preview", "area/web"));
  EXPECT_EQ(open->back().head_sha, sha);
  EXPECT_EQ(open->back().state, PullRequestState::kOpen);
  EXPECT_EQ(CountRequests("/repos/acme/shop/pulls$"), 2);
  EXPECT_EQ(forge->ListOpenPullRequests("acme/none").status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(GitHubForgeTest, ForkClosedAndMergedPullRequests) {
  MakeRepoWithPullRequest();
  standin_.Request("PUT", "/_standin/repos/acme/shop/pulls/8",
                   {{"fork", true}, {"user", "stranger"}, {"draft", true}});
  auto forge = PatForge();
  auto fork = forge->GetPullRequest("acme/shop", 8);
  ASSERT_TRUE(fork.ok()) << fork.status();
  EXPECT_TRUE(fork->from_fork);
  EXPECT_TRUE(fork->draft);
  standin_.Request("PUT", "/_standin/repos/acme/shop/pulls/7", {{"state", "merged"}});
  EXPECT_EQ(forge->GetPullRequest("acme/shop", 7)->state, PullRequestState::kMerged);
  standin_.Request("PUT", "/_standin/repos/acme/shop/pulls/8", {{"state", "closed"}});
  EXPECT_EQ(forge->GetPullRequest("acme/shop", 8)->state, PullRequestState::kClosed);
  EXPECT_EQ(forge->GetPullRequest("acme/shop", 99).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(GitHubForgeTest, StickyCommentIsCreatedOnceAndEditedInPlace) {
  MakeRepoWithPullRequest();
  standin_.Request("POST", "/_standin/repos/acme/shop/issues/7/comments",
                   {{"user", "octocat"}, {"body", "looks good"}});
  auto forge = PatForge();
  const std::string marker = "<!-- eph:environment=shop-pr-7 -->";
  ASSERT_TRUE(forge->UpsertComment("acme/shop", 7, marker, marker + "\nPending").ok());
  ASSERT_TRUE(forge->UpsertComment("acme/shop", 7, marker, marker + "\nReady").ok());
  ASSERT_TRUE(forge->UpsertComment("acme/shop", 7, marker, marker + "\nReady").ok());
  const std::string other = "<!-- eph:environment=shop-pr-7-api -->";
  ASSERT_TRUE(forge->UpsertComment("acme/shop", 7, other, other + "\nPending").ok());
  std::vector<std::string> bodies;
  const json state = standin_.State();
  for (const json& c : state["comments"]) bodies.push_back(c.value("body", ""));
  EXPECT_THAT(bodies, ElementsAre("looks good", marker + "\nReady", other + "\nPending"));
  EXPECT_EQ(CountRequests("/issues/comments/\\d+$"), 1);  // one PATCH; the repeat changed nothing
  EXPECT_EQ(forge->UpsertComment("acme/shop", 7, marker, "no marker").code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(GitHubForgeTest, DeploymentWithStatusesEvenWhileChecksAreRed) {
  const std::string sha = MakeRepoWithPullRequest();
  standin_.Request(
      "PUT", "/_standin/repos/acme/shop/checks/" + sha,
      {{"check_runs", {{{"name", "build"}, {"status", "completed"}, {"conclusion", "failure"}}}}});
  auto forge = PatForge();
  auto id = forge->CreateDeployment({.repo = "acme/shop",
                                     .ref = sha,
                                     .environment = "shop-pr-7",
                                     .description = std::string(300, 'd')});
  ASSERT_TRUE(id.ok()) << id.status();
  for (DeploymentStatus status :
       {DeploymentStatus{DeploymentState::kInProgress, "", "deploying"},
        DeploymentStatus{DeploymentState::kSuccess, "https://shop-pr-7.preview.example.com",
                         std::string(200, 'x')},
        DeploymentStatus{DeploymentState::kFailure, "", "image pull failed"},
        DeploymentStatus{DeploymentState::kInactive, "", "pull request closed"}}) {
    auto set = forge->SetDeploymentStatus("acme/shop", *id, status);
    EXPECT_TRUE(set.ok()) << set;
  }
  json deployments = standin_.State()["deployments"];
  ASSERT_EQ(deployments.size(), 1u);
  const json& d = deployments[0];
  EXPECT_EQ(d["environment"], "shop-pr-7");
  EXPECT_EQ(d["sha"], sha);
  EXPECT_EQ(d["transient_environment"], true);
  EXPECT_EQ(d["production_environment"], false);
  std::vector<std::string> states;
  for (const json& s : d["statuses"]) states.push_back(s.value("state", ""));
  EXPECT_THAT(states, ElementsAre("in_progress", "success", "failure", "inactive"));
  EXPECT_EQ(d["statuses"][1]["environment_url"], "https://shop-pr-7.preview.example.com");
  EXPECT_EQ(forge->SetDeploymentStatus("acme/shop", 999999, {}).code(),
            absl::StatusCode::kNotFound);
}

TEST_F(GitHubForgeTest, ErrorsMapToCanonicalCodes) {
  MakeRepoWithPullRequest();
  auto bad =
      GitHubForge::Create({.api_url = standin_.url(), .token = "ghp_wrong", .clock = clock_.get()});
  ASSERT_TRUE(bad.ok());
  EXPECT_EQ((*bad)->GetPullRequest("acme/shop", 7).status().code(),
            absl::StatusCode::kUnauthenticated);
  standin_.Request("DELETE", "/_standin/violations");  // the wrong token was on purpose

  auto forge = PatForge();
  standin_.Request("POST", "/_standin/fail", {{"path", "/pulls/7$"}, {"preset", "server-error"}});
  EXPECT_EQ(forge->GetPullRequest("acme/shop", 7).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(forge->GetPullRequest("acme/shop", 7).ok());  // a 502 does not block the client
  standin_.Request("POST", "/_standin/fail",
                   {{"path", "/pulls/7$"}, {"status", 403}, {"body", {{"message", "nope"}}}});
  auto denied = forge->GetPullRequest("acme/shop", 7);
  EXPECT_EQ(denied.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(denied.status().message(), HasSubstr("nope"));
  EXPECT_TRUE(forge->GetPullRequest("acme/shop", 7).ok());  // an ordinary 403 is no rate limit
  EXPECT_EQ(forge->GetPullRequest("acme/../x", 7).status().code(),
            absl::StatusCode::kInvalidArgument);
  auto unreachable =
      GitHubForge::Create({.api_url = "http://127.0.0.1:1", .token = "t", .clock = clock_.get()});
  EXPECT_EQ((*unreachable)->GetPullRequest("acme/shop", 7).status().code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(GitHubForge::Create({.api_url = standin_.url()}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(GitHubForgeTest, RateLimitFailsFastWithoutAStormUntilTheReset) {
  MakeRepoWithPullRequest();
  auto forge = PatForge();
  standin_.Request("POST", "/_standin/fail",
                   {{"path", "/pulls/7$"}, {"preset", "rate-limit"}, {"reset_in", 120}});
  const int before = static_cast<int>(standin_.Requests().size());
  auto limited = forge->GetPullRequest("acme/shop", 7);
  EXPECT_EQ(limited.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(limited.status().message(), HasSubstr("rate limit"));
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 50; ++i) {
    EXPECT_EQ(forge->GetPullRequest("acme/shop", 7).status().code(),
              absl::StatusCode::kUnavailable);
    EXPECT_EQ(forge->UpsertComment("acme/shop", 7, "<!-- m -->", "<!-- m -->").code(),
              absl::StatusCode::kUnavailable);
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);                 // nobody slept
  EXPECT_EQ(standin_.Requests().size(), static_cast<size_t>(before + 1));  // no storm
  clock_->Advance(100s);
  EXPECT_EQ(forge->GetPullRequest("acme/shop", 7).status().code(), absl::StatusCode::kUnavailable);
  clock_->Advance(25s);
  EXPECT_TRUE(forge->GetPullRequest("acme/shop", 7).ok());
  EXPECT_EQ(standin_.Requests().size(), static_cast<size_t>(before + 2));
}

TEST_F(GitHubForgeTest, SecondaryLimitsHonourRetryAfter) {
  MakeRepoWithPullRequest();
  auto forge = PatForge();
  for (const char* preset : {"secondary-rate-limit", "too-many-requests"}) {
    standin_.Request("POST", "/_standin/fail",
                     {{"path", "/pulls/7$"}, {"preset", preset}, {"reset_in", 30}});
    EXPECT_EQ(forge->GetPullRequest("acme/shop", 7).status().code(),
              absl::StatusCode::kUnavailable);
    const size_t sent = standin_.Requests().size();
    EXPECT_EQ(forge->ListChangedFiles("acme/shop", 7).status().code(),
              absl::StatusCode::kUnavailable);
    EXPECT_EQ(standin_.Requests().size(), sent);
    clock_->Advance(31s);
    EXPECT_TRUE(forge->GetPullRequest("acme/shop", 7).ok()) << preset;
  }
}

// GitHub App mode: a fresh RSA key, the stand-in holding its public half.
class GitHubAppForgeTest : public ::testing::Test {
 protected:
  static std::string KeyDir() {
    static const std::string dir = [] {
      std::string d = testing::MakeTempDir("github-app-key");
      auto gen = testing::RunCommand({EPH_OPENSSL, "genpkey", "-algorithm", "RSA", "-pkeyopt",
                                      "rsa_keygen_bits:2048", "-out", d + "/app.pem"});
      EXPECT_EQ(gen.exit_code, 0) << gen.err;
      auto pub = testing::RunCommand(
          {EPH_OPENSSL, "pkey", "-in", d + "/app.pem", "-pubout", "-out", d + "/app.pub"});
      EXPECT_EQ(pub.exit_code, 0) << pub.err;
      return d;
    }();
    return dir;
  }
  static std::string ReadAll(const std::string& path) {
    std::ifstream in(path);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

  GitHubAppForgeTest()
      : standin_({"--app-id", "4242", "--app-public-key", KeyDir() + "/app.pub"}) {}

  void SetUp() override {
    ASSERT_FALSE(standin_.url().empty());
    clock_ = std::make_unique<FakeClock>(standin_.Now());
    standin_.Request("POST", "/_standin/repos",
                     {{"owner", "acme"}, {"repo", "shop"}, {"files", {{"eph.yaml", kEphYaml}}}});
    standin_.Request("PUT", "/_standin/repos/acme/shop/pulls/3", {{"labels", {"preview"}}});
  }
  void TearDown() override { EXPECT_EQ(standin_.Violations(), json::array()); }

  std::unique_ptr<GitHubForge> AppForge() {
    auto forge = GitHubForge::Create({.api_url = standin_.url(),
                                      .app_id = "4242",
                                      .private_key_pem = ReadAll(KeyDir() + "/app.pem"),
                                      .clock = clock_.get()});
    EXPECT_TRUE(forge.ok()) << forge.status();
    return forge.ok() ? std::move(*forge) : nullptr;
  }
  int TokensIssued() {
    int n = 0;
    for (const json& r : standin_.Requests()) {
      if (std::regex_search(r.value("path", ""), std::regex("/access_tokens$"))) ++n;
    }
    return n;
  }

  testing::StandInProcess standin_;
  std::unique_ptr<FakeClock> clock_;
};

TEST_F(GitHubAppForgeTest, MintsOneInstallationTokenAndRenewsItBeforeExpiry) {
  auto forge = AppForge();
  for (int i = 0; i < 10; ++i) {
    auto pr = forge->GetPullRequest("acme/shop", 3);
    ASSERT_TRUE(pr.ok()) << pr.status();
    EXPECT_THAT(pr->labels, ElementsAre("preview"));
  }
  ASSERT_TRUE(forge->UpsertComment("acme/shop", 3, "<!-- m -->", "<!-- m -->\nhi").ok());
  EXPECT_EQ(TokensIssued(), 1);
  // 54 minutes on: still more than five minutes left, the token is reused.
  standin_.AdvanceClock(54min);
  clock_->Advance(54min);
  ASSERT_TRUE(forge->GetPullRequest("acme/shop", 3).ok());
  EXPECT_EQ(TokensIssued(), 1);
  // 56 minutes on: within five minutes of expiry, renewed before GitHub would refuse it.
  standin_.AdvanceClock(2min);
  clock_->Advance(2min);
  ASSERT_TRUE(forge->GetPullRequest("acme/shop", 3).ok());
  EXPECT_EQ(TokensIssued(), 2);
  // The comment was written by the App's bot.
  json comments = standin_.State()["comments"];
  ASSERT_EQ(comments.size(), 1u);
  EXPECT_EQ(comments[0]["user"]["login"], "eph-preview[bot]");
}

TEST_F(GitHubAppForgeTest, ConfigCheckRunCarriesEveryAnnotationAndIsNeverWaitedOn) {
  auto forge = AppForge();
  auto pr = forge->GetPullRequest("acme/shop", 3);
  ASSERT_TRUE(pr.ok()) << pr.status();
  ConfigCheck check{.repo = "acme/shop",
                    .sha = pr->head_sha,
                    .ok = false,
                    .title = "eph.yaml: 60 errors",
                    .summary = "Fix eph.yaml to get a preview environment."};
  for (int i = 1; i <= 60; ++i) {
    check.annotations.push_back({"eph.yaml", i, 0, "unknown key `k" + std::to_string(i) + "`"});
  }
  check.annotations.push_back({"eph.yaml", 0, 0, "whole-file problem"});
  ASSERT_TRUE(forge->ReportConfigCheck(check).ok());
  const json state = standin_.State();
  ASSERT_EQ(state["check_runs"].size(), 1u);
  const json& run = state["check_runs"][0];
  EXPECT_EQ(run["name"], "eph");
  EXPECT_EQ(run["conclusion"], "failure");
  EXPECT_EQ(run["head_sha"], pr->head_sha);
  ASSERT_EQ(run["output"]["annotations"].size(), 61u);
  EXPECT_EQ(run["output"]["annotations"][6]["start_line"], 7);
  EXPECT_EQ(run["output"]["annotations"][6]["message"], "unknown key `k7`");
  EXPECT_EQ(run["output"]["annotations"][60]["start_line"], 1);
  // Eph's own check never holds up wait_for_checks.
  auto checks = forge->ListChecks("acme/shop", pr->head_sha);
  ASSERT_TRUE(checks.ok()) << checks.status();
  EXPECT_TRUE(checks->empty());
}

TEST_F(GitHubForgeTest, ConfigCheckNeedsAnAppAndSendsNothingWithAToken) {
  const std::string sha = MakeRepoWithPullRequest();
  auto forge = PatForge();
  const size_t before = standin_.Requests().size();
  EXPECT_EQ(forge->ReportConfigCheck({.repo = "acme/shop", .sha = sha, .ok = false}).code(),
            absl::StatusCode::kUnimplemented);
  EXPECT_EQ(standin_.Requests().size(), before);
}

TEST_F(GitHubAppForgeTest, ManyThreadsShareOneToken) {
  auto forge = AppForge();
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 3; ++i) {
        if (!forge->GetPullRequest("acme/shop", 3).ok()) ++failures;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures, 0);
  EXPECT_EQ(TokensIssued(), 1);
}

TEST_F(GitHubAppForgeTest, NotInstalledIsAPreconditionAndABadKeyIsRefused) {
  standin_.Request(
      "POST", "/_standin/repos",
      {{"owner", "other"}, {"repo", "lib"}, {"files", {{"a", "b"}}}, {"installed", false}});
  auto forge = AppForge();
  auto pr = forge->GetPullRequest("other/lib", 1);
  EXPECT_EQ(pr.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(pr.status().message(), HasSubstr("not installed"));
  EXPECT_EQ(GitHubForge::Create(
                {.api_url = standin_.url(), .app_id = "4242", .private_key_pem = "not a key"})
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
}

// ephd names the key's file (EPH_GITHUB_PRIVATE_KEY_FILE); the forge reads it.
TEST_F(GitHubAppForgeTest, TheKeyIsReadFromItsFileAndAMissingOneIsNamed) {
  auto forge = GitHubForge::Create({.api_url = standin_.url(),
                                    .app_id = "4242",
                                    .private_key_file = KeyDir() + "/app.pem",
                                    .clock = clock_.get()});
  ASSERT_TRUE(forge.ok()) << forge.status();
  EXPECT_TRUE((*forge)->GetPullRequest("acme/shop", 3).ok());

  auto unreadable = GitHubForge::Create(
      {.api_url = standin_.url(), .app_id = "4242", .private_key_file = "/nonexistent/app.pem"});
  EXPECT_EQ(unreadable.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(unreadable.status().message(),
              HasSubstr("cannot read the GitHub App private key /nonexistent/app.pem"));
  auto none = GitHubForge::Create({.api_url = standin_.url(), .app_id = "4242"});
  EXPECT_EQ(none.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(none.status().message(), HasSubstr("EPH_GITHUB_PRIVATE_KEY_FILE"));
}

}  // namespace
}  // namespace eph::forge::github
