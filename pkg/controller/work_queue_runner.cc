#include "pkg/controller/work_queue_runner.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

namespace eph::controller {

std::string ProcessOwner() {
  char hostname[256] = {};
  gethostname(hostname, sizeof(hostname) - 1);
  return absl::StrCat(hostname, ":", getpid());
}
namespace {

constexpr Duration kMinWait = std::chrono::milliseconds(20);

}  // namespace

WorkQueueRunner::WorkQueueRunner(state::Store& store, Reconciler& reconciler, const Clock& clock,
                                 Random& random, ControllerMetrics& metrics,
                                 WorkQueueOptions options)
    : store_(store),
      reconciler_(reconciler),
      clock_(clock),
      random_(random),
      metrics_(metrics),
      options_(std::move(options)) {}

WorkQueueRunner::~WorkQueueRunner() { Stop(); }

void WorkQueueRunner::Start() {
  std::lock_guard<std::mutex> lock(mu_);
  if (running_.load()) return;
  stopping_ = false;
  running_ = true;
  const int workers = std::max(1, options_.workers);
  for (int i = 0; i < workers; ++i) threads_.emplace_back([this, i] { WorkerLoop(i); });
  if (options_.renew_lease) threads_.emplace_back([this] { KeeperLoop(); });
}

void WorkQueueRunner::Stop() {
  std::vector<std::thread> threads;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!running_.load()) return;
    stopping_ = true;
    threads.swap(threads_);
  }
  cv_.notify_all();
  for (std::thread& t : threads) t.join();
  running_ = false;
}

void WorkQueueRunner::Notify() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++generation_;
  }
  cv_.notify_all();
}

void WorkQueueRunner::Wait(Duration timeout, uint64_t seen) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, timeout, [&] { return stopping_ || generation_ != seen; });
}

void WorkQueueRunner::WorkerLoop(int index) {
  const std::string owner = options_.owner + "/" + std::to_string(index);
  while (true) {
    uint64_t seen = 0;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) return;
      seen = generation_;
    }
    absl::StatusOr<bool> worked = RunOnce(owner);
    if (worked.ok() && *worked) continue;
    Duration wait = options_.max_wait;
    if (!worked.ok()) {
      spdlog::warn("work queue: claim failed: {}", worked.status().ToString());
      wait = options_.store_error_wait;
    } else {
      RefreshQueueDepth();
      absl::StatusOr<std::optional<TimePoint>> next = store_.NextDue();
      if (next.ok() && next->has_value()) {
        // "Due now" with nothing claimed means another worker took the key between our claim
        // and NextDue; a short floor keeps such races from turning into a spin. Work enqueued
        // meanwhile in this process wakes us through Notify() anyway.
        wait = std::clamp(**next - clock_.Now(), kMinWait, std::max(kMinWait, options_.max_wait));
      }
    }
    Wait(wait, seen);
  }
}

absl::StatusOr<bool> WorkQueueRunner::RunOnce(const std::string& owner) {
  absl::StatusOr<std::optional<state::Lease>> lease =
      store_.ClaimWork(owner, clock_.Now(), options_.lease_for);
  if (!lease.ok()) return lease.status();
  if (!lease->has_value()) return false;
  Process(**lease);
  RefreshQueueDepth();
  return true;
}

