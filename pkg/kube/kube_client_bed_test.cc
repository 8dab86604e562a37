// KubeClient against the test bed's real kube-apiserver (test/bed/kubernetes): credentials of
// every kind, TLS refusal, paging, server-side apply, watches, and a watch surviving an
// apiserver restart. Each test works in its own namespace, removed afterwards.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <set>
#include <thread>

#include "fmt/format.h"
#include "pkg/base/random.h"
#include "pkg/kube/api_errors.h"
#include "pkg/kube/kube_client.h"
#include "pkg/kube/kube_config.h"
#include "pkg/kube/kube_test_util.h"
#include "test/support/process.h"
#include "test/support/testbed.h"

namespace eph::kube {
namespace {

using ::eph::kube::testing::ReadFile;
using ::eph::kube::testing::WriteFile;
using ::testing::HasSubstr;
using namespace std::chrono_literals;

std::string Msg(const absl::Status& st) { return MessageOf(st); }

std::string Bed(const std::string& key) { return eph::testing::TestbedValue("kubernetes", key); }

std::string TestbedDir() {
  const char* env = std::getenv("EPH_TESTBED_DIR");  // NOLINT(concurrency-mt-unsafe)
  return env != nullptr && *env != '\0' ? env : EPH_TESTBED_DIR;
}

// What a watch saw, as "ADDED name" lines plus relists as "RELIST name,name", waited on with
// deadlines.
class WatchRecorder {
 public:
  WatchCallbacks Callbacks() {
    WatchCallbacks cb;
    cb.on_event = [this](const WatchEvent& e) {
      const std::string name =
          e.object.value("metadata", nlohmann::json::object()).value("name", "");
      Add(fmt::format("{} {}", WatchEventTypeName(e.type), name));
    };
    cb.on_relist = [this](const ListResult& list, RelistReason) {
      std::string names;
      for (const auto& item : list.items) {
        names += (names.empty() ? "" : ",") + item["metadata"]["name"].get<std::string>();
      }
      Add("RELIST " + names);
    };
    cb.on_reconnect = [this](const absl::Status&) {
      std::lock_guard<std::mutex> lock(mu_);
      ++reconnects_;
    };
    return cb;
  }
  bool WaitFor(const std::function<bool(const std::vector<std::string>&)>& pred,
               std::chrono::seconds timeout = 30s) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return pred(lines_); });
  }
  bool WaitForLine(const std::string& line, std::chrono::seconds timeout = 30s) {
    return WaitFor(
        [&](const std::vector<std::string>& lines) {
          return std::find(lines.begin(), lines.end(), line) != lines.end();
        },
        timeout);
  }
  std::vector<std::string> lines() const {
    std::lock_guard<std::mutex> lock(mu_);
    return lines_;
  }
  int reconnects() const {
    std::lock_guard<std::mutex> lock(mu_);
    return reconnects_;
  }

 private:
  void Add(std::string line) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      lines_.push_back(std::move(line));
    }
    cv_.notify_all();
  }
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> lines_;
  int reconnects_ = 0;
};

nlohmann::json ConfigMap(const std::string& ns, const std::string& name, const nlohmann::json& data,
                         const std::string& label = "") {
  nlohmann::json cm = {{"apiVersion", "v1"},
                       {"kind", "ConfigMap"},
                       {"metadata", {{"name", name}, {"namespace", ns}}},
                       {"data", data}};
  if (!label.empty()) cm["metadata"]["labels"] = {{"eph.dev/test", label}};
  return cm;
}

class KubeBedTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<KubeConfig> config = LoadKubeconfig(Bed("EPH_TEST_KUBECONFIG"));
    ASSERT_TRUE(config.ok()) << config.status();
    admin_ = std::make_unique<KubeClient>(*std::move(config));
    ns_ = "kube-client-" + SecureRandom::Instance().Hex(4);
    ASSERT_TRUE(
        admin_
            ->Create("/api/v1/namespaces",
                     {{"apiVersion", "v1"},
                      {"kind", "Namespace"},
                      {"metadata", {{"name", ns_}, {"labels", {{"eph.dev/test", "kube"}}}}}})
            .ok());
    dir_ = eph::testing::MakeTempDir("kube-bed");
  }

  void TearDown() override {
    if (admin_ == nullptr) return;
    for (const auto& path : cleanup_) (void)admin_->Delete(path);
    (void)admin_->Delete("/api/v1/namespaces/" + ns_);
  }

  // A ServiceAccount bound to the cluster role `view` and a token for it from the TokenRequest
  // API, as a CI system or an in-cluster Eph would hold.
  std::string ServiceAccountToken() {
    const std::string sa = "eph-tester";
    EXPECT_TRUE(
        admin_
            ->Create(
                fmt::format("/api/v1/namespaces/{}/serviceaccounts", ns_),
                {{"apiVersion", "v1"}, {"kind", "ServiceAccount"}, {"metadata", {{"name", sa}}}})
            .ok());
    const std::string binding = ns_ + "-view";
    absl::StatusOr<nlohmann::json> crb = admin_->Create(
        "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
        {{"apiVersion", "rbac.authorization.k8s.io/v1"},
         {"kind", "ClusterRoleBinding"},
         {"metadata", {{"name", binding}}},
         {"roleRef",
          {{"apiGroup", "rbac.authorization.k8s.io"}, {"kind", "ClusterRole"}, {"name", "view"}}},
         {"subjects", {{{"kind", "ServiceAccount"}, {"name", sa}, {"namespace", ns_}}}}});
    EXPECT_TRUE(crb.ok()) << crb.status();
    cleanup_.push_back("/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/" + binding);
    absl::StatusOr<nlohmann::json> token =
        admin_->Create(fmt::format("/api/v1/namespaces/{}/serviceaccounts/{}/token", ns_, sa),
                       {{"apiVersion", "authentication.k8s.io/v1"},
                        {"kind", "TokenRequest"},
                        {"spec", {{"expirationSeconds", 3600}}}});
    EXPECT_TRUE(token.ok()) << token.status();
    return token.ok() ? (*token)["status"]["token"].get<std::string>() : "";
  }

  // The user the API server sees, through SelfSubjectReview.
  static std::string WhoAmI(KubeClient& client) {
    absl::StatusOr<nlohmann::json> review =
        client.Create("/apis/authentication.k8s.io/v1/selfsubjectreviews",
                      {{"apiVersion", "authentication.k8s.io/v1"}, {"kind", "SelfSubjectReview"}});
    EXPECT_TRUE(review.ok()) << review.status();
    return review.ok() ? (*review)["status"]["userInfo"]["username"].get<std::string>() : "";
  }

  // Lists ConfigMaps in ns_ until RBAC (whose cache trails the binding) lets `client` in.
  bool CanListConfigMaps(KubeClient& client) {
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    while (std::chrono::steady_clock::now() < deadline) {
      absl::StatusOr<ListResult> list =
          client.List(fmt::format("/api/v1/namespaces/{}/configmaps", ns_));
      if (list.ok()) return true;
      if (!absl::IsPermissionDenied(list.status())) {
        ADD_FAILURE() << list.status();
        return false;
      }
      std::this_thread::sleep_for(100ms);  // polling a condition, not waiting out a time
    }
    return false;
  }

  std::string KubeconfigWithUser(const std::string& user_yaml) {
    std::filesystem::copy_file(Bed("EPH_TEST_KUBE_CA"), dir_ + "/ca.crt",
                               std::filesystem::copy_options::overwrite_existing);
    std::string path = dir_ + "/kubeconfig";
    WriteFile(path, fmt::format(R"(apiVersion: v1
kind: Config
current-context: bed
clusters:
- name: bed
  cluster:
    server: {}
    certificate-authority: ca.crt
contexts:
- name: bed
  context: {{cluster: bed, user: u, namespace: {}}}
users:
- name: u
  user:
{}
)",
                                Bed("EPH_TEST_KUBE_SERVER"), ns_, user_yaml));
    return path;
  }

  std::unique_ptr<KubeClient> admin_;
  std::string ns_;
  std::string dir_;
  std::vector<std::string> cleanup_;
};

TEST_F(KubeBedTest, ClientCertificateKubeconfigWorks) {
  EXPECT_EQ(WhoAmI(*admin_), "eph-test-admin");
  absl::StatusOr<nlohmann::json> version = admin_->Get("/version");
  ASSERT_TRUE(version.ok()) << version.status();
  EXPECT_EQ((*version)["gitVersion"], Bed("EPH_TEST_KUBE_VERSION"));
}

