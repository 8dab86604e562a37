// Docker environments end to end: ephd with the Docker provider on the test bed's engine and its
// preview gateway, driven through the GitHub stand-in. The page is fetched the way a person
// would, through http://<name>.preview.localhost:<gateway port>/.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <regex>

#include "pkg/http/http_client.h"
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
using ::testing::Not;
using namespace std::chrono_literals;

constexpr char kSha1[] = "1111111aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
constexpr char kSha2[] = "2222222bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

// GET through the gateway with the environment's Host, as a browser resolving *.localhost would.
http::Response GetThroughGateway(const std::string& url, int gateway_port) {
  const std::string host = url.substr(url.find("://") + 3, url.rfind(':') - url.find("://") - 3);
  http::Request exchange{
      .method = "GET",
      .url = "http://127.0.0.1:" + std::to_string(gateway_port) + "/",
      .headers = {"Host: " + host + ":" + std::to_string(gateway_port)}};
  auto answer = http::Perform(exchange);
  return answer.ok() ? *answer : http::Response{};
}

json Engine(const std::string& path) {
  auto got = testing::RunCommand({testing::Tool("curl"), "-sS", "--unix-socket",
                                  testing::DockerHost().substr(std::string("unix://").size()),
                                  "http://localhost/v1.41" + path});
  return json::parse(got.out, nullptr, false);
}

int Owned(const std::string& kind, const std::string& environment) {
  const std::string filters = "%7B%22label%22%3A%5B%22eph.dev%2Fenvironment%3D" + environment +
                              "%22%5D%7D";  // {"label":["eph.dev/environment=<env>"]}
  json answer = Engine("/" + kind + "?all=1&filters=" + filters);
  if (kind == "volumes") answer = answer["Volumes"];
  return answer.is_array() ? static_cast<int>(answer.size()) : -1;
}

