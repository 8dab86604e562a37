// ephd and eph end to end, as users drive them: ephd on its own SQLite state with API tokens
// made by `ephd token create`, every eph command in both output forms and its error cases
// (unreachable, token missing or refused, unknown name), the event stream, the dashboard's
// files, and the webhook intake over real HTTP.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>

#include "pkg/client/client.h"
#include "pkg/state/store.h"
#include "pkg/webhook/signature.h"
#include "test/support/process.h"
#include "test/support/testbed.h"

namespace eph {
namespace {

using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using ::testing::Not;
using namespace std::chrono_literals;

std::string Ephd() { return testing::BinaryDir() + "/cmd/ephd/ephd"; }
std::string Eph() { return testing::BinaryDir() + "/cmd/eph/eph"; }

// `ephd token create` against the state file, as an operator would; returns the secret.
std::string CreateToken(const std::string& state, const std::string& name,
                        const std::string& scope) {
  auto r = testing::RunCommand(
      {Ephd(), "token", "create", "--name", name, "--scope", scope, "--state", state});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::string secret =
      r.out.substr(r.out.rfind("eph_") == std::string::npos ? 0 : r.out.rfind("eph_"));
  while (!secret.empty() && (secret.back() == '\n' || secret.back() == ' ')) secret.pop_back();
  return secret;
}

class EphdTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir("ephd-e2e");
    state_ = "sqlite:" + dir_ + "/eph-data/eph.db";
    write_token_ = CreateToken(state_, "e2e-write", "write");
    read_token_ = CreateToken(state_, "e2e-read", "read");
    std::filesystem::create_directories(dir_ + "/web/assets");
    std::ofstream(dir_ + "/web/index.html") << "<!doctype html><title>eph</title>";
    std::ofstream(dir_ + "/web/assets/app.js") << "console.log('eph')";
    std::ofstream(dir_ + "/secret.txt") << "not for the web";
    ephd_ = std::make_unique<testing::ChildProcess>(
        std::vector<std::string>{Ephd(), "--listen", "127.0.0.1:0", "--state", state_, "--web-dir",
                                 dir_ + "/web"},
        std::map<std::string, std::string>{{"EPH_GITHUB_WEBHOOK_SECRET", "e2e-secret"},
                                           {"EPH_GITHUB_API_URL", "http://127.0.0.1:9"},
                                           {"EPH_BASE_DOMAIN", "preview.test"}},
        dir_);
    auto port = ephd_->WaitForOutput(std::regex("listening on http://127\\.0\\.0\\.1:(\\d+)"), 20s);
    ASSERT_TRUE(port.has_value()) << ephd_->Output();
    server_ = "http://127.0.0.1:" + *port;
  }

  void TearDown() override {
    if (ephd_) {
      ephd_->Signal(SIGTERM);
      EXPECT_EQ(ephd_->Wait(20s), 0) << ephd_->Output();
    }
  }

  testing::CommandResult RunEph(std::vector<std::string> args, std::string token = "<write>") {
    args.insert(args.begin(), Eph());
    if (token == "<write>") token = write_token_;
    return testing::RunCommand(args,
                               {{"EPH_SERVER", server_}, {"EPH_TOKEN", token}, {"COLUMNS", "200"}});
  }

  testing::CommandResult Curl(std::vector<std::string> args) {
    args.insert(args.begin(), "/usr/bin/curl");
    return testing::RunCommand(args);
  }

  client::ApiClient Api(const std::string& token = "") {
    return client::ApiClient({.server = server_, .token = token.empty() ? write_token_ : token});
  }

  std::string dir_;
  std::string state_;
  std::string server_;
  std::string write_token_;
  std::string read_token_;
  std::unique_ptr<testing::ChildProcess> ephd_;
};

