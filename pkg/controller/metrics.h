// ControllerMetrics: counters for the work queue, the reconciler and the resync, for /metrics.
//
// Built standalone (tests read Take()) or on ephd's MetricsRegistry, which then renders them:
//   eph_reconciles_total{result="ok|requeued|retried|terminal|lease_lost"}   counter
//   eph_work_queue_depth                 gauge: keys in the queue (leased or not), all ephd;
//                                        includes live environments waiting for a deadline
//   eph_reconcile_workers_busy           gauge: workers of this ephd inside a reconcile
//   eph_resync_passes_total              counter
//   eph_resync_enqueued_total            counter: keys enqueued by resync passes
//   eph_orphans_destroyed_total          counter: environments' leftovers removed by the sweep
//
// Thread-safety: all methods are safe to call from any thread. The registry may outlive this
// object: gauges hold their own shared state.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

#include "pkg/base/metrics.h"

namespace eph::controller {

enum class ReconcileOutcome { kOk, kRequeued, kRetried, kTerminal, kLeaseLost };

struct ControllerMetricsSnapshot {
  int64_t reconciles_ok = 0;
  int64_t reconciles_requeued = 0;
  int64_t reconciles_retried = 0;
  int64_t reconciles_terminal = 0;
  int64_t reconciles_lease_lost = 0;
  int64_t queue_depth = 0;
  int64_t workers_busy = 0;
  int64_t resync_passes = 0;
  int64_t resync_enqueued = 0;
  int64_t orphans_destroyed = 0;
};

class ControllerMetrics {
 public:
  ControllerMetrics();
  explicit ControllerMetrics(MetricsRegistry& registry);
  ControllerMetrics(const ControllerMetrics&) = delete;
  ControllerMetrics& operator=(const ControllerMetrics&) = delete;

  void CountReconcile(ReconcileOutcome outcome);
  void SetQueueDepth(int64_t depth);
  void AddBusyWorkers(int64_t delta);
  void CountResyncPass(int64_t enqueued);
  void CountOrphansDestroyed(int64_t n);

  ControllerMetricsSnapshot Take() const;

 private:
  struct Gauges {
    std::atomic<int64_t> queue_depth{0};
    std::atomic<int64_t> workers_busy{0};
  };
  void Wire(MetricsRegistry& registry);

  MetricsRegistry own_;  // backs the counters when no registry is given
  Counter* ok_ = nullptr;
  Counter* requeued_ = nullptr;
  Counter* retried_ = nullptr;
  Counter* terminal_ = nullptr;
  Counter* lease_lost_ = nullptr;
  Counter* resync_passes_ = nullptr;
  Counter* resync_enqueued_ = nullptr;
  Counter* orphans_destroyed_ = nullptr;
  std::shared_ptr<Gauges> gauges_ = std::make_shared<Gauges>();
};

}  // namespace eph::controller
