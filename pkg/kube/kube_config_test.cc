#include "pkg/kube/kube_config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>

#include "fmt/format.h"
#include "nlohmann/json.hpp"
#include "pkg/kube/api_errors.h"
#include "pkg/kube/kube_test_util.h"
#include "test/support/testbed.h"

namespace eph::kube {
namespace {

using ::eph::kube::testing::B64;
using ::eph::kube::testing::FakeCaPem;
using ::eph::kube::testing::WriteFile;
using ::testing::HasSubstr;

std::string Msg(const absl::Status& st) { return MessageOf(st); }

class KubeconfigTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = eph::testing::MakeTempDir("kubeconfig"); }

  // Writes `yaml` as <dir>/config and loads it.
  absl::StatusOr<KubeConfig> Load(const std::string& yaml, KubeconfigOptions options = {}) {
    path_ = dir_ + "/config";
    WriteFile(path_, yaml);
    if (options.clock == nullptr) options.clock = &clock_;
    return LoadKubeconfig(path_, options);
  }

  std::string dir_;
  std::string path_;
  FakeClock clock_;
};

constexpr char kTwoContexts[] = R"(apiVersion: v1
kind: Config
current-context: dev
clusters:
- name: dev-cluster
  cluster:
    server: https://dev.example:6443/
    certificate-authority-data: {ca}
- name: prod-cluster
  cluster:
    server: https://prod.example:443
    insecure-skip-tls-verify: true
    tls-server-name: kubernetes.prod
users:
- name: dev-user
  user:
    client-certificate-data: {cert}
    client-key-data: {key}
- name: prod-user
  user:
    token: prod-token
contexts:
- name: dev
  context: {{cluster: dev-cluster, user: dev-user, namespace: team-a}}
- name: prod
  context: {{cluster: prod-cluster, user: prod-user}}
)";

TEST_F(KubeconfigTest, CurrentContextWithClientCertificateData) {
  absl::StatusOr<KubeConfig> config =
      Load(fmt::format(kTwoContexts, fmt::arg("ca", B64(FakeCaPem())),
                       fmt::arg("cert", B64("CERT PEM")), fmt::arg("key", B64("KEY PEM"))));
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->server, "https://dev.example:6443");  // trailing slash dropped
  EXPECT_EQ(config->ca_pem, FakeCaPem());
  EXPECT_THAT(config->ca_origin, HasSubstr("certificate-authority-data"));
  EXPECT_FALSE(config->insecure_skip_tls_verify);
  EXPECT_EQ(config->default_namespace, "team-a");
  EXPECT_THAT(config->origin, HasSubstr(path_));
  absl::StatusOr<Credentials> creds = config->credentials->Get();
  ASSERT_TRUE(creds.ok());
  EXPECT_EQ(creds->client_certificate_pem, "CERT PEM");
  EXPECT_EQ(creds->client_key_pem, "KEY PEM");
  EXPECT_EQ(creds->bearer_token, "");
}

TEST_F(KubeconfigTest, ExplicitContextWithTokenAndInsecure) {
  absl::StatusOr<KubeConfig> config =
      Load(fmt::format(kTwoContexts, fmt::arg("ca", B64(FakeCaPem())), fmt::arg("cert", B64("C")),
                       fmt::arg("key", B64("K"))),
           {.context = "prod"});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->server, "https://prod.example:443");
  EXPECT_TRUE(config->insecure_skip_tls_verify);
  EXPECT_EQ(config->tls_server_name, "kubernetes.prod");
  EXPECT_EQ(config->default_namespace, "default");
  EXPECT_EQ(config->credentials->Get()->bearer_token, "prod-token");
}

TEST_F(KubeconfigTest, RelativeFilesAreResolvedAgainstTheKubeconfigsDirectory) {
  WriteFile(dir_ + "/pki/ca.crt", FakeCaPem());
  WriteFile(dir_ + "/pki/client.crt", "CLIENT CERT");
  WriteFile(dir_ + "/pki/client.key", "CLIENT KEY");
  absl::StatusOr<KubeConfig> config = Load(R"(
current-context: c
clusters: [{name: k, cluster: {server: "https://h:1", certificate-authority: pki/ca.crt}}]
users: [{name: u, user: {client-certificate: ./pki/client.crt, client-key: pki/../pki/client.key}}]
contexts: [{name: c, context: {cluster: k, user: u}}]
)");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->ca_pem, FakeCaPem());
  EXPECT_THAT(config->ca_origin, HasSubstr(dir_ + "/pki/ca.crt"));
  EXPECT_EQ(config->credentials->Get()->client_certificate_pem, "CLIENT CERT");
  EXPECT_EQ(config->credentials->Get()->client_key_pem, "CLIENT KEY");
}

