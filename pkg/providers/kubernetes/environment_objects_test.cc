#include "pkg/providers/kubernetes/environment_objects.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace eph::providers::kubernetes {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

std::map<std::string, std::string> Labels() {
  return {{"eph.dev/managed-by", "eph"}, {"eph.dev/environment", "shop-42"}};
}

TEST(AddEphLabelsTest, LabelsTheObjectAndItsPodTemplate) {
  json d = json::parse(R"({"apiVersion":"apps/v1","kind":"Deployment",
    "metadata":{"name":"api","labels":{"app":"api","eph.dev/environment":"forged"}},
    "spec":{"selector":{"matchLabels":{"app":"api"}},
            "template":{"metadata":{"labels":{"app":"api"}},"spec":{"containers":[]}}}})");
  AddEphLabels(d, Labels());
  EXPECT_EQ(
      d["metadata"]["labels"],
      (json{{"app", "api"}, {"eph.dev/managed-by", "eph"}, {"eph.dev/environment", "shop-42"}}));
  EXPECT_EQ(d["spec"]["template"]["metadata"]["labels"]["eph.dev/environment"], "shop-42");
  EXPECT_EQ(d["spec"]["template"]["metadata"]["labels"]["app"], "api");
  // The selector is the app's: adding labels to the template keeps it matching.
  EXPECT_EQ(d["spec"]["selector"], (json{{"matchLabels", {{"app", "api"}}}}));
}

TEST(AddEphLabelsTest, CronJobsGetThemOnJobAndPodTemplates) {
  json c = json::parse(R"({"apiVersion":"batch/v1","kind":"CronJob","metadata":{"name":"n"},
    "spec":{"schedule":"* * * * *","jobTemplate":{"spec":{"template":{"spec":{}}}}}})");
  AddEphLabels(c, Labels());
  EXPECT_EQ(c["metadata"]["labels"]["eph.dev/managed-by"], "eph");
  EXPECT_EQ(c["spec"]["jobTemplate"]["metadata"]["labels"]["eph.dev/managed-by"], "eph");
  EXPECT_EQ(
      c["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"]["eph.dev/managed-by"],
      "eph");
  json cm = {{"apiVersion", "v1"}, {"kind", "ConfigMap"}, {"metadata", {{"name", "x"}}}};
  AddEphLabels(cm, Labels());
  EXPECT_FALSE(cm.contains("spec"));
}

json Service(const std::string& name, const json& ports) {
  return {{"apiVersion", "v1"},
          {"kind", "Service"},
          {"metadata", {{"name", name}}},
          {"spec", {{"ports", ports}}}};
}

TEST(EnvSecretTest, TheSecretHoldsTheValuesAndEveryContainerReferencesItOnce) {
  EXPECT_FALSE(BuildEnvSecret({}).has_value());
  std::optional<json> secret = BuildEnvSecret({{"DATABASE_URL", "postgres://u:p@h/db"}});
  ASSERT_TRUE(secret.has_value());
  EXPECT_EQ((*secret)["metadata"]["name"], kEnvSecretName);
  EXPECT_EQ((*secret)["stringData"]["DATABASE_URL"], "postgres://u:p@h/db");

  json d = json::parse(R"({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"api"},
    "spec":{"template":{"spec":{"initContainers":[{"name":"migrate"}],
      "containers":[{"name":"api","envFrom":[{"configMapRef":{"name":"settings"}}]},
                    {"name":"sidecar"}]}}}})");
  AddEnvFrom(d);
  AddEnvFrom(d);  // idempotent: a second apply adds nothing
  const json ref = {{"secretRef", {{"name", kEnvSecretName}}}};
  const json& pod = d["spec"]["template"]["spec"];
  EXPECT_EQ(pod["initContainers"][0]["envFrom"], json::array({ref}));
  EXPECT_EQ(pod["containers"][0]["envFrom"],
            json::array({{{"configMapRef", {{"name", "settings"}}}}, ref}));
  EXPECT_EQ(pod["containers"][1]["envFrom"], json::array({ref}));

  json cron = json::parse(R"({"kind":"CronJob","spec":{"jobTemplate":{"spec":{"template":
    {"spec":{"containers":[{"name":"job"}]}}}}}})");
  AddEnvFrom(cron);
  EXPECT_EQ(cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["envFrom"],
            json::array({ref}));
  json service = json::parse(R"({"kind":"Service","spec":{"ports":[{"port":80}]}})");
  const json before = service;
  AddEnvFrom(service);
  EXPECT_EQ(service, before);
}

