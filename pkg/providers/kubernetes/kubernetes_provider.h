// KubernetesProvider: an environment is a namespace in a real cluster.
//
//   Apply     render (manifest_renderer.h) -> check every object (kube_applier.h) -> namespace
//             eph-<name> with the Eph labels -> ResourceQuota and LimitRange, waiting until the
//             quota controller has counted the quota (so admission enforces it) -> an isolating
//             NetworkPolicy and (with registry credentials) the pull Secret eph-registry,
//             referenced from every ServiceAccount -> server-side apply of every object
//             (fieldManager eph) -> the Ingress on the environment's host -> prune what a later
//             render dropped. Errors in the manifests (unknown kind, invalid field, cluster-scoped
//             object, other namespace, a render too large) are InvalidArgument with the API's or
//             the renderer's message; on the first apply nothing is left behind (the namespace is
//             deleted), on an update the running version stays.
//   Observe   from a watch-fed cache of Deployments, ReplicaSets, StatefulSets, DaemonSets, Jobs,
//             Pods and Namespaces (readiness_cache.h), evaluated by workload_status.h; a direct
//             read when the cache is not synced or has not caught up with the last Apply.
//   Destroy   deletes the namespace (propagation Background); done once it is gone.
//   Logs      streams the pods of a component (Deployment, StatefulSet, DaemonSet or Job name).
//   ListOwned namespaces labelled eph.dev/managed-by=eph, with their environment label.
//
// Bookkeeping lives on the namespace: annotation eph.dev/applied-kinds lists every kind Eph
// applied there (what Prune lists), eph.dev/applied-sha the commit of the last complete apply
// (without it, an apply counts as the first one).
//
// Eph never changes or deletes a namespace without eph.dev/managed-by=eph and the environment's
// own eph.dev/environment label: such a namespace is FailedPrecondition.
//
// Settings (ProviderSettings::values; docs/provider-kubernetes.md has the full table):
//   kubeconfig, context, kustomize_path, helm_path, render_timeout, render_max_bytes,
//   render_temp_dir, resource_quota, limit_range_default, limit_range_default_request,
//   network_policy, ingress_namespace_selector, ingress_class, tls_issuer, tls_issuer_kind,
//   apply_concurrency, watch, log_tail_lines, base_domain, registry_auth_file.
//
// Thread-safety: every method may be called from many threads at once (the reconciler never
// runs two calls for one environment at the same time).
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "pkg/kube/kube_client.h"
#include "pkg/providers/kubernetes/environment_objects.h"
#include "pkg/providers/kubernetes/kube_applier.h"
#include "pkg/providers/kubernetes/manifest_renderer.h"
#include "pkg/providers/kubernetes/readiness_cache.h"
#include "pkg/providers/provider.h"
#include "pkg/providers/registry_auth.h"

namespace eph::providers::kubernetes {

inline constexpr char kProviderName[] = "kubernetes";

struct KubernetesProviderOptions {
  RendererOptions render;
  NamespaceSettings namespace_settings;
  IngressSettings ingress;  // `host` comes from each ApplyRequest
  ApplierOptions applier;
  bool watch = true;             // false: Observe always reads the API (tests, tools)
  // How long Apply waits for the cluster's quota controller to count the namespace's
  // ResourceQuotas before it applies anything they limit (then Unavailable: retried).
  std::chrono::milliseconds quota_wait{30'000};
  int64_t log_tail_lines = 200;  // LogsRequest::tail_lines == 0
  std::string base_domain;       // for requests without a host
  // Registry credentials for the namespace's pods (setting registry_auth_file, read when the
  // provider is made): the Secret eph-registry, referenced from the ServiceAccounts. Empty: none.
  RegistryAuth registry_auth;
  // The namespace ephd runs in, admitted to an environment's own database server past its
  // isolating NetworkPolicy (setting database_client_namespace; in a cluster, the service
  // account's namespace by default). Empty: no such rule.
  std::string database_client_namespace;
  // Whether ephd runs inside the cluster it manages (it was given no kubeconfig and uses the
  // pod's service account). An environment's own database server is reached at its Service name,
  // `<instance>.<namespace>.svc`: outside the cluster a name that does not resolve once the
  // server is ready fails the environment with that explanation; inside, it is waited for.
  bool in_cluster = false;
  // Looks a host name up (OK: it resolves). Empty: getaddrinfo. Tests stub it.
  std::function<absl::Status(const std::string& host)> resolve_host;
};

// The defaults: quota pods=50, requests.cpu=8, requests.memory=16Gi, limits.cpu=16,
// limits.memory=32Gi, services.loadbalancers=0, services.nodeports=0; container defaults
// cpu=500m/memory=512Mi (limit) and cpu=50m/memory=64Mi (request); ingress from the namespace
// labelled kubernetes.io/metadata.name=ingress-nginx.
KubernetesProviderOptions DefaultProviderOptions();

// Settings -> options (everything but the connection). InvalidArgument naming the setting.
[[nodiscard]] absl::StatusOr<KubernetesProviderOptions> ParseProviderSettings(
    const ProviderSettings& settings);

class KubernetesProvider final : public Provider {
 public:
  // Starts the readiness watches when options.watch.
  KubernetesProvider(std::shared_ptr<kube::KubeClient> client, KubernetesProviderOptions options);
  ~KubernetesProvider() override;
  KubernetesProvider(const KubernetesProvider&) = delete;
  KubernetesProvider& operator=(const KubernetesProvider&) = delete;