TEST(EphdDockerTest, PushUpdatesThePageBehindTheGatewayAndCloseLeavesNothing) {
  testing::BuildDemoImage("1111111");
  testing::BuildDemoImage("2222222");
  testing::StandInProcess standin;
  ASSERT_FALSE(standin.url().empty());
  const std::string compose =
      "services:\n"
      "  web:\n"
      "    image: eph-demo/web:dev\n"
      "    ports: [\"8080\"]\n"
      "    environment:\n"
      "      APP_VERSION: \"${EPH_SHORT_SHA}-pr${EPH_PR_NUMBER}\"\n"  // Compose interpolation
      "    volumes: [\"data:/data\"]\n"
      "    healthcheck:\n"
      "      test: [\"CMD\", \"/app\", \"--check\"]\n"
      "      interval: 1s\n"
      "      retries: 30\n"
      "volumes:\n"
      "  data: {}\n";
  standin.Request("POST", "/_standin/repos",
                  {{"owner", "acme"},
                   {"repo", "web"},
                   {"sha", kSha1},
                   {"files",
                    {{"eph.yaml",
                      "version: \"1.0\"\nname: web\ndocker:\n  compose_file: compose.yaml\n"
                      "  images:\n    - name: eph-demo/web\n      newTag: \"{short_sha}\"\n"},
                     {"compose.yaml", compose}}}});
  standin.Request("PUT", "/_standin/repos/acme/web/pulls/5",
                  {{"labels", {"preview"}}, {"head_sha", kSha1}});
  EphdProcess ephd({{"EPH_GITHUB_API_URL", standin.url()},
                    {"EPH_GITHUB_TOKEN", testing::kStandInToken},
                    {"EPH_DOCKER_HOST", testing::DockerHost()},
                    {"EPH_GATEWAY_LISTEN", "127.0.0.1:0"},
                    {"EPH_RESYNC_INTERVAL", "2s"}});
  ASSERT_FALSE(ephd.url.empty());
  std::smatch m;
  const std::string out = ephd.process->Output();
  ASSERT_TRUE(std::regex_search(out, m, std::regex("gateway: serving \\S+ on http://127\\.0\\.0\\.1:(\\d+)")))
      << out;
  const int gateway_port = std::stoi(m[1]);
  const std::string token = testing::CreateApiToken(ephd);
  auto deliver = [&](const std::string& action) {
    json sent = standin.Request("POST", "/_standin/deliver",
                                {{"url", ephd.url + "/webhooks/github"},
                                 {"secret", kSecret},
                                 {"repo", "acme/web"},
                                 {"event", "pull_request"},
                                 {"action", action},
                                 {"number", 5},
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
  const std::string name = environment().value("name", "");
  const std::string url = environment().value("url", "");
  EXPECT_EQ(url, "http://" + name + ".preview.localhost:" + std::to_string(gateway_port));
  EXPECT_THAT(StickyComment(standin, 5), HasSubstr(url));
  http::Response page = GetThroughGateway(url, gateway_port);
  EXPECT_EQ(page.status, 200);
  EXPECT_THAT(page.body, HasSubstr("version <b id=\"version\">1111111-pr5</b>"));
  EXPECT_THAT(page.body, HasSubstr("forwarded for <code>127.0.0.1</code>"));
  // An unknown name gets the gateway's 404, which names nothing.
  http::Response unknown =
      GetThroughGateway("http://nope-1.preview.localhost:1", gateway_port);
  EXPECT_EQ(unknown.status, 404);
  EXPECT_EQ(unknown.body.find(name), std::string::npos);
  // The visit counts as activity (idle_timeout's clock).
  EXPECT_TRUE(WaitFor([&] { return !environment()["last_activity_at"].is_null(); }, 10s));

  // Every object carries this installation's id. A second ephd with its own store on the same
  // engine (another installation, or another test) sweeps its orphans and leaves ours alone.
  json containers = Engine("/containers/json?all=1&filters=%7B%22label%22%3A%5B%22eph.dev%2F"
                           "environment%3D" + name + "%22%5D%7D");
  ASSERT_TRUE(containers.is_array() && !containers.empty()) << containers;
  const std::string installation =
      containers[0]["Labels"].value("eph.dev/installation", std::string());
  EXPECT_THAT(ephd.process->Output(), HasSubstr("installation " + installation + ")"));
  {
    EphdProcess other({{"EPH_GITHUB_API_URL", standin.url()},
                       {"EPH_GITHUB_TOKEN", testing::kStandInToken},
                       {"EPH_DOCKER_HOST", testing::DockerHost()}});
    ASSERT_FALSE(other.url.empty());
    EXPECT_THAT(other.process->Output(), Not(HasSubstr("installation " + installation + ")")));
    ASSERT_TRUE(WaitFor(
        [&] {
          auto metrics = http::Perform({.method = "GET", .url = other.url + "/metrics"});
          return metrics.ok() && std::regex_search(metrics->body,
                                                   std::regex("\neph_resync_passes_total [1-9]"));
        },
        30s))
        << other.process->Output();
    EXPECT_THAT(other.process->Output(), Not(HasSubstr("destroying them")));
  }
  EXPECT_EQ(Owned("containers/json", name), 1);
  EXPECT_EQ(GetThroughGateway(url, gateway_port).status, 200);

  // A push with a new image tag: the new page.
  json commit = standin.Request("POST", "/_standin/repos/acme/web/commits",
                                {{"branch", "feature-5"}, {"sha", kSha2}, {"files", json::object()}});
  ASSERT_EQ(commit.value("sha", ""), kSha2) << commit;
  standin.Request("PUT", "/_standin/repos/acme/web/pulls/5", {{"head_sha", kSha2}});
  deliver("synchronize");
  http::Response last;
  ASSERT_TRUE(WaitFor(
      [&] {
        last = GetThroughGateway(url, gateway_port);
        return last.body.find(">2222222-pr5<") != std::string::npos;
      },
      120s))
      << "last answer " << last.status << ": " << last.body.substr(0, 300) << "\n"
      << environment().dump() << "\n"
      << ephd.process->Output();
  EXPECT_EQ(environment().value("state", ""), "ready");

  // The container removed by hand: the next resync pass notices and makes it again.
  testing::CommandResult removed =
      testing::RunCommand({testing::Tool("docker"), "rm", "-f", "eph-" + name + "-web-1"},
                          {{"DOCKER_HOST", testing::DockerHost()}});
  ASSERT_EQ(removed.exit_code, 0) << removed.err;
  ASSERT_TRUE(WaitFor(
      [&] {
        last = GetThroughGateway(url, gateway_port);
        return Owned("containers/json", name) == 1 &&
               last.body.find(">2222222-pr5<") != std::string::npos;
      },
      60s))
      << "last answer " << last.status << ": " << last.body.substr(0, 300) << "\n"
      << ephd.process->Output();
  EXPECT_THAT(ephd.process->Output(), HasSubstr(name + ": web gone; applying again"));
  EXPECT_EQ(environment().value("state", ""), "ready");

  // Closed: containers, network and volume gone, the page too.
  EXPECT_EQ(Owned("containers/json", name), 1);
  EXPECT_EQ(Owned("networks", name), 1);
  EXPECT_EQ(Owned("volumes", name), 1);
  standin.Request("PUT", "/_standin/repos/acme/web/pulls/5", {{"state", "closed"}});
  deliver("closed");
  ASSERT_TRUE(WaitFor([&] { return environment().value("state", "") == "destroyed"; }, 120s))
      << environment().dump() << "\n"
      << ephd.process->Output();
  EXPECT_EQ(Owned("containers/json", name), 0);
  EXPECT_EQ(Owned("networks", name), 0);
  EXPECT_EQ(Owned("volumes", name), 0);
  EXPECT_TRUE(WaitFor([&] { return GetThroughGateway(url, gateway_port).status == 404; }, 10s));
  EXPECT_EQ(standin.Violations(), json::array());
}

}  // namespace
}  // namespace eph
