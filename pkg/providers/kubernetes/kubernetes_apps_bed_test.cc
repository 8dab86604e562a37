// KubernetesProvider against the test bed's real kube-apiserver, controllers and kwok: what real
// applications ran into (issue 15). The quota is in force before any Service is applied, so a
// LoadBalancer is refused with the quota's message every time; a StatefulSet waiting on an
// unbound volume claim says why; Eph's Ingress points at the entry service, not the first one
// rendered. CTest labels `kubernetes` and `apps`; each test destroys what it made.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <thread>

#include "fmt/format.h"
#include "pkg/base/random.h"
#include "pkg/kube/api_errors.h"
#include "pkg/kube/kube_config.h"
#include "pkg/providers/kubernetes/kubernetes_provider.h"
#include "test/support/testbed.h"

namespace eph::providers::kubernetes {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using nlohmann::json;
using ::testing::HasSubstr;

std::string Bed(const std::string& key) { return eph::testing::TestbedValue("kubernetes", key); }

constexpr char kDeployment[] =
    "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n"
    "  selector:\n    matchLabels: {app: web}\n  template:\n    metadata:\n"
    "      labels: {app: web}\n    spec:\n      containers:\n"
    "      - name: web\n        image: ghcr.io/acme/web:1\n";

std::string Service(const std::string& name, const std::string& type, const std::string& port) {
  return fmt::format(
      "apiVersion: v1\nkind: Service\nmetadata:\n  name: {}\nspec:\n  type: {}\n"
      "  selector: {{app: web}}\n  ports:\n  - {}\n",
      name, type, port);
}

class KubernetesAppsBedTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<kube::KubeConfig> config = kube::LoadKubeconfig(Bed("EPH_TEST_KUBECONFIG"));
    ASSERT_TRUE(config.ok()) << config.status();
    admin_ = std::make_unique<kube::KubeClient>(*config);
    KubernetesProviderOptions options = DefaultProviderOptions();
    options.render.kustomize_path = Bed("EPH_TEST_KUBE_BIN") + "/kustomize";
    options.render.helm_path = Bed("EPH_TEST_KUBE_BIN") + "/helm";
    options.watch = false;  // Observe reads the API: no watch to wait for
    provider_ = std::make_unique<KubernetesProvider>(
        std::make_shared<kube::KubeClient>(*std::move(config)), options);
  }

  void TearDown() override {
    for (const std::string& env : created_) (void)provider_->Destroy({env, "eph-" + env});
  }

  std::string NewEnvironment(const std::string& prefix) {
    std::string env = prefix + "-" + SecureRandom::Instance().Hex(3);
    created_.push_back(env);
    return env;
  }

  // A checkout whose k8s/ holds `files` (name -> text); the request renders that directory.
  ApplyRequest Request(const std::string& env, const std::map<std::string, std::string>& files,
                       json section = json::object()) {
    const std::string checkout = eph::testing::MakeTempDir("k8s-apps");
    for (const auto& [name, text] : files) {
      fs::create_directories(fs::path(checkout) / "k8s");
      std::ofstream(fs::path(checkout) / "k8s" / name) << text;
    }
    section["manifests"] = {"k8s"};
    ApplyRequest r;
    r.environment = env;
    r.namespace_name = "eph-" + env;
    r.project = "acme/shop";
    r.head_sha = "0123456789abcdef0123456789abcdef01234567";
    r.host = env + ".preview.test";
    r.source_dir = checkout;
    r.config_json = json{{"kubernetes", section}}.dump();
    r.labels = {{kManagedByLabel, kManagedByValue}, {kEnvironmentLabel, env}};
    return r;
  }

  bool NamespaceGone(const std::string& env) {
    absl::StatusOr<json> ns = admin_->Get("/api/v1/namespaces/eph-" + env);
    return absl::IsNotFound(ns.status()) ||
           (ns.ok() && ns->value("metadata", json::object()).contains("deletionTimestamp"));
  }

  static bool Eventually(const std::function<bool()>& pred, std::chrono::seconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      if (pred()) return true;
      std::this_thread::sleep_for(200ms);
    }
    return pred();
  }

  std::unique_ptr<kube::KubeClient> admin_;
  std::unique_ptr<KubernetesProvider> provider_;
  std::vector<std::string> created_;
};

