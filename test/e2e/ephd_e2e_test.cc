// ephd and eph end to end: the README's first command at this stage (ephd on the embedded
// default answering health, readiness and an empty environment list), the CLI against it, and
// the webhook intake over real HTTP.
#include <signal.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "pkg/client/client.h"
#include "pkg/webhook/signature.h"
#include "test/support/process.h"
#include "test/support/testbed.h"

namespace eph {
namespace {

using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using namespace std::chrono_literals;

std::string Ephd() { return testing::BinaryDir() + "/cmd/ephd/ephd"; }
std::string Eph() { return testing::BinaryDir() + "/cmd/eph/eph"; }

class EphdTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir("ephd-e2e");
    ephd_ = std::make_unique<testing::ChildProcess>(
        std::vector<std::string>{Ephd(), "--listen", "127.0.0.1:0", "--state",
                                 "sqlite:" + dir_ + "/eph-data/eph.db"},
        std::map<std::string, std::string>{{"EPH_GITHUB_WEBHOOK_SECRET", "e2e-secret"}}, dir_);
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

  testing::CommandResult RunEph(std::vector<std::string> args) {
    args.insert(args.begin(), Eph());
    return testing::RunCommand(args, {{"EPH_SERVER", server_}});
  }

  std::string dir_;
  std::string server_;
  std::unique_ptr<testing::ChildProcess> ephd_;
};

TEST_F(EphdTest, SaysWhereStateLivesAndAnswersHealthAndAnEmptyList) {
  EXPECT_THAT(ephd_->Output(), HasSubstr("state in sqlite:" + dir_ + "/eph-data/eph.db"));
  EXPECT_TRUE(std::filesystem::exists(dir_ + "/eph-data/eph.db"));
  client::ApiClient api({.server = server_});
  EXPECT_EQ(nlohmann::json::parse(*api.Get("/healthz"))["status"], "ok");
  EXPECT_EQ(nlohmann::json::parse(*api.Get("/readyz"))["status"], "ready");
  EXPECT_EQ(nlohmann::json::parse(*api.Get("/api/v1/environments")),
            nlohmann::json::parse(R"({"items":[]})"));
  auto missing = api.Get("/api/v1/environments/nope");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  auto metrics = api.Get("/metrics");
  ASSERT_TRUE(metrics.ok());
  EXPECT_THAT(*metrics, HasSubstr("# TYPE"));
}

TEST_F(EphdTest, CliListsStatusAndReportsErrorsWithDistinctExitCodes) {
  auto list = RunEph({"list"});
  EXPECT_EQ(list.exit_code, 0) << list.err;
  EXPECT_THAT(list.out, HasSubstr("No environments."));

  auto json_list = RunEph({"-o", "json", "list"});
  EXPECT_EQ(json_list.exit_code, 0);
  EXPECT_EQ(nlohmann::json::parse(json_list.out)["items"].size(), 0u);

  auto status = RunEph({"status", "no-such-env"});
  EXPECT_EQ(status.exit_code, 5);
  EXPECT_THAT(status.err, MatchesRegex("eph: no environment named no-such-env\n"));

  auto unreachable = testing::RunCommand({Eph(), "--server", "http://127.0.0.1:1", "list"});
  EXPECT_EQ(unreachable.exit_code, 3);
  EXPECT_THAT(unreachable.err, HasSubstr("cannot reach ephd"));

  auto usage = RunEph({"frobnicate"});
  EXPECT_EQ(usage.exit_code, 2);
}

TEST_F(EphdTest, SignedWebhookIsAcceptedOnceAndForgeriesAreRefused) {
  const std::string body =
      R"({"action":"labeled","number":3,"pull_request":{"number":3},"repository":{"full_name":"a/b"}})";
  auto post = [&](const std::string& id, const std::string& sig) {
    return testing::RunCommand(
        {"/usr/bin/curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST",
         "-H", "X-GitHub-Event: pull_request", "-H", "X-GitHub-Delivery: " + id, "-H",
         "X-Hub-Signature-256: " + sig, "-H", "Content-Type: application/json", "--data-binary",
         body, server_ + "/webhooks/github"});
  };
  EXPECT_EQ(post("e2e-1", webhook::SignGitHub("e2e-secret", body)).out, "202");
  EXPECT_EQ(post("e2e-1", webhook::SignGitHub("e2e-secret", body)).out, "200");
  EXPECT_EQ(post("e2e-2", webhook::SignGitHub("wrong", body)).out, "401");
}

TEST(EphdStartTest, BadStateUrlIsAClearErrorAtStart) {
  const std::string dir = testing::MakeTempDir("ephd-bad");
  testing::ChildProcess ephd({Ephd(), "--listen", "127.0.0.1:0", "--state", "mysql://x"}, {},
                             dir);
  EXPECT_EQ(ephd.Wait(20s), 1);
  EXPECT_THAT(ephd.Output(), HasSubstr("mysql://x"));
}

TEST(EphdStartTest, ConfigFileSettingsApplyAndUnknownKeysAreRefused) {
  const std::string dir = testing::MakeTempDir("ephd-config");
  std::ofstream(dir + "/ephd.yaml") << "listen: 127.0.0.1:0\nstate: sqlite:" << dir
                                    << "/state.db\nfrobnicate: 1\n";
  testing::ChildProcess bad({Ephd(), "--config", dir + "/ephd.yaml"}, {}, dir);
  EXPECT_EQ(bad.Wait(20s), 2);
  EXPECT_THAT(bad.Output(), HasSubstr("ephd.yaml:3:1: unknown setting \"frobnicate\""));
}

TEST(EphValidateTest, ValidAndBrokenFiles) {
  const std::string dir = testing::MakeTempDir("validate");
  std::ofstream(dir + "/eph.yaml") << "version: \"1.0\"\nname: my-app\n"
                                      "triggers:\n  - type: pr_label\n    labels: [\"preview\"]\n"
                                      "kubernetes:\n  manifests: [./k8s]\n";
  auto ok = testing::RunCommand({Eph(), "validate", dir + "/eph.yaml"});
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_THAT(ok.out, HasSubstr("valid"));

  std::ofstream(dir + "/bad.yaml") << "version: \"1.0\"\nname: my-app\nenvironment:\n  ttl: 3 days\n";
  auto bad = testing::RunCommand({Eph(), "validate", dir + "/bad.yaml"});
  EXPECT_EQ(bad.exit_code, 6);
  EXPECT_THAT(bad.err, HasSubstr(dir + "/bad.yaml:4:8:"));

  auto missing = testing::RunCommand({Eph(), "validate", dir + "/none.yaml"});
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_THAT(missing.err, HasSubstr("none.yaml"));
}

}  // namespace
}  // namespace eph
