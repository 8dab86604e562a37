// StoreBackends: the gateway's view of the store. An environment's backend is the typed
// `backend_url` the reconciler records when it is ready (a Docker port on 127.0.0.1); answers
// are kept for a second, so the proxy's hot path rarely reads the database. StoreActivity is the
// other direction: the gateway's visits written as the environment's last activity.
//
// Thread-safety: Find is thread-safe; so is the sink StoreActivity makes (the store is).
#pragma once

#include <chrono>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "pkg/gateway/gateway.h"
#include "pkg/state/store.h"

namespace eph::gateway {

// "http://HOST:PORT[/...]" as a backend; nullopt for anything else (https, no port, port 0).
std::optional<Backend> BackendFromUrl(const std::string& url);

// The gateway's activity sink on `store` (which must outlive it): Store::TouchEnvironment, which
// drives idle_timeout. A write that fails is logged; the next visit writes again.
ActivitySink StoreActivity(state::Store& store);

class StoreBackends {
 public:
  static constexpr auto kFresh = std::chrono::seconds(1);
  static constexpr size_t kMaxEntries = 10000;

  explicit StoreBackends(state::Store& store) : store_(store) {}

  // nullopt: no such environment, not ready or updating, or no backend.
  std::optional<Backend> Find(std::string_view name);

 private:
  struct Entry {
    std::optional<Backend> backend;
    std::chrono::steady_clock::time_point fetched;
  };

  std::optional<Backend> Read(const std::string& name);

  state::Store& store_;
  std::mutex mu_;
  std::unordered_map<std::string, Entry> cache_;
};

}  // namespace eph::gateway