TEST(PullSecretTest, TheSecretIsDockerConfigJsonAndEveryServiceAccountReferencesIt) {
  EXPECT_FALSE(BuildPullSecret("").has_value());
  std::optional<json> secret = BuildPullSecret(R"({"auths":{"r:5000":{"auth":"dTpw"}}})");
  ASSERT_TRUE(secret.has_value());
  EXPECT_EQ((*secret)["type"], "kubernetes.io/dockerconfigjson");
  EXPECT_EQ((*secret)["metadata"]["name"], "eph-registry");
  EXPECT_EQ((*secret)["stringData"][".dockerconfigjson"],
            R"({"auths":{"r:5000":{"auth":"dTpw"}}})");

  // The app's own ServiceAccount gets the reference (once, on a second pass too), and Eph adds
  // the namespace's default one.
  std::vector<json> objects = {
      json::parse(R"({"apiVersion":"v1","kind":"ServiceAccount","metadata":{"name":"app"},
                      "imagePullSecrets":[{"name":"theirs"}]})"),
      json::parse(R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"}})")};
  AddPullSecretToServiceAccounts(objects);
  AddPullSecretToServiceAccounts(objects);
  ASSERT_EQ(objects.size(), 3u);
  EXPECT_EQ(objects[0]["imagePullSecrets"],
            json::parse(R"([{"name":"theirs"},{"name":"eph-registry"}])"));
  EXPECT_FALSE(objects[1].contains("imagePullSecrets"));
  EXPECT_EQ(objects[2], json::parse(R"({"apiVersion":"v1","kind":"ServiceAccount",
      "metadata":{"name":"default"},"imagePullSecrets":[{"name":"eph-registry"}]})"));

  // An app that brings `default` itself keeps it, with the reference added: no second one.
  std::vector<json> with_default = {
      json::parse(R"({"apiVersion":"v1","kind":"ServiceAccount","metadata":{"name":"default"}})")};
  AddPullSecretToServiceAccounts(with_default);
  ASSERT_EQ(with_default.size(), 1u);
  EXPECT_EQ(with_default[0]["imagePullSecrets"], json::parse(R"([{"name":"eph-registry"}])"));
}

TEST(ConfigureIngressTest, TheAppsIngressServesTheEnvironmentsHost) {
  std::vector<json> objects = {json::parse(R"({"apiVersion":"networking.k8s.io/v1","kind":"Ingress",
    "metadata":{"name":"shop"},
    "spec":{"rules":[{"host":"shop.example.com","http":{"paths":[]}},{"http":{"paths":[]}}],
            "tls":[{"hosts":["shop.example.com"],"secretName":"shop-tls"}]}})")};
  ASSERT_TRUE(ConfigureIngress(objects, {.host = "shop-42.preview.acme.dev"}).ok());
  ASSERT_EQ(objects.size(), 1u);
  for (const json& rule : objects[0]["spec"]["rules"]) {
    EXPECT_EQ(rule["host"], "shop-42.preview.acme.dev");
  }
  EXPECT_EQ(objects[0]["spec"]["tls"][0]["hosts"], json::array({"shop-42.preview.acme.dev"}));
  EXPECT_EQ(objects[0]["spec"]["tls"][0]["secretName"], "shop-tls");
}

TEST(ConfigureIngressTest, WithoutOneEphMakesOneForTheFirstService) {
  std::vector<json> objects = {
      {{"apiVersion", "v1"}, {"kind", "ConfigMap"}, {"metadata", {{"name", "c"}}}},
      Service("headless", json::array()),
      Service("web", json::array({{{"name", "http"}, {"port", 80}}})),
      Service("api", json::array({{{"port", 8080}}}))};
  ASSERT_TRUE(ConfigureIngress(objects, {.host = "shop-42.preview.acme.dev",
                                         .ingress_class = "nginx",
                                         .tls_issuer = "letsencrypt"})
                  .ok());
  ASSERT_EQ(objects.size(), 5u);
  const json& ing = objects.back();
  EXPECT_EQ(ing["kind"], "Ingress");
  EXPECT_EQ(ing["metadata"]["name"], "eph-web");
  EXPECT_EQ(ing["metadata"]["annotations"]["cert-manager.io/cluster-issuer"], "letsencrypt");
  EXPECT_EQ(ing["spec"]["ingressClassName"], "nginx");
  const json& rule = ing["spec"]["rules"][0];
  EXPECT_EQ(rule["host"], "shop-42.preview.acme.dev");
  EXPECT_EQ(rule["http"]["paths"][0]["path"], "/");
  EXPECT_EQ(rule["http"]["paths"][0]["pathType"], "Prefix");
  EXPECT_EQ(rule["http"]["paths"][0]["backend"]["service"],
            (json{{"name", "web"}, {"port", {{"name", "http"}}}}));
  EXPECT_EQ(ing["spec"]["tls"][0],
            (json{{"hosts", {"shop-42.preview.acme.dev"}}, {"secretName", "eph-web-tls"}}));
}