TEST_F(KubeconfigTest, TokenFileIsReadRelativeAndReReadAfterTheInterval) {
  WriteFile(dir_ + "/token", "first\n");
  absl::StatusOr<KubeConfig> config = Load(R"(
current-context: c
clusters: [{name: k, cluster: {server: "https://h:1"}}]
users: [{name: u, user: {tokenFile: token}}]
contexts: [{name: c, context: {cluster: k, user: u}}]
)",
                                           {.token_file_reread = std::chrono::seconds(60)});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->credentials->Get()->bearer_token, "first");
  WriteFile(dir_ + "/token", "second");
  clock_.Advance(std::chrono::seconds(59));
  EXPECT_EQ(config->credentials->Get()->bearer_token, "first");  // cached
  clock_.Advance(std::chrono::seconds(2));
  EXPECT_EQ(config->credentials->Get()->bearer_token, "second");
  // After a 401 it is read again at once.
  WriteFile(dir_ + "/token", "third");
  EXPECT_TRUE(config->credentials->Invalidate(*config->credentials->Get()));
  EXPECT_EQ(config->credentials->Get()->bearer_token, "third");
}

TEST_F(KubeconfigTest, TokenWinsOverTokenFile) {
  absl::StatusOr<KubeConfig> config = Load(R"(
current-context: c
clusters: [{name: k, cluster: {server: "https://h:1"}}]
users: [{name: u, user: {token: inline, tokenFile: /nonexistent}}]
contexts: [{name: c, context: {cluster: k, user: u}}]
)");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->credentials->Get()->bearer_token, "inline");
}

TEST_F(KubeconfigTest, ExecSectionIsParsedWithRelativeCommandArgsAndEnv) {
  WriteFile(dir_ + "/bin/plugin",
            "#!/bin/sh\n"
            "printf '%s\\n' \"$FOO\" \"$@\" >\"$(dirname \"$0\")/seen\"\n"
            "echo \"$KUBERNETES_EXEC_INFO\" >\"$(dirname \"$0\")/info\"\n"
            "echo '{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\","
            "\"status\":{\"token\":\"from-plugin\"}}'\n",
            /*executable=*/true);
  absl::StatusOr<KubeConfig> config = Load(fmt::format(R"(
current-context: c
clusters: [{{name: k, cluster: {{server: "https://h:1", certificate-authority-data: {ca}}}}}]
users:
- name: u
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1
      command: ./bin/plugin
      args: ["--flag", "two words"]
      env: [{{name: FOO, value: bar}}]
      provideClusterInfo: true
      interactiveMode: Never
contexts: [{{name: c, context: {{cluster: k, user: u}}}}]
)",
                                                       fmt::arg("ca", B64(FakeCaPem()))));
  ASSERT_TRUE(config.ok()) << config.status();
  absl::StatusOr<Credentials> creds = config->credentials->Get();
  ASSERT_TRUE(creds.ok()) << creds.status();
  EXPECT_EQ(creds->bearer_token, "from-plugin");
  EXPECT_EQ(testing::ReadFile(dir_ + "/bin/seen"), "bar\n--flag\ntwo words\n");
  const nlohmann::json info = nlohmann::json::parse(testing::ReadFile(dir_ + "/bin/info"));
  EXPECT_EQ(info["apiVersion"], "client.authentication.k8s.io/v1");
  EXPECT_EQ(info["spec"]["interactive"], false);
  EXPECT_EQ(info["spec"]["cluster"]["server"], "https://h:1");
  EXPECT_EQ(info["spec"]["cluster"]["certificate-authority-data"], B64(FakeCaPem()));
}

struct BadCase {
  std::string name;
  std::string yaml;
  absl::StatusCode code;
  std::string message;
};