  ProviderInfo Info() const override;
  absl::StatusOr<ApplyResult> Apply(const ApplyRequest& request) override;
  absl::StatusOr<Observation> Observe(const EnvironmentRef& ref) override;
  absl::StatusOr<DestroyResult> Destroy(const EnvironmentRef& ref) override;
  absl::Status Logs(const LogsRequest& request, const LogSink& sink) override;
  absl::StatusOr<std::vector<OwnedObject>> ListOwned() override;
  // The environment's own PostgreSQL server: Secret, Service, StatefulSet (database_server.h)
  // in its namespace, which is created if it does not exist yet. Ready when the StatefulSet's pod
  // is; the admin URL names the Service's cluster DNS name, so ephd must run in the cluster (or
  // otherwise resolve and reach `<name>.<namespace>.svc`).
  absl::StatusOr<DatabaseServer> EnsureDatabaseServer(
      const DatabaseServerRequest& request) override;

  // Streams the environments whose readiness, as the watches see it, changed (Provider's
  // contract). Unimplemented without watches (options.watch false).
  absl::Status WatchChanges(const ChangeSink& sink, std::stop_token stop) override;

  // True once the readiness watches have listed everything (always false without watches).
  bool WatchesSynced() const;

  // What the watches alone say about an environment (no direct reads); nullopt without watches
  // or before they synced. For tests and the benchmark: Observe is what the reconciler uses.
  std::optional<Observation> ObserveFromWatches(const EnvironmentRef& ref) const;

  kube::KubeClient& client() { return *client_; }

  // Returns once every ResourceQuota in `ns` is enforced (QuotaEnforced: the quota controller
  // has counted it); Unavailable naming the quota after options.quota_wait. Apply calls it
  // between the policy wave and the rest; public for tests.
  absl::Status WaitForQuotas(const std::string& ns);

 private:
  struct Expected {
    std::string kind;
    std::string name;
    std::string path;
    int64_t generation = 0;
  };

  absl::StatusOr<NamespaceSnapshot> ReadNamespaceDirectly(const std::string& ns);
  // The environment's host: the request's, else <environment>.<base_domain>; may be empty.
  std::string HostOf(const ApplyRequest& request) const;
  // Around the rendered app: the Ingress for the entry service (or the app's own on the host),
  // envFrom the settings Secret, pull-secret references, and Eph's own objects (quota, limits,
  // policy, Secrets). kubernetes.web naming what the render lacks is InvalidArgument.
  absl::Status AddEnvironmentObjects(const ApplyRequest& request, const std::string& host,
                                     std::vector<nlohmann::json>& rendered) const;
  void RecordExpectations(const std::string& ns, const std::vector<PreparedObject>& objects,
                          const std::vector<nlohmann::json>& applied, const std::string& host);
  std::string NamespaceOf(const EnvironmentRef& ref) const;
  std::string LabelSelectorFor(const std::string& environment) const;

  const std::shared_ptr<kube::KubeClient> client_;
  const KubernetesProviderOptions options_;
  ManifestRenderer renderer_;
  KubeApplier applier_;
  std::unique_ptr<ReadinessCache> cache_;

  // The sinks of the running WatchChanges calls; the cache's one listener fans out to them.
  // Held while a change is delivered, so a sink is never called after its call returned.
  void Publish(const std::string& environment);
  std::mutex sinks_mu_;
  std::map<uint64_t, const ChangeSink*> sinks_;
  uint64_t next_sink_ = 0;

  std::mutex mu_;
  std::map<std::string, std::vector<Expected>> expected_;  // by namespace, from the last Apply
  std::map<std::string, std::string> hosts_;               // by namespace, from the last Apply
};

// Builds the provider from ephd's settings: the client from `kubeconfig` (and `context`), or the
// in-cluster service account when `kubeconfig` is empty.
[[nodiscard]] absl::StatusOr<std::unique_ptr<KubernetesProvider>> NewKubernetesProvider(
    const ProviderSettings& settings);

// Registers NewKubernetesProvider as factory "kubernetes". Separate from RegisterBuiltinProviders
// (pkg/providers/provider.cc) because eph_providers cannot depend on this library, which depends
// on it; ephd calls both.
[[nodiscard]] absl::Status RegisterKubernetesProvider(ProviderRegistry& registry);

}  // namespace eph::providers::kubernetes
