// The reconciler with the real GitHub client against the stand-in (a fake provider stands in
// for Kubernetes): a labelled pull request waits for its check, becomes a ready environment
// whose sticky comment and deployment say so, and is destroyed when the pull request closes.
// Also the number of GitHub API calls one environment costs, for docs/github.md.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>

#include "pkg/base/random.h"
#include "pkg/controller/reconciler.h"
#include "pkg/workkey/work_key.h"
#include "pkg/forge/github/github_forge.h"
#include "pkg/providers/fake_provider.h"
#include "pkg/state/store.h"
#include "test/github/standin_process.h"
#include "test/support/process.h"
#include "test/support/testbed.h"

namespace eph {
namespace {

using ::testing::HasSubstr;
using json = nlohmann::json;

constexpr char kConfig[] =
    "version: \"1.0\"\n"
    "name: shop\n"
    "triggers:\n"
    "  - type: pr_label\n"
    "    labels: [\"preview\"]\n"
    "    wait_for_checks: [\"build\"]\n"
    "kubernetes:\n"
    "  manifests: [k8s]\n";

std::vector<std::string> DeploymentStates(const json& state) {
  std::vector<std::string> out;
  for (const json& d : state["deployments"]) {
    for (const json& s : d["statuses"]) out.push_back(s.value("state", ""));
  }
  return out;
}

std::string Comment(const json& state) {
  for (const json& c : state["comments"]) {
    if (c.value("body", "").find("<!-- eph:environment=") != std::string::npos) {
      return c.value("body", "");
    }
  }
  return "";
}

TEST(ReconcilerGitHubTest, OneEnvironmentsLifeOnGitHubAndWhatItCosts) {
  testing::StandInProcess standin;
  ASSERT_FALSE(standin.url().empty());
  json repo = standin.Request(
      "POST", "/_standin/repos",
      {{"owner", "acme"},
       {"repo", "shop"},
       {"files", {{"eph.yaml", kConfig}, {"k8s/deployment.yaml", "kind: Deployment\n"}}}});
  json pr = standin.Request("PUT", "/_standin/repos/acme/shop/pulls/5",
                            {{"labels", {"preview"}}, {"head_ref", "feature-5"}});
  const std::string sha = pr["head"]["sha"];
  standin.Request("PUT", "/_standin/repos/acme/shop/checks/" + sha,
                  {{"check_runs", {{{"name", "build"}, {"status", "in_progress"}}}}});

  FakeClock clock(standin.Now());
  SeededRandom random(3);
  auto store = state::OpenStore("sqlite:" + testing::MakeTempDir("reconciler-github") + "/eph.db");
  ASSERT_TRUE(store.ok()) << store.status();
  providers::ProviderRegistry registry;
  auto fake = std::make_unique<providers::FakeProvider>("kubernetes");
  providers::FakeProvider* provider = fake.get();
  ASSERT_TRUE(registry.Add(std::move(fake)).ok());
  auto github = forge::github::GitHubForge::Create(
      {.api_url = standin.url(), .token = testing::kStandInToken, .clock = &clock});
  ASSERT_TRUE(github.ok()) << github.status();
  controller::ReconcilerOptions options;
  options.lifecycle.base_domain = "preview.example.com";
  controller::EnvironmentReconciler reconciler(**store, **github, registry, clock, random, options);
  const std::string key = PullRequestKey("acme/shop", 5);

  // The check is still running: no environment, nothing written on the pull request.
  auto waiting = reconciler.Reconcile(key);
  ASSERT_TRUE(waiting.ok()) << waiting.status();
  EXPECT_THAT(waiting->summary, HasSubstr("build"));
  const size_t wait_calls = standin.Requests().size();
  EXPECT_EQ(Comment(standin.State()), "");

  standin.Request(
      "PUT", "/_standin/repos/acme/shop/checks/" + sha,
      {{"check_runs", {{{"name", "build"}, {"status", "completed"}, {"conclusion", "success"}}}}});
  auto created = reconciler.Reconcile(key);
  ASSERT_TRUE(created.ok()) << created.status();
  auto live = (*store)->FindLiveEnvironment("acme/shop", 5);
  ASSERT_TRUE(live.ok() && live->has_value());
  const state::Environment env = **live;
  EXPECT_EQ(env.state, state::EnvState::kReady) << env.reason;
  // The provider rendered from the commit's files.
  auto applied = provider->LastApply(env.name);
  ASSERT_TRUE(applied.has_value());
  EXPECT_FALSE(applied->source_dir.empty());
  json state = standin.State();
  EXPECT_THAT(Comment(state), HasSubstr(env.url));
  EXPECT_EQ(DeploymentStates(state), std::vector<std::string>{"success"});
  EXPECT_EQ(state["deployments"][0]["statuses"][0]["environment_url"], env.url);
  const size_t create_calls = standin.Requests().size() - wait_calls;

  // A resync of a ready environment with nothing new.
  ASSERT_TRUE(reconciler.Reconcile(key).ok());
  const size_t resync_calls = standin.Requests().size() - wait_calls - create_calls;

  standin.Request("PUT", "/_standin/repos/acme/shop/pulls/5", {{"state", "closed"}});
  auto closed = reconciler.Reconcile(key);
  ASSERT_TRUE(closed.ok()) << closed.status();
  state = standin.State();
  EXPECT_THAT(Comment(state), HasSubstr("pull request closed"));
  EXPECT_EQ(DeploymentStates(state), (std::vector<std::string>{"success", "inactive"}));
  const size_t total = standin.Requests().size();
  const size_t destroy_calls = total - wait_calls - create_calls - resync_calls;

  std::map<std::string, int> by_operation;
  for (const json& r : standin.Requests()) {
    ++by_operation[r.value("method", "") + " " + r.value("path", "")];
  }
  std::printf(
      "GitHub API calls: waiting on a check %zu, create to ready %zu, idle resync %zu, "
      "destroy %zu, total %zu\n",
      wait_calls, create_calls, resync_calls, destroy_calls, total);
  for (const auto& [op, n] : by_operation) std::printf("  %3d  %s\n", n, op.c_str());
  // docs/github.md quotes these; change both together.
  // Each pass that reads eph.yaml reads the policy too: the default branch's ref and eph.yaml.
  EXPECT_EQ(wait_calls, 6u);
  EXPECT_EQ(create_calls, 12u);  // the tarball and its codeload redirect count as two
  EXPECT_EQ(resync_calls, 6u);
  EXPECT_EQ(destroy_calls, 4u);
  EXPECT_EQ(standin.Violations(), json::array());
}

// With App credentials, a broken eph.yaml shows as a failed `eph` check run annotated at the
// offending line, besides the failed environment and its comment.
TEST(ReconcilerGitHubTest, BrokenConfigBecomesAnAnnotatedCheckRunWithAnApp) {
  const std::string keys = testing::MakeTempDir("reconciler-github-app");
  ASSERT_EQ(testing::RunCommand({EPH_OPENSSL, "genpkey", "-algorithm", "RSA", "-pkeyopt",
                                 "rsa_keygen_bits:2048", "-out", keys + "/app.pem"})
                .exit_code,
            0);
  ASSERT_EQ(testing::RunCommand({EPH_OPENSSL, "pkey", "-in", keys + "/app.pem", "-pubout", "-out",
                                 keys + "/app.pub"})
                .exit_code,
            0);
  testing::StandInProcess standin({"--app-id", "77", "--app-public-key", keys + "/app.pub"});
  ASSERT_FALSE(standin.url().empty());
  standin.Request("POST", "/_standin/repos",
                  {{"owner", "acme"},
                   {"repo", "shop"},
                   {"files",
                    {{"eph.yaml",
                      "version: \"1.0\"\nname: shop\nenvironment:\n  tll: 72h\n"
                      "kubernetes:\n  manifests: [k8s]\n"}}}});
  json pr = standin.Request("PUT", "/_standin/repos/acme/shop/pulls/9", {{"labels", {"preview"}}});
  std::ifstream in(keys + "/app.pem");
  const std::string pem(std::istreambuf_iterator<char>(in), {});

  FakeClock clock(standin.Now());
  SeededRandom random(3);
  auto store = state::OpenStore("sqlite:" + testing::MakeTempDir("reconciler-github") + "/eph.db");
  ASSERT_TRUE(store.ok()) << store.status();
  providers::ProviderRegistry registry;
  ASSERT_TRUE(registry.Add(std::make_unique<providers::FakeProvider>("kubernetes")).ok());
  auto github = forge::github::GitHubForge::Create(
      {.api_url = standin.url(), .app_id = "77", .private_key_pem = pem, .clock = &clock});
  ASSERT_TRUE(github.ok()) << github.status();
  controller::EnvironmentReconciler reconciler(**store, **github, registry, clock, random, {});
  ASSERT_TRUE(reconciler.Reconcile(PullRequestKey("acme/shop", 9)).ok());

  const json state = standin.State();
  ASSERT_EQ(state["check_runs"].size(), 1u) << state["check_runs"];
  const json& run = state["check_runs"][0];
  EXPECT_EQ(run["name"], "eph");
  EXPECT_EQ(run["head_sha"], pr["head"]["sha"]);
  EXPECT_EQ(run["conclusion"], "failure");
  ASSERT_EQ(run["output"]["annotations"].size(), 1u);
  EXPECT_EQ(run["output"]["annotations"][0]["path"], "eph.yaml");
  EXPECT_EQ(run["output"]["annotations"][0]["start_line"], 4);
  EXPECT_THAT(run["output"]["annotations"][0]["message"].get<std::string>(), HasSubstr("tll"));
  EXPECT_THAT(Comment(state), HasSubstr("tll"));
  EXPECT_EQ(standin.Violations(), json::array());
}

}  // namespace
}  // namespace eph