TEST_F(KubeconfigTest, BadFilesAreRefusedNamingTheFileAndTheProblem) {
  const std::string ok_cluster = R"(clusters: [{name: k, cluster: {server: "https://h:1"}}])";
  const std::string ok_context = R"(contexts: [{name: c, context: {cluster: k, user: u}}])";
  const std::vector<BadCase> cases = {
      {"not yaml", "clusters: [unclosed", absl::StatusCode::kInvalidArgument, "not valid YAML"},
      {"not a map", "- a\n- b\n", absl::StatusCode::kInvalidArgument, "expected a YAML map"},
      {"wrong kind", "kind: Pod\n", absl::StatusCode::kInvalidArgument, "want Config"},
      {"no context", ok_cluster + "\n", absl::StatusCode::kInvalidArgument, "no current-context"},
      {"unknown context", "current-context: nope\n" + ok_context + "\n",
       absl::StatusCode::kInvalidArgument, "context \"nope\" is not defined (the file has: c)"},
      {"unknown cluster", "current-context: c\n" + ok_context + "\n",
       absl::StatusCode::kInvalidArgument, "cluster \"k\" is not defined"},
      {"unknown user", "current-context: c\n" + ok_context + "\n" + ok_cluster + "\n",
       absl::StatusCode::kInvalidArgument, "user \"u\" is not defined"},
      {"no server",
       "current-context: c\n" + ok_context +
           "\nclusters: [{name: k, cluster: {}}]\n"
           "users: [{name: u, user: {}}]\n",
       absl::StatusCode::kInvalidArgument, "cluster \"k\" has no server"},
      {"server not a URL",
       "current-context: c\n" + ok_context +
           "\nclusters: [{name: k, cluster: {server: h:1}}]\n"
           "users: [{name: u, user: {}}]\n",
       absl::StatusCode::kInvalidArgument, "is not an http(s):// URL"},
      {"bad base64",
       "current-context: c\n" + ok_context +
           "\nclusters: [{name: k, cluster: {server: 'https://h', certificate-authority-data: "
           "'!!!'}}]\nusers: [{name: u, user: {}}]\n",
       absl::StatusCode::kInvalidArgument, "certificate-authority-data is not valid base64"},
      {"ca not pem",
       "current-context: c\n" + ok_context +
           "\nclusters: [{name: k, cluster: {server: 'https://h', certificate-authority-data: " +
           B64("hello") + "}}]\nusers: [{name: u, user: {}}]\n",
       absl::StatusCode::kInvalidArgument, "not a PEM certificate"},
      {"ca file missing",
       "current-context: c\n" + ok_context +
           "\nclusters: [{name: k, cluster: {server: 'https://h', certificate-authority: "
           "missing/ca.crt}}]\nusers: [{name: u, user: {}}]\n",
       absl::StatusCode::kFailedPrecondition, "/missing/ca.crt cannot be read"},
      {"ca and insecure",
       "current-context: c\n" + ok_context +
           "\nclusters: [{name: k, cluster: {server: 'https://h', insecure-skip-tls-verify: true, "
           "certificate-authority-data: " +
           B64(FakeCaPem()) + "}}]\nusers: [{name: u, user: {}}]\n",
       absl::StatusCode::kInvalidArgument, "insecure-skip-tls-verify; choose one"},
      {"insecure not a bool",
       "current-context: c\n" + ok_context +
           "\nclusters: [{name: k, cluster: {server: 'https://h', insecure-skip-tls-verify: "
           "perhaps}}]\nusers: [{name: u, user: {}}]\n",
       absl::StatusCode::kInvalidArgument, "bad value"},
      {"cert without key",
       "current-context: c\n" + ok_context + "\n" + ok_cluster +
           "\nusers: [{name: u, user: {client-certificate-data: " + B64("C") + "}}]\n",
       absl::StatusCode::kInvalidArgument, "has a client certificate but no client key"},
      {"token file missing",
       "current-context: c\n" + ok_context + "\n" + ok_cluster +
           "\nusers: [{name: u, user: {tokenFile: gone}}]\n",
       absl::StatusCode::kFailedPrecondition, "/gone cannot be read"},
      {"auth provider",
       "current-context: c\n" + ok_context + "\n" + ok_cluster +
           "\nusers: [{name: u, user: {auth-provider: {name: gcp}}}]\n",
       absl::StatusCode::kInvalidArgument, "auth-provider"},
      {"basic auth",
       "current-context: c\n" + ok_context + "\n" + ok_cluster +
           "\nusers: [{name: u, user: {username: a, password: b}}]\n",
       absl::StatusCode::kInvalidArgument, "username/password"},
      {"exec old api",
       "current-context: c\n" + ok_context + "\n" + ok_cluster +
           "\nusers: [{name: u, user: {exec: {apiVersion: "
           "client.authentication.k8s.io/v1alpha1, command: x}}}]\n",
       absl::StatusCode::kInvalidArgument, "v1alpha1\" is not supported"},
      {"exec no command",
       "current-context: c\n" + ok_context + "\n" + ok_cluster +
           "\nusers: [{name: u, user: {exec: {apiVersion: client.authentication.k8s.io/v1}}}]\n",
       absl::StatusCode::kInvalidArgument, "exec has no command"},
      {"exec args not a list",
       "current-context: c\n" + ok_context + "\n" + ok_cluster +
           "\nusers: [{name: u, user: {exec: {apiVersion: client.authentication.k8s.io/v1, "
           "command: x, args: oops}}}]\n",
       absl::StatusCode::kInvalidArgument, "exec args is not a list"},
  };
  for (const auto& c : cases) {
    absl::StatusOr<KubeConfig> config = Load(c.yaml);
    ASSERT_FALSE(config.ok()) << c.name;
    EXPECT_EQ(config.status().code(), c.code) << c.name << ": " << config.status();
    EXPECT_THAT(Msg(config.status()), HasSubstr("kubeconfig " + path_)) << c.name;
    EXPECT_THAT(Msg(config.status()), HasSubstr(c.message)) << c.name;
  }
}

