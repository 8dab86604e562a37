#include "pkg/kube/resource_mapper.h"

#include "fmt/format.h"

namespace eph::kube {
namespace {

// A DNS subdomain: dot-separated labels of [a-z0-9-], none empty.
bool IsDnsSubdomain(const std::string& s) {
  if (s.empty() || s.size() > 253) return false;
  size_t label = 0;
  for (unsigned char c : s) {
    if (c == '.') {
      if (label == 0) return false;
      label = 0;
    } else if (std::islower(c) || std::isdigit(c) || c == '-') {
      ++label;
    } else {
      return false;
    }
  }
  return label > 0;
}

bool IsAlnum(const std::string& s) {
  if (s.empty()) return false;
  for (unsigned char c : s) {
    if (!std::isalnum(c)) return false;
  }
  return true;
}

std::string Join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& i : items) out += (out.empty() ? "" : ", ") + i;
  return out;
}

}  // namespace

absl::StatusOr<GroupVersionKind> ParseGroupVersionKind(const std::string& api_version,
                                                       const std::string& kind) {
  GroupVersionKind gvk;
  const auto slash = api_version.find('/');
  if (slash == std::string::npos) {
    gvk.version = api_version;
  } else {
    gvk.group = api_version.substr(0, slash);
    gvk.version = api_version.substr(slash + 1);
  }
  gvk.kind = kind;
  if (gvk.version.empty() || !IsAlnum(gvk.version) ||
      (slash != std::string::npos && !IsDnsSubdomain(gvk.group))) {
    return absl::InvalidArgumentError(
        fmt::format("apiVersion \"{}\" is not <group>/<version> or <version>", api_version));
  }
  if (!IsAlnum(kind)) {
    return absl::InvalidArgumentError(fmt::format("kind \"{}\" is not a valid kind", kind));
  }
  return gvk;
}

absl::Status ValidatePathSegment(const std::string& segment, const std::string& what) {
  if (segment.empty() || segment == "." || segment == ".." ||
      segment.find_first_of("/%?#") != std::string::npos || segment.size() > 253) {
    return absl::InvalidArgumentError(fmt::format("{} \"{}\" is not a valid name", what, segment));
  }
  for (unsigned char c : segment) {
    if (c <= 0x20 || c >= 0x7f) {
      return absl::InvalidArgumentError(
          fmt::format("{} \"{}\" is not a valid name", what, segment));
    }
  }
  return absl::OkStatus();
}

std::string ResourceInfo::CollectionPath(const std::string& ns) const {
  std::string path = group.empty() ? "/api/" + version : "/apis/" + group + "/" + version;
  if (namespaced && !ns.empty()) path += "/namespaces/" + ns;
  return path + "/" + resource;
}

std::string ResourceInfo::ObjectPath(const std::string& ns, const std::string& name) const {
  return CollectionPath(ns) + "/" + name;
}

ResourceMapper::ResourceMapper(Fetch fetch, const Clock& clock, Duration min_refresh_interval)
    : fetch_(std::move(fetch)), clock_(clock), min_refresh_interval_(min_refresh_interval) {}

void ResourceMapper::Invalidate() {
  std::lock_guard<std::mutex> lock(mu_);
  cache_.clear();
}

absl::StatusOr<ResourceInfo> ResourceMapper::Resolve(const std::string& api_version,
                                                     const std::string& kind) {
  absl::StatusOr<GroupVersionKind> gvk = ParseGroupVersionKind(api_version, kind);
  if (!gvk.ok()) return gvk.status();
  return Resolve(*gvk);
}