TEST(ConfigureIngressTest, PortNumbersNoServicesAndNoHost) {
  std::vector<json> objects = {Service("api", json::array({{{"port", 8080}}}))};
  ASSERT_TRUE(
      ConfigureIngress(objects, {.host = "h.example", .tls_issuer = "ca", .tls_issuer_kind = "Issuer"})
          .ok());
  ASSERT_EQ(objects.size(), 2u);
  EXPECT_EQ(objects[1]["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["port"],
            (json{{"number", 8080}}));
  EXPECT_EQ(objects[1]["metadata"]["annotations"]["cert-manager.io/issuer"], "ca");
  EXPECT_FALSE(objects[1]["spec"].contains("ingressClassName"));

  std::vector<json> none = {{{"apiVersion", "v1"}, {"kind", "ConfigMap"}}};
  ASSERT_TRUE(ConfigureIngress(none, {.host = "h.example"}).ok());
  EXPECT_EQ(none.size(), 1u);

  std::vector<json> no_host = {Service("api", json::array({{{"port", 8080}}}))};
  ASSERT_TRUE(ConfigureIngress(no_host, {}).ok());
  EXPECT_EQ(no_host.size(), 1u);
}

// The microservices demo's order: adservice (gRPC) renders before frontend.
std::vector<json> DemoServices() {
  return {Service("adservice", json::array({{{"name", "grpc"}, {"port", 9555}}})),
          Service("cartservice", json::array({{{"name", "grpc"}, {"port", 7070}}})),
          Service("docs", json::array({{{"port", 8080}}})),
          Service("frontend", json::array({{{"name", "http"}, {"port", 80}}})),
          Service("shop", json::array({{{"name", "metrics"}, {"port", 9090}},
                                       {{"name", "http-main"}, {"port", 8000}}}))};
}

std::string Chosen(const std::vector<json>& objects, const IngressSettings& settings) {
  absl::StatusOr<std::optional<EntryService>> entry = ChooseEntryService(objects, settings);
  if (!entry.ok()) return "error: " + std::string(entry.status().message());
  if (!entry->has_value()) return "none";
  return (*entry)->service + " " + (*entry)->port.dump() + " (" + (*entry)->why + ")";
}

TEST(ChooseEntryServiceTest, TheProjectsNameThenWebThenFrontendThenAnHttpPortThenTheFirst) {
  std::vector<json> demo = DemoServices();
  // Named like the project: its HTTP-looking port, not its first.
  EXPECT_EQ(Chosen(demo, {.project_names = {"shop"}}),
            R"(shop {"name":"http-main"} (named like the project))");
  EXPECT_EQ(Chosen(demo, {.project_names = {"boutique"}}),
            R"(frontend {"name":"http"} (named frontend))");
  demo.erase(demo.begin() + 3);  // no frontend: the first with an HTTP port
  EXPECT_EQ(Chosen(demo, {}), R"(docs {"number":8080} (the first Service with an HTTP port))");
  demo.erase(demo.begin() + 2, demo.end());  // gRPC only: the first
  EXPECT_EQ(Chosen(demo, {}), R"(adservice {"name":"grpc"} (the first Service))");
  EXPECT_EQ(Chosen({Service("headless", json::array())}, {}), "none");
}

TEST(ChooseEntryServiceTest, KubernetesWebWinsAndMustExist) {
  const std::vector<json> demo = DemoServices();
  EXPECT_EQ(Chosen(demo, {.web_service = "adservice", .web_port = 9555}),
            R"(adservice {"number":9555} (kubernetes.web))");
  EXPECT_EQ(Chosen(demo, {.web_service = "frontend", .web_port = 8080}),
            "error: eph.yaml kubernetes.web: Service frontend has no port 8080 (its ports: 80)");
  EXPECT_EQ(Chosen(demo, {.web_service = "front", .web_port = 80}),
            "error: eph.yaml kubernetes.web: the manifests have no Service named front with a "
            "port (Services: adservice, cartservice, docs, frontend, shop)");
  // A wrong setting is an error even where no Ingress is made (no host, or the app's own).
  std::vector<json> objects = demo;
  EXPECT_TRUE(absl::IsInvalidArgument(
      ConfigureIngress(objects, {.web_service = "front", .web_port = 80})));
  objects = demo;
  ASSERT_TRUE(
      ConfigureIngress(objects, {.host = "h.example", .web_service = "docs", .web_port = 8080})
          .ok());
  ASSERT_EQ(objects.size(), demo.size() + 1);
  EXPECT_EQ(objects.back()["metadata"]["name"], "eph-docs");
  EXPECT_EQ(objects.back()["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"],
            (json{{"name", "docs"}, {"port", {{"number", 8080}}}}));
}

TEST(QuotaEnforcedTest, OnlyOnceTheControllerHasCountedEveryLimit) {
  json quota = json::parse(R"({"kind":"ResourceQuota","metadata":{"name":"eph-quota"},
      "spec":{"hard":{"pods":"50","services.loadbalancers":"0"}}})");
  EXPECT_FALSE(QuotaEnforced(quota));  // just made: no status
  quota["status"] = json::parse(R"({"hard":{"pods":"50","services.loadbalancers":"0"},
      "used":{"pods":"0"}})");
  EXPECT_FALSE(QuotaEnforced(quota));  // one limit not counted yet
  quota["status"]["used"]["services.loadbalancers"] = "0";
  EXPECT_TRUE(QuotaEnforced(quota));
  quota["spec"]["hard"]["pods"] = "10";  // changed: admission still enforces the old limit
  EXPECT_FALSE(QuotaEnforced(quota));
  EXPECT_TRUE(QuotaEnforced(json::parse(R"({"kind":"ResourceQuota","spec":{}})")));
}