// The quota used to go out in the same parallel wave as the app's Services, and admission only
// enforces a quota once the quota controller has counted it: LoadBalancer Services got through
// in 3 of 3 runs of a real app. Now it is counted first, and the denial fails the apply (not
// retried) with the quota's words.
TEST_F(KubernetesAppsBedTest, ALoadBalancerServiceIsRefusedByTheQuotaEveryTime) {
  for (int run = 0; run < 3; ++run) {
    const std::string env = NewEnvironment("lb");
    absl::StatusOr<ApplyResult> applied = provider_->Apply(
        Request(env, {{"a-lb.yaml", Service("public", "LoadBalancer", "{port: 80}")},
                      {"b-web.yaml", kDeployment}}));
    ASSERT_FALSE(applied.ok()) << "run " << run << ": the LoadBalancer got through the quota";
    EXPECT_EQ(applied.status().code(), absl::StatusCode::kFailedPrecondition) << applied.status();
    EXPECT_THAT(kube::MessageOf(applied.status()),
                HasSubstr("Service public: services \"public\" is forbidden: exceeded quota: "
                          "eph-quota, requested: services.loadbalancers=1"));
    EXPECT_THAT(kube::MessageOf(applied.status()), HasSubstr("use type ClusterIP"));
    // A first apply that cannot succeed leaves nothing behind.
    EXPECT_TRUE(Eventually([&] { return NamespaceGone(env); }, 30s));
  }
  const std::string env = NewEnvironment("np");
  absl::StatusOr<ApplyResult> node_port = provider_->Apply(
      Request(env, {{"np.yaml", Service("public", "NodePort", "{port: 80}")}}));
  ASSERT_FALSE(node_port.ok());
  EXPECT_EQ(node_port.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(kube::MessageOf(node_port.status()), HasSubstr("services.nodeports"));
}

// The LimitRange is in force before the first pod is made (its defaults are on the pod), and
// the quota that the app was applied under had been counted by then.
TEST_F(KubernetesAppsBedTest, QuotaAndLimitsAreInForceBeforeTheWorkloads) {
  const std::string env = NewEnvironment("limits");
  const std::string ns = "eph-" + env;
  absl::StatusOr<ApplyResult> applied = provider_->Apply(
      Request(env, {{"svc.yaml", Service("web", "ClusterIP", "{port: 80}")},
                    {"web.yaml", kDeployment}}));
  ASSERT_TRUE(applied.ok()) << applied.status();
  absl::StatusOr<json> quota = admin_->Get(fmt::format("/api/v1/namespaces/{}/resourcequotas/eph-quota", ns));
  ASSERT_TRUE(quota.ok()) << quota.status();
  EXPECT_EQ((*quota)["status"]["hard"], (*quota)["spec"]["hard"]);
  EXPECT_EQ((*quota)["status"]["used"]["services.loadbalancers"], "0");
  json pods;
  ASSERT_TRUE(Eventually(
      [&] {
        absl::StatusOr<kube::ListResult> list =
            admin_->List(fmt::format("/api/v1/namespaces/{}/pods", ns), {});
        if (!list.ok() || list->items.empty()) return false;
        pods = list->items;
        return true;
      },
      60s));
  const json& resources = pods[0]["spec"]["containers"][0]["resources"];
  EXPECT_EQ(resources["limits"]["cpu"], "500m") << resources.dump();
  EXPECT_EQ(resources["requests"]["memory"], "64Mi") << resources.dump();

  // The wait itself, against the real quota controller: a quota made a moment ago is counted
  // when WaitForQuotas returns, whatever the controller's delay.
  const std::string extra_path = fmt::format("/api/v1/namespaces/{}/resourcequotas/extra", ns);
  ASSERT_TRUE(admin_
                  ->Apply(extra_path, {{"apiVersion", "v1"},
                                       {"kind", "ResourceQuota"},
                                       {"metadata", {{"name", "extra"}}},
                                       {"spec", {{"hard", {{"configmaps", "7"}}}}}},
                          {.field_manager = "test"})
                  .ok());
  const auto started = std::chrono::steady_clock::now();
  ASSERT_TRUE(provider_->WaitForQuotas(ns).ok());
  absl::StatusOr<json> extra = admin_->Get(extra_path);
  ASSERT_TRUE(extra.ok()) << extra.status();
  EXPECT_TRUE(QuotaEnforced(*extra)) << extra->dump();
  std::cout << "the quota controller counted a new quota within "
            << std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::steady_clock::now() - started)
                   .count()
            << " ms\n";
}

