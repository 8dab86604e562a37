// WorkQueueRunner: the worker threads that drain the durable work queue (Store::ClaimWork) into
// the reconciler.
//
// Each worker loops: claim a due key (a lease, so no other worker in this or any other ephd on
// the same database holds it) -> Reconcile(key) -> settle the key by the result:
//   OK                       CompleteWork; with requeue_after, the key is enqueued again for
//                            now + requeue_after (an earlier enqueue, e.g. a webhook, wins)
//   transient error          RetryWork at now + BackoffDelay(attempts): exponential per key,
//                            with jitter from the injected Random (retry_policy.h)
//   terminal error           RecordTerminalFailure (the environment becomes `failed` with the
//                            message), then CompleteWork: never retried in a loop
// With nothing due, a worker waits on a condition variable until the next key is due (per the
// injected Clock), at most `max_wait` (work enqueued by another ephd is seen within that), or
// until Notify() (the webhook handler and the API call it after enqueueing). It never spins.
//
// Long reconciles: while a key is being reconciled, a keeper thread renews its lease every
// lease_for / 3 through `renew_lease`, so a slow Apply does not let a second worker in. Without
// `renew_lease` (the Store has no renewal method yet), keep reconciles shorter than `lease_for`.
//
// Stop() lets each worker finish the key in hand, settles it, and joins the threads.
//
// Thread-safety: Start/Stop from one thread; Notify from any thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "pkg/base/clock.h"
#include "pkg/base/random.h"
#include "pkg/controller/metrics.h"
#include "pkg/controller/reconciler.h"
#include "pkg/controller/retry_policy.h"
#include "pkg/state/store.h"

namespace eph::controller {

// Extends `lease` to now + lease_for and returns it with the new expiry; Aborted if the lease
// was lost. Wire to the Store's renewal method.
using LeaseRenewer = std::function<absl::StatusOr<state::Lease>(const state::Lease& lease,
                                                                TimePoint now, Duration lease_for)>;

// "host:pid": an owner unique to this process, also across machines sharing a store.
std::string ProcessOwner();

struct WorkQueueOptions {
  int workers = 4;
  // Lease owner prefix; worker i claims as "<owner>/<i>". Make it unique per process
  // (ProcessOwner()) so leases say who holds them.
  std::string owner = "ephd";
  Duration lease_for = std::chrono::minutes(2);
  // The longest a worker sleeps without being notified.
  Duration max_wait = std::chrono::seconds(30);
  // How long a worker waits after the store failed (database unreachable).
  Duration store_error_wait = std::chrono::seconds(1);
  BackoffOptions backoff;
  LeaseRenewer renew_lease;  // optional
  // Called after each key is settled (completed, requeued or scheduled for retry), on the
  // worker's thread. For logs and for tests that wait for the workers.
  std::function<void(const std::string& key, ReconcileOutcome outcome)> on_settled;
};

class WorkQueueRunner {
 public:
  // All references must outlive the runner.
  WorkQueueRunner(state::Store& store, Reconciler& reconciler, const Clock& clock, Random& random,
                  ControllerMetrics& metrics, WorkQueueOptions options);
  ~WorkQueueRunner();  // Stop()
  WorkQueueRunner(const WorkQueueRunner&) = delete;
  WorkQueueRunner& operator=(const WorkQueueRunner&) = delete;

  void Start();
  void Stop();
  // Wakes the waiting workers: new work was enqueued (or the clock was moved, in tests).
  void Notify();
  bool running() const { return running_.load(); }

  // Claims one due key and processes it on the calling thread. False when nothing was due.
  // For tools and tests; the workers call it in their loop.
  absl::StatusOr<bool> RunOnce(const std::string& owner);

 private:
  // A key being reconciled: the keeper renews `lease` while `mu` is free.
  struct InFlight {
    std::mutex mu;
    state::Lease lease;
    bool finished = false;
  };

  void WorkerLoop(int index);
  void KeeperLoop();
  void RenewDueLeases();
  void Process(const state::Lease& claimed);
  void RefreshQueueDepth();
  // Waits until notified, stopped, or `timeout` passed; `seen` is the notify generation the
  // caller last acted on.
  void Wait(Duration timeout, uint64_t seen);

  state::Store& store_;
  Reconciler& reconciler_;
  const Clock& clock_;
  Random& random_;
  ControllerMetrics& metrics_;
  const WorkQueueOptions options_;

  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  uint64_t generation_ = 0;  // bumped by Notify()
  std::map<uint64_t, std::shared_ptr<InFlight>> in_flight_;
  uint64_t next_in_flight_id_ = 0;
  std::atomic<bool> running_{false};
  std::vector<std::thread> threads_;
};

}  // namespace eph::controller
