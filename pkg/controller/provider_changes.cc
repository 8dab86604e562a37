#include "pkg/controller/provider_changes.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>

#include "pkg/workkey/work_key.h"

namespace eph::controller {

ProviderChangeFeed::ProviderChangeFeed(state::Store& store, providers::ProviderRegistry& providers,
                                       const Clock& clock, std::function<void()> notify,
                                       ProviderChangeFeedOptions options)
    : store_(store),
      providers_(providers),
      clock_(clock),
      notify_(std::move(notify)),
      options_(options) {}

ProviderChangeFeed::~ProviderChangeFeed() { Stop(); }

void ProviderChangeFeed::Start() {
  for (providers::Provider* provider : providers_.Enabled()) {
    threads_.emplace_back([this, provider](std::stop_token stop) { Watch(*provider, stop); });
  }
}

void ProviderChangeFeed::Stop() {
  for (std::jthread& t : threads_) t.request_stop();
  threads_.clear();  // joins
}

bool ProviderChangeFeed::Deliver(const providers::EnvironmentChange& change) {
  absl::StatusOr<std::optional<state::Environment>> env = store_.GetEnvironment(change.environment);
  if (!env.ok() || !env->has_value()) return false;  // not ours (yet), or the store is down
  if (!state::IsLive((*env)->state)) return false;
  if (!store_.Enqueue(WorkKeyFor(**env), clock_.Now()).ok()) return false;
  enqueued_.fetch_add(1);
  if (notify_) notify_();
  return true;
}

void ProviderChangeFeed::Watch(providers::Provider& provider, std::stop_token stop) {
  const std::string name = provider.Info().name;
  Duration pause = options_.retry_after;
  std::mutex mu;
  std::condition_variable_any wake;
  while (!stop.stop_requested()) {
    // Atomic: a provider may call the sink from a thread of its own (Docker's start probe).
    std::atomic<bool> delivered = false;
    absl::Status s = provider.WatchChanges(
        [this, &delivered](const providers::EnvironmentChange& change) {
          delivered.store(true);
          Deliver(change);
        },
        stop);
    if (stop.stop_requested()) return;
    if (s.code() == absl::StatusCode::kUnimplemented) {
      spdlog::info("provider {}: no change stream; progressing environments are polled", name);
      return;
    }
    if (delivered) pause = options_.retry_after;
    spdlog::warn("provider {}: change stream ended ({}); again in {} ms", name, s.ToString(),
                 std::chrono::duration_cast<std::chrono::milliseconds>(pause).count());
    std::unique_lock<std::mutex> lock(mu);
    wake.wait_for(lock, stop, pause, [] { return false; });
    pause = std::min(pause * 2, options_.max_retry_after);
  }
}

}  // namespace eph::controller