// A StatefulSet has no progress deadline of its own; its pod Pending on a claim nothing binds
// must at least say so (the reconciler fails it at kubernetes.progress_deadline).
TEST_F(KubernetesAppsBedTest, AStatefulSetWaitingOnAnUnboundClaimSaysWhy) {
  const std::string env = NewEnvironment("unbound");
  absl::StatusOr<ApplyResult> applied = provider_->Apply(Request(
      env, {{"db.yaml",
             "apiVersion: apps/v1\nkind: StatefulSet\nmetadata:\n  name: db\nspec:\n"
             "  serviceName: db\n  selector:\n    matchLabels: {app: db}\n  template:\n"
             "    metadata:\n      labels: {app: db}\n    spec:\n      containers:\n"
             "      - name: db\n        image: postgres:16\n        volumeMounts:\n"
             "        - {name: data, mountPath: /var/lib/postgresql/data}\n"
             "  volumeClaimTemplates:\n  - metadata:\n      name: data\n    spec:\n"
             "      accessModes: [ReadWriteOnce]\n      resources:\n"
             "        requests: {storage: 1Gi}\n"}}));
  ASSERT_TRUE(applied.ok()) << applied.status();
  Observation last;
  ASSERT_TRUE(Eventually(
      [&] {
        absl::StatusOr<Observation> o = provider_->Observe({env, "eph-" + env});
        if (o.ok()) last = *o;
        return o.ok() && o->message.find("not scheduled") != std::string::npos;
      },
      60s))
      << PhaseName(last.phase) << ": " << last.message;
  EXPECT_EQ(last.phase, Phase::kProgressing);
  EXPECT_THAT(last.message, HasSubstr("waiting for statefulset db: 0 of 1 pods ready (pod db-0 "
                                      "not scheduled: "));
  EXPECT_THAT(last.message, HasSubstr("unbound immediate PersistentVolumeClaims"));
}

// Render order put a gRPC Service first (the microservices demo's adservice); the Ingress goes
// to `frontend`, or to what kubernetes.web names, and a kubernetes.web naming nothing is an
// error before anything is written.
TEST_F(KubernetesAppsBedTest, TheIngressPointsAtTheEntryService) {
  const std::map<std::string, std::string> files = {
      {"a-adservice.yaml", Service("adservice", "ClusterIP", "{name: grpc, port: 9555}")},
      {"b-frontend.yaml", Service("frontend", "ClusterIP", "{name: http, port: 80}")},
      {"c-web.yaml", kDeployment}};
  auto backend = [&](const std::string& env, const std::string& ingress) -> json {
    absl::StatusOr<json> got = admin_->Get(fmt::format(
        "/apis/networking.k8s.io/v1/namespaces/eph-{}/ingresses/{}", env, ingress));
    if (!got.ok()) return kube::MessageOf(got.status());
    return (*got)["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"];
  };
  const std::string chosen = NewEnvironment("entry");
  ASSERT_TRUE(provider_->Apply(Request(chosen, files)).ok());
  EXPECT_EQ(backend(chosen, "eph-frontend"), (json{{"name", "frontend"}, {"port", {{"name", "http"}}}}));

  const std::string configured = NewEnvironment("entry-web");
  ASSERT_TRUE(provider_->Apply(Request(configured, files,
                                       {{"web", {{"service", "adservice"}, {"port", 9555}}}}))
                  .ok());
  EXPECT_EQ(backend(configured, "eph-adservice"),
            (json{{"name", "adservice"}, {"port", {{"number", 9555}}}}));

  const std::string wrong = NewEnvironment("entry-bad");
  absl::StatusOr<ApplyResult> refused =
      provider_->Apply(Request(wrong, files, {{"web", {{"service", "front"}, {"port", 80}}}}));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(kube::MessageOf(refused.status()),
              HasSubstr("no Service named front with a port (Services: adservice, frontend)"));
  EXPECT_TRUE(absl::IsNotFound(admin_->Get("/api/v1/namespaces/eph-" + wrong).status()));
}

}  // namespace
}  // namespace eph::providers::kubernetes
