#include "pkg/providers/kubernetes/readiness_cache.h"

#include <set>

#include "pkg/providers/kubernetes/workload_status.h"
#include "spdlog/spdlog.h"

namespace eph::providers::kubernetes {
namespace {

using nlohmann::json;

std::string Str(const json& o, const char* key) {
  if (!o.is_object()) return "";
  const auto it = o.find(key);
  return it != o.end() && it->is_string() ? it->get<std::string>() : std::string();
}

const json& Meta(const json& o) {
  static const json kEmpty = json::object();
  if (!o.is_object()) return kEmpty;
  const auto it = o.find("metadata");
  return it != o.end() && it->is_object() ? *it : kEmpty;
}

bool SameEvaluation(const Observation& a, const Observation& b) {
  return a.phase == b.phase && a.message == b.message;
}

}  // namespace

const std::vector<WatchedKind>& ReadinessKinds() {
  static const std::vector<WatchedKind> kKinds = {
      {"Namespace", "/api/v1/namespaces"},
      {"Deployment", "/apis/apps/v1/deployments"},
      {"ReplicaSet", "/apis/apps/v1/replicasets"},
      {"StatefulSet", "/apis/apps/v1/statefulsets"},
      {"DaemonSet", "/apis/apps/v1/daemonsets"},
      {"Job", "/apis/batch/v1/jobs"},
      {"Pod", "/api/v1/pods"},
  };
  return kKinds;
}

json TrimForCache(const json& object) {
  if (!object.is_object()) return object;
  json out = object;
  if (out.contains("metadata") && out["metadata"].is_object()) {
    out["metadata"].erase("managedFields");
    out["metadata"].erase("annotations");
  }
  if (out.contains("spec") && out["spec"].is_object()) {
    json& spec = out["spec"];
    const std::string kind = Str(out, "kind");
    if (kind == "Pod") {
      spec = json::object();
    } else {
      if (kind == "Deployment" || kind == "ReplicaSet") {
        out[kTemplateDigestField] = TemplateDigest(object);
      }
      spec.erase("template");
      spec.erase("jobTemplate");
      spec.erase("volumeClaimTemplates");
    }
  }
  return out;
}

ReadinessCache::ReadinessCache(kube::KubeClient& client, std::string label_selector)
    : client_(client), label_selector_(std::move(label_selector)) {}

ReadinessCache::~ReadinessCache() { Stop(); }

void ReadinessCache::Start() {
  std::lock_guard<std::mutex> lock(watches_mu_);
  if (!watches_.empty()) return;
  for (const WatchedKind& kind : ReadinessKinds()) {
    kube::WatchCallbacks callbacks;
    callbacks.on_event = [this, &kind](const kube::WatchEvent& e) { OnEvent(kind, e); };
    callbacks.on_relist = [this, &kind](const kube::ListResult& list, kube::RelistReason) {
      OnRelist(kind, list);
    };
    callbacks.on_reconnect = [&kind](const absl::Status& why) {
      spdlog::debug("kubernetes: watch of {} reconnecting: {}", kind.collection_path,
                    why.ToString());
    };
    watches_.push_back(
        client_.StartWatch(kind.collection_path, {.label_selector = label_selector_}, callbacks));
  }
}

void ReadinessCache::Stop() {
  std::vector<std::unique_ptr<kube::WatchHandle>> watches;
  {
    std::lock_guard<std::mutex> lock(watches_mu_);
    watches.swap(watches_);
  }
  for (auto& w : watches) w->Stop();
}

void ReadinessCache::SetChangeListener(ChangeListener listener) {
  std::lock_guard<std::mutex> lock(listener_mu_);
  listener_ = std::move(listener);
}

bool ReadinessCache::Synced() const {
  std::lock_guard<std::mutex> lock(mu_);
  return synced_.size() == ReadinessKinds().size();
}

int64_t ReadinessCache::events_seen() const {
  std::lock_guard<std::mutex> lock(mu_);
  return events_;
}

std::optional<NamespaceSnapshot> ReadinessCache::Snapshot(const std::string& ns) const {
  std::lock_guard<std::mutex> lock(mu_);
  if (synced_.size() != ReadinessKinds().size()) return std::nullopt;
  NamespaceSnapshot out;
  auto it = spaces_.find(ns);
  if (it == spaces_.end()) return out;
  out.namespace_object = it->second.namespace_object;
  out.objects.reserve(it->second.objects.size());
  for (const auto& [key, o] : it->second.objects) out.objects.push_back(o);
  return out;
}

std::optional<Observation> ReadinessCache::Evaluate(const std::string& ns) const {
  std::optional<NamespaceSnapshot> snap = Snapshot(ns);
  if (!snap) return std::nullopt;
  return SummarizeEnvironment(snap->namespace_object, snap->objects);
}

void ReadinessCache::PutLocked(const WatchedKind& kind, const json& object) {
  const json& meta = Meta(object);
  const std::string name = Str(meta, "name");
  if (kind.kind == "Namespace") {
    Space& space = spaces_[name];
    space.namespace_object = TrimForCache(object);
    const std::string env = Str(Meta(object).value("labels", json::object()), kEnvironmentLabel);
    if (!env.empty()) space.environment = env;
    return;
  }
  const std::string ns = Str(meta, "namespace");
  Space& space = spaces_[ns];
  space.objects[kind.kind + "/" + name] = TrimForCache(object);
  if (space.environment.empty()) {
    space.environment = Str(meta.value("labels", json::object()), kEnvironmentLabel);
  }
}

std::optional<std::string> ReadinessCache::RecomputeLocked(const std::string& ns) {
  auto it = spaces_.find(ns);
  if (it == spaces_.end()) return std::nullopt;
  Space& space = it->second;
  std::vector<json> objects;
  objects.reserve(space.objects.size());
  for (const auto& [key, o] : space.objects) objects.push_back(o);
  Observation now = SummarizeEnvironment(space.namespace_object, objects);
  const bool synced = synced_.size() == ReadinessKinds().size();
  std::optional<std::string> notify;
  if (!space.last || !SameEvaluation(*space.last, now)) {
    if (synced && !space.environment.empty()) notify = space.environment;
    space.last = std::move(now);
  }
  if (space.namespace_object.is_null() && space.objects.empty()) spaces_.erase(it);
  return notify;
}

void ReadinessCache::OnEvent(const WatchedKind& kind, const kube::WatchEvent& event) {
  if (event.type == kube::WatchEventType::kBookmark || event.type == kube::WatchEventType::kError) {
    return;
  }
  std::vector<std::string> notify;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++events_;
    const json& meta = Meta(event.object);
    const std::string name = Str(meta, "name");
    const std::string ns = kind.kind == "Namespace" ? name : Str(meta, "namespace");
    if (event.type == kube::WatchEventType::kDeleted) {
      auto it = spaces_.find(ns);
      if (it != spaces_.end()) {
        if (kind.kind == "Namespace") {
          it->second.namespace_object = nullptr;
        } else {
          it->second.objects.erase(kind.kind + "/" + name);
        }
      }
    } else {
      PutLocked(kind, event.object);
    }
    if (std::optional<std::string> env = RecomputeLocked(ns)) notify.push_back(*env);
  }
  Notify(notify);
}