TEST_F(KubeconfigTest, MissingFileIsNamed) {
  absl::StatusOr<KubeConfig> config = LoadKubeconfig(dir_ + "/does-not-exist");
  ASSERT_FALSE(config.ok());
  EXPECT_TRUE(absl::IsFailedPrecondition(config.status()));
  EXPECT_THAT(Msg(config.status()), HasSubstr(dir_ + "/does-not-exist"));
}

// ---- in-cluster ---------------------------------------------------------------------------------

class InClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = eph::testing::MakeTempDir("incluster");
    WriteFile(root_ + "/token", "token-1\n");
    WriteFile(root_ + "/ca.crt", FakeCaPem());
    WriteFile(root_ + "/namespace", "eph-system\n");
    env_ = {{"KUBERNETES_SERVICE_HOST", "10.96.0.1"}, {"KUBERNETES_SERVICE_PORT", "443"}};
  }
  InClusterOptions Options() {
    InClusterOptions o;
    o.root = root_;
    o.clock = &clock_;
    o.getenv = [this](const std::string& name) -> std::optional<std::string> {
      const auto it = env_.find(name);
      if (it == env_.end()) return std::nullopt;
      return it->second;
    };
    return o;
  }
  std::string root_;
  std::map<std::string, std::string> env_;
  FakeClock clock_;
};

TEST_F(InClusterTest, ReadsServiceAccountAndReReadsTheRotatedToken) {
  absl::StatusOr<KubeConfig> config = LoadInClusterConfig(Options());
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->server, "https://10.96.0.1:443");
  EXPECT_EQ(config->ca_pem, FakeCaPem());
  EXPECT_EQ(config->default_namespace, "eph-system");
  EXPECT_EQ(config->credentials->Get()->bearer_token, "token-1");
  WriteFile(root_ + "/token", "token-2\n");  // the kubelet rotates it
  clock_.Advance(std::chrono::seconds(30));
  EXPECT_EQ(config->credentials->Get()->bearer_token, "token-1");
  clock_.Advance(std::chrono::seconds(31));
  EXPECT_EQ(config->credentials->Get()->bearer_token, "token-2");
}

TEST_F(InClusterTest, Ipv6ServiceHostIsBracketed) {
  env_["KUBERNETES_SERVICE_HOST"] = "fd00::1";
  absl::StatusOr<KubeConfig> config = LoadInClusterConfig(Options());
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->server, "https://[fd00::1]:443");
}

TEST_F(InClusterTest, OutsideAPodIsAClearError) {
  env_.clear();
  absl::StatusOr<KubeConfig> config = LoadInClusterConfig(Options());
  ASSERT_FALSE(config.ok());
  EXPECT_TRUE(absl::IsFailedPrecondition(config.status()));
  EXPECT_THAT(Msg(config.status()), HasSubstr("KUBERNETES_SERVICE_HOST"));
}

TEST_F(InClusterTest, MissingTokenIsNamed) {
  std::filesystem::remove(root_ + "/token");
  absl::StatusOr<KubeConfig> config = LoadInClusterConfig(Options());
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(Msg(config.status()), HasSubstr(root_ + "/token"));
}

}  // namespace
}  // namespace eph::kube
