#include "pkg/kube/credentials.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>

#include "absl/strings/numbers.h"
#include "fmt/format.h"
#include "pkg/kube/api_errors.h"
#include "pkg/kube/kube_test_util.h"
#include "pkg/kube/process_runner.h"
#include "test/support/testbed.h"

namespace eph::kube {
namespace {

using ::eph::kube::testing::ReadFile;
using ::eph::kube::testing::WriteFile;
using ::testing::HasSubstr;

constexpr char kV1[] = "client.authentication.k8s.io/v1";

std::string Msg(const absl::Status& st) { return MessageOf(st); }

class ExecPluginTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = eph::testing::MakeTempDir("exec-plugin"); }

  // A plugin that counts its runs in <dir>/runs and answers token "tok-<run>" expiring at
  // `expiry` (RFC 3339), or with no expiry when empty.
  std::string CountingPlugin(const std::string& expiry) {
    std::string path = dir_ + "/plugin";
    const std::string status =
        expiry.empty() ? R"({"token":"tok-'"$n"'"})"
                       : R"({"token":"tok-'"$n"'","expirationTimestamp":")" + expiry + R"("})";
    WriteFile(path,
              fmt::format("#!/bin/sh\n"
                          "n=$(( $(cat {0}/runs 2>/dev/null || echo 0) + 1 ))\n"
                          "echo $n >{0}/runs\n"
                          "echo '{{\"apiVersion\":\"{1}\",\"kind\":\"ExecCredential\","
                          "\"status\":{2}}}'\n",
                          dir_, kV1, status),
              /*executable=*/true);
    return path;
  }

  ExecPluginConfig Config(const std::string& command, std::vector<std::string> args = {}) {
    ExecPluginConfig c;
    c.api_version = kV1;
    c.command = command;
    c.args = std::move(args);
    c.exec_info_json =
        R"({"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","spec":{"interactive":false}})";
    return c;
  }

  std::string dir_;
  FakeClock clock_;  // 2026-01-01T00:00:00Z
};

TEST_F(ExecPluginTest, CredentialIsCachedUntilItsExpiryAndThenFetchedAgain) {
  ExecCredentialSource source(Config(CountingPlugin("2026-01-01T00:10:00Z")), {}, clock_,
                              "kubeconfig test user \"u\"");
  EXPECT_EQ(source.Get()->bearer_token, "tok-1");
  clock_.Advance(std::chrono::minutes(9));
  EXPECT_EQ(source.Get()->bearer_token, "tok-1");
  EXPECT_EQ(source.runs(), 1);
  clock_.Advance(std::chrono::minutes(1));  // exactly at expiry: expired
  EXPECT_EQ(source.Get()->bearer_token, "tok-2");
  EXPECT_EQ(source.runs(), 2);
}

TEST_F(ExecPluginTest, WithoutExpiryTheCredentialIsKeptUntilA401) {
  ExecCredentialSource source(Config(CountingPlugin("")), {}, clock_, "test");
  const Credentials first = *source.Get();
  clock_.Advance(std::chrono::hours(24 * 365));
  EXPECT_EQ(source.Get()->bearer_token, "tok-1");
  // A stale 401 (for credentials already replaced) does not throw the new ones away.
  EXPECT_TRUE(source.Invalidate(Credentials{.bearer_token = "something-older"}));
  EXPECT_EQ(source.Get()->bearer_token, "tok-1");
  EXPECT_TRUE(source.Invalidate(first));
  EXPECT_EQ(source.Get()->bearer_token, "tok-2");
}

TEST_F(ExecPluginTest, ArgumentsReachThePluginVerbatimWithoutAShell) {
  const std::string marker = dir_ + "/pwned";
  WriteFile(dir_ + "/plugin",
            fmt::format("#!/bin/sh\n"
                        "printf '%s\\n' \"$@\" >{0}/args\n"
                        "echo \"$GREETING\" >{0}/env\n"
                        "echo '{{\"apiVersion\":\"{1}\",\"kind\":\"ExecCredential\","
                        "\"status\":{{\"token\":\"t\"}}}}'\n",
                        dir_, kV1),
            /*executable=*/true);
  const std::vector<std::string> args = {"$(touch " + marker + ")", "`touch " + marker + "`",
                                         "a b; touch " + marker, "'quoted'", "*"};
  ExecPluginConfig config = Config(dir_ + "/plugin", args);
  config.env = {{"GREETING", "hello $(touch " + marker + ")"}};
  ExecCredentialSource source(config, {}, clock_, "test");
  ASSERT_TRUE(source.Get().ok()) << source.Get().status();
  std::string expected;
  for (const auto& a : args) expected += a + "\n";
  EXPECT_EQ(ReadFile(dir_ + "/args"), expected);
  EXPECT_EQ(ReadFile(dir_ + "/env"), "hello $(touch " + marker + ")\n");
  EXPECT_FALSE(std::filesystem::exists(marker)) << "an argument was run as a command";
}

TEST_F(ExecPluginTest, BaseCredentialsFillWhatThePluginLeavesOut) {
  ExecCredentialSource source(Config(CountingPlugin("")),
                              Credentials{.client_certificate_pem = "C", .client_key_pem = "K"},
                              clock_, "test");
  const Credentials c = *source.Get();
  EXPECT_EQ(c.bearer_token, "tok-1");
  EXPECT_EQ(c.client_certificate_pem, "C");
}

