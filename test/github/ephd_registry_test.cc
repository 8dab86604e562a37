// Images from a private registry end to end: CI (the test) pushes the demo app's image to the
// registry bed (TLS, htpasswd); ephd, given the bed's credentials file as an operator would
// (EPH_REGISTRY_AUTH_FILE), pulls it for a labelled pull request through the GitHub stand-in and
// the preview becomes ready. A push whose image CI never pushed fails the environment with the
// registry's reason on the pull request, and ephd does not retry it in a loop.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "test/github/ephd_harness.h"
#include "test/github/standin_process.h"
#include "test/support/process.h"
#include "test/support/testbed.h"

namespace eph {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using testing::ApiGet;
using testing::EphdProcess;
using testing::kSecret;
using testing::StickyComment;
using testing::WaitFor;
using ::testing::HasSubstr;
using namespace std::chrono_literals;

constexpr char kSha1[] = "1111111aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
constexpr char kSha2[] = "2222222bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

TEST(EphdRegistryTest, APushedImageRunsAndAMissingOneFailsWithTheRegistrysReason) {
  const std::string registry = testing::TestbedValue("registry", "EPH_TEST_REGISTRY_HOST");
  const std::string auth_file = testing::TestbedValue("registry", "EPH_TEST_REGISTRY_AUTH_FILE");
  const std::string repository = registry + "/acme/web-" + std::to_string(getpid());
  // CI: build, push with the credentials, and leave nothing on the engine but the registry's copy.
  testing::BuildDemoImage("1111111");
  const std::string docker_config = testing::MakeTempDir("registry-docker-config");
  fs::copy_file(auth_file, docker_config + "/config.json");
  auto docker = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {testing::Tool("docker"), "--config", docker_config});
    return testing::RunCommand(args, {{"DOCKER_HOST", testing::DockerHost()}}, 180s);
  };
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"tag", "eph-demo/web:1111111", repository + ":1111111"},
           {"push", repository + ":1111111"},
           {"rmi", repository + ":1111111"}}) {
    testing::CommandResult r = docker(args);
    ASSERT_EQ(r.exit_code, 0) << args[0] << ": " << r.out << r.err;
  }

  testing::StandInProcess standin;
  ASSERT_FALSE(standin.url().empty());
  standin.Request(
      "POST", "/_standin/repos",
      {{"owner", "acme"},
       {"repo", "web"},
       {"sha", kSha1},
       {"files",
        {{"eph.yaml", "version: \"1.0\"\nname: web\ndocker:\n  compose_file: compose.yaml\n"
                      "  images:\n    - name: " +
                          repository + "\n      newTag: \"{short_sha}\"\n"},
         {"compose.yaml", "services:\n  web:\n    image: " + repository +
                              ":dev\n    ports: [\"8080\"]\n    healthcheck:\n"
                              "      test: [\"CMD\", \"/app\", \"--check\"]\n"
                              "      interval: 1s\n      retries: 30\n"}}}});
  standin.Request("PUT", "/_standin/repos/acme/web/pulls/9",
                  {{"labels", {"preview"}}, {"head_sha", kSha1}});
  EphdProcess ephd({{"EPH_GITHUB_API_URL", standin.url()},
                    {"EPH_GITHUB_TOKEN", testing::kStandInToken},
                    {"EPH_DOCKER_HOST", testing::DockerHost()},
                    {"EPH_REGISTRY_AUTH_FILE", auth_file},
                    {"EPH_RESYNC_INTERVAL", "2s"}});
  ASSERT_FALSE(ephd.url.empty());
  const std::string token = testing::CreateApiToken(ephd);
  auto deliver = [&](const std::string& action) {
    json sent = standin.Request("POST", "/_standin/deliver",
                                {{"url", ephd.url + "/webhooks/github"},
                                 {"secret", kSecret},
                                 {"repo", "acme/web"},
                                 {"event", "pull_request"},
                                 {"action", action},
                                 {"number", 9},
                                 {"label", "preview"}});
    ASSERT_EQ(sent.value("status", 0) / 100, 2) << sent;
  };
  auto environment = [&] {
    json list = ApiGet(ephd.url + "/api/v1/environments?all=true", token);
    return !list.is_object() || list["items"].empty() ? json::object() : list["items"][0];
  };

  deliver("labeled");
  ASSERT_TRUE(WaitFor([&] { return environment().value("state", "") == "ready"; }, 120s))
      << environment().dump() << "\n"
      << ephd.process->Output();
  EXPECT_THAT(StickyComment(standin, 9), HasSubstr(environment().value("url", "")));
  EXPECT_EQ(docker({"image", "inspect", repository + ":1111111"}).exit_code, 0)
      << "ephd pulled the image CI pushed";

  // A push whose image CI never pushed: failed, with the registry's answer on the pull request.
  json commit = standin.Request("POST", "/_standin/repos/acme/web/commits",
                                {{"branch", "feature-9"}, {"sha", kSha2}, {"files", json::object()}});
  ASSERT_EQ(commit.value("sha", ""), kSha2) << commit;
  standin.Request("PUT", "/_standin/repos/acme/web/pulls/9", {{"head_sha", kSha2}});
  deliver("synchronize");
  const std::string reason =
      "image " + repository + ":2222222 not found in registry " + registry;
  ASSERT_TRUE(WaitFor(
      [&] { return StickyComment(standin, 9).find(reason) != std::string::npos; }, 120s))
      << StickyComment(standin, 9) << "\n"
      << environment().dump() << "\n"
      << ephd.process->Output();
  EXPECT_EQ(environment().value("state", ""), "failed") << environment().dump();
  // Terminal until the next push: resync passes (every 2 s) do not pull again. Every request
  // for the manifest is a line of the registry's access log.
  const std::string manifest =
      "/v2/" + repository.substr(registry.size() + 1) + "/manifests/2222222 ";
  auto pulls = [&] {
    std::ifstream log(testing::TestbedDir() + "/registry/registry.log");
    size_t n = 0;
    for (std::string line; std::getline(log, line);) {
      n += line.find(manifest) != std::string::npos;
    }
    return n;
  };
  const size_t seen = pulls();
  EXPECT_GE(seen, 1u);
  std::this_thread::sleep_for(6s);  // three resync intervals: what must not happen takes time
  EXPECT_EQ(pulls(), seen) << ephd.process->Output();
  EXPECT_EQ(environment().value("state", ""), "failed");

  standin.Request("PUT", "/_standin/repos/acme/web/pulls/9", {{"state", "closed"}});
  deliver("closed");
  ASSERT_TRUE(WaitFor([&] { return environment().value("state", "") == "destroyed"; }, 120s))
      << environment().dump();
  (void)docker({"rmi", repository + ":1111111"});
  EXPECT_EQ(standin.Violations(), json::array());
}

}  // namespace
}  // namespace eph
