// ephd with GitHub: every webhook example GitHub documents is accepted by a running ephd, and a
// labelled pull request on the GitHub stand-in becomes an environment whose sticky comment and
// deployment tell the story, until the pull request closes.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <fstream>
#include <regex>
#include <set>
#include <thread>

#include "pkg/http/http_client.h"
#include "pkg/webhook/signature.h"
#include "test/github/ephd_harness.h"
#include "test/github/standin_process.h"
#include "test/support/process.h"
#include "test/support/testbed.h"

namespace eph {
namespace {

using testing::ApiGet;
using testing::EphdBinary;
using testing::EphdProcess;
using testing::kSecret;
using testing::Post;
using testing::StickyComment;
using testing::WaitFor;

using ::testing::HasSubstr;
using json = nlohmann::json;
using namespace std::chrono_literals;

TEST(EphdGitHubTest, EveryWebhookExampleIsAcceptedWithoutAServerError) {
  const std::string dir = testing::MakeTempDir("webhook-examples");
  const std::string file = dir + "/examples.json";
  auto wrote = testing::RunCommand(
      {EPH_NODE, testing::SourceDir() + "/test/github/examples.mjs", "--write", file});
  ASSERT_EQ(wrote.exit_code, 0) << wrote.err;
  std::ifstream in(file);
  const json examples = json::parse(in, nullptr, false);
  ASSERT_TRUE(examples.is_array());
  ASSERT_GE(examples.size(), 70u);
  std::set<std::string> events;
  EphdProcess ephd({});
  ASSERT_FALSE(ephd.url.empty());
  int n = 0;
  for (const json& example : examples) {
    const std::string event = example["event"];
    events.insert(event);
    const std::string body = example["payload"].dump();
    auto answer =
        Post(ephd.url + "/webhooks/github",
             {"Content-Type: application/json", "User-Agent: GitHub-Hookshot/test",
              "X-GitHub-Event: " + event, "X-GitHub-Delivery: example-" + std::to_string(++n),
              "X-Hub-Signature-256: " + webhook::SignGitHub(kSecret, body)},
             body);
    EXPECT_GE(answer.status, 200) << example["file"];
    EXPECT_LT(answer.status, 300) << example["file"] << ": " << answer.body;
  }
  EXPECT_EQ(events, (std::set<std::string>{"pull_request", "check_suite", "check_run", "status",
                                           "issue_comment", "installation",
                                           "installation_repositories", "ping"}));
}

// A `labeled` webhook that never arrives: the resync lists the project's open pull requests and
// the labelled one gets its environment anyway; an unlabelled one does not.
TEST(EphdGitHubTest, ALabelledPullRequestWhoseWebhookWasLostIsFoundByTheResync) {
  testing::StandInProcess standin;
  ASSERT_FALSE(standin.url().empty());
  standin.Request(
      "POST", "/_standin/repos",
      {{"owner", "acme"},
       {"repo", "shop"},
       {"files",
        {{"eph.yaml", "version: \"1.0\"\nname: shop\nkubernetes:\n  manifests: [k8s]\n"},
         {"k8s/deployment.yaml", "kind: Deployment\n"}}}});
  standin.Request("PUT", "/_standin/repos/acme/shop/pulls/1", {{"labels", {"preview"}}});
  EphdProcess ephd({{"EPH_GITHUB_API_URL", standin.url()},
                    {"EPH_GITHUB_TOKEN", testing::kStandInToken},
                    {"EPH_RESYNC_INTERVAL", "1s"}});
  ASSERT_FALSE(ephd.url.empty());
  const std::string token = testing::CreateApiToken(ephd);
  auto prs_with_environments = [&] {
    std::set<int64_t> out;
    json list = ApiGet(ephd.url + "/api/v1/environments?all=true", token);
    for (const json& e : list.value("items", json::array())) out.insert(e.value("pr", 0));
    return out;
  };
  // #1 arrives by webhook, which makes the project (and its trigger label) known.
  json delivered = testing::Deliver(
      standin, ephd, "acme/shop",
      {{"event", "pull_request"}, {"action", "labeled"}, {"number", 1}, {"label", "preview"}});
  EXPECT_EQ(delivered.value("status", 0) / 100, 2) << delivered;
  ASSERT_TRUE(WaitFor([&] { return prs_with_environments().count(1) == 1; }, 30s))
      << ephd.process->Output();
  // #2 is labelled and #3 is not, and ephd hears of neither.
  standin.Request("PUT", "/_standin/repos/acme/shop/pulls/2", {{"labels", {"preview"}}});
  standin.Request("PUT", "/_standin/repos/acme/shop/pulls/3", {{"labels", {"docs"}}});
  ASSERT_TRUE(WaitFor([&] { return prs_with_environments().count(2) == 1; }, 30s))
      << ephd.process->Output();
  EXPECT_THAT(ephd.process->Output(), HasSubstr("labelled pull request(s) without an environment"));
  EXPECT_EQ(prs_with_environments(), (std::set<int64_t>{1, 2}));
  // The environment's row exists before its pass posts the comment: wait for the comment.
  EXPECT_TRUE(WaitFor(
      [&] { return StickyComment(standin, 2).find("not enabled") != std::string::npos; }, 30s))
      << StickyComment(standin, 2);
  EXPECT_EQ(standin.Violations(), json::array());
}

TEST(EphdGitHubTest, LabelledPullRequestGetsAnEnvironmentAndTheConversationSaysWhatHappened) {
  testing::StandInProcess standin;
  ASSERT_FALSE(standin.url().empty());
  standin.Request(
      "POST", "/_standin/repos",
      {{"owner", "acme"},
       {"repo", "shop"},
       {"files",
        {{"eph.yaml", "version: \"1.0\"\nname: shop\nkubernetes:\n  manifests: [k8s]\n"},
         {"k8s/deployment.yaml", "kind: Deployment\n"}}}});
  standin.Request("PUT", "/_standin/repos/acme/shop/pulls/1",
                  {{"labels", {"preview"}}, {"head_ref", "feature-1"}, {"user", "octocat"}});
  EphdProcess ephd(
      {{"EPH_GITHUB_API_URL", standin.url()}, {"EPH_GITHUB_TOKEN", testing::kStandInToken}});
  ASSERT_FALSE(ephd.url.empty());
  auto created = testing::RunCommand({EphdBinary(), "token", "create", "--name", "github-test",
                                      "--state", "sqlite:" + ephd.dir + "/eph.db"});
  ASSERT_EQ(created.exit_code, 0) << created.err;
  std::string api_token = created.out;
  while (!api_token.empty() && api_token.back() == '\n') api_token.pop_back();
  api_token = api_token.substr(api_token.rfind('\n') + 1);

  json delivered = standin.Request("POST", "/_standin/deliver",
                                   {{"url", ephd.url + "/webhooks/github"},
                                    {"secret", kSecret},
                                    {"event", "pull_request"},
                                    {"action", "labeled"},
                                    {"repo", "acme/shop"},
                                    {"number", 1},
                                    {"label", "preview"}});
  EXPECT_EQ(delivered.value("status", 0) / 100, 2) << delivered;

  // No provider is enabled on this ephd: the environment fails, and says why, on the PR.
  ASSERT_TRUE(WaitFor(
      [&] { return StickyComment(standin, 1).find("not enabled") != std::string::npos; }, 30s))
      << StickyComment(standin, 1) << "\n"
      << ephd.process->Output();
  json list = ApiGet(ephd.url + "/api/v1/environments", api_token);
  ASSERT_EQ(list["items"].size(), 1u) << list;
  const json env = list["items"][0];
  EXPECT_EQ(env.value("state", ""), "failed") << env;
  EXPECT_THAT(env.dump(), HasSubstr("provider kubernetes is not enabled on this ephd"));
  EXPECT_EQ(env.value("project", ""), "acme/shop") << env;
  const size_t after_create = standin.Requests().size();

  // A duplicated delivery changes nothing on GitHub: the reconciler reads live state.
  standin.Request("POST", "/_standin/deliver",
                  {{"url", ephd.url + "/webhooks/github"},
                   {"secret", kSecret},
                   {"event", "pull_request"},
                   {"action", "labeled"},
                   {"repo", "acme/shop"},
                   {"number", 1},
                   {"label", "preview"}});

  standin.Request("PUT", "/_standin/repos/acme/shop/pulls/1", {{"state", "closed"}});
  standin.Request("POST", "/_standin/deliver",
                  {{"url", ephd.url + "/webhooks/github"},
                   {"secret", kSecret},
                   {"event", "pull_request"},
                   {"action", "closed"},
                   {"repo", "acme/shop"},
                   {"number", 1}});
  ASSERT_TRUE(WaitFor(
      [&] { return StickyComment(standin, 1).find("pull request closed") != std::string::npos; },
      30s))
      << StickyComment(standin, 1) << "\n"
      << ephd.process->Output();
  ASSERT_TRUE(WaitFor(
      [&] {
        json l = ApiGet(ephd.url + "/api/v1/environments?all=true", api_token);
        return l.is_object() && l["items"].size() == 1 &&
               l["items"][0].value("state", "") == "destroyed";
      },
      10s));
  const json state = standin.State();
  int sticky = 0;
  for (const json& c : state["comments"]) {
    sticky += c.value("body", "").find("<!-- eph:environment=") != std::string::npos;
  }
  EXPECT_EQ(sticky, 1);  // edited in place, never a second comment

  // The GitHub API calls of this environment's life, for docs/github.md.
  const json requests = standin.Requests();
  std::map<std::string, int> by_operation;
  for (const json& r : requests)
    ++by_operation[r.value("method", "") + " " + r.value("operation", "")];
  std::string summary;
  for (const auto& [op, n] : by_operation) summary += "  " + op + ": " + std::to_string(n) + "\n";
  std::printf("GitHub API calls: %zu to create (failed, no provider), %zu in all\n%s", after_create,
              requests.size(), summary.c_str());
  RecordProperty("github_api_calls", static_cast<int>(requests.size()));
  EXPECT_EQ(standin.Violations(), json::array());
}

}  // namespace
}  // namespace eph
