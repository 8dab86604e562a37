// KubernetesProvider against the test bed's real kube-apiserver, controllers and kwok
// (test/bed/kubernetes), with the multi-service fixture of test/kubernetes/app: create -> ready ->
// update -> prune -> destroy, bad manifests leaving nothing behind, a failing rollout, Helm, and
// readiness surviving an apiserver restart. Every test uses its own environment names and
// destroys what it made.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <regex>
#include <set>
#include <thread>

#include "absl/strings/escaping.h"
#include "fmt/format.h"
#include "pkg/base/random.h"
#include "pkg/kube/api_errors.h"
#include "pkg/kube/kube_config.h"
#include "pkg/providers/kubernetes/kubernetes_provider.h"
#include "test/support/process.h"
#include "test/support/testbed.h"

namespace eph::providers::kubernetes {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Not;

std::string Msg(const absl::Status& s) { return kube::MessageOf(s); }
std::string Bed(const std::string& key) { return eph::testing::TestbedValue("kubernetes", key); }

std::string TestbedDir() {
  const char* env = std::getenv("EPH_TESTBED_DIR");  // NOLINT(concurrency-mt-unsafe)
  return env != nullptr && *env != '\0' ? env : EPH_TESTBED_DIR;
}

void Write(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
}

std::string ReadText(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

std::vector<ImageTag> Tags(const std::string& tag) {
  const std::vector<std::string> services = {
      "frontend", "api",    "catalog",         "cart",      "checkout", "payments",
      "users",    "search", "recommendations", "inventory", "shipping", "notifications"};
  std::vector<ImageTag> out;
  out.reserve(services.size());
  for (const std::string& s : services) out.push_back({"ghcr.io/acme/shop-" + s, tag});
  return out;
}

// Records which environments the provider said changed, and lets a test wait for it.
class ChangeRecorder {
 public:
  ChangeSink Sink() {
    return [this](const EnvironmentChange& change) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        ++counts_[change.environment];
      }
      cv_.notify_all();
    };
  }
  int Count(const std::string& env) {
    std::lock_guard<std::mutex> lock(mu_);
    return counts_[env];
  }
  // Waits until `env` was reported more than `after` times, or `timeout`.
  bool WaitBeyond(const std::string& env, int after, std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return counts_[env] > after; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, int> counts_;
};

class KubernetesProviderBedTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<kube::KubeConfig> config = kube::LoadKubeconfig(Bed("EPH_TEST_KUBECONFIG"));
    ASSERT_TRUE(config.ok()) << config.status();
    admin_ = std::make_unique<kube::KubeClient>(*config);
    bin_ = Bed("EPH_TEST_KUBE_BIN");
    provider_ = MakeProvider(/*watch=*/true);
    watch_ = std::jthread([this, sink = changes_.Sink()](std::stop_token stop) {
      EXPECT_TRUE(provider_->WatchChanges(sink, stop).ok());
    });
  }

  void TearDown() override {
    // Leave the shared test bed as it was found.
    for (const std::string& env : created_) {
      (void)provider_->Destroy({env, "eph-" + env});
    }
  }

  // `resolve_host`: the bed's Service names resolve nowhere on this machine; by default they
  // are taken as resolving, as they do for an ephd inside the cluster.
  std::unique_ptr<KubernetesProvider> MakeProvider(
      bool watch, bool in_cluster = true,
      std::function<absl::Status(const std::string&)> resolve_host =
          [](const std::string&) { return absl::OkStatus(); },
      RegistryAuth registry_auth = {}) {
    absl::StatusOr<kube::KubeConfig> config = kube::LoadKubeconfig(Bed("EPH_TEST_KUBECONFIG"));
    EXPECT_TRUE(config.ok()) << config.status();
    KubernetesProviderOptions options = DefaultProviderOptions();
    options.render.kustomize_path = bin_ + "/kustomize";
    options.render.helm_path = bin_ + "/helm";
    options.watch = watch;
    options.in_cluster = in_cluster;
    options.resolve_host = std::move(resolve_host);
    options.registry_auth = std::move(registry_auth);
    return std::make_unique<KubernetesProvider>(
        std::make_shared<kube::KubeClient>(*std::move(config)), options);
  }

  std::string NewEnvironment(const std::string& prefix) {
    std::string env = prefix + "-" + SecureRandom::Instance().Hex(3);
    created_.push_back(env);
    return env;
  }

  // A "checkout" of the fixture repository: test/kubernetes copied into a fresh directory.
  std::string Checkout() {
    std::string dir = eph::testing::MakeTempDir("k8s-checkout");
    fs::copy(eph::testing::SourceDir() + "/test/kubernetes", dir, fs::copy_options::recursive);
    return dir;
  }

  ApplyRequest Request(const std::string& env, const std::string& source_dir, const json& section,
                       std::vector<ImageTag> images = {}) {
    ApplyRequest r;
    r.environment = env;
    r.namespace_name = "eph-" + env;
    r.project = "acme/shop";
    r.pr_number = 42;
    r.head_sha = "0123456789abcdef0123456789abcdef01234567";
    r.host = env + ".preview.test";
    r.source_dir = source_dir;
    r.config_json = json{{"kubernetes", section}, {"database", {{"enabled", false}}}}.dump();
    r.images = std::move(images);
    r.labels = {{kManagedByLabel, kManagedByValue}, {kEnvironmentLabel, env}};
    return r;
  }

  ApplyRequest AppRequest(const std::string& env, const std::string& checkout,
                          const std::string& tag) {
    json images = json::array();
    for (const ImageTag& t : Tags(tag)) images.push_back({{"name", t.name}, {"newTag", t.tag}});
    return Request(
        env, checkout + "/app",
        {{"manifests", {"overlays/preview"}}, {"images", images}, {"helm", json::array()}},
        Tags(tag));
  }

  // Observe until `phase`, woken by the change listener (and at least once a second).
  absl::StatusOr<Observation> WaitForPhase(const std::string& env, Phase phase,
                                           std::chrono::seconds timeout = 180s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    Observation last;
    while (true) {
      const int seen = changes_.Count(env);
      absl::StatusOr<Observation> o = provider_->Observe({env, "eph-" + env});
      if (!o.ok()) return o.status();
      last = *o;
      if (o->phase == phase) return o;
      if (std::chrono::steady_clock::now() > deadline) {
        return absl::DeadlineExceededError(
            fmt::format("{} did not become {} within {} s; last: {} ({})", env, PhaseName(phase),
                        timeout.count(), PhaseName(last.phase), last.message));
      }
      changes_.WaitBeyond(env, seen, 1s);
    }
  }

  // Waits for a condition with a deadline, checking it every 100 ms.
  static bool Eventually(const std::function<bool()>& pred, std::chrono::seconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      if (pred()) return true;
      std::this_thread::sleep_for(100ms);
    }
    return pred();
  }

  bool NamespaceGone(const std::string& ns, std::chrono::seconds timeout = 180s) {
    return Eventually(
        [&] { return absl::IsNotFound(admin_->Get("/api/v1/namespaces/" + ns).status()); },
        timeout);
  }

  absl::StatusOr<json> Get(const std::string& path) { return admin_->Get(path); }

  std::map<std::string, std::string> DeploymentImages(const std::string& ns) {
    std::map<std::string, std::string> out;
    absl::StatusOr<kube::ListResult> list =
        admin_->List(fmt::format("/apis/apps/v1/namespaces/{}/deployments", ns));
    EXPECT_TRUE(list.ok()) << list.status();
    if (!list.ok()) return out;
    for (const json& d : list->items) {
      out[d["metadata"]["name"]] =
          d["spec"]["template"]["spec"]["containers"][0]["image"].get<std::string>();
    }
    return out;
  }

  // Destroy until done, as the reconciler does.
  void DestroyCompletely(const std::string& env) {
    bool done = false;
    ASSERT_TRUE(Eventually(
        [&] {
          absl::StatusOr<DestroyResult> r = provider_->Destroy({env, "eph-" + env});
          EXPECT_TRUE(r.ok()) << r.status();
          done = r.ok() && r->done;
          return done;
        },
        180s))
        << env << " was not destroyed";
  }

  std::unique_ptr<kube::KubeClient> admin_;
  std::string bin_;
  // Before provider_, so it outlives the provider's watch threads, which call its sink.
  ChangeRecorder changes_;
  std::unique_ptr<KubernetesProvider> provider_;
  // After provider_: stopped (and joined) before the provider goes.
  std::jthread watch_;
  std::vector<std::string> created_;
};

