// The whole path, end to end: a labelled pull request on the GitHub stand-in, a webhook to a
// running ephd with the Kubernetes provider on the test bed's real control plane, a namespace
// with the app in it, a sticky comment with the URL and a successful GitHub deployment; a push
// updates it; closing the pull request removes the namespace and marks the deployment inactive.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

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

// The multi-service fixture (test/kubernetes/app: 12 Deployments, kustomize base and overlay),
// as repository files for the stand-in.
json FixtureFiles() {
  const fs::path root = testing::SourceDir() + "/test/kubernetes/app";
  json files = json::object();
  for (const auto& entry : fs::recursive_directory_iterator(root)) {
    if (!entry.is_regular_file()) continue;
    std::ifstream in(entry.path(), std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    files[fs::relative(entry.path(), root).string()] = text.str();
  }
  return files;
}

// `kubectl get` of one object as JSON, or nullptr when it does not exist.
json KubectlGet(const std::vector<std::string>& what) {
  std::vector<std::string> argv = {testing::KubeBed("EPH_TEST_KUBE_BIN") + "/kubectl", "--kubeconfig",
                                   testing::KubeBed("EPH_TEST_KUBECONFIG"), "get", "-o", "json"};
  argv.insert(argv.end(), what.begin(), what.end());
  auto got = testing::RunCommand(argv);
  if (got.exit_code != 0) return nullptr;
  return json::parse(got.out, nullptr, false);
}

json Deliver(testing::StandInProcess& standin, const EphdProcess& ephd, json body) {
  return testing::Deliver(standin, ephd, "acme/shop", std::move(body));
}

std::vector<std::string> DeploymentStates(const json& state) {
  std::vector<std::string> out;
  for (const json& d : state["deployments"]) {
    for (const json& s : d["statuses"]) out.push_back(s.value("state", ""));
  }
  return out;
}

TEST(EphdKubernetesTest, PullRequestLifeOnARealClusterFromLabelToClose) {
  testing::StandInProcess standin;
  ASSERT_FALSE(standin.url().empty());
  standin.Request("POST", "/_standin/repos",
                  {{"owner", "acme"}, {"repo", "shop"}, {"files", FixtureFiles()}});
  standin.Request("PUT", "/_standin/repos/acme/shop/pulls/7",
                  {{"labels", {"preview"}}, {"head_ref", "feature-7"}, {"user", "octocat"}});
  const std::string bin = testing::KubeBed("EPH_TEST_KUBE_BIN");
  EphdProcess ephd({{"EPH_GITHUB_API_URL", standin.url()},
                    {"EPH_GITHUB_TOKEN", testing::kStandInToken},
                    {"EPH_KUBECONFIG", testing::KubeBed("EPH_TEST_KUBECONFIG")},
                    {"EPH_KUSTOMIZE_PATH", bin + "/kustomize"},
                    {"EPH_HELM_PATH", bin + "/helm"}});
  ASSERT_FALSE(ephd.url.empty());
  const std::string token = testing::CreateApiToken(ephd);

  json delivered =
      Deliver(standin, ephd,
              {{"event", "pull_request"}, {"action", "labeled"}, {"number", 7}, {"label", "preview"}});
  ASSERT_EQ(delivered.value("status", 0) / 100, 2) << delivered;

  // Ready: the comment has the URL, the deployment succeeded with it, the namespace holds the app.
  ASSERT_TRUE(WaitFor([&] { return StickyComment(standin, 7).find("Ready at") != std::string::npos; },
                      120s))
      << StickyComment(standin, 7) << "\n"
      << ephd.process->Output();
  // The reporter writes the comment just before the environment's row: wait for both.
  json list;
  ASSERT_TRUE(WaitFor(
      [&] {
        list = ApiGet(ephd.url + "/api/v1/environments", token);
        return list["items"].size() == 1 && list["items"][0].value("state", "") == "ready";
      },
      10s))
      << list;
  const json env = list["items"][0];
  const std::string name = env.value("name", "");
  EXPECT_EQ(env.value("state", ""), "ready") << env;
  EXPECT_THAT(env.value("url", ""), HasSubstr(name + ".preview.localhost"));
  EXPECT_THAT(StickyComment(standin, 7), HasSubstr(env.value("url", "")));
  EXPECT_THAT(StickyComment(standin, 7), HasSubstr("Expires"));
  const std::string ns = "eph-" + name;
  json namespace_object = KubectlGet({"namespace", ns});
  ASSERT_TRUE(namespace_object.is_object()) << ns;
  EXPECT_EQ(namespace_object["metadata"]["labels"].value("eph.dev/environment", ""), name);
  json deployments = KubectlGet({"deployments", "-n", ns});
  ASSERT_TRUE(deployments.is_object());
  EXPECT_GE(deployments["items"].size(), 10u);
  for (const json& d : deployments["items"]) {
    const std::string image = d["spec"]["template"]["spec"]["containers"][0].value("image", "");
    EXPECT_THAT(image, HasSubstr(":pr-7")) << d["metadata"].value("name", "");
  }
  json state = standin.State();
  ASSERT_EQ(state["deployments"].size(), 1u) << state["deployments"];
  EXPECT_EQ(state["deployments"][0]["statuses"].back().value("state", ""), "success");
  EXPECT_EQ(state["deployments"][0]["statuses"].back().value("environment_url", ""),
            env.value("url", ""));

  // `/eph` commands: one from a reader is refused and says so; a writer's extend moves the TTL.
  standin.Request("PUT", "/_standin/repos/acme/shop/collaborators/alice", {{"permission", "write"}});
  standin.Request("PUT", "/_standin/repos/acme/shop/collaborators/bob", {{"permission", "read"}});
  auto command = [&](const std::string& user, const std::string& text) {
    json comment = standin.Request("POST", "/_standin/repos/acme/shop/issues/7/comments",
                                   {{"user", user}, {"body", text}});
    ASSERT_TRUE(comment.contains("id")) << comment;
    json sent = Deliver(standin, ephd,
                        {{"event", "issue_comment"}, {"action", "created"}, {"number", 7},
                         {"comment_id", comment["id"]}});
    ASSERT_EQ(sent.value("status", 0) / 100, 2) << sent;
  };
  command("bob", "/eph down");
  ASSERT_TRUE(WaitFor(
      [&] { return StickyComment(standin, 7).find("@bob was ignored") != std::string::npos; }, 30s))
      << StickyComment(standin, 7) << "\n"
      << ephd.process->Output();
  EXPECT_TRUE(KubectlGet({"namespace", ns}).is_object()) << "a reader's /eph down was obeyed";
  command("alice", "Needs another day.\n/eph extend 24h");
  ASSERT_TRUE(WaitFor(
      [&] {
        return StickyComment(standin, 7).find("`/eph extend 24h` from @alice: now expires") !=
               std::string::npos;
      },
      30s))
      << StickyComment(standin, 7) << "\n"
      << ephd.process->Output();
  const json extended = ApiGet(ephd.url + "/api/v1/environments/" + name, token);
  EXPECT_NE(extended.value("expires_at", ""), env.value("expires_at", "")) << extended;

  // A push that drops a service: the environment is updated and the Deployment pruned.
  json files = FixtureFiles();
  std::string kustomization = files["base/kustomization.yaml"];
  const auto at = kustomization.find("  - notifications.yaml\n");
  ASSERT_NE(at, std::string::npos) << kustomization;
  kustomization.erase(at, std::string("  - notifications.yaml\n").size());
  std::string overlay = files["overlays/preview/kustomization.yaml"];
  const std::string replicas = "  - name: notifications\n    count: 1\n";
  const auto in_overlay = overlay.find(replicas);
  ASSERT_NE(in_overlay, std::string::npos) << overlay;
  overlay.erase(in_overlay, replicas.size());
  json commit = standin.Request("POST", "/_standin/repos/acme/shop/commits",
                                {{"branch", "feature-7"},
                                 {"files",
                                  {{"base/kustomization.yaml", kustomization},
                                   {"overlays/preview/kustomization.yaml", overlay}}}});
  ASSERT_TRUE(commit.contains("sha")) << commit;
  standin.Request("PUT", "/_standin/repos/acme/shop/pulls/7", {{"head_sha", commit["sha"]}});
  Deliver(standin, ephd, {{"event", "pull_request"}, {"action", "synchronize"}, {"number", 7}});
  const std::string short_sha = commit["sha"].get<std::string>().substr(0, 7);
  ASSERT_TRUE(WaitFor(
      [&] {
        const std::string c = StickyComment(standin, 7);
        return c.find("Ready at") != std::string::npos && c.find(short_sha) != std::string::npos;
      },
      120s))
      << StickyComment(standin, 7) << "\n"
      << ephd.process->Output();
  EXPECT_TRUE(KubectlGet({"deployment", "-n", ns, "notifications"}).is_null())
      << "the dropped Deployment was not pruned";
  EXPECT_TRUE(KubectlGet({"deployment", "-n", ns, "frontend"}).is_object());

  // Closed: the namespace is deleted and gone, the deployment inactive, the comment says why.
  standin.Request("PUT", "/_standin/repos/acme/shop/pulls/7", {{"state", "closed"}});
  Deliver(standin, ephd, {{"event", "pull_request"}, {"action", "closed"}, {"number", 7}});
  ASSERT_TRUE(WaitFor(
      [&] { return StickyComment(standin, 7).find("Destroyed") != std::string::npos; }, 120s))
      << StickyComment(standin, 7) << "\n"
      << ephd.process->Output();
  EXPECT_TRUE(KubectlGet({"namespace", ns}).is_null()) << "namespace " << ns << " is left";
  state = standin.State();
  const std::vector<std::string> states = DeploymentStates(state);
  ASSERT_FALSE(states.empty());
  EXPECT_EQ(states.back(), "inactive") << json(states);
  EXPECT_THAT(states, ::testing::Contains("in_progress"));
  int sticky = 0;
  for (const json& c : state["comments"]) {
    sticky += c.value("body", "").find("<!-- eph:environment=") != std::string::npos;
  }
  EXPECT_EQ(sticky, 1);
  EXPECT_EQ(standin.Violations(), json::array());
}

// What real apps ran into (issue 15), through ephd: a StatefulSet Pending on a volume claim
// nothing binds says why in the comment while it is being created, and fails at eph.yaml's
// progress deadline; Eph's Ingress goes to the Service named like the project, not to the gRPC
// Service rendered first.
TEST(EphdKubernetesTest, AStatefulSetThatNeverStartsSaysWhyThenFailsAtItsProgressDeadline) {
  testing::StandInProcess standin;
  ASSERT_FALSE(standin.url().empty());
  const json files = {
      {"eph.yaml",
       "version: \"1.0\"\nname: ledger\nkubernetes:\n  manifests: [k8s]\n"
       "  progress_deadline: 12s\n"},
      {"k8s/a-api.yaml",
       "apiVersion: v1\nkind: Service\nmetadata:\n  name: api\nspec:\n  selector: {app: db}\n"
       "  ports:\n  - {name: grpc, port: 9000}\n"},
      {"k8s/b-ledger.yaml",
       "apiVersion: v1\nkind: Service\nmetadata:\n  name: ledger\nspec:\n"
       "  selector: {app: db}\n  ports:\n  - {name: http, port: 80}\n"},
      {"k8s/c-db.yaml",
       "apiVersion: apps/v1\nkind: StatefulSet\nmetadata:\n  name: db\nspec:\n"
       "  serviceName: db\n  selector:\n    matchLabels: {app: db}\n  template:\n"
       "    metadata:\n      labels: {app: db}\n    spec:\n      containers:\n"
       "      - name: db\n        image: postgres:16\n        volumeMounts:\n"
       "        - {name: data, mountPath: /var/lib/postgresql/data}\n"
       "  volumeClaimTemplates:\n  - metadata:\n      name: data\n    spec:\n"
       "      accessModes: [ReadWriteOnce]\n      resources:\n        requests: {storage: 1Gi}\n"}};
  standin.Request("POST", "/_standin/repos",
                  {{"owner", "acme"}, {"repo", "ledger"}, {"files", files}});
  standin.Request("PUT", "/_standin/repos/acme/ledger/pulls/3",
                  {{"labels", {"preview"}}, {"head_ref", "feature-3"}, {"user", "octocat"}});
  const std::string bin = testing::KubeBed("EPH_TEST_KUBE_BIN");
  EphdProcess ephd({{"EPH_GITHUB_API_URL", standin.url()},
                    {"EPH_GITHUB_TOKEN", testing::kStandInToken},
                    {"EPH_KUBECONFIG", testing::KubeBed("EPH_TEST_KUBECONFIG")},
                    {"EPH_KUSTOMIZE_PATH", bin + "/kustomize"},
                    {"EPH_HELM_PATH", bin + "/helm"}});
  ASSERT_FALSE(ephd.url.empty());
  auto comment = [&] { return StickyComment(standin, 3); };
  testing::Deliver(standin, ephd, "acme/ledger",
                   {{"event", "pull_request"}, {"action", "labeled"}, {"number", 3},
                    {"label", "preview"}});

  ASSERT_TRUE(WaitFor([&] { return comment().find("Not ready yet") != std::string::npos; }, 60s))
      << comment() << "\n"
      << ephd.process->Output();
  const std::string waiting = comment();
  EXPECT_THAT(waiting, HasSubstr("Being created"));
  EXPECT_THAT(waiting, HasSubstr("statefulset db: 0 of 1 pods ready (pod db-0 not scheduled: "));
  EXPECT_THAT(waiting, HasSubstr("unbound immediate PersistentVolumeClaims"));

  ASSERT_TRUE(WaitFor([&] { return comment().find("Failed at commit") != std::string::npos; }, 60s))
      << comment() << "\n"
      << ephd.process->Output();
  EXPECT_THAT(comment(),
              HasSubstr("not ready 12s after the apply began (kubernetes.progress_deadline): "
                        "waiting for statefulset db"));
  const std::string token = testing::CreateApiToken(ephd);
  const json list = ApiGet(ephd.url + "/api/v1/environments", token);
  ASSERT_EQ(list["items"].size(), 1u) << list;
  EXPECT_EQ(list["items"][0].value("state", ""), "failed");
  const std::string ns = "eph-" + list["items"][0].value("name", "");
  const json ingress = KubectlGet({"ingress", "-n", ns, "eph-ledger"});
  ASSERT_TRUE(ingress.is_object()) << "no Ingress eph-ledger in " << ns;
  EXPECT_EQ(ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"],
            "ledger");

  standin.Request("PUT", "/_standin/repos/acme/ledger/pulls/3", {{"state", "closed"}});
  testing::Deliver(standin, ephd, "acme/ledger",
                   {{"event", "pull_request"}, {"action", "closed"}, {"number", 3}});
  EXPECT_TRUE(WaitFor([&] { return KubectlGet({"namespace", ns}).is_null(); }, 120s))
      << "namespace " << ns << " is left\n"
      << ephd.process->Output();
}

}  // namespace
}  // namespace eph