TEST_F(KubeBedTest, BearerTokenKubeconfigWorks) {
  const std::string token = ServiceAccountToken();
  ASSERT_FALSE(token.empty());
  absl::StatusOr<KubeConfig> config =
      LoadKubeconfig(KubeconfigWithUser(fmt::format("    token: {}", token)));
  ASSERT_TRUE(config.ok()) << config.status();
  KubeClient client(*std::move(config));
  EXPECT_EQ(WhoAmI(client), fmt::format("system:serviceaccount:{}:eph-tester", ns_));
  EXPECT_TRUE(CanListConfigMaps(client));
  // `view` may not write: the API's 403 arrives as PermissionDenied with its message.
  const absl::Status denied = client
                                  .Create(fmt::format("/api/v1/namespaces/{}/configmaps", ns_),
                                          ConfigMap(ns_, "nope", {{"k", "v"}}))
                                  .status();
  EXPECT_TRUE(absl::IsPermissionDenied(denied)) << denied;
  EXPECT_THAT(Msg(denied), HasSubstr("cannot create resource \"configmaps\""));
}

TEST_F(KubeBedTest, ExecPluginKubeconfigWorks) {
  const std::string token = ServiceAccountToken();
  ASSERT_FALSE(token.empty());
  const std::string marker = dir_ + "/pwned";
  WriteFile(dir_ + "/plugin/token.sh",
            fmt::format("#!/bin/sh\n"
                        "echo run >>{0}/runs\n"
                        "printf '%s\\n' \"$@\" >{0}/args\n"
                        "echo '{{\"apiVersion\":\"client.authentication.k8s.io/v1\","
                        "\"kind\":\"ExecCredential\",\"status\":{{\"token\":\"{1}\","
                        "\"expirationTimestamp\":\"2999-01-01T00:00:00Z\"}}}}'\n",
                        dir_, token),
            /*executable=*/true);
  absl::StatusOr<KubeConfig> config = LoadKubeconfig(KubeconfigWithUser(fmt::format(
      R"yaml(    exec:
      apiVersion: client.authentication.k8s.io/v1
      command: ./plugin/token.sh
      args: ["--cluster", "$(touch {})"]
      interactiveMode: Never)yaml",
      marker)));
  ASSERT_TRUE(config.ok()) << config.status();
  KubeClient client(*std::move(config));
  EXPECT_EQ(WhoAmI(client), fmt::format("system:serviceaccount:{}:eph-tester", ns_));
  EXPECT_TRUE(CanListConfigMaps(client));
  EXPECT_EQ(ReadFile(dir_ + "/runs"), "run\n");  // cached until its expiry
  EXPECT_EQ(ReadFile(dir_ + "/args"), "--cluster\n$(touch " + marker + ")\n");
  EXPECT_FALSE(std::filesystem::exists(marker));
}

TEST_F(KubeBedTest, InClusterServiceAccountConfigWorks) {
  const std::string token = ServiceAccountToken();
  ASSERT_FALSE(token.empty());
  const std::string root = dir_ + "/serviceaccount";
  WriteFile(root + "/token", token);
  WriteFile(root + "/namespace", ns_);
  std::filesystem::copy_file(Bed("EPH_TEST_KUBE_CA"), root + "/ca.crt");
  const std::string server = Bed("EPH_TEST_KUBE_SERVER");  // https://127.0.0.1:PORT
  const std::string port = server.substr(server.rfind(':') + 1);
  InClusterOptions options;
  options.root = root;
  options.getenv = [&](const std::string& name) -> std::optional<std::string> {
    if (name == "KUBERNETES_SERVICE_HOST") return "127.0.0.1";
    if (name == "KUBERNETES_SERVICE_PORT") return port;
    return std::nullopt;
  };
  absl::StatusOr<KubeConfig> config = LoadInClusterConfig(options);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->default_namespace, ns_);
  KubeClient client(*std::move(config));
  EXPECT_EQ(WhoAmI(client), fmt::format("system:serviceaccount:{}:eph-tester", ns_));
}