TEST_F(KubernetesProviderBedTest, CreateReadyUpdatePruneDestroyTheMultiServiceApp) {
  const std::string env = NewEnvironment("shop");
  const std::string ns = "eph-" + env;
  const std::string checkout = Checkout();

  // ---- create
  const auto t0 = std::chrono::steady_clock::now();
  ApplyRequest request = AppRequest(env, checkout, "pr-42-a");
  request.secret_env = {{"DATABASE_URL", "postgres://shop:s3cret@db.internal:5432/shop"},
                        {"PGUSER", "shop"}};
  absl::StatusOr<ApplyResult> applied = provider_->Apply(request);
  ASSERT_TRUE(applied.ok()) << applied.status();
  EXPECT_THAT(applied->summary, Not(HasSubstr("s3cret")));
  const auto apply_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
  EXPECT_EQ(applied->handle, "namespace/" + ns);
  EXPECT_THAT(applied->summary, HasSubstr("31 objects applied"));  // 30 and the eph-env Secret

  absl::StatusOr<json> namespace_object = Get("/api/v1/namespaces/" + ns);
  ASSERT_TRUE(namespace_object.ok()) << namespace_object.status();
  EXPECT_EQ((*namespace_object)["metadata"]["labels"][kManagedByLabel], "eph");
  EXPECT_EQ((*namespace_object)["metadata"]["labels"][kEnvironmentLabel], env);

  // Eph's own objects.
  absl::StatusOr<json> quota =
      Get(fmt::format("/api/v1/namespaces/{}/resourcequotas/eph-quota", ns));
  ASSERT_TRUE(quota.ok()) << quota.status();
  EXPECT_EQ((*quota)["spec"]["hard"]["pods"], "50");
  EXPECT_EQ((*quota)["metadata"]["labels"][kEnvironmentLabel], env);
  ASSERT_TRUE(Get(fmt::format("/api/v1/namespaces/{}/limitranges/eph-limits", ns)).ok());
  absl::StatusOr<json> policy = Get(
      fmt::format("/apis/networking.k8s.io/v1/namespaces/{}/networkpolicies/eph-isolation", ns));
  ASSERT_TRUE(policy.ok()) << policy.status();
  EXPECT_EQ((*policy)["spec"]["policyTypes"], json::array({"Ingress"}));

  // The database's settings: a Secret every container reads.
  absl::StatusOr<json> env_secret = Get(fmt::format("/api/v1/namespaces/{}/secrets/eph-env", ns));
  ASSERT_TRUE(env_secret.ok()) << env_secret.status();
  EXPECT_TRUE((*env_secret)["data"].contains("DATABASE_URL"));
  EXPECT_EQ((*env_secret)["metadata"]["labels"][kEnvironmentLabel], env);

  // The app's objects: in the namespace, labelled, applied by "eph" through server-side apply.
  absl::StatusOr<json> api = Get(fmt::format("/apis/apps/v1/namespaces/{}/deployments/api", ns));
  ASSERT_TRUE(api.ok()) << api.status();
  EXPECT_EQ((*api)["metadata"]["labels"][kManagedByLabel], "eph");
  EXPECT_EQ((*api)["spec"]["template"]["metadata"]["labels"][kEnvironmentLabel], env);
  bool applied_by_eph = false;
  for (const json& f : (*api)["metadata"]["managedFields"]) {
    if (f["manager"] == "eph" && f["operation"] == "Apply") applied_by_eph = true;
  }
  EXPECT_TRUE(applied_by_eph) << (*api)["metadata"]["managedFields"].dump();
  EXPECT_EQ((*api)["spec"]["template"]["spec"]["containers"][0]["envFrom"].back(),
            (json{{"secretRef", {{"name", "eph-env"}}}}));
  // The app's Ingress serves the environment's host.
  absl::StatusOr<json> ingress =
      Get(fmt::format("/apis/networking.k8s.io/v1/namespaces/{}/ingresses/shop", ns));
  ASSERT_TRUE(ingress.ok()) << ingress.status();
  EXPECT_EQ((*ingress)["spec"]["rules"][0]["host"], env + ".preview.test");
  EXPECT_TRUE(absl::IsNotFound(
      Get(fmt::format("/apis/networking.k8s.io/v1/namespaces/{}/ingresses/eph-api", ns)).status()));
  std::map<std::string, std::string> images = DeploymentImages(ns);
  ASSERT_EQ(images.size(), 12u);
  for (const auto& [name, image] : images) {
    EXPECT_EQ(image, "ghcr.io/acme/shop-" + name + ":pr-42-a");
  }

  // ---- ready: every Deployment Available through kwok, reported from the watches
  absl::StatusOr<Observation> ready = WaitForPhase(env, Phase::kReady);
  ASSERT_TRUE(ready.ok()) << ready.status();
  const auto ready_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
  EXPECT_EQ(ready->components.size(), 12u);
  EXPECT_EQ(ready->url, "https://" + env + ".preview.test");
  EXPECT_GT(changes_.Count(env), 0) << "the change listener was never called";
  std::optional<Observation> watched = provider_->ObserveFromWatches({env, ns});
  ASSERT_TRUE(watched.has_value());
  EXPECT_EQ(watched->phase, Phase::kReady) << watched->message;

  // ListOwned sees it.
  absl::StatusOr<std::vector<OwnedObject>> owned = provider_->ListOwned();
  ASSERT_TRUE(owned.ok()) << owned.status();
  bool listed = false;
  for (const OwnedObject& o : *owned) {
    if (o.name == ns) listed = o.kind == "Namespace" && o.environment == env;
  }
  EXPECT_TRUE(listed);

  // Applying the same thing again changes nothing and stays ready.
  ASSERT_TRUE(provider_->Apply(AppRequest(env, checkout, "pr-42-a")).ok());

  // ---- update: a new push, new image tags
  const auto t1 = std::chrono::steady_clock::now();
  ASSERT_TRUE(provider_->Apply(AppRequest(env, checkout, "pr-42-b")).ok());
  images = DeploymentImages(ns);
  for (const auto& [name, image] : images) {
    EXPECT_EQ(image, "ghcr.io/acme/shop-" + name + ":pr-42-b");
  }
  ready = WaitForPhase(env, Phase::kReady);
  ASSERT_TRUE(ready.ok()) << ready.status();
  const auto update_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t1);
  // Ready means rolled out: no pod of the old template is left.
  absl::StatusOr<kube::ListResult> pods =
      admin_->List(fmt::format("/api/v1/namespaces/{}/pods", ns),
                   {.label_selector = "app.kubernetes.io/name=api"});
  ASSERT_TRUE(pods.ok());
  for (const json& p : pods->items) {
    if (p["metadata"].contains("deletionTimestamp")) continue;
    EXPECT_EQ(p["spec"]["containers"][0]["image"], "ghcr.io/acme/shop-api:pr-42-b");
  }

  // ---- prune: a later commit drops the search service
  const fs::path kustomization = fs::path(checkout) / "app/base/kustomization.yaml";
  std::string text = ReadText(kustomization);
  ASSERT_NE(text.find("  - search.yaml\n"), std::string::npos);
  text.erase(text.find("  - search.yaml\n"), std::string("  - search.yaml\n").size());
  Write(kustomization, text);
  std::string overlay = ReadText(fs::path(checkout) / "app/overlays/preview/kustomization.yaml");
  overlay = std::regex_replace(overlay, std::regex("  - name: search\n    count: 1\n"), "");
  Write(fs::path(checkout) / "app/overlays/preview/kustomization.yaml", overlay);
  absl::StatusOr<ApplyResult> pruned = provider_->Apply(AppRequest(env, checkout, "pr-42-b"));
  ASSERT_TRUE(pruned.ok()) << pruned.status();
  EXPECT_THAT(pruned->summary, HasSubstr("2 pruned"));
  auto gone_or_going = [&](const std::string& path) {
    absl::StatusOr<json> o = Get(path);
    return absl::IsNotFound(o.status()) ||
           (o.ok() && (*o)["metadata"].contains("deletionTimestamp"));
  };
  EXPECT_TRUE(gone_or_going(fmt::format("/apis/apps/v1/namespaces/{}/deployments/search", ns)));
  EXPECT_TRUE(gone_or_going(fmt::format("/api/v1/namespaces/{}/services/search", ns)));
  EXPECT_TRUE(Get(fmt::format("/apis/apps/v1/namespaces/{}/deployments/api", ns)).ok());
  EXPECT_TRUE(Get(fmt::format("/api/v1/namespaces/{}/services/api", ns)).ok());
  EXPECT_EQ(DeploymentImages(ns).size(), 11u);
  ready = WaitForPhase(env, Phase::kReady);
  ASSERT_TRUE(ready.ok()) << ready.status();
  EXPECT_EQ(ready->components.size(), 11u);

  // ---- destroy
  const auto t2 = std::chrono::steady_clock::now();
  absl::StatusOr<DestroyResult> first = provider_->Destroy({env, ns});
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_FALSE(first->done);
  EXPECT_THAT(first->message, HasSubstr("terminating"));
  DestroyCompletely(env);
  const auto destroy_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t2);
  EXPECT_TRUE(absl::IsNotFound(Get("/api/v1/namespaces/" + ns).status()));
  absl::StatusOr<Observation> absent = WaitForPhase(env, Phase::kAbsent, 30s);
  EXPECT_TRUE(absent.ok()) << absent.status();
  // Destroying again is done at once.
  absl::StatusOr<DestroyResult> again = provider_->Destroy({env, ns});
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->done);

  RecordProperty("apply_ms", std::to_string(apply_ms.count()));
  RecordProperty("create_to_ready_ms", std::to_string(ready_ms.count()));
  RecordProperty("update_to_ready_ms", std::to_string(update_ms.count()));
  RecordProperty("destroy_ms", std::to_string(destroy_ms.count()));
  std::cout << fmt::format("apply {} ms, create->ready {} ms, update->ready {} ms, destroy {} ms\n",
                           apply_ms.count(), ready_ms.count(), update_ms.count(),
                           destroy_ms.count());
}