void WorkQueueRunner::Process(const state::Lease& claimed) {
  auto entry = std::make_shared<InFlight>();
  entry->lease = claimed;
  uint64_t id = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    id = next_in_flight_id_++;
    in_flight_[id] = entry;
  }
  metrics_.AddBusyWorkers(1);
  const TimePoint started = clock_.Now();
  // begin/done bracket the reconcile itself (done comes before the lease is released), so logs
  // of several processes show whether two ever worked on one key at once.
  spdlog::debug("work queue: begin {} as {}", claimed.key, claimed.owner);
  absl::StatusOr<ReconcileResult> result = reconciler_.Reconcile(claimed.key);
  spdlog::debug("work queue: done {} as {}", claimed.key, claimed.owner);
  metrics_.AddBusyWorkers(-1);

  state::Lease lease;
  {
    // Waits for a renewal in progress, so the lease used below is the current one.
    std::lock_guard<std::mutex> entry_lock(entry->mu);
    entry->finished = true;
    lease = entry->lease;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    in_flight_.erase(id);
  }

  const TimePoint now = clock_.Now();
  if (!options_.renew_lease && now - started > options_.lease_for) {
    spdlog::warn("work queue: {} took longer than its lease; another worker may have run it",
                 claimed.key);
  }
  auto settled = [&](ReconcileOutcome outcome) {
    metrics_.CountReconcile(outcome);
    if (options_.on_settled) options_.on_settled(lease.key, outcome);
  };
  // The settle call failed: with Aborted another worker took the key over (its lease expired);
  // otherwise the store is unreachable and the lease runs out, so the key is claimed again.
  auto lost = [&](const absl::Status& s) {
    spdlog::warn("work queue: could not settle {}: {}", lease.key, s.ToString());
    settled(ReconcileOutcome::kLeaseLost);
  };

  if (result.ok()) {
    if (absl::Status s = store_.CompleteWork(lease, now); !s.ok()) return lost(s);
    if (result->requeue_after) {
      // After CompleteWork, so the delay holds; a concurrent enqueue for an earlier time wins.
      if (absl::Status s = store_.Enqueue(lease.key, now + *result->requeue_after); !s.ok()) {
        spdlog::warn("work queue: could not requeue {}: {}", lease.key, s.ToString());
      }
      settled(ReconcileOutcome::kRequeued);
    } else {
      settled(ReconcileOutcome::kOk);
    }
    spdlog::debug("work queue: {}: {}", lease.key, result->summary);
    return;
  }

  const absl::Status& error = result.status();
  if (IsTerminalError(error)) {
    spdlog::error("work queue: {}: {} (not retried)", lease.key, error.ToString());
    absl::Status recorded = reconciler_.RecordTerminalFailure(lease.key, error);
    if (recorded.ok()) {
      if (absl::Status s = store_.CompleteWork(lease, now); !s.ok()) return lost(s);
      settled(ReconcileOutcome::kTerminal);
      return;
    }
    // Not recorded (store down): retry later rather than lose the failure.
    spdlog::warn("work queue: could not record the failure of {}: {}", lease.key,
                 recorded.ToString());
  }
  const Duration delay = BackoffDelay(lease.attempts, options_.backoff, random_);
  spdlog::warn("work queue: {}: {}; retry {} in {} ms", lease.key, error.ToString(),
               lease.attempts + 1,
               std::chrono::duration_cast<std::chrono::milliseconds>(delay).count());
  if (absl::Status s = store_.RetryWork(lease, now + delay, error.ToString()); !s.ok()) {
    return lost(s);
  }
  settled(ReconcileOutcome::kRetried);
}

void WorkQueueRunner::RefreshQueueDepth() {
  absl::StatusOr<int64_t> depth = store_.QueueDepth();
  if (depth.ok()) metrics_.SetQueueDepth(*depth);
}

void WorkQueueRunner::KeeperLoop() {
  const Duration period = std::max<Duration>(options_.lease_for / 3, std::chrono::milliseconds(1));
  while (true) {
    uint64_t seen = 0;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) return;
      seen = generation_;
    }
    RenewDueLeases();
    Wait(std::min(period, options_.max_wait), seen);
  }
}

void WorkQueueRunner::RenewDueLeases() {
  std::vector<std::shared_ptr<InFlight>> entries;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [id, entry] : in_flight_) entries.push_back(entry);
  }
  for (const std::shared_ptr<InFlight>& entry : entries) {
    std::lock_guard<std::mutex> entry_lock(entry->mu);
    if (entry->finished) continue;
    const TimePoint now = clock_.Now();
    // Renew once a third of the lease has passed, leaving two thirds of slack.
    if (entry->lease.expires_at - now > options_.lease_for * 2 / 3) continue;
    absl::StatusOr<state::Lease> renewed =
        options_.renew_lease(entry->lease, now, options_.lease_for);
    if (renewed.ok()) {
      entry->lease = *renewed;
    } else {
      spdlog::warn("work queue: could not renew the lease on {}: {}", entry->lease.key,
                   renewed.status().ToString());
    }
  }
}

}  // namespace eph::controller