TEST_F(KubeBedTest, WrongCaIsRefusedWithAClearError) {
  const eph::testing::CommandResult made = eph::testing::RunCommand(
      {"/usr/bin/env", "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
       "ec_paramgen_curve:P-256", "-nodes", "-keyout", dir_ + "/wrong.key", "-out",
       dir_ + "/wrong-ca.crt", "-subj", "/CN=not-the-cluster-ca", "-days", "1"});
  ASSERT_EQ(made.exit_code, 0) << made.err;
  absl::StatusOr<KubeConfig> config = LoadKubeconfig(Bed("EPH_TEST_KUBECONFIG"));
  ASSERT_TRUE(config.ok());
  config->ca_pem = ReadFile(dir_ + "/wrong-ca.crt");
  config->ca_origin = dir_ + "/wrong-ca.crt";
  KubeClient client(*std::move(config));
  const absl::Status st = client.Get("/version").status();
  EXPECT_TRUE(absl::IsFailedPrecondition(st)) << st;
  EXPECT_THAT(Msg(st), HasSubstr("TLS verification failed"));
  EXPECT_THAT(Msg(st), HasSubstr("not signed by the configured certificate authority"));
  EXPECT_THAT(Msg(st), HasSubstr(dir_ + "/wrong-ca.crt"));

  // The same through a kubeconfig file: the message names where the CA was configured.
  const std::string kubeconfig = KubeconfigWithUser("    token: x");
  std::filesystem::copy_file(dir_ + "/wrong-ca.crt", dir_ + "/ca.crt",
                             std::filesystem::copy_options::overwrite_existing);
  absl::StatusOr<KubeConfig> from_file = LoadKubeconfig(kubeconfig);
  ASSERT_TRUE(from_file.ok()) << from_file.status();
  KubeClient file_client(*std::move(from_file));
  const absl::Status st2 = file_client.Get("/version").status();
  EXPECT_TRUE(absl::IsFailedPrecondition(st2)) << st2;
  EXPECT_THAT(Msg(st2), HasSubstr("certificate-authority " + dir_ + "/ca.crt"));
}

TEST_F(KubeBedTest, TlsServerNameAndInsecureSkipVerify) {
  // The apiserver's certificate names 127.0.0.1 and "kubernetes", not "localhost.invalid".
  absl::StatusOr<KubeConfig> config = LoadKubeconfig(Bed("EPH_TEST_KUBECONFIG"));
  ASSERT_TRUE(config.ok());
  KubeConfig named = *config;
  named.tls_server_name = "kubernetes";
  EXPECT_TRUE(KubeClient(named).Get("/version").ok());

  KubeConfig wrong_name = *config;
  wrong_name.tls_server_name = "localhost.invalid";
  const absl::Status st = KubeClient(wrong_name).Get("/version").status();
  EXPECT_TRUE(absl::IsFailedPrecondition(st)) << st;
  EXPECT_THAT(Msg(st), HasSubstr("does not name the host"));

  KubeConfig insecure = *config;
  insecure.ca_pem.clear();
  insecure.insecure_skip_tls_verify = true;
  EXPECT_TRUE(KubeClient(insecure).Get("/version").ok());
  // Without the CA and without insecure, the system trust store does not know the test CA.
  KubeConfig system_store = *config;
  system_store.ca_pem.clear();
  const absl::Status untrusted = KubeClient(system_store).Get("/version").status();
  EXPECT_TRUE(absl::IsFailedPrecondition(untrusted)) << untrusted;
  EXPECT_THAT(Msg(untrusted), HasSubstr("names no certificate authority"));
}

TEST_F(KubeBedTest, ListPagesThroughEverything) {
  std::set<std::string> created;
  for (int i = 0; i < 7; ++i) {
    const std::string name = fmt::format("page-{}", i);
    ASSERT_TRUE(admin_
                    ->Create(fmt::format("/api/v1/namespaces/{}/configmaps", ns_),
                             ConfigMap(ns_, name, {{"i", std::to_string(i)}}, "paging"))
                    .ok());
    created.insert(name);
  }
  absl::StatusOr<ListResult> list =
      admin_->List(fmt::format("/api/v1/namespaces/{}/configmaps", ns_),
                   {.label_selector = "eph.dev/test=paging", .limit = 2});
  ASSERT_TRUE(list.ok()) << list.status();
  EXPECT_EQ(list->pages, 4);
  EXPECT_FALSE(list->resource_version.empty());
  std::set<std::string> listed;
  for (const auto& item : list->items) {
    EXPECT_EQ(item["kind"], "ConfigMap");
    listed.insert(item["metadata"]["name"].get<std::string>());
  }
  EXPECT_EQ(listed, created);
  EXPECT_EQ(list->items.size(), created.size());  // no duplicates across pages
}

