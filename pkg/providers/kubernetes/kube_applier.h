// KubeApplier: puts an environment's rendered objects into its namespace with server-side apply,
// and removes the ones a later render dropped.
//
// Prepare() checks every object before anything is written, so a manifest that can never be
// applied leaves nothing behind:
//  - apiVersion, kind and metadata.name are present; the kind is known to the cluster
//    (discovery); unknown kinds are InvalidArgument "...: no kind Foo in example.com/v1";
//  - the kind is namespaced (discovery's `namespaced` flag): Namespace, ClusterRole, CRDs and
//    other cluster-scoped objects are InvalidArgument;
//  - metadata.namespace is absent or the environment's own; another namespace is InvalidArgument;
//  - no object appears twice.
// It then forces metadata.namespace, adds the Eph labels (and to pod templates), and drops fields
// a server-side apply must not carry (resourceVersion, uid, managedFields, status, ...).
//
// ApplyAll() applies with fieldManager "eph" (force, fieldValidation=Strict, so an unknown field
// is an error rather than a silently dropped one) in three waves: the namespace's policy
// (ResourceQuotas, LimitRanges), then configuration (ConfigMaps, Secrets, ServiceAccounts,
// Services, ...), then workloads (Deployments, Jobs, Pods, ...). The caller's `after_policy` runs
// between the first two (the provider waits there until the quota is enforced), so no Service or
// pod gets past a quota or LimitRange that is not in force yet, and a pod never starts before
// what it mounts. Within a wave, objects are applied in parallel on `concurrency` threads. An
// error stops after the current wave and names the object with the API server's message
// (InvalidArgument for 400/422; an admission denial such as an exceeded quota is
// FailedPrecondition, see DescribeApplyError).
//
// Prune() deletes objects of the given kinds in the namespace that carry the environment's labels,
// were applied by Eph (a managedFields entry of manager "eph", operation Apply) and are not in the
// keep set. Objects that controllers made from Eph's (pods of a Deployment) are never touched.
//
// Thread-safety: all methods may be called from many threads at once.
#pragma once

#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "pkg/kube/kube_client.h"

namespace eph::providers::kubernetes {

struct PreparedObject {
  nlohmann::json object;  // namespace forced, labels added
  std::string path;       // REST path of the object
  std::string id;         // "apps/v1/Deployment web", for messages and pruning
  std::string kind_key;   // "apps/v1/Deployment"
  int wave = 0;           // kPolicyWave, kConfigurationWave or kWorkloadWave
};

inline constexpr int kPolicyWave = 0;         // ResourceQuota, LimitRange
inline constexpr int kConfigurationWave = 1;  // everything that is not a workload
inline constexpr int kWorkloadWave = 2;       // Deployment, StatefulSet, Job, Pod, ...

struct ApplierOptions {
  int concurrency = 8;
  std::string field_manager = "eph";
};

struct PruneResult {
  int deleted = 0;
  std::vector<std::string> deleted_ids;
};

class KubeApplier {
 public:
  explicit KubeApplier(kube::KubeClient& client, ApplierOptions options = {});

  [[nodiscard]] absl::StatusOr<std::vector<PreparedObject>> Prepare(
      std::vector<nlohmann::json> objects, const std::string& namespace_name,
      const std::map<std::string, std::string>& labels);

  // The API's answers, in the order of `objects`. `after_policy` (if set) runs once the policy
  // wave is applied; its error stops the apply there.
  [[nodiscard]] absl::StatusOr<std::vector<nlohmann::json>> ApplyAll(
      const std::vector<PreparedObject>& objects,
      const std::function<absl::Status()>& after_policy = {});

  // `kind_keys`: "apps/v1/Deployment", ...; `keep`: ids ("apps/v1/Deployment web") to keep.
  // Kinds the cluster no longer knows are skipped.
  [[nodiscard]] absl::StatusOr<PruneResult> Prune(const std::string& namespace_name,
                                                  const std::string& label_selector,
                                                  const std::set<std::string>& kind_keys,
                                                  const std::set<std::string>& keep);

  // One object, outside the waves (the namespace itself, Eph's own objects).
  [[nodiscard]] absl::StatusOr<nlohmann::json> ApplyOne(const std::string& path,
                                                        const nlohmann::json& object,
                                                        const std::string& id);

 private:
  kube::KubeClient& client_;
  const ApplierOptions options_;
};

// "Deployment web: <the API server's message>" with the status code of `status`, except:
//  - an unknown field (500 "field not declared in schema") is InvalidArgument;
//  - a 403 from admission (an exceeded quota, a LimitRange's maximum, a pod security level: the
//    object is refused, not ephd's credentials) is FailedPrecondition, so the environment fails
//    with the API server's words instead of the apply being retried; an exceeded
//    services.loadbalancers or services.nodeports quota says what to use instead;
//  - a quota whose usage the controller has not counted yet ("status unknown for quota") is
//    Unavailable (retried).
absl::Status DescribeApplyError(const absl::Status& status, const std::string& id);

}  // namespace eph::providers::kubernetes