TEST_F(ExecPluginTest, FailuresNameThePluginAndSayWhatHappened) {
  WriteFile(dir_ + "/fails", "#!/bin/sh\necho 'token service said no' >&2\nexit 3\n", true);
  WriteFile(dir_ + "/garbage", "#!/bin/sh\necho 'hello'\n", true);
  WriteFile(dir_ + "/wrong-version",
            "#!/bin/sh\necho '{\"apiVersion\":\"client.authentication.k8s.io/v1beta1\","
            "\"kind\":\"ExecCredential\",\"status\":{\"token\":\"t\"}}'\n",
            true);
  struct Case {
    std::string command;
    std::string install_hint;
    absl::StatusCode code;
    std::string message;
  };
  const std::vector<Case> cases = {
      {dir_ + "/fails", "", absl::StatusCode::kUnavailable,
       "exited with code 3: token service said no"},
      {dir_ + "/garbage", "", absl::StatusCode::kFailedPrecondition, "not an ExecCredential"},
      {dir_ + "/wrong-version", "", absl::StatusCode::kFailedPrecondition,
       "the kubeconfig asks for \"client.authentication.k8s.io/v1\""},
      {dir_ + "/missing", "install it with: apt-get install missing",
       absl::StatusCode::kFailedPrecondition, "install it with: apt-get install missing"},
      {"eph-no-such-plugin-on-path", "", absl::StatusCode::kFailedPrecondition,
       "eph-no-such-plugin-on-path"},
  };
  for (const auto& c : cases) {
    ExecPluginConfig config = Config(c.command);
    config.install_hint = c.install_hint;
    ExecCredentialSource source(config, {}, clock_, "kubeconfig /k user \"u\"");
    absl::StatusOr<Credentials> got = source.Get();
    ASSERT_FALSE(got.ok()) << c.command;
    EXPECT_EQ(got.status().code(), c.code) << got.status();
    EXPECT_THAT(Msg(got.status()), HasSubstr("kubeconfig /k user \"u\": exec plugin"));
    EXPECT_THAT(Msg(got.status()), HasSubstr(c.message));
  }
}

TEST_F(ExecPluginTest, InteractiveAlwaysIsRefused) {
  ExecPluginConfig config = Config(CountingPlugin(""));
  config.interactive_mode = "Always";
  ExecCredentialSource source(config, {}, clock_, "test");
  EXPECT_TRUE(absl::IsFailedPrecondition(source.Get().status()));
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/runs"));
}

TEST_F(ExecPluginTest, AHangingPluginIsKilledAtItsTimeout) {
  WriteFile(dir_ + "/hangs", "#!/bin/sh\nexec sleep 600\n", true);
  ExecPluginConfig config = Config(dir_ + "/hangs");
  config.timeout = std::chrono::milliseconds(200);
  ExecCredentialSource source(config, {}, clock_, "test");
  const absl::Status st = source.Get().status();
  EXPECT_TRUE(absl::IsUnavailable(st)) << st;
  EXPECT_THAT(Msg(st), HasSubstr("did not finish"));
}

TEST(ParseExecCredentialTest, AcceptsTokenOrCertificateWithExpiry) {
  absl::StatusOr<ExecCredentialStatus> s = ParseExecCredential(
      R"({"apiVersion":"client.authentication.k8s.io/v1beta1","kind":"ExecCredential",
          "status":{"clientCertificateData":"C","clientKeyData":"K",
                    "expirationTimestamp":"2026-01-01T01:00:00.5+01:00"}})",
      "client.authentication.k8s.io/v1beta1");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->credentials.client_certificate_pem, "C");
  EXPECT_EQ(s->credentials.client_key_pem, "K");
  ASSERT_TRUE(s->expiry.has_value());
  EXPECT_EQ(FormatRfc3339(*s->expiry), "2026-01-01T00:00:00.500Z");
}

TEST(ParseExecCredentialTest, RefusesIncompleteOrMalformedOutput) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1"})", "no status"},
      {R"({"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1","status":{}})",
       "neither a token nor"},
      {R"({"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1","status":{"clientCertificateData":"C"}})",
       "only one of"},
      {R"({"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1","status":{"token":"t","expirationTimestamp":"tomorrow"}})",
       "not RFC 3339"},
      {R"({"kind":"Secret","apiVersion":"client.authentication.k8s.io/v1"})",
       "want ExecCredential"},
      {"[]", "not an ExecCredential"},
  };
  for (const auto& [input, message] : cases) {
    absl::StatusOr<ExecCredentialStatus> s =
        ParseExecCredential(input, "client.authentication.k8s.io/v1");
    ASSERT_FALSE(s.ok()) << input;
    EXPECT_THAT(Msg(s.status()), HasSubstr(message)) << input;
  }
}

TEST(RunProcessTest, ReportsExitCodeAndBothStreams) {
  absl::StatusOr<ProcessResult> r =
      RunProcess({.argv = {"/bin/sh", "-c", "echo out; echo err >&2; exit 7"}});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 7);
  EXPECT_EQ(r->out, "out\n");
  EXPECT_EQ(r->err, "err\n");
  EXPECT_FALSE(r->succeeded());
}

TEST(RunProcessTest, DoesNotWaitForABackgroundChildHoldingStdout) {
  // The plugin exits but leaves a child with its stdout: the result comes without waiting for
  // the child (which would be 600 s) or the timeout.
  absl::StatusOr<ProcessResult> r = RunProcess(
      {.argv = {"/bin/sh", "-c", "sleep 600 & echo $!"}, .timeout = std::chrono::seconds(120)});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 0);
  EXPECT_FALSE(r->timed_out);
  int child = 0;
  ASSERT_TRUE(absl::SimpleAtoi(r->out.substr(0, r->out.find('\n')), &child)) << r->out;
  ::kill(child, SIGKILL);
}

}  // namespace
}  // namespace eph::kube