// Each bad manifest fails with the API's or the renderer's message, and nothing stays behind.
TEST_F(KubernetesProviderBedTest, BadManifestsFailAndLeaveNothingBehind) {
  const std::string good_config_map =
      "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: fine\ndata:\n  a: b\n---\n";
  struct Case {
    std::string name;
    std::string manifest;
    std::string expected;  // in the message
    bool namespace_created;
  };
  const std::vector<Case> cases = {
      {"unknown-kind", "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\n",
       "Widget w: unknown kind: no API group example.com on the server", false},
      {"unknown-core-kind", "apiVersion: v1\nkind: Widget\nmetadata:\n  name: w\n",
       "Widget w: unknown kind: no kind Widget in v1", false},
      {"invalid-field",
       "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicaz: 2\n"
       "  selector:\n    matchLabels: {app: web}\n  template:\n    metadata:\n      labels: {app: "
       "web}\n    spec:\n      containers:\n      - name: web\n        image: nginx\n",
       "Deployment web: failed to create typed patch object", true},
      {"invalid-value",
       "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  ports:\n  - port: 99999\n",
       "Service web: Service \"web\" is invalid: [spec.ports[0].port: Invalid value: 99999: must "
       "be between 1 and 65535",
       true},
      {"cluster-scoped",
       "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: "
       "escalate\nrules: []\n",
       "ClusterRole escalate is cluster-scoped", false},
      {"namespace-object", "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: elsewhere\n",
       "Namespace elsewhere is cluster-scoped", false},
      {"other-namespace",
       "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: sneaky\n  namespace: kube-system\n",
       "ConfigMap sneaky names namespace 'kube-system'", false},
  };
  const std::string checkout = eph::testing::MakeTempDir("k8s-bad");
  std::vector<std::string> to_wait;
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string env = NewEnvironment("bad-" + c.name);
    Write(fs::path(checkout) / c.name / "manifests.yaml", good_config_map + c.manifest);
    absl::StatusOr<ApplyResult> r = provider_->Apply(
        Request(env, checkout, {{"manifests", {c.name}}, {"images", json::array()}}));
    ASSERT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << r.status();
    EXPECT_THAT(Msg(r.status()), HasSubstr(c.expected));
    RecordProperty(c.name, Msg(r.status()));
    if (!c.namespace_created) {
      // Refused before anything was written.
      EXPECT_TRUE(absl::IsNotFound(Get("/api/v1/namespaces/eph-" + env).status()));
    } else {
      to_wait.push_back("eph-" + env);
    }
  }
  // The 50 MB render, generated here.
  {
    const std::string env = NewEnvironment("bad-huge");
    fs::create_directories(fs::path(checkout) / "huge");
    std::ofstream out(fs::path(checkout) / "huge/configmaps.yaml", std::ios::binary);
    const std::string blob(1 << 20, 'x');
    for (int i = 0; i < 50; ++i) {
      out << "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: blob-" << i
          << "\ndata:\n  blob: " << blob << "\n";
    }
    out.close();
    Write(fs::path(checkout) / "huge/kustomization.yaml", "resources:\n- configmaps.yaml\n");
    absl::StatusOr<ApplyResult> r = provider_->Apply(
        Request(env, checkout, {{"manifests", {"huge"}}, {"images", json::array()}}));
    ASSERT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << r.status();
    EXPECT_THAT(Msg(r.status()), HasSubstr("too large"));
    RecordProperty("huge", Msg(r.status()));
    EXPECT_TRUE(absl::IsNotFound(Get("/api/v1/namespaces/eph-" + env).status()));
    fs::remove_all(fs::path(checkout) / "huge");  // 50 MB
  }
  // Where the API refused an object, the half-made namespace is removed.
  for (const std::string& ns : to_wait) {
    EXPECT_TRUE(NamespaceGone(ns)) << ns << " was left behind";
  }
}

