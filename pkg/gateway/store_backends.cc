#include "pkg/gateway/store_backends.h"

#include <spdlog/spdlog.h>

#include "pkg/base/host_port.h"

namespace eph::gateway {

std::optional<Backend> BackendFromUrl(const std::string& url) {
  constexpr std::string_view kPrefix = "http://";
  if (url.rfind(kPrefix, 0) != 0) return std::nullopt;
  const std::string rest = url.substr(kPrefix.size());
  const std::string authority = rest.substr(0, rest.find('/'));
  Backend backend;
  if (!SplitHostPort(authority, backend.host, backend.port).ok() || backend.port == 0) {
    return std::nullopt;
  }
  return backend;
}

ActivitySink StoreActivity(state::Store& store) {
  return [&store](std::string_view environment, TimePoint at) {
    if (absl::Status s = store.TouchEnvironment(std::string(environment), at); !s.ok()) {
      spdlog::warn("gateway: could not record activity of {}: {}", environment, s.ToString());
    }
  };
}

std::optional<Backend> StoreBackends::Find(std::string_view name) {
  const auto now = std::chrono::steady_clock::now();
  const std::string key(name);
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = cache_.find(key);
    if (it != cache_.end() && now - it->second.fetched < kFresh) return it->second.backend;
  }
  std::optional<Backend> backend = Read(key);
  std::lock_guard<std::mutex> lock(mu_);
  if (cache_.size() > kMaxEntries) cache_.clear();  // unknown names must not grow it forever
  cache_[key] = {backend, now};
  return backend;
}

std::optional<Backend> StoreBackends::Read(const std::string& name) {
  absl::StatusOr<std::optional<state::Environment>> env = store_.GetEnvironment(name);
  if (!env.ok() || !env->has_value()) return std::nullopt;
  const state::EnvState st = (*env)->state;
  if (st != state::EnvState::kReady && st != state::EnvState::kUpdating) return std::nullopt;
  return BackendFromUrl((*env)->backend_url);
}

}  // namespace eph::gateway
