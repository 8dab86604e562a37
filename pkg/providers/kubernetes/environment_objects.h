// The objects Eph adds around an application in its namespace, and the changes it makes to the
// application's own objects: pure functions over JSON, so they are unit-tested without a cluster.
//
//  - BuildNamespace: the namespace with the Eph labels (and the request's labels).
//  - BuildResourceQuota / BuildLimitRange: defaults from the provider settings, so one preview
//    cannot take the cluster, and pods without resource requests still fit the quota.
//  - BuildNetworkPolicy: ingress only from the same namespace and from the ingress controller's
//    namespace; other environments cannot reach this one.
//  - AddEphLabels: the labels on the object and on its pod templates (so pods carry them too).
//  - BuildPullSecret / AddPullSecretToServiceAccounts: registry credentials for the namespace's
//    pods, referenced from its ServiceAccounts.
//  - ChooseEntryService / ConfigureIngress: the app's Ingress objects serve the environment's
//    host; with none, Eph makes one for the entry service (kubernetes.web, else chosen).
//
// Thread-safety: pure functions.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace eph::providers::kubernetes {

// The namespace annotations Eph keeps its bookkeeping in.
inline constexpr char kAppliedKindsAnnotation[] = "eph.dev/applied-kinds";
inline constexpr char kAppliedShaAnnotation[] = "eph.dev/applied-sha";

// "k=v,k2=v2" -> map. InvalidArgument naming `setting` on a malformed entry. "" -> empty map.
[[nodiscard]] absl::StatusOr<std::map<std::string, std::string>> ParseKeyValueList(
    const std::string& text, const std::string& setting);

struct IngressSettings {
  std::string host;           // the environment's host; empty: leave hosts alone, make no Ingress
  std::string ingress_class;  // spec.ingressClassName of the Ingress Eph makes; empty: default
  std::string tls_issuer;     // cert-manager issuer; empty: no TLS
  std::string tls_issuer_kind = "ClusterIssuer";  // or "Issuer"
  // eph.yaml's kubernetes.web: the Service and port Eph's Ingress points at. Empty: chosen.
  std::string web_service;
  int web_port = 0;
  // Names a default entry service may have before `web` and `frontend`: the project's (eph.yaml
  // `name`) and the repository's.
  std::vector<std::string> project_names;
};

struct NamespaceSettings {
  // Hard limits of the ResourceQuota "eph-quota" (empty: no quota).
  std::map<std::string, std::string> quota;
  // Container defaults of the LimitRange "eph-limits" (both empty: no LimitRange).
  std::map<std::string, std::string> default_limits;
  std::map<std::string, std::string> default_requests;
  // matchLabels of the namespace the ingress controller runs in (empty: no such peer).
  std::map<std::string, std::string> ingress_namespace_labels;
  bool network_policy = true;
};

nlohmann::json BuildNamespace(const std::string& name,
                              const std::map<std::string, std::string>& labels,
                              const std::map<std::string, std::string>& annotations);
// nullopt when the settings turn it off.
std::optional<nlohmann::json> BuildResourceQuota(const NamespaceSettings& settings);
std::optional<nlohmann::json> BuildLimitRange(const NamespaceSettings& settings);
std::optional<nlohmann::json> BuildNetworkPolicy(const NamespaceSettings& settings);

// A fork's environment (ApplyRequest::restricted), docs/security.md:
//  - NamespaceLabels: `labels` plus Pod Security Admission's enforce/warn/audit = restricted, so
//    the API server refuses privileged, host-namespace or root pods in it;
//  - BuildRestrictedEgressPolicy: the NetworkPolicy "eph-restricted-egress", which lets the
//    namespace's pods reach nothing but DNS (UDP and TCP 53). nullopt unless restricted.
std::map<std::string, std::string> NamespaceLabels(std::map<std::string, std::string> labels,
                                                   bool restricted);
std::optional<nlohmann::json> BuildRestrictedEgressPolicy(bool restricted);

