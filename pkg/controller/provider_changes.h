// ProviderChangeFeed: turns the providers' change streams (Provider::WatchChanges) into work.
//
// For each enabled provider that can watch, one thread runs WatchChanges; every change names an
// environment, which is looked up in the store, mapped to its work key (work_key.h) and enqueued
// to run now; then the workers are woken (`notify`). The key, not the change, is what is
// reconciled: the reconciler calls Observe and sees for itself (level-triggered). A change for a
// name the store does not know (another installation's environment, one not created yet) is
// dropped. A stream that ends with an error is started again after `retry_after` (doubling up to
// `max_retry_after`); Unimplemented means the provider cannot watch, and its thread ends: the
// reconciler's progress poll covers it.
//
// Thread-safety: Start and Stop from one thread; Deliver from any.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <stop_token>
#include <thread>
#include <vector>

#include "pkg/base/clock.h"
#include "pkg/providers/provider.h"
#include "pkg/state/store.h"

namespace eph::controller {

struct ProviderChangeFeedOptions {
  Duration retry_after = std::chrono::seconds(1);
  Duration max_retry_after = std::chrono::seconds(30);
};

class ProviderChangeFeed {
 public:
  // `store`, `providers` and `clock` must outlive the feed; `notify` wakes the work queue.
  ProviderChangeFeed(state::Store& store, providers::ProviderRegistry& providers,
                     const Clock& clock, std::function<void()> notify,
                     ProviderChangeFeedOptions options = {});
  ~ProviderChangeFeed();
  ProviderChangeFeed(const ProviderChangeFeed&) = delete;
  ProviderChangeFeed& operator=(const ProviderChangeFeed&) = delete;

  // One watch thread per enabled provider.
  void Start();
  // Ends every watch (the providers return promptly once asked) and joins the threads.
  void Stop();

  // Enqueues the key of `change.environment` if the store knows the environment. Returns whether
  // it enqueued.
  bool Deliver(const providers::EnvironmentChange& change);

  // Keys enqueued so far, for tests and diagnostics.
  int64_t enqueued() const { return enqueued_.load(); }

 private:
  void Watch(providers::Provider& provider, std::stop_token stop);

  state::Store& store_;
  providers::ProviderRegistry& providers_;
  const Clock& clock_;
  const std::function<void()> notify_;
  const ProviderChangeFeedOptions options_;
  std::atomic<int64_t> enqueued_{0};
  std::vector<std::jthread> threads_;
};

}  // namespace eph::controller
