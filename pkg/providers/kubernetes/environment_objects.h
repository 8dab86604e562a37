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
//  - ConfigureIngress: the app's Ingress objects serve the environment's host; with none, Eph
//    makes one for the first Service.
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

// Adds `labels` to metadata.labels and to the pod templates of workloads (Deployment,
// StatefulSet, DaemonSet, ReplicaSet, ReplicationController, Job, CronJob). Existing values of
// the same keys are replaced: they are Eph's.
void AddEphLabels(nlohmann::json& object, const std::map<std::string, std::string>& labels);

// Sets every rule's host (and TLS hosts) of the app's Ingress objects to settings.host. Without
// an Ingress, appends one named "eph-<service>" for the first Service (in render order) that has
// a port: path "/" (Prefix) to its first port. TLS: annotation cert-manager.io/cluster-issuer
// (or cert-manager.io/issuer) and a `tls` entry with secret "<ingress>-tls".
void ConfigureIngress(std::vector<nlohmann::json>& objects, const IngressSettings& settings);

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