TEST_F(KubeBedTest, ServerSideApplyCreatesAndUpdatesAsFieldManagerEph) {
  const std::string path = fmt::format("/api/v1/namespaces/{}/configmaps/settings", ns_);
  absl::StatusOr<nlohmann::json> created =
      admin_->Apply(path, ConfigMap(ns_, "settings", {{"a", "1"}, {"b", "2"}}));
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_EQ((*created)["data"], (nlohmann::json{{"a", "1"}, {"b", "2"}}));
  bool eph_applies = false;
  for (const auto& m : (*created)["metadata"]["managedFields"]) {
    eph_applies |= m["manager"] == "eph" && m["operation"] == "Apply";
  }
  EXPECT_TRUE(eph_applies) << (*created)["metadata"]["managedFields"].dump();

  // The second apply owns a different set: "b" is dropped, "a" changes, "c" appears.
  absl::StatusOr<nlohmann::json> updated =
      admin_->ApplyObject(ConfigMap(ns_, "settings", {{"a", "10"}, {"c", "3"}}));
  ASSERT_TRUE(updated.ok()) << updated.status();
  absl::StatusOr<nlohmann::json> read = admin_->Get(path);
  ASSERT_TRUE(read.ok());
  EXPECT_EQ((*read)["data"], (nlohmann::json{{"a", "10"}, {"c", "3"}}));

  // Invalid objects come back as InvalidArgument with the API's words.
  const absl::Status invalid =
      admin_
          ->Apply(fmt::format("/api/v1/namespaces/{}/configmaps/Bad_Name", ns_),
                  ConfigMap(ns_, "Bad_Name", {{"k", "v"}}))
          .status();
  EXPECT_TRUE(absl::IsInvalidArgument(invalid)) << invalid;
  EXPECT_THAT(Msg(invalid), HasSubstr("Bad_Name"));
  // And discovery knows what does not exist.
  const absl::Status unknown = admin_->ResolveKind("apps/v1", "Foo").status();
  EXPECT_TRUE(absl::IsNotFound(unknown));
  EXPECT_THAT(Msg(unknown), HasSubstr("no kind Foo in apps/v1"));
  EXPECT_TRUE(admin_->ResolveKind("apps/v1", "Deployment").ok());
}

TEST_F(KubeBedTest, CreateConflictsAndMissingObjectsMapToCodes) {
  const std::string coll = fmt::format("/api/v1/namespaces/{}/configmaps", ns_);
  ASSERT_TRUE(admin_->Create(coll, ConfigMap(ns_, "dup", {{"k", "v"}})).ok());
  const absl::Status again = admin_->Create(coll, ConfigMap(ns_, "dup", {{"k", "v"}})).status();
  EXPECT_TRUE(absl::IsAlreadyExists(again)) << again;
  const absl::Status missing = admin_->Get(coll + "/absent").status();
  EXPECT_TRUE(absl::IsNotFound(missing)) << missing;
  EXPECT_THAT(Msg(missing), HasSubstr("configmaps \"absent\" not found"));
  // A stale resourceVersion on update is a conflict: re-read and retry.
  nlohmann::json stale = ConfigMap(ns_, "dup", {{"k", "w"}});
  stale["metadata"]["resourceVersion"] = "1";
  const absl::Status conflict = admin_->Replace(coll + "/dup", stale).status();
  EXPECT_TRUE(absl::IsAborted(conflict)) << conflict;
  EXPECT_TRUE(absl::IsNotFound(admin_->Delete(coll + "/absent")));
}

TEST_F(KubeBedTest, OneClientServesManyThreadsAtOnce) {
  constexpr int kThreads = 8;
  constexpr int kPerThread = 10;
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const nlohmann::json cm =
            ConfigMap(ns_, fmt::format("c-{}-{}", t, i), {{"i", std::to_string(i)}}, "many");
        if (!admin_->ApplyObject(cm).ok()) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  absl::StatusOr<ListResult> list =
      admin_->List(fmt::format("/api/v1/namespaces/{}/configmaps", ns_),
                   {.label_selector = "eph.dev/test=many"});
  ASSERT_TRUE(list.ok()) << list.status();
  EXPECT_EQ(list->items.size(), static_cast<size_t>(kThreads * kPerThread));
}

