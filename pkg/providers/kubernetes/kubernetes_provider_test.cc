// KubernetesProvider without a cluster: its settings, its registration, and Logs against
// pkg/kube's scripted HTTP server (the test bed's kwok pods have no containers, hence no logs).
#include "pkg/providers/kubernetes/kubernetes_provider.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <mutex>

#include "pkg/kube/api_errors.h"
#include "pkg/kube/scripted_http_server.h"

namespace eph::providers::kubernetes {
namespace {

using namespace std::chrono_literals;
using kube::testing::ScriptedExchange;
using kube::testing::ScriptedHttpServer;
using nlohmann::json;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

std::string Msg(const absl::Status& s) { return kube::MessageOf(s); }

TEST(DescribeApplyErrorTest, AdmissionDenialsFailTheEnvironmentRbacAndUncountedQuotasDoNot) {
  const absl::Status quota = DescribeApplyError(
      absl::PermissionDeniedError(
          "PATCH /api/v1/namespaces/eph-x/services/lb?fieldManager=eph: services \"lb\" is "
          "forbidden: exceeded quota: eph-quota, requested: services.loadbalancers=1, used: "
          "services.loadbalancers=0, limited: services.loadbalancers=0"),
      "v1/Service lb");
  EXPECT_EQ(quota.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(quota.message(), HasSubstr("Service lb: services \"lb\" is forbidden: exceeded "
                                         "quota: eph-quota"));
  EXPECT_THAT(quota.message(), HasSubstr("use type ClusterIP"));

  const absl::Status limit = DescribeApplyError(
      absl::PermissionDeniedError("pods \"p\" is forbidden: maximum cpu usage per Container is "
                                  "2, but limit is 4"),
      "v1/Pod p");
  EXPECT_EQ(limit.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(limit.message(), Not(HasSubstr("ClusterIP")));

  const absl::Status rbac = DescribeApplyError(
      absl::PermissionDeniedError("services \"web\" is forbidden: User "
                                  "\"system:serviceaccount:eph:ephd\" cannot patch resource "
                                  "\"services\" in API group \"\" in the namespace \"eph-x\""),
      "v1/Service web");
  EXPECT_EQ(rbac.code(), absl::StatusCode::kPermissionDenied);

  const absl::Status uncounted = DescribeApplyError(
      absl::PermissionDeniedError("services \"web\" is forbidden: status unknown for quota: "
                                  "eph-quota, resources: services.loadbalancers"),
      "v1/Service web");
  EXPECT_EQ(uncounted.code(), absl::StatusCode::kUnavailable);
}

TEST(ParseProviderSettingsTest, DefaultsAndOverrides) {
  absl::StatusOr<KubernetesProviderOptions> d = ParseProviderSettings({});
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->namespace_settings.quota.at("pods"), "50");
  EXPECT_EQ(d->namespace_settings.default_requests.at("cpu"), "50m");
  EXPECT_EQ(d->render.timeout, 60s);
  EXPECT_EQ(d->render.max_output_bytes, 20u << 20);
  EXPECT_TRUE(d->watch);

  absl::StatusOr<KubernetesProviderOptions> o =
      ParseProviderSettings({{{"kubeconfig", "/etc/eph/kube"},
                              {"base_domain", "preview.acme.dev"},
                              {"render_timeout", "90s"},
                              {"render_max_bytes", "5MiB"},
                              {"resource_quota", "pods=10"},
                              {"limit_range_default", "none"},
                              {"limit_range_default_request", "cpu=10m"},
                              {"network_policy", "false"},
                              {"ingress_namespace_selector", "team=edge"},
                              {"ingress_class", "nginx"},
                              {"tls_issuer", "letsencrypt"},
                              {"tls_issuer_kind", "Issuer"},
                              {"apply_concurrency", "4"},
                              {"watch", "false"},
                              {"log_tail_lines", "50"}}});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->render.timeout, 90s);
  EXPECT_EQ(o->render.max_output_bytes, 5u << 20);
  EXPECT_EQ(o->namespace_settings.quota, (std::map<std::string, std::string>{{"pods", "10"}}));
  EXPECT_TRUE(o->namespace_settings.default_limits.empty());
  EXPECT_FALSE(o->namespace_settings.network_policy);
  EXPECT_EQ(o->namespace_settings.ingress_namespace_labels.at("team"), "edge");
  EXPECT_EQ(o->ingress.tls_issuer_kind, "Issuer");
  EXPECT_EQ(o->applier.concurrency, 4);
  EXPECT_FALSE(o->watch);
  EXPECT_EQ(o->log_tail_lines, 50);
  EXPECT_EQ(o->base_domain, "preview.acme.dev");
}

TEST(ParseProviderSettingsTest, MistakesNameTheSetting) {
  for (const auto& [key, value] :
       std::vector<std::pair<std::string, std::string>>{{"render_timeout", "soon"},
                                                        {"render_max_bytes", "big"},
                                                        {"apply_concurrency", "0"},
                                                        {"watch", "maybe"},
                                                        {"tls_issuer_kind", "Cluster"},
                                                        {"resource_quota", "pods"},
                                                        {"kustomise_path", "/x"}}) {
    absl::StatusOr<KubernetesProviderOptions> o = ParseProviderSettings({{{key, value}}});
    ASSERT_EQ(o.status().code(), absl::StatusCode::kInvalidArgument) << key;
    EXPECT_THAT(Msg(o.status()), HasSubstr(key));
  }
}

TEST(RegisterKubernetesProviderTest, RegistersTheFactoryUnderItsName) {
  ProviderRegistry registry;
  ASSERT_TRUE(RegisterKubernetesProvider(registry).ok());
  EXPECT_THAT(registry.AvailableNames(), ElementsAre("kubernetes"));
  // A kubeconfig that does not exist: the factory's error comes back, nothing is enabled.
  absl::Status st = registry.Enable("kubernetes", {{{"kubeconfig", "/nonexistent/kubeconfig"}}});
  EXPECT_FALSE(st.ok());
  EXPECT_THAT(Msg(st), HasSubstr("/nonexistent/kubeconfig"));
  EXPECT_TRUE(registry.EnabledNames().empty());
}

// ---- Logs ---------------------------------------------------------------------------------------

std::string NotFoundBody(const std::string& what) {
  return json{{"kind", "Status"},     {"apiVersion", "v1"},
              {"status", "Failure"},  {"message", what + " not found"},
              {"reason", "NotFound"}, {"code", 404}}
      .dump();
}

json Pod(const std::string& name, const std::string& rs, const std::string& hash,
         const std::vector<std::string>& containers) {
  json c = json::array();
  for (const std::string& n : containers) c.push_back({{"name", n}, {"image", "x"}});
  return {{"apiVersion", "v1"},
          {"kind", "Pod"},
          {"metadata",
           {{"name", name},
            {"namespace", "eph-shop-42"},
            {"labels", {{"pod-template-hash", hash}}},
            {"ownerReferences",
             json::array({{{"kind", "ReplicaSet"}, {"name", rs}, {"controller", true}}})}}},
          {"spec", {{"containers", c}}}};
}

json PodList(const std::vector<json>& pods) {
  return {{"apiVersion", "v1"},
          {"kind", "PodList"},
          {"metadata", {{"resourceVersion", "7"}}},
          {"items", pods}};
}

std::unique_ptr<KubernetesProvider> ScriptedProvider(const std::string& url,
                                                     std::chrono::milliseconds quota_wait = 30s) {
  kube::KubeConfig config;
  config.server = url;
  config.credentials =
      std::make_shared<kube::StaticCredentialSource>(kube::Credentials{.bearer_token = "t"});
  kube::KubeClientOptions options;
  options.max_attempts = 1;
  options.request_timeout = 10s;
  auto client = std::make_shared<kube::KubeClient>(std::move(config), options);
  KubernetesProviderOptions po = DefaultProviderOptions();
  po.watch = false;
  po.quota_wait = quota_wait;
  return std::make_unique<KubernetesProvider>(std::move(client), po);
}

json QuotaList(bool counted) {
  json quota = {{"metadata", {{"name", "eph-quota"}}},
                {"spec", {{"hard", {{"services.loadbalancers", "0"}}}}}};
  if (counted) {
    quota["status"] = {{"hard", {{"services.loadbalancers", "0"}}},
                       {"used", {{"services.loadbalancers", "0"}}}};
  }
  return {{"kind", "ResourceQuotaList"},
          {"metadata", {{"resourceVersion", "3"}}},
          {"items", json::array({quota})}};
}

TEST(WaitForQuotasTest, WaitsUntilTheQuotaControllerHasCountedTheQuota) {
  std::atomic<int> lists{0};
  ScriptedHttpServer server([&](ScriptedExchange& ex) {
    if (ex.request().path != "/api/v1/namespaces/eph-x/resourcequotas") {
      ex.Respond(404, "{}");
      return;
    }
    ex.Respond(200, QuotaList(/*counted=*/++lists >= 3).dump());
  });
  EXPECT_TRUE(ScriptedProvider(server.url())->WaitForQuotas("eph-x").ok());
  EXPECT_EQ(lists.load(), 3);
}

TEST(WaitForQuotasTest, AQuotaNeverCountedIsUnavailableNamingIt) {
  ScriptedHttpServer server(
      [](ScriptedExchange& ex) { ex.Respond(200, QuotaList(/*counted=*/false).dump()); });
  const absl::Status st = ScriptedProvider(server.url(), 300ms)->WaitForQuotas("eph-x");
  EXPECT_EQ(st.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(st.message(), HasSubstr("ResourceQuota eph-quota in namespace eph-x is not in force"));
}

class LogsTest : public ::testing::Test {
 protected:
  std::unique_ptr<KubernetesProvider> MakeProvider(const std::string& url) {
    kube::KubeConfig config;
    config.server = url;
    config.credentials =
        std::make_shared<kube::StaticCredentialSource>(kube::Credentials{.bearer_token = "t"});
    kube::KubeClientOptions options;
    options.max_attempts = 1;
    options.request_timeout = 10s;
    auto client = std::make_shared<kube::KubeClient>(std::move(config), options);
    KubernetesProviderOptions po = DefaultProviderOptions();
    po.watch = false;
    return std::make_unique<KubernetesProvider>(std::move(client), po);
  }

  // Collects lines; stops after `stop_after` lines if > 0.
  LogSink Sink(int stop_after = 0) {
    return [this, stop_after](const LogLine& line) {
      std::lock_guard<std::mutex> lock(mu_);
      lines_.push_back(line);
      return stop_after == 0 || static_cast<int>(lines_.size()) < stop_after;
    };
  }
  std::vector<LogLine> Lines() {
    std::lock_guard<std::mutex> lock(mu_);
    return lines_;
  }

  std::mutex mu_;
  std::vector<LogLine> lines_;
};

TEST_F(LogsTest, StreamsTheComponentsPodsSplitIntoTimestampedLines) {
  ScriptedHttpServer server([](ScriptedExchange& ex) {
    const auto& r = ex.request();
    if (r.path == "/apis/apps/v1/namespaces/eph-shop-42/deployments/api") {
      ex.Respond(
          200,
          json{{"apiVersion", "apps/v1"},
               {"kind", "Deployment"},
               {"metadata", {{"name", "api"}}},
               {"spec",
                {{"selector",
                  {{"matchLabels", {{"app", "api"}}},
                   {"matchExpressions",
                    json::array(
                        {{{"key", "tier"}, {"operator", "In"}, {"values", {"web", "edge"}}}})}}}}}}
              .dump());
    } else if (r.path == "/api/v1/namespaces/eph-shop-42/pods") {
      if (r.query.count("labelSelector") == 0 ||
          r.query.at("labelSelector") != "app=api,tier in (web,edge)") {
        ex.Respond(400, "{}");
        return;
      }
      ex.Respond(200, PodList({Pod("api-5d4-a", "api-5d4", "5d4", {"api"})}).dump());
    } else if (r.path == "/api/v1/namespaces/eph-shop-42/pods/api-5d4-a/log") {
      ex.BeginStream(200, "text/plain");
      // Chunks split anywhere, lines included.
      ex.Send("2026-03-02T10:00:00.250000000Z listening on :80");
      ex.Send("80\n2026-03-02T10:00:01Z GET /healthz 200\r\n2026-03-02T10:00:");
      ex.Send("02Z last line without newline");
      ex.End();
    } else {
      ex.Respond(404, NotFoundBody(r.path));
    }
  });
  auto provider = MakeProvider(server.url());
  absl::Status st = provider->Logs(
      {.environment = "shop-42", .namespace_name = "eph-shop-42", .component = "api"}, Sink());
  ASSERT_TRUE(st.ok()) << st;
  const std::vector<LogLine> lines = Lines();
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0].text, "listening on :8080");
  EXPECT_EQ(lines[0].component, "api");
  EXPECT_EQ(FormatRfc3339(lines[0].at), "2026-03-02T10:00:00.250Z");
  EXPECT_EQ(lines[1].text, "GET /healthz 200");
  EXPECT_EQ(lines[2].text, "last line without newline");
  // What went on the wire.
  bool saw_log = false;
  for (const auto& r : server.requests()) {
    if (r.path.ends_with("/log")) {
      saw_log = true;
      EXPECT_EQ(r.query.at("container"), "api");
      EXPECT_EQ(r.query.at("timestamps"), "true");
      EXPECT_EQ(r.query.at("tailLines"), "200");
      EXPECT_EQ(r.query.count("follow"), 0u);
    }
  }
  EXPECT_TRUE(saw_log);
}

TEST_F(LogsTest, AllComponentsEveryPodAndContainer) {
  ScriptedHttpServer server([](ScriptedExchange& ex) {
    const auto& r = ex.request();
    if (r.path == "/api/v1/namespaces/eph-shop-42/pods") {
      EXPECT_EQ(r.query.at("labelSelector"), "eph.dev/managed-by=eph,eph.dev/environment=shop-42");
      ex.Respond(200, PodList({Pod("api-5d4-a", "api-5d4", "5d4", {"api", "proxy"}),
                               Pod("cart-9f8-b", "cart-9f8", "9f8", {"cart"})})
                          .dump());
    } else if (r.path.ends_with("/log")) {
      ex.BeginStream(200, "text/plain");
      ex.Send("2026-03-02T10:00:00Z from " + r.query.at("container") + "\n");
      ex.End();
    } else {
      ex.Respond(404, NotFoundBody(r.path));
    }
  });
  auto provider = MakeProvider(server.url());
  ASSERT_TRUE(
      provider
          ->Logs({.environment = "shop-42", .namespace_name = "eph-shop-42", .tail_lines = 5},
                 Sink())
          .ok());
  std::vector<std::string> got;
  for (const LogLine& l : Lines()) got.push_back(l.component + ": " + l.text);
  std::sort(got.begin(), got.end());
  EXPECT_THAT(got, ElementsAre("api: from api", "api: from proxy", "cart: from cart"));
}

TEST_F(LogsTest, FollowStopsPromptlyWhenTheSinkIsDone) {
  std::promise<bool> client_closed;
  std::future<bool> closed = client_closed.get_future();
  ScriptedHttpServer server([&](ScriptedExchange& ex) {
    const auto& r = ex.request();
    if (r.path == "/apis/apps/v1/namespaces/eph-shop-42/deployments/api") {
      ex.Respond(200, json{{"spec", {{"selector", {{"matchLabels", {{"app", "api"}}}}}}}}.dump());
    } else if (r.path == "/api/v1/namespaces/eph-shop-42/pods") {
      ex.Respond(200, PodList({Pod("api-5d4-a", "api-5d4", "5d4", {"api"})}).dump());
    } else if (r.path.ends_with("/log")) {
      EXPECT_EQ(r.query.at("follow"), "true");
      ex.BeginStream(200, "text/plain");
      for (int i = 0; i < 3; ++i) ex.Send("2026-03-02T10:00:00Z line " + std::to_string(i) + "\n");
      // A followed stream stays open until the client goes away.
      client_closed.set_value(ex.WaitForClientClose(20s));
    } else {
      ex.Respond(404, NotFoundBody(r.path));
    }
  });
  auto provider = MakeProvider(server.url());
  const auto start = std::chrono::steady_clock::now();
  absl::Status st = provider->Logs({.environment = "shop-42",
                                    .namespace_name = "eph-shop-42",
                                    .component = "api",
                                    .follow = true},
                                   Sink(/*stop_after=*/2));
  EXPECT_TRUE(st.ok()) << st;
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  EXPECT_EQ(Lines().size(), 2u);
  ASSERT_EQ(closed.wait_for(10s), std::future_status::ready);
  EXPECT_TRUE(closed.get());
}

TEST_F(LogsTest, AnUnknownComponentIsNotFound) {
  ScriptedHttpServer server(
      [](ScriptedExchange& ex) { ex.Respond(404, NotFoundBody(ex.request().path)); });
  auto provider = MakeProvider(server.url());
  absl::Status st = provider->Logs(
      {.environment = "shop-42", .namespace_name = "eph-shop-42", .component = "nope"}, Sink());
  ASSERT_EQ(st.code(), absl::StatusCode::kNotFound) << st;
  EXPECT_THAT(Msg(st), HasSubstr("environment shop-42 has no component 'nope'"));
  EXPECT_EQ(
      provider
          ->Logs({.environment = "shop-42", .namespace_name = "eph-shop-42", .component = "../x"},
                 Sink())
          .code(),
      absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace eph::providers::kubernetes