TEST_F(KubernetesProviderBedTest, AFailedUpdateLeavesTheRunningVersion) {
  const std::string env = NewEnvironment("keep");
  const std::string ns = "eph-" + env;
  const std::string checkout = eph::testing::MakeTempDir("k8s-keep");
  Write(fs::path(checkout) / "k8s/app.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  v: '1'\n---\n"
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  ports:\n  - port: 80\n");
  const json section = {{"manifests", {"k8s"}}, {"images", json::array()}};
  ASSERT_TRUE(provider_->Apply(Request(env, checkout, section)).ok());
  ASSERT_TRUE(WaitForPhase(env, Phase::kReady).ok());
  // The Ingress Eph makes for the entry service (named web), as the app has none.
  absl::StatusOr<json> ingress =
      Get(fmt::format("/apis/networking.k8s.io/v1/namespaces/{}/ingresses/eph-web", ns));
  ASSERT_TRUE(ingress.ok()) << ingress.status();
  EXPECT_EQ((*ingress)["spec"]["rules"][0]["host"], env + ".preview.test");

  Write(fs::path(checkout) / "k8s/app.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  v: '2'\n---\n"
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  ports:\n  - port: 0\n");
  absl::StatusOr<ApplyResult> r = provider_->Apply(Request(env, checkout, section));
  ASSERT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << r.status();
  EXPECT_THAT(Msg(r.status()), HasSubstr("spec.ports[0].port"));
  // The namespace and what ran stay.
  absl::StatusOr<json> ns_object = Get("/api/v1/namespaces/" + ns);
  ASSERT_TRUE(ns_object.ok());
  EXPECT_FALSE((*ns_object)["metadata"].contains("deletionTimestamp"));
  EXPECT_TRUE(Get(fmt::format("/api/v1/namespaces/{}/services/web", ns)).ok());
  EXPECT_TRUE(
      Get(fmt::format("/apis/networking.k8s.io/v1/namespaces/{}/ingresses/eph-web", ns)).ok());
  DestroyCompletely(env);
}

// The environment's own PostgreSQL server: Secret, Service and StatefulSet in a namespace that
// EnsureDatabaseServer creates, ready once kwok marks the pod Ready. (kwok runs no container, so
// nothing here connects to the server: ephd reaches it at the Service's cluster DNS name.)
// Apply's prune leaves it alone; Destroy takes it with the namespace.
TEST_F(KubernetesProviderBedTest, TheEnvironmentsOwnDatabaseServerIsAStatefulSetBesideTheApp) {
  const std::string env = NewEnvironment("owndb");
  const std::string ns = "eph-" + env;
  const DatabaseServerRequest request{.environment = env,
                                      .namespace_name = ns,
                                      .labels = {{kEnvironmentLabel, env}},
                                      .name = "pg",
                                      .version = "15",
                                      .image = "postgres:15"};
  absl::StatusOr<DatabaseServer> server = provider_->EnsureDatabaseServer(request);
  ASSERT_TRUE(server.ok()) << server.status();
  ASSERT_TRUE(Eventually(
      [&] {
        server = provider_->EnsureDatabaseServer(request);
        return server.ok() && server->ready;
      },
      120s))
      << (server.ok() ? server->message : server.status().ToString());
  const std::regex url("postgresql://eph_admin:([0-9a-f]{48})@pg\\." + ns + "\\.svc:5432/postgres");
  std::smatch m;
  ASSERT_TRUE(std::regex_match(server->admin_url, m, url)) << server->admin_url;
  const std::string password = m[1];
  EXPECT_EQ(server->app_host, "pg");
  EXPECT_EQ(server->app_port, 5432);
  absl::StatusOr<json> sts = Get(fmt::format("/apis/apps/v1/namespaces/{}/statefulsets/pg", ns));
  ASSERT_TRUE(sts.ok()) << sts.status();
  EXPECT_EQ((*sts)["spec"]["template"]["spec"]["containers"][0]["image"], "postgres:15");
  EXPECT_EQ((*sts)["metadata"]["labels"]["eph.dev/database"], "pg");
  EXPECT_TRUE(Get(fmt::format("/api/v1/namespaces/{}/services/pg", ns)).ok());
  // The same password on every call.
  absl::StatusOr<DatabaseServer> again = provider_->EnsureDatabaseServer(request);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->admin_url, server->admin_url);

  // ephd reaches the server at its Service name. Where that does not resolve: outside the
  // cluster, a clear error (not a seed retried for ever); inside, a wait.
  std::vector<std::string> looked_up;
  auto unresolvable = [&](const std::string& host) {
    looked_up.push_back(host);
    return absl::UnavailableError("Name or service not known");
  };
  absl::StatusOr<DatabaseServer> outside =
      MakeProvider(/*watch=*/false, /*in_cluster=*/false, unresolvable)
          ->EnsureDatabaseServer(request);
  ASSERT_FALSE(outside.ok());
  EXPECT_EQ(outside.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(Msg(outside.status()), HasSubstr("cannot reach it at pg." + ns + ".svc"));
  EXPECT_THAT(Msg(outside.status()), HasSubstr("Run ephd in the cluster"));
  EXPECT_THAT(Msg(outside.status()), Not(HasSubstr(password)));
  absl::StatusOr<DatabaseServer> inside =
      MakeProvider(/*watch=*/false, /*in_cluster=*/true, unresolvable)
          ->EnsureDatabaseServer(request);
  ASSERT_TRUE(inside.ok()) << inside.status();
  EXPECT_FALSE(inside->ready);
  EXPECT_THAT(inside->message, HasSubstr("waiting for pg." + ns + ".svc to resolve"));
  EXPECT_EQ(looked_up, (std::vector<std::string>{"pg." + ns + ".svc", "pg." + ns + ".svc"}));

  // The app arrives with its own Service and StatefulSet kinds; two applies prune nothing of
  // the server's.
  const std::string checkout = eph::testing::MakeTempDir("k8s-owndb");
  Write(fs::path(checkout) / "k8s/app.yaml",
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  ports:\n  - port: 80\n"
        "---\napiVersion: apps/v1\nkind: StatefulSet\nmetadata:\n  name: cache\nspec:\n"
        "  serviceName: cache\n  replicas: 1\n  selector:\n    matchLabels: {app: cache}\n"
        "  template:\n    metadata:\n      labels: {app: cache}\n    spec:\n      containers:\n"
        "      - name: cache\n        image: acme/cache:1\n");
  const json section = {{"manifests", {"k8s"}}, {"images", json::array()}};
  for (int i = 0; i < 2; ++i) {
    absl::StatusOr<ApplyResult> applied = provider_->Apply(Request(env, checkout, section));
    ASSERT_TRUE(applied.ok()) << applied.status();
  }
  ASSERT_TRUE(WaitForPhase(env, Phase::kReady).ok());
  EXPECT_TRUE(Get(fmt::format("/apis/apps/v1/namespaces/{}/statefulsets/pg", ns)).ok());
  EXPECT_TRUE(Get(fmt::format("/api/v1/namespaces/{}/services/pg", ns)).ok());
  absl::StatusOr<json> secret = Get(fmt::format("/api/v1/namespaces/{}/secrets/pg-admin", ns));
  ASSERT_TRUE(secret.ok()) << secret.status();
  EXPECT_EQ((*secret)["data"]["POSTGRES_PASSWORD"], absl::Base64Escape(password));

  DestroyCompletely(env);
  EXPECT_TRUE(NamespaceGone(ns));
}

// kwok cannot crash a container, but the real deployment controller declares a rollout that
// cannot progress failed: pods that no node will take, and a 2 s progress deadline.
TEST_F(KubernetesProviderBedTest, ARolloutPastItsProgressDeadlineFails) {
  const std::string env = NewEnvironment("stuck");
  const std::string checkout = eph::testing::MakeTempDir("k8s-stuck");
  Write(fs::path(checkout) / "k8s/stuck.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: stuck\nspec:\n"
        "  progressDeadlineSeconds: 2\n  selector:\n    matchLabels: {app: stuck}\n"
        "  template:\n    metadata:\n      labels: {app: stuck}\n    spec:\n"
        "      nodeSelector: {eph.dev/no-such-node: 'true'}\n      containers:\n"
        "      - name: stuck\n        image: ghcr.io/acme/stuck:1\n");
  ASSERT_TRUE(
      provider_->Apply(Request(env, checkout, {{"manifests", {"k8s"}}, {"images", json::array()}}))
          .ok());
  absl::StatusOr<Observation> failed = WaitForPhase(env, Phase::kFailed, 120s);
  ASSERT_TRUE(failed.ok()) << failed.status();
  EXPECT_THAT(failed->message,
              HasSubstr("deployment stuck: rollout exceeded its progress deadline"));
  EXPECT_THAT(failed->message, HasSubstr("has timed out progressing"));
  ASSERT_EQ(failed->components.size(), 1u);
  EXPECT_EQ(failed->components[0].phase, Phase::kFailed);
  DestroyCompletely(env);
}

// With registry credentials configured, the namespace gets the dockerconfigjson Secret
// eph-registry, and every ServiceAccount (the app's and the default one) references it, so the
// API server's ServiceAccount admission puts it on every pod.
TEST_F(KubernetesProviderBedTest, PullSecretIsInTheNamespaceAndReferenced) {
  absl::StatusOr<RegistryAuth> auth = ParseRegistryAuth(
      R"({"auths": {"registry.example.test:5000": {"auth": ")" + absl::Base64Escape("ci:s3cret") +
          R"("}, "https://index.docker.io/v1/": {"username": "hub", "password": "tok"}}})",
      "test");
  ASSERT_TRUE(auth.ok()) << auth.status();
  std::unique_ptr<KubernetesProvider> provider = MakeProvider(
      /*watch=*/false, /*in_cluster=*/true, [](const std::string&) { return absl::OkStatus(); },
      *auth);
  const std::string env = NewEnvironment("pull");
  const std::string ns = "eph-" + env;
  const std::string checkout = eph::testing::MakeTempDir("k8s-pull");
  Write(fs::path(checkout) / "k8s/app.yaml",
        "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: app\n---\n"
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n"
        "  selector:\n    matchLabels: {app: web}\n  template:\n    metadata:\n"
        "      labels: {app: web}\n    spec:\n      containers:\n"
        "      - name: web\n        image: registry.example.test:5000/acme/web:pr-42\n"
        "---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: worker\nspec:\n"
        "  selector:\n    matchLabels: {app: worker}\n  template:\n    metadata:\n"
        "      labels: {app: worker}\n    spec:\n      serviceAccountName: app\n"
        "      containers:\n      - name: worker\n        image: acme/worker:pr-42\n");
  const ApplyRequest request =
      Request(env, checkout, {{"manifests", {"k8s"}}, {"images", json::array()}});
  for (int pass = 0; pass < 2; ++pass) {  // the second changes nothing
    absl::StatusOr<ApplyResult> applied = provider->Apply(request);
    ASSERT_TRUE(applied.ok()) << applied.status();
  }

  absl::StatusOr<json> secret = Get(fmt::format("/api/v1/namespaces/{}/secrets/eph-registry", ns));
  ASSERT_TRUE(secret.ok()) << secret.status();
  EXPECT_EQ((*secret)["type"], "kubernetes.io/dockerconfigjson");
  EXPECT_EQ((*secret)["metadata"]["labels"][kEnvironmentLabel], env);
  std::string decoded;
  ASSERT_TRUE(
      absl::Base64Unescape((*secret)["data"][".dockerconfigjson"].get<std::string>(), &decoded));
  const json config = json::parse(decoded);
  EXPECT_EQ(config["auths"]["registry.example.test:5000"]["auth"], absl::Base64Escape("ci:s3cret"));
  EXPECT_EQ(config["auths"]["https://index.docker.io/v1/"]["username"], "hub");
  // And it reads back as the credentials it was made from.
  absl::StatusOr<RegistryAuth> back = ParseRegistryAuth(decoded, "secret");
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->by_host(), auth->by_host());

  const json reference = json::array({{{"name", "eph-registry"}}});
  for (const char* account : {"default", "app"}) {
    absl::StatusOr<json> sa =
        Get(fmt::format("/api/v1/namespaces/{}/serviceaccounts/{}", ns, account));
    ASSERT_TRUE(sa.ok()) << account << ": " << sa.status();
    EXPECT_EQ((*sa)["imagePullSecrets"], reference) << account;
  }
  // Pods of both Deployments carry it, though neither manifest names it.
  ASSERT_TRUE(Eventually(
      [&] {
        absl::StatusOr<kube::ListResult> pods =
            admin_->List(fmt::format("/api/v1/namespaces/{}/pods", ns));
        if (!pods.ok() || pods->items.size() != 2) return false;
        for (const json& pod : pods->items) {
          if (pod["spec"].value("imagePullSecrets", json()) != reference) return false;
        }
        return true;
      },
      60s))
      << "pods without the pull secret";
  DestroyCompletely(env);
}