TEST_F(KubeBedTest, WatchSeesAddedModifiedDeleted) {
  const std::string coll = fmt::format("/api/v1/namespaces/{}/configmaps", ns_);
  WatchRecorder seen;
  auto watch = admin_->StartWatch(coll, {.label_selector = "eph.dev/test=watch"}, seen.Callbacks());
  ASSERT_TRUE(seen.WaitForLine("RELIST "));  // the initial, empty list
  ASSERT_TRUE(admin_->Create(coll, ConfigMap(ns_, "w", {{"v", "1"}}, "watch")).ok());
  ASSERT_TRUE(seen.WaitForLine("ADDED w"));
  ASSERT_TRUE(admin_->ApplyObject(ConfigMap(ns_, "w", {{"v", "2"}}, "watch")).ok());
  ASSERT_TRUE(seen.WaitForLine("MODIFIED w"));
  ASSERT_TRUE(admin_->Delete(coll + "/w").ok());
  ASSERT_TRUE(seen.WaitForLine("DELETED w"));
  watch->Stop();
  EXPECT_TRUE(watch->status().ok()) << watch->status();
}

TEST_F(KubeBedTest, WatchRecoversWhenTheApiServerRestarts) {
  const std::string coll = fmt::format("/api/v1/namespaces/{}/configmaps", ns_);
  WatchRecorder seen;
  auto watch =
      admin_->StartWatch(coll, {.label_selector = "eph.dev/test=restart"}, seen.Callbacks());
  ASSERT_TRUE(seen.WaitForLine("RELIST "));
  ASSERT_TRUE(admin_->Create(coll, ConfigMap(ns_, "before", {{"v", "1"}}, "restart")).ok());
  ASSERT_TRUE(seen.WaitForLine("ADDED before"));

  const eph::testing::CommandResult restart = eph::testing::RunCommand(
      {eph::testing::SourceDir() + "/test/bed/kubernetes/restart-apiserver"},
      {{"EPH_TESTBED_DIR", TestbedDir()}}, 180s);
  ASSERT_EQ(restart.exit_code, 0) << restart.err;

  // Writes after the restart reach the watch: as events if it resumed, or in a relist if its
  // resourceVersion had expired meanwhile.
  ASSERT_TRUE(admin_->Create(coll, ConfigMap(ns_, "after", {{"v", "1"}}, "restart")).ok());
  ASSERT_TRUE(seen.WaitFor(
      [](const std::vector<std::string>& lines) {
        for (const auto& l : lines) {
          if (l == "ADDED after" ||
              (l.starts_with("RELIST ") && l.find("after") != std::string::npos)) {
            return true;
          }
        }
        return false;
      },
      60s))
      << ::testing::PrintToString(seen.lines());
  // And the watch is live again: later changes arrive as events.
  ASSERT_TRUE(admin_->ApplyObject(ConfigMap(ns_, "after", {{"v", "2"}}, "restart")).ok());
  ASSERT_TRUE(seen.WaitForLine("MODIFIED after", 60s)) << ::testing::PrintToString(seen.lines());
  EXPECT_GE(seen.reconnects(), 1);
  RecordProperty("seen", ::testing::PrintToString(seen.lines()));
  watch->Stop();
  EXPECT_TRUE(watch->status().ok()) << watch->status();
}

TEST_F(KubeBedTest, DeletedNamespaceGoesAway) {
  const std::string ns = ns_ + "-gone";
  ASSERT_TRUE(
      admin_
          ->Create("/api/v1/namespaces",
                   {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", ns}}}})
          .ok());
  ASSERT_TRUE(admin_
                  ->Create(fmt::format("/api/v1/namespaces/{}/configmaps", ns),
                           ConfigMap(ns, "content", {{"k", "v"}}))
                  .ok());
  WatchRecorder seen;
  auto watch = admin_->StartWatch("/api/v1/namespaces", {.field_selector = "metadata.name=" + ns},
                                  seen.Callbacks());
  ASSERT_TRUE(seen.WaitForLine("RELIST " + ns));
  ASSERT_TRUE(
      admin_->Delete("/api/v1/namespaces/" + ns, {.propagation_policy = "Foreground"}).ok());
  // The namespace controller empties it, then it disappears.
  ASSERT_TRUE(seen.WaitForLine("DELETED " + ns, 120s)) << ::testing::PrintToString(seen.lines());
  EXPECT_TRUE(absl::IsNotFound(admin_->Get("/api/v1/namespaces/" + ns).status()));
}

}  // namespace
}  // namespace eph::kube