TEST(NamespaceObjectsTest, QuotaLimitsAndIsolation) {
  NamespaceSettings s;
  s.quota = {{"pods", "50"}, {"requests.cpu", "8"}};
  s.default_limits = {{"cpu", "500m"}};
  s.default_requests = {{"cpu", "50m"}, {"memory", "64Mi"}};
  s.ingress_namespace_labels = {{"kubernetes.io/metadata.name", "ingress-nginx"}};
  std::optional<json> quota = BuildResourceQuota(s);
  ASSERT_TRUE(quota);
  EXPECT_EQ((*quota)["spec"]["hard"], (json{{"pods", "50"}, {"requests.cpu", "8"}}));
  std::optional<json> limits = BuildLimitRange(s);
  ASSERT_TRUE(limits);
  EXPECT_EQ((*limits)["spec"]["limits"][0]["default"], (json{{"cpu", "500m"}}));
  EXPECT_EQ((*limits)["spec"]["limits"][0]["defaultRequest"]["memory"], "64Mi");
  std::optional<json> policy = BuildNetworkPolicy(s);
  ASSERT_TRUE(policy);
  EXPECT_EQ((*policy)["spec"]["podSelector"], json::object());
  EXPECT_EQ((*policy)["spec"]["policyTypes"], json::array({"Ingress"}));
  const json& from = (*policy)["spec"]["ingress"][0]["from"];
  ASSERT_EQ(from.size(), 2u);
  EXPECT_EQ(from[0], (json{{"podSelector", json::object()}}));  // same namespace only
  EXPECT_EQ(from[1]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"],
            "ingress-nginx");

  EXPECT_FALSE(BuildResourceQuota(NamespaceSettings{}));
  EXPECT_FALSE(BuildLimitRange(NamespaceSettings{}));
  NamespaceSettings off;
  off.network_policy = false;
  EXPECT_FALSE(BuildNetworkPolicy(off));

  json ns = BuildNamespace("eph-shop-42", Labels(), {{kAppliedKindsAnnotation, "v1/Service"}});
  EXPECT_EQ(ns["metadata"]["labels"]["eph.dev/environment"], "shop-42");
  EXPECT_EQ(ns["metadata"]["annotations"]["eph.dev/applied-kinds"], "v1/Service");
}

TEST(ParseKeyValueListTest, ParsesAndRejects) {
  absl::StatusOr<std::map<std::string, std::string>> m =
      ParseKeyValueList(" pods=50, requests.cpu = 8 ,", "resource_quota");
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(*m, (std::map<std::string, std::string>{{"pods", "50"}, {"requests.cpu", "8"}}));
  EXPECT_TRUE(ParseKeyValueList("none", "x")->empty());
  EXPECT_TRUE(ParseKeyValueList("", "x")->empty());
  absl::StatusOr<std::map<std::string, std::string>> bad =
      ParseKeyValueList("pods", "resource_quota");
  ASSERT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("resource_quota"));
}

TEST(ObjectIdTest, Formats) {
  json d = {{"apiVersion", "apps/v1"}, {"kind", "Deployment"}, {"metadata", {{"name", "web"}}}};
  EXPECT_EQ(ObjectId(d), "apps/v1/Deployment web");
  EXPECT_EQ(KindKey(d), "apps/v1/Deployment");
}

}  // namespace
}  // namespace eph::providers::kubernetes
