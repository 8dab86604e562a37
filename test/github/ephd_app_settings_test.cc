// eph.yaml's `environment.variables` and `environment.secrets` end to end: ephd with a
// secrets_dir, driven through the GitHub stand-in, on the test bed's Docker engine and on its
// Kubernetes control plane. The app gets both; the secret's value shows nowhere else a person
// or a script can look: ephd's log, every API answer, the event stream, the dashboard's files,
// and every request ephd sent to GitHub (comments, deployments).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cctype>
#include <filesystem>
#include <fstream>
#include <regex>

#include "absl/strings/escaping.h"
#include "pkg/http/http_client.h"
#include "test/github/ephd_harness.h"
#include "test/github/standin_process.h"
#include "test/support/process.h"
#include "test/support/testbed.h"

namespace eph {
namespace {

using json = nlohmann::json;
using testing::ApiGet;
using testing::EphdProcess;
using ::testing::HasSubstr;
using ::testing::Not;
using testing::StickyComment;
using testing::WaitFor;
using namespace std::chrono_literals;

// Distinctive, so finding it anywhere is a leak and not a coincidence.
constexpr char kSecretValue[] = "eph-e2e-secret-Zq7vW2xK9pLm";
constexpr char kSecretName[] = "PAYMENT_API_TOKEN";

// A secrets_dir holding kSecretName, written the way an operator would (with a newline).
std::string MakeSecretsDir() {
  const std::string dir = testing::MakeTempDir("secrets");
  std::ofstream(dir + "/" + kSecretName) << kSecretValue << "\n";
  std::ofstream(dir + "/UNUSED") << "never named by eph.yaml\n";
  return dir;
}

std::string EphYamlEnvironment(const std::string& secrets) {
  return "environment:\n"
         "  variables:\n"
         "    GREETING: \"hello pr-{pr_number}\"\n"
         "    RELEASE: \"{short_sha}\"\n"
         "  secrets: [" +
         secrets + "]\n";
}

http::Response Get(const std::string& url, std::vector<std::string> headers = {}) {
  http::Request exchange{.method = "GET", .url = url, .headers = std::move(headers)};
  auto answer = http::Perform(exchange);
  EXPECT_TRUE(answer.ok()) << url << ": " << answer.status();
  return answer.ok() ? *answer : http::Response{};
}

// Everything a user, the dashboard or a script can read from ephd and what ephd told GitHub,
// each with where it came from.
std::vector<std::pair<std::string, std::string>> EverythingShown(const EphdProcess& ephd,
                                                                 testing::StandInProcess& standin,
                                                                 const std::string& token) {
  std::vector<std::pair<std::string, std::string>> shown;
  const std::string auth = "Authorization: Bearer " + token;
  shown.emplace_back("ephd's log", ephd.process->Output());
  const http::Response list = Get(ephd.url + "/api/v1/environments?all=true", {auth});
  EXPECT_EQ(list.status, 200) << list.body;
  shown.emplace_back("GET /api/v1/environments", list.body);
  const json items = json::parse(list.body, nullptr, false);
  EXPECT_TRUE(items.is_object() && !items["items"].empty()) << list.body;
  for (const json& e : items.is_object() ? items["items"] : json::array()) {
    const std::string path = "/api/v1/environments/" + e.value("name", "");
    shown.emplace_back("GET " + path, Get(ephd.url + path, {auth}).body);
    shown.emplace_back("GET " + path + "/logs",
                       Get(ephd.url + path + "/logs?tail=1000", {auth}).body);
  }
  // The event stream from its first event (Last-Event-ID 0), cut after a moment: it never ends.
  auto events = testing::RunCommand({testing::Tool("curl"), "-sS", "-N", "--max-time", "3", "-H",
                                     auth, "-H", "Last-Event-ID: 0", ephd.url + "/api/v1/events"});
  EXPECT_THAT(events.out, HasSubstr("data:")) << events.err;
  shown.emplace_back("GET /api/v1/events", events.out);
  for (const char* path : {"/metrics", "/readyz", "/api/v1/openapi.json"}) {
    shown.emplace_back(std::string("GET ") + path, Get(ephd.url + path, {auth}).body);
  }
  // The dashboard: its page and every script and style sheet the page loads.
  // (web/dist, built by the web_dist fixture; ephd serves it by default.)
  const http::Response page = Get(ephd.url + "/");
  EXPECT_EQ(page.status, 200) << "no dashboard served; is web/dist built?";
  shown.emplace_back("GET /", page.body);
  static const std::regex kAsset(R"re((?:src|href)="\.?(/[^"]+\.(?:js|css))")re");
  int scripts = 0;
  for (std::sregex_iterator it(page.body.begin(), page.body.end(), kAsset), end; it != end; ++it) {
    const std::string path = (*it)[1];
    const http::Response asset = Get(ephd.url + path);
    EXPECT_EQ(asset.status, 200) << path;
    scripts += path.ends_with(".js");
    shown.emplace_back("GET " + path, asset.body);
  }
  EXPECT_GT(scripts, 0) << page.body;
  // What ephd sent GitHub (every comment body, edits included) and what GitHub now shows.
  shown.emplace_back("requests to GitHub", standin.Request("GET", "/_standin/requests").dump());
  shown.emplace_back("GitHub's state", standin.State().dump());
  return shown;
}

void ExpectNoSecretIn(const std::vector<std::pair<std::string, std::string>>& shown) {
  std::string base64;
  absl::Base64Escape(kSecretValue, &base64);
  for (const auto& [where, text] : shown) {
    EXPECT_THAT(text, Not(HasSubstr(kSecretValue))) << "the secret's value is in " << where;
    EXPECT_THAT(text, Not(HasSubstr(base64))) << "the secret's value (base64) is in " << where;
  }
}

// Engine API GET on the test bed's engine.
json Engine(const std::string& path) {
  auto got = testing::RunCommand({testing::Tool("curl"), "-sS", "--unix-socket",
                                  testing::DockerHost().substr(std::string("unix://").size()),
                                  "http://localhost/v1.41" + path});
  return json::parse(got.out, nullptr, false);
}

json EnvironmentOf(const EphdProcess& ephd, const std::string& token, const std::string& repo) {
  json list = ApiGet(ephd.url + "/api/v1/environments?all=true&project=" + repo, token);
  return !list.is_object() || list["items"].empty() ? json::object() : list["items"][0];
}

TEST(EphdAppSettingsTest, DockerContainerGetsVariablesAndSecretsWhoseValueShowsNowhereElse) {
  testing::BuildDemoImage("settings");
  testing::StandInProcess standin;
  ASSERT_FALSE(standin.url().empty());
  const std::string compose =
      "services:\n"
      "  web:\n"
      "    image: eph-demo/web:settings\n"
      "    ports: [\"8080\"]\n"
      "    environment:\n"
      "      GREETING: from-compose\n"  // eph.yaml's value replaces it
      "      KEPT: from-compose\n"
      "    healthcheck:\n"
      "      test: [\"CMD\", \"/app\", \"--check\"]\n"
      "      interval: 1s\n"
      "      retries: 30\n";
  const std::string docker_section = "docker:\n  compose_file: compose.yaml\n";
  standin.Request("POST", "/_standin/repos",
                  {{"owner", "acme"},
                   {"repo", "web"},
                   {"files",
                    {{"eph.yaml", "version: \"1.0\"\nname: web\n" + docker_section +
                                      EphYamlEnvironment(kSecretName)},
                     {"compose.yaml", compose}}}});
  // A project naming a secret this ephd does not have.
  standin.Request(
      "POST", "/_standin/repos",
      {{"owner", "acme"},
       {"repo", "lacking"},
       {"files",
        {{"eph.yaml", "version: \"1.0\"\nname: lacking\n" + docker_section +
                          EphYamlEnvironment(std::string(kSecretName) + ", NOT_CONFIGURED")},
         {"compose.yaml", compose}}}});
  for (const char* repo : {"web", "lacking"}) {
    standin.Request("PUT", std::string("/_standin/repos/acme/") + repo + "/pulls/5",
                    {{"labels", {"preview"}}});
  }
  const std::string secrets_dir = MakeSecretsDir();
  EphdProcess ephd({{"EPH_GITHUB_API_URL", standin.url()},
                    {"EPH_GITHUB_TOKEN", testing::kStandInToken},
                    {"EPH_DOCKER_HOST", testing::DockerHost()},
                    {"EPH_SECRETS_DIR", secrets_dir},
                    {"EPH_LOG_LEVEL", "debug"}});
  ASSERT_FALSE(ephd.url.empty());
  EXPECT_THAT(ephd.process->Output(), HasSubstr("secrets: from secrets_dir " + secrets_dir));
  const std::string token = testing::CreateApiToken(ephd);
  for (const char* repo : {"acme/web", "acme/lacking"}) {
    json sent = testing::Deliver(
        standin, ephd, repo,
        {{"event", "pull_request"}, {"action", "labeled"}, {"number", 5}, {"label", "preview"}});
    ASSERT_EQ(sent.value("status", 0) / 100, 2) << sent;
  }
  ASSERT_TRUE(WaitFor(
      [&] { return EnvironmentOf(ephd, token, "acme/web").value("state", "") == "ready"; }, 180s))
      << EnvironmentOf(ephd, token, "acme/web").dump() << "\n"
      << ephd.process->Output();
  ASSERT_TRUE(WaitFor(
      [&] { return EnvironmentOf(ephd, token, "acme/lacking").value("state", "") == "failed"; },
      60s))
      << EnvironmentOf(ephd, token, "acme/lacking").dump() << "\n"
      << ephd.process->Output();

  // The app's container has eph.yaml's variables (expanded, over compose's value of the same
  // name), compose's other variables, and the secret from ephd's directory.
  const std::string name = EnvironmentOf(ephd, token, "acme/web").value("name", "");
  const json container = Engine("/containers/eph-" + name + "-web-1/json");
  ASSERT_TRUE(container.is_object()) << container;
  std::map<std::string, std::string> env;
  for (const json& kv : container["Config"]["Env"]) {
    const std::string s = kv.get<std::string>();
    env[s.substr(0, s.find('='))] = s.substr(s.find('=') + 1);
  }
  EXPECT_EQ(env["GREETING"], "hello pr-5");
  EXPECT_EQ(env["RELEASE"].size(), 7u) << env["RELEASE"];
  EXPECT_EQ(env["KEPT"], "from-compose");
  EXPECT_EQ(env[kSecretName], kSecretValue);
  EXPECT_EQ(env.count("UNUSED"), 0u);

  // The project lacking a secret: failed before anything was made, saying which and where.
  const json lacking = EnvironmentOf(ephd, token, "acme/lacking");
  EXPECT_EQ(lacking.value("reason", ""),
            "secret NOT_CONFIGURED is not configured in ephd (secrets_dir " + secrets_dir + ")");
  const json made =
      Engine("/containers/json?all=1&filters=%7B%22label%22%3A%5B%22eph.dev%2Fenvironment%3D" +
             lacking.value("name", "") + "%22%5D%7D");
  EXPECT_EQ(made, json::array()) << "a half-made environment was left";
  ASSERT_TRUE(WaitFor(
      [&] {
        return StickyComment(standin, 5).find("NOT_CONFIGURED") != std::string::npos ||
               standin.Request("GET", "/_standin/requests")
                       .dump()
                       .find("secret NOT_CONFIGURED is not configured") != std::string::npos;
      },
      30s))
      << standin.State()["comments"].dump(1);

  ExpectNoSecretIn(EverythingShown(ephd, standin, token));
  EXPECT_EQ(standin.Violations(), json::array());
}

// `kubectl get -o json`, or nullptr when it fails.
json KubectlGet(const std::vector<std::string>& what) {
  std::vector<std::string> argv = {testing::KubeBed("EPH_TEST_KUBE_BIN") + "/kubectl",
                                   "--kubeconfig",
                                   testing::KubeBed("EPH_TEST_KUBECONFIG"),
                                   "get",
                                   "-o",
                                   "json"};
  argv.insert(argv.end(), what.begin(), what.end());
  auto got = testing::RunCommand(argv);
  if (got.exit_code != 0) return nullptr;
  return json::parse(got.out, nullptr, false);
}

std::string Decoded(const json& secret, const std::string& key) {
  std::string out;
  absl::Base64Unescape(secret["data"].value(key, ""), &out);
  return out;
}

// kubectl with the test bed's kubeconfig.
testing::CommandResult Kubectl(std::vector<std::string> args) {
  args.insert(args.begin(), {testing::KubeBed("EPH_TEST_KUBE_BIN") + "/kubectl", "--kubeconfig",
                             testing::KubeBed("EPH_TEST_KUBECONFIG")});
  return testing::RunCommand(args);
}

// Here ephd reads the secret from a Kubernetes Secret (secrets_kubernetes_secret) instead of a
// directory, the way an operator keeps secrets in the cluster.
TEST(EphdAppSettingsTest, KubernetesEnvSecretHoldsThemAndEveryContainerReferencesIt) {
  const std::string secrets_ns =
      "eph-test-secrets-" + std::filesystem::path(testing::MakeTempDir("ns")).filename().string();
  std::string secrets_ns_label;
  for (char c : secrets_ns) secrets_ns_label.push_back(std::isalnum(c) ? std::tolower(c) : '-');
  ASSERT_EQ(Kubectl({"create", "namespace", secrets_ns_label}).exit_code, 0);
  auto created = Kubectl({"create", "secret", "generic", "app-secrets", "-n", secrets_ns_label,
                          std::string("--from-literal=") + kSecretName + "=" + kSecretValue,
                          "--from-literal=UNUSED=never named by eph.yaml"});
  ASSERT_EQ(created.exit_code, 0) << created.err;
  testing::StandInProcess standin;
  ASSERT_FALSE(standin.url().empty());
  standin.Request(
      "POST", "/_standin/repos",
      {{"owner", "acme"},
       {"repo", "kube"},
       {"files",
        {{"eph.yaml", "version: \"1.0\"\nname: kube\nkubernetes:\n  manifests: [k8s]\n" +
                          EphYamlEnvironment(kSecretName)},
         {"k8s/app.yaml",
          "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 1\n"
          "  selector:\n    matchLabels: {app: web}\n  template:\n    metadata:\n"
          "      labels: {app: web}\n    spec:\n      containers:\n"
          "        - name: web\n          image: acme/web:1\n"}}}});
  standin.Request("PUT", "/_standin/repos/acme/kube/pulls/8", {{"labels", {"preview"}}});
  // A project naming a key the Secret does not have.
  standin.Request(
      "POST", "/_standin/repos",
      {{"owner", "acme"},
       {"repo", "lacking"},
       {"files",
        {{"eph.yaml", "version: \"1.0\"\nname: lacking\nkubernetes:\n  manifests: [k8s]\n" +
                          EphYamlEnvironment("NOT_CONFIGURED")},
         {"k8s/app.yaml",
          "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata: {a: b}\n"}}}});
  standin.Request("PUT", "/_standin/repos/acme/lacking/pulls/9", {{"labels", {"preview"}}});
  const std::string bin = testing::KubeBed("EPH_TEST_KUBE_BIN");
  EphdProcess ephd({{"EPH_GITHUB_API_URL", standin.url()},
                    {"EPH_GITHUB_TOKEN", testing::kStandInToken},
                    {"EPH_KUBECONFIG", testing::KubeBed("EPH_TEST_KUBECONFIG")},
                    {"EPH_KUSTOMIZE_PATH", bin + "/kustomize"},
                    {"EPH_HELM_PATH", bin + "/helm"},
                    {"EPH_SECRETS_KUBERNETES_SECRET", secrets_ns_label + "/app-secrets"},
                    {"EPH_LOG_LEVEL", "debug"}});
  ASSERT_FALSE(ephd.url.empty());
  EXPECT_THAT(ephd.process->Output(),
              HasSubstr("secrets: from Kubernetes Secret " + secrets_ns_label + "/app-secrets"));
  const std::string token = testing::CreateApiToken(ephd);
  json sent = testing::Deliver(
      standin, ephd, "acme/kube",
      {{"event", "pull_request"}, {"action", "labeled"}, {"number", 8}, {"label", "preview"}});
  ASSERT_EQ(sent.value("status", 0) / 100, 2) << sent;
  ASSERT_TRUE(WaitFor(
      [&] { return EnvironmentOf(ephd, token, "acme/kube").value("state", "") == "ready"; }, 180s))
      << EnvironmentOf(ephd, token, "acme/kube").dump() << "\n"
      << ephd.process->Output();
  const std::string ns = "eph-" + EnvironmentOf(ephd, token, "acme/kube").value("name", "");
  sent = testing::Deliver(
      standin, ephd, "acme/lacking",
      {{"event", "pull_request"}, {"action", "labeled"}, {"number", 9}, {"label", "preview"}});
  ASSERT_EQ(sent.value("status", 0) / 100, 2) << sent;
  ASSERT_TRUE(WaitFor(
      [&] { return EnvironmentOf(ephd, token, "acme/lacking").value("state", "") == "failed"; },
      60s))
      << EnvironmentOf(ephd, token, "acme/lacking").dump() << "\n"
      << ephd.process->Output();
  const json lacking = EnvironmentOf(ephd, token, "acme/lacking");
  EXPECT_EQ(lacking.value("reason", ""),
            "secret NOT_CONFIGURED is not configured in ephd "
            "(Kubernetes Secret " +
                secrets_ns_label + "/app-secrets)");
  EXPECT_TRUE(KubectlGet({"namespace", "eph-" + lacking.value("name", "")}).is_null())
      << "a half-made environment was left";

  const json secret = KubectlGet({"secret", "eph-env", "-n", ns});
  ASSERT_TRUE(secret.is_object()) << "no Secret eph-env in " << ns;
  EXPECT_EQ(Decoded(secret, "GREETING"), "hello pr-8");
  EXPECT_EQ(Decoded(secret, "RELEASE").size(), 7u);
  EXPECT_EQ(Decoded(secret, kSecretName), kSecretValue);
  EXPECT_FALSE(secret["data"].contains("UNUSED"));
  const json deployment = KubectlGet({"deployment", "web", "-n", ns});
  ASSERT_TRUE(deployment.is_object());
  const json& container = deployment["spec"]["template"]["spec"]["containers"][0];
  EXPECT_EQ(container["envFrom"], json::parse(R"([{"secretRef":{"name":"eph-env"}}])"))
      << container.dump();
  // The pods the Deployment made carry the reference too.
  ASSERT_TRUE(WaitFor(
      [&] {
        const json pods = KubectlGet({"pods", "-n", ns});
        return pods.is_object() && !pods["items"].empty();
      },
      60s));
  const json pods = KubectlGet({"pods", "-n", ns});
  for (const json& pod : pods["items"]) {
    EXPECT_EQ(pod["spec"]["containers"][0]["envFrom"][0]["secretRef"].value("name", ""), "eph-env")
        << pod["metadata"].value("name", "");
  }

  ExpectNoSecretIn(EverythingShown(ephd, standin, token));
  EXPECT_EQ(standin.Violations(), json::array());
  Kubectl({"delete", "namespace", secrets_ns_label, "--wait=false"});
}

}  // namespace
}  // namespace eph