TEST_F(EphdTest, SaysWhereStateLivesAndAnswersHealthAndAnEmptyList) {
  EXPECT_THAT(ephd_->Output(), HasSubstr("state in " + state_));
  EXPECT_TRUE(std::filesystem::exists(dir_ + "/eph-data/eph.db"));
  client::ApiClient open({.server = server_});
  EXPECT_EQ(nlohmann::json::parse(*open.Get("/healthz"))["status"], "ok");
  EXPECT_EQ(nlohmann::json::parse(*open.Get("/readyz"))["status"], "ready");
  auto metrics = open.Get("/metrics");
  ASSERT_TRUE(metrics.ok());
  EXPECT_THAT(*metrics, HasSubstr("# TYPE"));
  EXPECT_EQ(open.Get("/api/v1/environments").status().code(), absl::StatusCode::kUnauthenticated);

  auto api = Api();
  EXPECT_EQ(nlohmann::json::parse(*api.Get("/api/v1/environments")),
            nlohmann::json::parse(R"({"items":[]})"));
  EXPECT_EQ(api.Get("/api/v1/environments/nope").status().code(), absl::StatusCode::kNotFound);
  auto doc = api.Get("/api/v1/openapi.json");
  ASSERT_TRUE(doc.ok()) << doc.status();
  EXPECT_EQ(nlohmann::json::parse(*doc)["openapi"], "3.1.0");
}

TEST_F(EphdTest, TokensAreListedWithoutSecretsAndRevocationLocksOut) {
  auto list = testing::RunCommand({Ephd(), "token", "list", "--state", state_});
  EXPECT_EQ(list.exit_code, 0) << list.err;
  EXPECT_THAT(list.out, HasSubstr("e2e-write"));
  EXPECT_THAT(list.out, HasSubstr("e2e-read"));
  EXPECT_THAT(list.out, Not(HasSubstr("eph_")));
  auto json_list = testing::RunCommand({Ephd(), "token", "list", "-o", "json", "--state", state_});
  ASSERT_EQ(json_list.exit_code, 0) << json_list.err;
  auto tokens = nlohmann::json::parse(json_list.out);
  ASSERT_EQ(tokens.size(), 2u);
  EXPECT_EQ(tokens[0]["revoked_at"], nullptr);

  auto duplicate = testing::RunCommand(
      {Ephd(), "token", "create", "--name", "e2e-write", "--scope", "read", "--state", state_});
  EXPECT_NE(duplicate.exit_code, 0);
  auto bad_scope = testing::RunCommand(
      {Ephd(), "token", "create", "--name", "x", "--scope", "admin", "--state", state_});
  EXPECT_NE(bad_scope.exit_code, 0);

  EXPECT_EQ(RunEph({"list"}, read_token_).exit_code, 0);
  auto revoke =
      testing::RunCommand({Ephd(), "token", "revoke", "--name", "e2e-read", "--state", state_});
  EXPECT_EQ(revoke.exit_code, 0) << revoke.err;
  auto refused = RunEph({"list"}, read_token_);
  EXPECT_EQ(refused.exit_code, 4);
  EXPECT_THAT(refused.err, MatchesRegex("eph: the API token is unknown or revoked.*\n"));
  auto unknown =
      testing::RunCommand({Ephd(), "token", "revoke", "--name", "nobody", "--state", state_});
  EXPECT_EQ(unknown.exit_code, 5);
}

TEST_F(EphdTest, CliListsStatusAndReportsErrorsWithDistinctExitCodes) {
  auto list = RunEph({"list"});
  EXPECT_EQ(list.exit_code, 0) << list.err;
  EXPECT_THAT(list.out, HasSubstr("No environments."));

  auto json_list = RunEph({"-o", "json", "list"});
  EXPECT_EQ(json_list.exit_code, 0);
  EXPECT_EQ(nlohmann::json::parse(json_list.out)["items"].size(), 0u);
  // Global flags after the subcommand too, as users type them.
  for (const auto& args : std::vector<std::vector<std::string>>{{"list", "-o", "json"},
                                                                {"list", "--output=json", "--all"},
                                                                {"list", "--all", "-o", "json"}}) {
    auto after = RunEph(args);
    EXPECT_EQ(after.exit_code, 0) << args[1] << ": " << after.err;
    EXPECT_EQ(nlohmann::json::parse(after.out)["items"].size(), 0u) << args[1];
  }
  auto bad_output = RunEph({"list", "-o", "yaml"});
  EXPECT_EQ(bad_output.exit_code, 2);
  EXPECT_THAT(bad_output.err, HasSubstr("yaml"));

  for (const auto& args :
       std::vector<std::vector<std::string>>{{"status", "no-such-env"},
                                             {"down", "no-such-env"},
                                             {"open", "no-such-env"},
                                             {"extend", "no-such-env", "--by", "1h"},
                                             {"logs", "no-such-env"}}) {
    auto r = RunEph(args);
    EXPECT_EQ(r.exit_code, 5) << args[0];
    EXPECT_THAT(r.err, MatchesRegex("eph: no environment named no-such-env\n")) << args[0];
  }

  auto unreachable = testing::RunCommand({Eph(), "--server", "http://127.0.0.1:1", "list"},
                                         {{"EPH_TOKEN", write_token_}});
  EXPECT_EQ(unreachable.exit_code, 3);
  EXPECT_THAT(unreachable.err, MatchesRegex("eph: cannot reach ephd at http://127.0.0.1:1: .*\n"));

  auto no_token = RunEph({"list"}, "");
  EXPECT_EQ(no_token.exit_code, 4);
  EXPECT_THAT(no_token.err, MatchesRegex("eph: no API token: set EPH_TOKEN .*\n"));

  auto wrong_token = RunEph({"status", "x"}, "eph_wrong");
  EXPECT_EQ(wrong_token.exit_code, 4);
  EXPECT_THAT(wrong_token.err, HasSubstr("unknown or revoked"));

  EXPECT_EQ(RunEph({"frobnicate"}).exit_code, 2);
  EXPECT_EQ(RunEph({"up", "--repo", "acme/shop"}).exit_code, 2);
  EXPECT_EQ(RunEph({"extend", "x", "--by", "soon"}).exit_code, 2);
}