// A fork's environment (issue 16): the API server itself refuses a privileged pod in its
// namespace, and its pods may reach nothing but DNS. A pod within the profile still runs.
TEST_F(KubernetesProviderBedTest, AForksEnvironmentRunsUnderTheRestrictedProfile) {
  const std::string env = NewEnvironment("fork");
  const std::string ns = "eph-" + env;
  const std::string checkout = eph::testing::MakeTempDir("k8s-fork");
  Write(fs::path(checkout) / "k8s/app.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n"
        "  selector:\n    matchLabels: {app: web}\n  template:\n    metadata:\n"
        "      labels: {app: web}\n    spec:\n"
        "      securityContext: {runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}}\n"
        "      containers:\n      - name: web\n        image: acme/web:pr-7\n"
        "        securityContext:\n          allowPrivilegeEscalation: false\n"
        "          capabilities: {drop: [ALL]}\n");
  ApplyRequest request = Request(env, checkout, {{"manifests", {"k8s"}}, {"images", json::array()}});
  request.restricted = true;
  absl::StatusOr<ApplyResult> applied = provider_->Apply(request);
  ASSERT_TRUE(applied.ok()) << applied.status();

  absl::StatusOr<json> namespace_object = Get("/api/v1/namespaces/" + ns);
  ASSERT_TRUE(namespace_object.ok()) << namespace_object.status();
  EXPECT_EQ((*namespace_object)["metadata"]["labels"]["pod-security.kubernetes.io/enforce"],
            "restricted");
  absl::StatusOr<json> egress = Get(fmt::format(
      "/apis/networking.k8s.io/v1/namespaces/{}/networkpolicies/eph-restricted-egress", ns));
  ASSERT_TRUE(egress.ok()) << egress.status();
  EXPECT_EQ((*egress)["spec"]["policyTypes"], json::array({"Egress"}));
  EXPECT_EQ((*egress)["spec"]["egress"][0]["ports"].size(), 2u);

  // Pod Security Admission in the real API server, not Eph, refuses this one.
  absl::StatusOr<json> privileged = admin_->Create(
      fmt::format("/api/v1/namespaces/{}/pods", ns),
      json{{"apiVersion", "v1"},
           {"kind", "Pod"},
           {"metadata", {{"name", "root"}}},
           {"spec",
            {{"containers", json::array({{{"name", "root"},
                                           {"image", "acme/web:pr-7"},
                                           {"securityContext", {{"privileged", true}}}}})}}}});
  ASSERT_FALSE(privileged.ok());
  EXPECT_THAT(std::string(privileged.status().message()), HasSubstr("restricted"));
  ASSERT_TRUE(Eventually(
      [&] {
        absl::StatusOr<Observation> seen = provider_->Observe({env, ns});
        return seen.ok() && seen->phase == Phase::kReady;
      },
      60s))
      << "the compliant Deployment did not become ready";
  DestroyCompletely(env);
}