absl::StatusOr<ResourceInfo> ResourceMapper::Resolve(const GroupVersionKind& gvk) {
  const std::string key = gvk.ApiVersion();
  auto find = [&](const GroupVersion& gv) -> const ResourceInfo* {
    for (const auto& r : gv.resources) {
      if (r.kind == gvk.kind) return &r;
    }
    return nullptr;
  };
  {
    std::lock_guard<std::mutex> lock(mu_);
    const auto it = cache_.find(key);
    if (it != cache_.end()) {
      if (const ResourceInfo* r = find(it->second)) return *r;
      if (clock_.Now() - it->second.fetched_at < min_refresh_interval_) {
        return absl::NotFoundError(fmt::format("no kind {} in {}", gvk.kind, key));
      }
    }
  }
  absl::StatusOr<GroupVersion> gv = FetchGroupVersion(gvk);
  if (!gv.ok()) return gv.status();
  std::lock_guard<std::mutex> lock(mu_);
  GroupVersion& slot = cache_[key];
  slot = *std::move(gv);
  if (const ResourceInfo* r = find(slot)) return *r;
  return absl::NotFoundError(
      fmt::format("no kind {} in {}{}", gvk.kind, key,
                  gvk.group.empty() ? "" : " (is the CustomResourceDefinition installed?)"));
}

absl::StatusOr<ResourceMapper::GroupVersion> ResourceMapper::FetchGroupVersion(
    const GroupVersionKind& gvk) {
  const std::string path =
      gvk.group.empty() ? "/api/" + gvk.version : "/apis/" + gvk.group + "/" + gvk.version;
  absl::StatusOr<nlohmann::json> doc = fetch_(path);
  if (!doc.ok()) {
    if (absl::IsNotFound(doc.status())) return ExplainMissingGroupVersion(gvk);
    return doc.status();
  }
  GroupVersion gv;
  gv.fetched_at = clock_.Now();
  const auto resources = doc->is_object() ? doc->find("resources") : doc->end();
  if (resources == doc->end() || !resources->is_array()) {
    return absl::UnavailableError(
        fmt::format("discovery {}: the answer has no resources list", path));
  }
  for (const auto& r : *resources) {
    if (!r.is_object()) continue;
    ResourceInfo info;
    info.resource = r.contains("name") && r["name"].is_string() ? r["name"].get<std::string>() : "";
    info.kind = r.contains("kind") && r["kind"].is_string() ? r["kind"].get<std::string>() : "";
    // Subresources (deployments/status, pods/log) share the kind of their parent.
    if (info.resource.empty() || info.kind.empty() ||
        info.resource.find('/') != std::string::npos) {
      continue;
    }
    info.group = gvk.group;
    info.version = gvk.version;
    info.namespaced =
        r.contains("namespaced") && r["namespaced"].is_boolean() && r["namespaced"].get<bool>();
    if (const auto verbs = r.find("verbs"); verbs != r.end() && verbs->is_array()) {
      for (const auto& v : *verbs) {
        if (v.is_string()) info.verbs.push_back(v.get<std::string>());
      }
    }
    gv.resources.push_back(std::move(info));
  }
  return gv;
}

absl::Status ResourceMapper::ExplainMissingGroupVersion(const GroupVersionKind& gvk) {
  if (gvk.group.empty()) {
    std::vector<std::string> versions;
    if (absl::StatusOr<nlohmann::json> api = fetch_("/api"); api.ok() && api->is_object()) {
      for (const auto& v : api->value("versions", nlohmann::json::array())) {
        if (v.is_string()) versions.push_back(v.get<std::string>());
      }
    }
    return absl::NotFoundError(fmt::format(
        "no API version {} in the core group (the server has: {})", gvk.version, Join(versions)));
  }
  absl::StatusOr<nlohmann::json> groups = fetch_("/apis");
  if (groups.ok() && groups->is_object()) {
    const nlohmann::json list = groups->value("groups", nlohmann::json::array());
    for (const auto& g : list.is_array() ? list : nlohmann::json::array()) {
      if (!g.is_object() || !g.contains("name") || g["name"] != gvk.group) continue;
      std::vector<std::string> versions;
      const nlohmann::json vs = g.value("versions", nlohmann::json::array());
      for (const auto& v : vs.is_array() ? vs : nlohmann::json::array()) {
        if (v.is_object() && v.contains("version") && v["version"].is_string()) {
          versions.push_back(v["version"].get<std::string>());
        }
      }
      return absl::NotFoundError(fmt::format("no version {} of API group {} (the server has: {})",
                                             gvk.version, gvk.group, Join(versions)));
    }
  }
  return absl::NotFoundError(fmt::format(
      "no API group {} on the server (is the CustomResourceDefinition installed?)", gvk.group));
}

}  // namespace eph::kube