TEST_F(EphdTest, CliDrivesAnEnvironmentFromUpToDown) {
  auto up = RunEph({"up", "--repo", "acme/shop", "--pr", "7"});
  ASSERT_EQ(up.exit_code, 0) << up.err;
  EXPECT_THAT(up.out, MatchesRegex("shop-[a-z]+-[a-z]+-7-[a-z2-7]{10}: pending \\(acme/shop#7\\)\n"
                                   "url: https://shop-[a-z]+-[a-z]+-7-[a-z2-7]{10}\\.preview\\.test\n"));
  const std::string name = up.out.substr(0, up.out.find(':'));

  auto again = RunEph({"up", "--repo", "acme/shop", "--pr", "7"});
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_THAT(again.err, HasSubstr("acme/shop#7 already has environment " + name));

  auto up_json = RunEph({"-o", "json", "up", "--repo", "acme/shop", "--pr", "8"});
  ASSERT_EQ(up_json.exit_code, 0) << up_json.err;
  const auto second = nlohmann::json::parse(up_json.out);
  EXPECT_EQ(second["pr"], 8);
  EXPECT_EQ(second["state"], "pending");

  auto list = RunEph({"list"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  EXPECT_THAT(list.out, MatchesRegex("NAME +PROJECT +PR +STATE +TTL +URL\n(.*\n){2}"));
  EXPECT_THAT(list.out, HasSubstr(name));
  EXPECT_THAT(list.out, MatchesRegex("(.|\n)*acme/shop +#7 +pending +2d 23h(.|\n)*"));
  auto json_list = RunEph({"-o", "json", "list"});
  EXPECT_EQ(nlohmann::json::parse(json_list.out)["items"].size(), 2u);

  auto status = RunEph({"status", name});
  ASSERT_EQ(status.exit_code, 0) << status.err;
  EXPECT_THAT(status.out, HasSubstr("state:      pending"));
  EXPECT_THAT(status.out, HasSubstr("history:\n"));
  auto status_json = RunEph({"-o", "json", "status", name});
  const auto detail = nlohmann::json::parse(status_json.out);
  EXPECT_EQ(detail["name"], name);
  EXPECT_EQ(detail["events"][0]["to_state"], "pending");

  auto open = RunEph({"open", name});
  EXPECT_EQ(open.exit_code, 0) << open.err;
  EXPECT_EQ(open.out, "https://" + name + ".preview.test\n");
  auto open_json = RunEph({"-o", "json", "open", name});
  EXPECT_EQ(nlohmann::json::parse(open_json.out)["url"], "https://" + name + ".preview.test");

  auto extend = RunEph({"extend", name, "--by", "24h"});
  ASSERT_EQ(extend.exit_code, 0) << extend.err;
  EXPECT_THAT(extend.out, MatchesRegex(name + " now expires at .* \\(in 3d 23h\\)\n"));
  auto extend_json = RunEph({"-o", "json", "extend", name, "--by", "1h"});
  ASSERT_EQ(extend_json.exit_code, 0) << extend_json.err;
  EXPECT_GT(nlohmann::json::parse(extend_json.out)["expires_at"].get<std::string>(),
            detail["expires_at"].get<std::string>());

  // No provider is enabled on this ephd: the logs are refused with the reason, not a crash.
  auto logs = RunEph({"logs", name, "-f", "--component", "web"});
  EXPECT_EQ(logs.exit_code, 1);
  EXPECT_THAT(logs.err,
              MatchesRegex("eph: " + name + " has no provider yet, so there are no logs\n"));

  // A read token may look but not destroy.
  auto denied = RunEph({"down", name}, read_token_);
  EXPECT_EQ(denied.exit_code, 4);
  EXPECT_THAT(denied.err, HasSubstr("read-only"));

  auto down = RunEph({"down", name});
  ASSERT_EQ(down.exit_code, 0) << down.err;
  EXPECT_EQ(down.out, name + ": destroying\n");
  auto down_json = RunEph({"-o", "json", "down", name});
  EXPECT_EQ(nlohmann::json::parse(down_json.out)["state"], "destroying");
  auto late = RunEph({"extend", name, "--by", "1h"});
  EXPECT_EQ(late.exit_code, 1);
  EXPECT_THAT(late.err, HasSubstr("cannot be extended"));
}

TEST_F(EphdTest, UpWaitShowsProgressAndGivesUpAtTheTimeout) {
  // No reconciler runs here (no forge configured), so the environment stays pending.
  auto up = RunEph({"up", "--repo", "acme/shop", "--pr", "9", "--wait", "--timeout", "1s",
                    "--interval", "100ms"});
  EXPECT_EQ(up.exit_code, 1);
  EXPECT_THAT(up.out, MatchesRegex("Creating shop-[a-z]+-[a-z]+-9-[a-z2-7]{10} for acme/shop#9\n"
                                   "[0-9:]{8}  pending  \\(created through the API\\)\n"));
  EXPECT_THAT(up.err,
              MatchesRegex("eph: timed out after 1s waiting for shop-.*-9-[a-z2-7]{10}; it is still pending\n"));
}

// The reconciler is stood in for by writing the state as it would, through the same store.
void MoveTo(const std::string& state_url, const std::string& name, state::EnvState to,
            const std::string& reason) {
  auto store = state::OpenStore(state_url);
  ASSERT_TRUE(store.ok()) << store.status();
  auto env = (*store)->GetEnvironment(name);
  ASSERT_TRUE(env.ok() && env->has_value());
  state::Environment e = **env;
  e.state = to;
  e.reason = reason;
  ASSERT_TRUE((*store)->UpdateEnvironment(e).ok());
}

TEST_F(EphdTest, UpWaitPrintsEachStateChangeUntilReadyOrFailed) {
  for (const bool succeed : {true, false}) {
    const std::string pr = succeed ? "11" : "12";
    testing::ChildProcess eph({Eph(), "up", "--repo", "acme/shop", "--pr", pr, "--wait",
                               "--interval", "50ms", "--timeout", "30s"},
                              {{"EPH_SERVER", server_}, {"EPH_TOKEN", write_token_}}, dir_);
    auto name = eph.WaitForOutput(std::regex("Creating (shop-[a-z]+-[a-z]+-" + pr + "-[a-z2-7]{10})"), 20s);
    ASSERT_TRUE(name.has_value()) << eph.Output();
    ASSERT_TRUE(eph.WaitForOutput(std::regex("  pending  "), 20s)) << eph.Output();
    MoveTo(state_, *name, state::EnvState::kProvisioning, "applying 3 objects");
    ASSERT_TRUE(eph.WaitForOutput(std::regex("  provisioning  \\(applying 3 objects\\)"), 20s))
        << eph.Output();
    if (succeed) {
      MoveTo(state_, *name, state::EnvState::kReady, "");
      EXPECT_EQ(eph.Wait(20s), 0) << eph.Output();
      EXPECT_THAT(eph.Output(), HasSubstr(*name + " is ready: https://" + *name + ".preview.test"));
    } else {
      MoveTo(state_, *name, state::EnvState::kFailed, "ImagePullBackOff: shop:pr-12");
      EXPECT_EQ(eph.Wait(20s), 1) << eph.Output();
      EXPECT_THAT(eph.Output(),
                  HasSubstr("eph: " + *name + " is failed: ImagePullBackOff: shop:pr-12"));
    }
  }
}

TEST_F(EphdTest, EventsStreamReplaysChangesOverHttp) {
  auto created = Api().Post("/api/v1/environments", R"({"project":"acme/shop","pr":3})");
  ASSERT_TRUE(created.ok()) << created.status();
  const std::string name = nlohmann::json::parse(*created)["name"];
  auto sse = Curl({"-sN", "--max-time", "2", "-H", "Authorization: Bearer " + read_token_, "-H",
                   "Last-Event-ID: 0", server_ + "/api/v1/events"});
  EXPECT_THAT(sse.out,
              MatchesRegex("(.|\n)*id: [0-9]+\nevent: environment\ndata: \\{.*\"name\":\"" + name +
                           "\"(.|\n)*"));
  auto unauthenticated =
      Curl({"-s", "-o", "/dev/null", "-w", "%{http_code}", server_ + "/api/v1/events"});
  EXPECT_EQ(unauthenticated.out, "401");
}

TEST_F(EphdTest, ServesTheDashboardAndRefusesTraversal) {
  auto index = Curl({"-s", "-i", server_ + "/"});
  EXPECT_THAT(index.out, HasSubstr("Content-Type: text/html"));
  EXPECT_THAT(index.out, HasSubstr("<title>eph</title>"));
  auto js = Curl({"-s", "-i", server_ + "/assets/app.js"});
  EXPECT_THAT(js.out, HasSubstr("Content-Type: text/javascript"));
  for (const char* path :
       {"/../secret.txt", "/%2e%2e/secret.txt", "/assets/..%2f..%2fsecret.txt"}) {
    auto r = Curl({"-s", "--path-as-is", "-w", "\n%{http_code}", server_ + path});
    EXPECT_THAT(r.out, Not(HasSubstr("not for the web"))) << path;
    // Not canonical: refused before any route or file lookup sees it.
    EXPECT_THAT(r.out, ::testing::EndsWith("400")) << path;
  }
}

TEST_F(EphdTest, CompletionScripts) {
  auto bash = RunEph({"completion", "bash"}, "");
  EXPECT_EQ(bash.exit_code, 0);
  EXPECT_THAT(bash.out, HasSubstr("complete -F _eph eph"));
  auto zsh = RunEph({"completion", "zsh"}, "");
  EXPECT_EQ(zsh.exit_code, 0);
  EXPECT_THAT(zsh.out, ::testing::StartsWith("#compdef eph"));
  EXPECT_EQ(RunEph({"completion", "fish"}, "").exit_code, 2);
}

TEST_F(EphdTest, SignedWebhookIsAcceptedOnceAndForgeriesAreRefused) {
  const std::string body =
      R"({"action":"labeled","number":3,"pull_request":{"number":3},"repository":{"full_name":"a/b"}})";
  auto post = [&](const std::string& id, const std::string& sig) {
    return testing::RunCommand({"/usr/bin/curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                                "-X", "POST", "-H", "X-GitHub-Event: pull_request", "-H",
                                "X-GitHub-Delivery: " + id, "-H", "X-Hub-Signature-256: " + sig,
                                "-H", "Content-Type: application/json", "--data-binary", body,
                                server_ + "/webhooks/github"});
  };
  EXPECT_EQ(post("e2e-1", webhook::SignGitHub("e2e-secret", body)).out, "202");
  EXPECT_EQ(post("e2e-1", webhook::SignGitHub("e2e-secret", body)).out, "200");
  EXPECT_EQ(post("e2e-2", webhook::SignGitHub("wrong", body)).out, "401");
}

TEST(EphdStartTest, BadStateUrlIsAClearErrorAtStart) {
  const std::string dir = testing::MakeTempDir("ephd-bad");
  testing::ChildProcess ephd({Ephd(), "--listen", "127.0.0.1:0", "--state", "mysql://x"}, {}, dir);
  EXPECT_EQ(ephd.Wait(20s), 1);
  EXPECT_THAT(ephd.Output(), HasSubstr("mysql://x"));
}

TEST(EphdStartTest, ConfigFileSettingsApplyAndUnknownKeysAreRefused) {
  const std::string dir = testing::MakeTempDir("ephd-config");
  std::ofstream(dir + "/ephd.yaml")
      << "listen: 127.0.0.1:0\nstate: sqlite:" << dir << "/state.db\nfrobnicate: 1\n";
  testing::ChildProcess bad({Ephd(), "--config", dir + "/ephd.yaml"}, {}, dir);
  EXPECT_EQ(bad.Wait(20s), 2);
  EXPECT_THAT(bad.Output(), HasSubstr("ephd.yaml:3:1: unknown setting \"frobnicate\""));
}

TEST(EphdStartTest, MalformedRegistryCredentialsStopEphdAtStart) {
  const std::string dir = testing::MakeTempDir("ephd-registry-auth");
  std::ofstream(dir + "/auth.json") << R"({"auths": {"127.0.0.1:5000": {"auth": "bm9jb2xvbg=="}}})";
  testing::ChildProcess ephd(
      {Ephd(), "--listen", "127.0.0.1:0", "--state", "sqlite:" + dir + "/state.db", "--docker-host",
       "unix://" + dir + "/docker.sock"},
      {{"EPH_REGISTRY_AUTH_FILE", dir + "/auth.json"}}, dir);
  EXPECT_EQ(ephd.Wait(20s), 1);
  EXPECT_THAT(ephd.Output(), HasSubstr("provider docker: registry credentials " + dir +
                                       "/auth.json: \"127.0.0.1:5000\": \"auth\" is not base64 of "
                                       "\"username:password\""));
}

TEST(EphdStartTest, CloneSparesOutOfRangeAreRefused) {
  const std::string dir = testing::MakeTempDir("ephd-spares");
  std::ofstream(dir + "/ephd.yaml")
      << "listen: 127.0.0.1:0\nstate: sqlite:" << dir << "/state.db\ndatabase_clone_spares: lots\n";
  testing::ChildProcess file({Ephd(), "--config", dir + "/ephd.yaml"}, {}, dir);
  EXPECT_EQ(file.Wait(20s), 2);
  EXPECT_THAT(file.Output(),
              HasSubstr("ephd.yaml:3:1: database_clone_spares must be a number from 0 to 20"));
  testing::ChildProcess flag({Ephd(), "--listen", "127.0.0.1:0", "--state",
                              "sqlite:" + dir + "/state.db", "--database-clone-spares", "21"},
                             {}, dir);
  EXPECT_NE(flag.Wait(20s), 0);
  EXPECT_THAT(flag.Output(), HasSubstr("--database-clone-spares"));
}

// ephd as a new user starts it: no --web-dir, from a directory holding no web/dist. What it
// serves at / comes from the binary alone: the dashboard built into it, or (a build without
// Node.js, EPH_DASHBOARD_EMBEDDED=0) a page saying how to get one.
TEST(EphdDashboardTest, TheBuiltInDashboardNeedsNoFilesOnDisk) {
  const std::string dir = testing::MakeTempDir("ephd-dashboard");
  ASSERT_FALSE(std::filesystem::exists(dir + "/web"));
  testing::ChildProcess ephd({"/bin/sh", "-c", "cd \"$0\" && exec \"$@\"", dir, Ephd(), "--listen",
                              "127.0.0.1:0", "--state", "sqlite:" + dir + "/eph.db"},
                             {{"EPH_GITHUB_API_URL", "http://127.0.0.1:9"}}, dir);
  auto port = ephd.WaitForOutput(std::regex("listening on http://127\\.0\\.0\\.1:(\\d+)"), 20s);
  ASSERT_TRUE(port.has_value()) << ephd.Output();
  const std::string server = "http://127.0.0.1:" + *port;
  auto curl = [](std::vector<std::string> args) {
    args.insert(args.begin(), {"/usr/bin/curl", "-s"});
    return testing::RunCommand(args);
  };
#if EPH_DASHBOARD_EMBEDDED
  EXPECT_THAT(ephd.Output(), HasSubstr("dashboard: built in ("));
  auto index = curl({"-i", server + "/"});
  EXPECT_THAT(index.out, ::testing::StartsWith("HTTP/1.1 200"));
  EXPECT_THAT(index.out, HasSubstr("Content-Type: text/html; charset=utf-8"));
  EXPECT_THAT(index.out, HasSubstr("Cache-Control: no-cache"));
  EXPECT_THAT(index.out, HasSubstr("<div id=\"root\"></div>"));
  std::smatch script;
  ASSERT_TRUE(
      std::regex_search(index.out, script, std::regex("src=\"\\./(assets/[A-Za-z0-9_-]+\\.js)\"")))
      << index.out;
  const std::string asset = server + "/" + script[1].str();
  auto js = curl({"-i", asset});
  EXPECT_THAT(js.out, ::testing::StartsWith("HTTP/1.1 200"));
  EXPECT_THAT(js.out, HasSubstr("Content-Type: text/javascript; charset=utf-8"));
  EXPECT_THAT(js.out, HasSubstr("Cache-Control: public, max-age=31536000, immutable"));
  std::smatch etag;
  ASSERT_TRUE(std::regex_search(js.out, etag, std::regex("ETag: (\"[0-9a-f]{32}\")")))
      << js.out.substr(0, 400);
  auto revalidated = curl({"-i", "-H", "If-None-Match: " + etag[1].str(), asset});
  EXPECT_THAT(revalidated.out, ::testing::StartsWith("HTTP/1.1 304"));
  EXPECT_THAT(revalidated.out, HasSubstr("ETag: " + etag[1].str()));
  EXPECT_THAT(revalidated.out, ::testing::EndsWith("\r\n\r\n"));  // no body
  // Not "Content-Length: 0": a cache could take that for the file's length.
  EXPECT_THAT(revalidated.out, Not(HasSubstr("Content-Length")));
  // HEAD: the GET's headers and length, no body.
  auto get_size = curl({"-o", "/dev/null", "-w", "%{size_download}", asset});
  auto head = curl({"-I", asset});
  EXPECT_THAT(head.out, ::testing::StartsWith("HTTP/1.1 200"));
  EXPECT_THAT(head.out, HasSubstr("Content-Length: " + get_size.out + "\r\n"));
  EXPECT_THAT(head.out, Not(HasSubstr("function")));
  // A client route gets index.html, based back at the root so its assets load.
  auto route = curl({"-i", "-H", "Accept: text/html", server + "/environments/foo"});
  EXPECT_THAT(route.out, ::testing::StartsWith("HTTP/1.1 200"));
  EXPECT_THAT(route.out, HasSubstr("<base href=\"../\">"));
  EXPECT_EQ(curl({"-o", "/dev/null", "-w", "%{http_code}", server + "/assets/missing.js"}).out,
            "404");
#else
  EXPECT_THAT(ephd.Output(), HasSubstr("dashboard: missing"));
  EXPECT_THAT(ephd.Output(), HasSubstr("npm ci"));
  auto index = curl({"-i", server + "/"});
  EXPECT_THAT(index.out, ::testing::StartsWith("HTTP/1.1 404"));
  EXPECT_THAT(index.out, HasSubstr("Content-Type: text/html"));
  EXPECT_THAT(index.out, HasSubstr("`npm ci` in web/"));
#endif
  // The API is the API either way.
  EXPECT_THAT(curl({"-i", server + "/healthz"}).out, HasSubstr("\"status\":\"ok\""));
  EXPECT_EQ(curl({"-o", "/dev/null", "-w", "%{http_code}", server + "/api/v1/environments"}).out,
            "401");
  ephd.Signal(SIGTERM);
  EXPECT_EQ(ephd.Wait(20s), 0) << ephd.Output();
}

TEST(EphValidateTest, ValidAndBrokenFiles) {
  const std::string dir = testing::MakeTempDir("validate");
  std::ofstream(dir + "/eph.yaml") << "version: \"1.0\"\nname: my-app\n"
                                      "triggers:\n  - type: pr_label\n    labels: [\"preview\"]\n"
                                      "kubernetes:\n  manifests: [./k8s]\n";
  auto ok = testing::RunCommand({Eph(), "validate", dir + "/eph.yaml"});
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_THAT(ok.out, HasSubstr("valid"));

  std::ofstream(dir + "/bad.yaml")
      << "version: \"1.0\"\nname: my-app\nenvironment:\n  ttl: 3 days\n";
  auto bad = testing::RunCommand({Eph(), "validate", dir + "/bad.yaml"});
  EXPECT_EQ(bad.exit_code, 6);
  EXPECT_THAT(bad.err, HasSubstr(dir + "/bad.yaml:4:8:"));

  auto missing = testing::RunCommand({Eph(), "validate", dir + "/none.yaml"});
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_THAT(missing.err, HasSubstr("none.yaml"));
}

}  // namespace
}  // namespace eph