TEST_F(KubernetesProviderBedTest, HelmReleaseWithValuesAndSetBecomesReady) {
  const std::string env = NewEnvironment("helm");
  const std::string ns = "eph-" + env;
  const std::string checkout = Checkout();
  absl::StatusOr<ApplyResult> r =
      provider_->Apply(Request(env, checkout,
                               {{"manifests", json::array()},
                                {"images", json::array()},
                                {"helm",
                                 {{{"chart", "chart/greeter"},
                                   {"values", {"chart/preview-values.yaml"}},
                                   {"release_name", "demo"},
                                   {"set", {{"image.tag", "pr-42"}}}}}}}));
  ASSERT_TRUE(r.ok()) << r.status();
  absl::StatusOr<json> d =
      Get(fmt::format("/apis/apps/v1/namespaces/{}/deployments/demo-greeter", ns));
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ((*d)["spec"]["template"]["spec"]["containers"][0]["image"],
            "ghcr.io/acme/greeter:pr-42");
  EXPECT_EQ((*d)["spec"]["replicas"], 1);
  ASSERT_TRUE(WaitForPhase(env, Phase::kReady).ok());
  // Without watches (a fresh ephd, say), Observe reads the API and agrees.
  std::unique_ptr<KubernetesProvider> unwatched = MakeProvider(/*watch=*/false);
  absl::StatusOr<Observation> direct = unwatched->Observe({env, ns});
  ASSERT_TRUE(direct.ok()) << direct.status();
  EXPECT_EQ(direct->phase, Phase::kReady) << direct->message;
  DestroyCompletely(env);
}