// Whether admission enforces a ResourceQuota as the API returned it: the API server checks a
// request only against the limits in the quota's status, which the quota controller fills in
// after the quota is made or changed; until then a Service or pod gets past it (the race that
// let LoadBalancer Services through). True when every limit of spec.hard is in status.hard with
// the same value and counted in status.used.
bool QuotaEnforced(const nlohmann::json& quota);

// Adds `labels` to metadata.labels and to the pod templates of workloads (Deployment,
// StatefulSet, DaemonSet, ReplicaSet, ReplicationController, Job, CronJob). Existing values of
// the same keys are replaced: they are Eph's.
void AddEphLabels(nlohmann::json& object, const std::map<std::string, std::string>& labels);

// The Service Eph's Ingress points at, and why it was chosen.
struct EntryService {
  std::string service;
  nlohmann::json port;  // the Ingress backend's port: {"name": "http"} or {"number": 80}
  std::string why;      // "kubernetes.web", "named like the project", ...
};

// kubernetes.web when set: InvalidArgument when the render has no such v1 Service, or the
// Service no such `port`. Otherwise, among the Services with a port, in render order: one named
// like the project (settings.project_names), `web` or `frontend` (in that order); else the first
// with an HTTP-looking port (named http, https, web or http-*; or 80, 443, 3000, 4200, 5000, 8000,
// 8008, 8080, 8081, 8443, 8888); else the first. The port: the HTTP-looking one if the Service
// has one, else its first. nullopt when no Service has a port.
[[nodiscard]] absl::StatusOr<std::optional<EntryService>> ChooseEntryService(
    const std::vector<nlohmann::json>& objects, const IngressSettings& settings);

// Sets every rule's host (and TLS hosts) of the app's Ingress objects to settings.host. Without
// an Ingress, appends one named "eph-<service>" for the entry service (ChooseEntryService): path
// "/" (Prefix) to its port. TLS: annotation cert-manager.io/cluster-issuer (or
// cert-manager.io/issuer) and a `tls` entry with secret "<ingress>-tls". ChooseEntryService's
// error when kubernetes.web names what the render does not have (also when the app brings its
// own Ingress: the setting is wrong either way).
[[nodiscard]] absl::Status ConfigureIngress(std::vector<nlohmann::json>& objects,
                                            const IngressSettings& settings);

// The Secret with what Eph gives the app as environment variables (ApplyRequest::secret_env:
// the database's DATABASE_URL and PG* settings, eph.yaml's variables and secrets); nullopt when
// there is nothing to give.
inline constexpr char kEnvSecretName[] = "eph-env";
std::optional<nlohmann::json> BuildEnvSecret(const std::map<std::string, std::string>& values);
// Adds `envFrom: [{secretRef: {name: eph-env}}]` to every container and init container of a
// workload's pod template (or a bare Pod), unless it is there already.
void AddEnvFrom(nlohmann::json& object);

// Pulling the environment's images from private registries: the Secret "eph-registry" of type
// kubernetes.io/dockerconfigjson with every registry of ephd's registry_auth_file (all of them,
// not only those the manifests name: an image can come from a chart's defaults, an init
// container or an operator's pods, and a manifest could name any registry to get its entry
// anyway); nullopt when no credentials are configured.
inline constexpr char kPullSecretName[] = "eph-registry";
std::optional<nlohmann::json> BuildPullSecret(const std::string& docker_config_json);
// References the pull secret from every ServiceAccount among `objects` (the app's own) and from
// the namespace's `default` ServiceAccount (added to `objects` unless the app brings one), so
// every pod of the namespace pulls with it without its manifest saying so.
void AddPullSecretToServiceAccounts(std::vector<nlohmann::json>& objects);

// "apps/v1/Deployment web": how objects are named in messages and compared for pruning.
std::string ObjectId(const nlohmann::json& object);
// "apps/v1/Deployment"
std::string KindKey(const nlohmann::json& object);

}  // namespace eph::providers::kubernetes
