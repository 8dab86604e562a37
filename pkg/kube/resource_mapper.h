// ResourceMapper: from an object's apiVersion and kind to its REST path, using the API server's
// discovery documents (/api, /apis, /api/v1, /apis/<group>/<version>), cached.
//
// Contract:
//  - A group/version's resource list is fetched once and kept. A kind missing from it triggers a
//    refetch (a CRD may just have been installed), at most once per min_refresh_interval.
//  - An unknown kind is NotFound "no kind Foo in apps/v1"; an unknown group or version is
//    NotFound naming what the server does offer. Transport and API errors pass through.
//  - Names and namespaces put into paths must be valid path segments (no '/', not "." or ".."),
//    otherwise InvalidArgument: manifests are outside input.
//
// Thread-safety: safe to call from many threads; fetches happen without the lock held.
#pragma once

#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "pkg/base/clock.h"

namespace eph::kube {

struct GroupVersionKind {
  std::string group;  // "" for the core group
  std::string version;
  std::string kind;

  std::string ApiVersion() const { return group.empty() ? version : group + "/" + version; }
  bool operator==(const GroupVersionKind&) const = default;
};

// "apps/v1" + "Deployment" -> {apps, v1, Deployment}; "v1" -> the core group.
[[nodiscard]] absl::StatusOr<GroupVersionKind> ParseGroupVersionKind(const std::string& api_version,
                                                                     const std::string& kind);

struct ResourceInfo {
  std::string group;
  std::string version;
  std::string kind;
  std::string resource;  // plural, lower case: "deployments"
  bool namespaced = false;
  std::vector<std::string> verbs;

  std::string ApiVersion() const { return group.empty() ? version : group + "/" + version; }
  // The collection, e.g. /apis/apps/v1/namespaces/NS/deployments. For a namespaced resource and
  // an empty `ns`: the collection across all namespaces. `ns` is ignored for cluster-scoped ones.
  std::string CollectionPath(const std::string& ns) const;
  std::string ObjectPath(const std::string& ns, const std::string& name) const;
};

// InvalidArgument unless `segment` can be used as one path segment (a name or namespace).
[[nodiscard]] absl::Status ValidatePathSegment(const std::string& segment, const std::string& what);

class ResourceMapper {
 public:
  // GETs a discovery path and returns the parsed JSON (NotFound for 404).
  using Fetch = std::function<absl::StatusOr<nlohmann::json>(const std::string& path)>;

  ResourceMapper(Fetch fetch, const Clock& clock,
                 Duration min_refresh_interval = std::chrono::seconds(5));

  [[nodiscard]] absl::StatusOr<ResourceInfo> Resolve(const GroupVersionKind& gvk);
  [[nodiscard]] absl::StatusOr<ResourceInfo> Resolve(const std::string& api_version,
                                                     const std::string& kind);
  // Forget everything (e.g. after installing CRDs).
  void Invalidate();

 private:
  struct GroupVersion {
    std::vector<ResourceInfo> resources;
    TimePoint fetched_at;
  };
  absl::StatusOr<GroupVersion> FetchGroupVersion(const GroupVersionKind& gvk);
  absl::Status ExplainMissingGroupVersion(const GroupVersionKind& gvk);

  const Fetch fetch_;
  const Clock& clock_;
  const Duration min_refresh_interval_;
  std::mutex mu_;
  std::map<std::string, GroupVersion> cache_;  // by ApiVersion()
};

}  // namespace eph::kube
