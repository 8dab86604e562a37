// ReadinessCache: what every Eph environment's workloads report, kept current by watches instead
// of polling.
//
// It watches, across all namespaces and with the selector eph.dev/managed-by=eph, Namespaces,
// Deployments, ReplicaSets, StatefulSets, DaemonSets, Jobs and Pods (pkg/kube's Watch: reconnects
// from the last resourceVersion, relists on 410), keeps a trimmed copy of each object (status, the
// spec fields readiness needs, no pod templates or managed fields) grouped by namespace, and
// re-evaluates a namespace's readiness (workload_status.h) after every event touching it. When the
// evaluation of an environment changes (phase or message), the change listener is called with the
// environment's name, so the reconciler can look again at once instead of waiting for its poll.
//
// Until every watch has delivered its first complete list, Synced() is false and Snapshot()
// returns nullopt; callers then read the API directly.
//
// Thread-safety: all methods may be called from any thread. The listener runs on a watch thread,
// never under the cache's lock, one call at a time; it must be quick (enqueue a key), must not
// throw and must not call SetChangeListener. Once SetChangeListener returns, the previous
// listener is not called any more.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "nlohmann/json.hpp"
#include "pkg/kube/kube_client.h"
#include "pkg/providers/provider.h"

namespace eph::providers::kubernetes {

using ChangeListener = std::function<void(const std::string& environment)>;

// One watched collection: REST path across namespaces, e.g. /apis/apps/v1/deployments.
struct WatchedKind {
  std::string kind;
  std::string collection_path;
};

// The kinds Eph watches for readiness.
const std::vector<WatchedKind>& ReadinessKinds();

// Drops what readiness does not need (managed fields, annotations, pod templates -- a digest of
// Deployment and ReplicaSet templates is kept --, pod specs), to keep the cache small.
nlohmann::json TrimForCache(const nlohmann::json& object);

struct NamespaceSnapshot {
  nlohmann::json namespace_object;      // null: the namespace is not there
  std::vector<nlohmann::json> objects;  // workloads and pods, trimmed
};

class ReadinessCache {
 public:
  ReadinessCache(kube::KubeClient& client, std::string label_selector);
  ~ReadinessCache();  // stops the watches
  ReadinessCache(const ReadinessCache&) = delete;
  ReadinessCache& operator=(const ReadinessCache&) = delete;

  void Start();
  void Stop();

  void SetChangeListener(ChangeListener listener);

  // True once every watch has listed its collection once.
  bool Synced() const;
  // The cached objects of a namespace; nullopt until Synced().
  std::optional<NamespaceSnapshot> Snapshot(const std::string& namespace_name) const;
  // The current evaluation of a namespace from the cache; nullopt until Synced().
  std::optional<Observation> Evaluate(const std::string& namespace_name) const;

  // For tests and the benchmark: how many events and relists have been processed.
  int64_t events_seen() const;

 private:
  struct Space {
    nlohmann::json namespace_object;
    std::map<std::string, nlohmann::json> objects;  // "Kind/name" -> trimmed object
    std::string environment;
    std::optional<Observation> last;  // last evaluation told to the listener
  };

  void OnEvent(const WatchedKind& kind, const kube::WatchEvent& event);
  void OnRelist(const WatchedKind& kind, const kube::ListResult& list);
  // Under mu_: re-evaluates `ns`; returns the environment to notify if its evaluation changed.
  std::optional<std::string> RecomputeLocked(const std::string& ns);
  void Notify(const std::vector<std::string>& environments);
  void PutLocked(const WatchedKind& kind, const nlohmann::json& object);

  kube::KubeClient& client_;
  const std::string label_selector_;
  mutable std::mutex mu_;
  std::map<std::string, Space> spaces_;  // by namespace
  std::map<std::string, bool> synced_;   // by kind
  int64_t events_ = 0;
  // Held while the listener runs, so that once SetChangeListener returns the old one is never
  // called again.
  std::mutex listener_mu_;
  ChangeListener listener_;
  std::mutex watches_mu_;
  std::vector<std::unique_ptr<kube::WatchHandle>> watches_;
};

}  // namespace eph::providers::kubernetes