TEST_F(KubernetesProviderBedTest, NamespacesEphDidNotCreateAreNeverTouched) {
  const std::string env = NewEnvironment("foreign");
  const std::string ns = "eph-" + env;
  ASSERT_TRUE(
      admin_
          ->Create("/api/v1/namespaces",
                   {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", ns}}}})
          .ok());
  const std::string checkout = eph::testing::MakeTempDir("k8s-foreign");
  Write(fs::path(checkout) / "k8s/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n");
  absl::StatusOr<ApplyResult> r =
      provider_->Apply(Request(env, checkout, {{"manifests", {"k8s"}}, {"images", json::array()}}));
  ASSERT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition) << r.status();
  EXPECT_THAT(Msg(r.status()), HasSubstr("does not take over namespaces"));
  absl::StatusOr<DestroyResult> d = provider_->Destroy({env, ns});
  ASSERT_EQ(d.status().code(), absl::StatusCode::kFailedPrecondition) << d.status();
  absl::StatusOr<json> still = Get("/api/v1/namespaces/" + ns);
  ASSERT_TRUE(still.ok());
  EXPECT_FALSE((*still)["metadata"].contains("deletionTimestamp"));
  absl::StatusOr<std::vector<OwnedObject>> owned = provider_->ListOwned();
  ASSERT_TRUE(owned.ok());
  for (const OwnedObject& o : *owned) EXPECT_NE(o.name, ns);
  created_.clear();  // not ours to destroy
  ASSERT_TRUE(admin_->Delete("/api/v1/namespaces/" + ns).ok());
}

// The apiserver restarts under the watches: readiness is kept, and changes made afterwards reach
// the provider through the recovered watches (marked RUN_SERIAL in CMakeLists.txt).
TEST_F(KubernetesProviderBedTest, ReadinessSurvivesAnApiServerRestart) {
  const std::string env = NewEnvironment("restart");
  const std::string ns = "eph-" + env;
  const std::string checkout = Checkout();
  auto helm_request = [&](const std::string& tag) {
    return Request(env, checkout,
                   {{"manifests", json::array()},
                    {"images", json::array()},
                    {"helm",
                     {{{"chart", "chart/greeter"},
                       {"release_name", "demo"},
                       {"set", {{"image.tag", tag}}}}}}});
  };
  ASSERT_TRUE(provider_->Apply(helm_request("pr-1")).ok());
  ASSERT_TRUE(WaitForPhase(env, Phase::kReady).ok());

  const eph::testing::CommandResult restart = eph::testing::RunCommand(
      {eph::testing::SourceDir() + "/test/bed/kubernetes/restart-apiserver"},
      {{"EPH_TESTBED_DIR", TestbedDir()}}, 180s);
  ASSERT_EQ(restart.exit_code, 0) << restart.err;

  // Still ready, from the watches' cache.
  absl::StatusOr<Observation> after = provider_->Observe({env, ns});
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(after->phase, Phase::kReady) << after->message;

  // A rollout after the restart is seen by the watches: the listener fires and the cache alone
  // (no direct reads) follows the new generation to ready.
  const int before = changes_.Count(env);
  absl::StatusOr<ApplyResult> update;
  ASSERT_TRUE(Eventually(
      [&] {
        update = provider_->Apply(helm_request("pr-2"));
        return update.ok();
      },
      60s))
      << update.status();
  EXPECT_TRUE(changes_.WaitBeyond(env, before, 120s)) << "no change reported after the restart";
  ASSERT_TRUE(Eventually(
      [&] {
        std::optional<Observation> w = provider_->ObserveFromWatches({env, ns});
        if (!w || w->phase != Phase::kReady) return false;
        absl::StatusOr<json> d =
            Get(fmt::format("/apis/apps/v1/namespaces/{}/deployments/demo-greeter", ns));
        return d.ok() && (*d)["status"].value("observedGeneration", 0) ==
                             (*d)["metadata"].value("generation", -1);
      },
      120s));
  absl::StatusOr<Observation> ready = WaitForPhase(env, Phase::kReady);
  ASSERT_TRUE(ready.ok()) << ready.status();
  EXPECT_TRUE(provider_->WatchesSynced());
  DestroyCompletely(env);
}

}  // namespace
}  // namespace eph::providers::kubernetes
