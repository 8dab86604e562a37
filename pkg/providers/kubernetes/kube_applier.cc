#include "pkg/providers/kubernetes/kube_applier.h"

#include <atomic>
#include <thread>

#include "fmt/format.h"
#include "pkg/kube/api_errors.h"
#include "pkg/providers/kubernetes/environment_objects.h"

namespace eph::providers::kubernetes {
namespace {

using nlohmann::json;

std::string Str(const json& o, const char* key) {
  if (!o.is_object()) return "";
  const auto it = o.find(key);
  return it != o.end() && it->is_string() ? it->get<std::string>() : std::string();
}

bool IsPolicy(const std::string& kind) { return kind == "ResourceQuota" || kind == "LimitRange"; }

bool IsWorkload(const std::string& kind) {
  return kind == "Deployment" || kind == "StatefulSet" || kind == "DaemonSet" ||
         kind == "ReplicaSet" || kind == "ReplicationController" || kind == "Job" ||
         kind == "CronJob" || kind == "Pod";
}

// "apps/v1/Deployment web" -> "Deployment web" for messages.
std::string ShortId(const std::string& id) {
  const size_t space = id.find(' ');
  const std::string kind_key = id.substr(0, space);
  const size_t slash = kind_key.rfind('/');
  return (slash == std::string::npos ? kind_key : kind_key.substr(slash + 1)) +
         (space == std::string::npos ? "" : id.substr(space));
}

bool AppliedBy(const json& object, const std::string& manager) {
  const json meta = object.value("metadata", json::object());
  const json fields = meta.is_object() ? meta.value("managedFields", json::array()) : json();
  if (!fields.is_array()) return false;
  for (const json& f : fields) {
    if (Str(f, "manager") == manager && Str(f, "operation") == "Apply") return true;
  }
  return false;
}

// Runs fn(i) for i in [0, n) on up to `threads` threads.
template <typename Fn>
void ParallelFor(size_t n, int threads, Fn fn) {
  if (n == 0) return;
  const size_t workers = std::max<size_t>(1, std::min<size_t>(n, static_cast<size_t>(threads)));
  std::atomic<size_t> next{0};
  auto run = [&] {
    for (size_t i = next.fetch_add(1); i < n; i = next.fetch_add(1)) fn(i);
  };
  std::vector<std::jthread> pool;
  pool.reserve(workers - 1);
  for (size_t w = 1; w < workers; ++w) pool.emplace_back(run);
  run();
}

// The code of a 403 answer to a write. RBAC's answers name a user that "cannot" do something:
// ephd's own credentials, which an operator fixes, so they stay PermissionDenied. Anything else
// is an admission plugin refusing the object itself.
absl::StatusCode AdmissionDenialCode(const std::string& message) {
  if (message.find("status unknown for quota") != std::string::npos) {
    return absl::StatusCode::kUnavailable;  // the quota controller has not counted it yet
  }
  if (message.find("User \"") != std::string::npos && message.find(" cannot ") != std::string::npos) {
    return absl::StatusCode::kPermissionDenied;
  }
  return absl::StatusCode::kFailedPrecondition;
}

}  // namespace

absl::Status DescribeApplyError(const absl::Status& status, const std::string& id) {
  std::string message = kube::MessageOf(status);
  // The client names the request ("PATCH /apis/...?fieldManager=eph: ..."); users need the
  // object and the API server's words.
  for (const char* verb : {"PATCH ", "GET ", "DELETE ", "POST ", "PUT "}) {
    if (message.rfind(verb, 0) == 0) {
      const size_t colon = message.find(": ");
      if (colon != std::string::npos) message = message.substr(colon + 2);
      break;
    }
  }
  // The API server answers a server-side apply naming a field the schema does not have with 500
  // "failed to create typed patch object (...): .spec.x: field not declared in schema" (any
  // fieldValidation): the object is wrong, retrying cannot help.
  absl::StatusCode code = status.code();
  if (message.find("failed to create typed patch object") != std::string::npos ||
      message.find("field not declared in schema") != std::string::npos) {
    code = absl::StatusCode::kInvalidArgument;
  }
  if (code == absl::StatusCode::kPermissionDenied) {
    code = AdmissionDenialCode(message);
    if (message.find("exceeded quota") != std::string::npos &&
        (message.find("services.loadbalancers") != std::string::npos ||
         message.find("services.nodeports") != std::string::npos)) {
      message +=
          " (preview environments get no LoadBalancer or NodePort Services: use type ClusterIP; "
          "Eph's Ingress serves the environment's host)";
    }
  }
  return absl::Status(code, ShortId(id) + ": " + message);
}

KubeApplier::KubeApplier(kube::KubeClient& client, ApplierOptions options)
    : client_(client), options_(std::move(options)) {}

absl::StatusOr<std::vector<PreparedObject>> KubeApplier::Prepare(
    std::vector<json> objects, const std::string& ns,
    const std::map<std::string, std::string>& labels) {
  std::vector<PreparedObject> out;
  out.reserve(objects.size());
  std::set<std::string> seen;
  for (json& object : objects) {
    if (!object.is_object())
      return absl::InvalidArgumentError("a rendered object is not a mapping");
    const std::string api_version = Str(object, "apiVersion");
    const std::string kind = Str(object, "kind");
    json& meta = object["metadata"];
    if (!meta.is_object()) meta = json::object();
    const std::string name = Str(meta, "name");
    if (api_version.empty() || kind.empty()) {
      return absl::InvalidArgumentError(fmt::format("an object{} has no apiVersion or kind",
                                                    name.empty() ? "" : " named " + name));
    }
    if (name.empty()) {
      return absl::InvalidArgumentError(fmt::format(
          "a {} has no metadata.name (generateName is not supported: objects must have stable "
          "names so a later push updates them)",
          kind));
    }
    absl::StatusOr<kube::ResourceInfo> info = client_.ResolveKind(api_version, kind);
    if (!info.ok()) {
      if (absl::IsNotFound(info.status())) {
        return absl::InvalidArgumentError(
            fmt::format("{} {}: unknown kind: {}", kind, name, kube::MessageOf(info.status())));
      }
      return info.status();
    }
    if (!info->namespaced) {
      return absl::InvalidArgumentError(fmt::format(
          "{} {} is cluster-scoped; a preview environment may only contain namespaced objects "
          "(remove it from the manifests, or have the cluster's operator install it once)",
          kind, name));
    }
    const std::string declared_ns = Str(meta, "namespace");
    if (!declared_ns.empty() && declared_ns != ns) {
      return absl::InvalidArgumentError(fmt::format(
          "{} {} names namespace '{}'; objects of a preview environment go into its own namespace "
          "'{}' (leave metadata.namespace out)",
          kind, name, declared_ns, ns));
    }
    if (absl::Status st = kube::ValidatePathSegment(name, kind + " name"); !st.ok()) {
      return absl::InvalidArgumentError(kube::MessageOf(st));
    }
    meta["namespace"] = ns;
    for (const char* field :
         {"resourceVersion", "uid", "creationTimestamp", "managedFields", "generation", "selfLink",
          "deletionTimestamp", "deletionGracePeriodSeconds"}) {
      meta.erase(field);
    }
    object.erase("status");
    AddEphLabels(object, labels);
    PreparedObject p;
    p.id = ObjectId(object);
    if (!seen.insert(p.id).second) {
      return absl::InvalidArgumentError(
          fmt::format("{} appears twice in the rendered manifests", ShortId(p.id)));
    }
    p.kind_key = KindKey(object);
    p.path = info->ObjectPath(ns, name);
    p.wave = IsPolicy(kind) ? kPolicyWave : IsWorkload(kind) ? kWorkloadWave : kConfigurationWave;
    p.object = std::move(object);
    out.push_back(std::move(p));
  }
  return out;
}

absl::StatusOr<json> KubeApplier::ApplyOne(const std::string& path, const json& object,
                                           const std::string& id) {
  kube::ApplyOptions options;
  options.force = true;
  options.field_manager = options_.field_manager;
  absl::StatusOr<json> result = client_.Apply(path + "?fieldValidation=Strict", object, options);
  if (!result.ok()) return DescribeApplyError(result.status(), id);
  return result;
}

absl::StatusOr<std::vector<json>> KubeApplier::ApplyAll(
    const std::vector<PreparedObject>& objects, const std::function<absl::Status()>& after_policy) {
  std::vector<absl::StatusOr<json>> results(objects.size(), absl::UnknownError("not applied"));
  for (int wave = kPolicyWave; wave <= kWorkloadWave; ++wave) {
    if (wave == kConfigurationWave && after_policy) {
      if (absl::Status st = after_policy(); !st.ok()) return st;
    }
    std::vector<size_t> indices;
    for (size_t i = 0; i < objects.size(); ++i) {
      if (objects[i].wave == wave) indices.push_back(i);
    }
    ParallelFor(indices.size(), options_.concurrency, [&](size_t k) {
      const PreparedObject& p = objects[indices[k]];
      results[indices[k]] = ApplyOne(p.path, p.object, p.id);
    });
    for (size_t i : indices) {
      if (!results[i].ok()) return results[i].status();
    }
  }
  std::vector<json> out;
  out.reserve(results.size());
  for (auto& r : results) out.push_back(*std::move(r));
  return out;
}

absl::StatusOr<PruneResult> KubeApplier::Prune(const std::string& ns,
                                               const std::string& label_selector,
                                               const std::set<std::string>& kind_keys,
                                               const std::set<std::string>& keep) {
  PruneResult result;
  for (const std::string& key : kind_keys) {
    const size_t slash = key.rfind('/');
    if (slash == std::string::npos) continue;
    const std::string api_version = key.substr(0, slash);
    const std::string kind = key.substr(slash + 1);
    absl::StatusOr<kube::ResourceInfo> info = client_.ResolveKind(api_version, kind);
    if (!info.ok()) {
      if (absl::IsNotFound(info.status())) continue;  // the kind is gone, and its objects with it
      return info.status();
    }
    absl::StatusOr<kube::ListResult> list =
        client_.List(info->CollectionPath(ns), {.label_selector = label_selector});
    if (!list.ok()) return list.status();
    for (const json& item : list->items) {
      const json meta = item.value("metadata", json::object());
      const std::string name = Str(meta, "name");
      const std::string id = fmt::format("{} {}", key, name);
      if (keep.count(id) > 0) continue;
      if (!AppliedBy(item, options_.field_manager)) continue;
      if (meta.contains("deletionTimestamp")) continue;
      kube::DeleteOptions del;
      del.propagation_policy = "Background";
      del.precondition_uid = Str(meta, "uid");
      absl::Status st = client_.Delete(info->ObjectPath(ns, name), del);
      if (!st.ok() && !absl::IsNotFound(st) && !absl::IsAborted(st)) {
        return DescribeApplyError(st, id);
      }
      ++result.deleted;
      result.deleted_ids.push_back(id);
    }
  }
  return result;
}

}  // namespace eph::providers::kubernetes