void ReadinessCache::OnRelist(const WatchedKind& kind, const kube::ListResult& list) {
  std::vector<std::string> notify;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const bool was_synced = synced_.size() == ReadinessKinds().size();
    std::set<std::string> touched;
    for (auto& [ns, space] : spaces_) {
      if (kind.kind == "Namespace") {
        if (!space.namespace_object.is_null()) touched.insert(ns);
        space.namespace_object = nullptr;
        continue;
      }
      for (auto it = space.objects.begin(); it != space.objects.end();) {
        if (it->first.compare(0, kind.kind.size() + 1, kind.kind + "/") == 0) {
          touched.insert(ns);
          it = space.objects.erase(it);
        } else {
          ++it;
        }
      }
    }
    for (const json& item : list.items) {
      PutLocked(kind, item);
      const json& meta = Meta(item);
      touched.insert(kind.kind == "Namespace" ? Str(meta, "name") : Str(meta, "namespace"));
    }
    synced_[kind.kind] = true;
    const bool now_synced = synced_.size() == ReadinessKinds().size();
    if (now_synced && !was_synced) {
      // The first complete picture: remember it without notifying (the reconciler's resync
      // looks at every environment after a start anyway).
      std::vector<std::string> all;
      for (const auto& [ns, space] : spaces_) all.push_back(ns);
      for (const std::string& ns : all) (void)RecomputeLocked(ns);
    } else {
      for (const std::string& ns : touched) {
        if (std::optional<std::string> env = RecomputeLocked(ns)) notify.push_back(*env);
      }
    }
    ++events_;
  }
  Notify(notify);
}

void ReadinessCache::Notify(const std::vector<std::string>& environments) {
  if (environments.empty()) return;
  std::lock_guard<std::mutex> lock(listener_mu_);
  if (!listener_) return;
  for (const std::string& env : environments) listener_(env);
}

}  // namespace eph::providers::kubernetes
