#include "pkg/controller/metrics.h"

namespace eph::controller {

ControllerMetrics::ControllerMetrics() { Wire(own_); }

ControllerMetrics::ControllerMetrics(MetricsRegistry& registry) { Wire(registry); }

void ControllerMetrics::Wire(MetricsRegistry& registry) {
  const std::string help = "Reconcile attempts by result.";
  ok_ = &registry.GetCounter("eph_reconciles_total", help, R"(result="ok")");
  requeued_ = &registry.GetCounter("eph_reconciles_total", help, R"(result="requeued")");
  retried_ = &registry.GetCounter("eph_reconciles_total", help, R"(result="retried")");
  terminal_ = &registry.GetCounter("eph_reconciles_total", help, R"(result="terminal")");
  lease_lost_ = &registry.GetCounter("eph_reconciles_total", help, R"(result="lease_lost")");
  resync_passes_ = &registry.GetCounter("eph_resync_passes_total", "Completed resync passes.");
  resync_enqueued_ =
      &registry.GetCounter("eph_resync_enqueued_total", "Work keys enqueued by resync passes.");
  orphans_destroyed_ = &registry.GetCounter(
      "eph_orphans_destroyed_total", "Provider leftovers of environments that are not live.");
  std::shared_ptr<Gauges> gauges = gauges_;
  registry.AddGauge("eph_work_queue_depth", "Work keys in the queue, leased or not.",
                    [gauges] { return static_cast<double>(gauges->queue_depth.load()); });
  registry.AddGauge("eph_reconcile_workers_busy", "Workers inside a reconcile.",
                    [gauges] { return static_cast<double>(gauges->workers_busy.load()); });
}

void ControllerMetrics::CountReconcile(ReconcileOutcome outcome) {
  switch (outcome) {
    case ReconcileOutcome::kOk:
      ok_->Inc();
      break;
    case ReconcileOutcome::kRequeued:
      requeued_->Inc();
      break;
    case ReconcileOutcome::kRetried:
      retried_->Inc();
      break;
    case ReconcileOutcome::kTerminal:
      terminal_->Inc();
      break;
    case ReconcileOutcome::kLeaseLost:
      lease_lost_->Inc();
      break;
  }
}

void ControllerMetrics::SetQueueDepth(int64_t depth) { gauges_->queue_depth.store(depth); }

void ControllerMetrics::AddBusyWorkers(int64_t delta) { gauges_->workers_busy.fetch_add(delta); }

void ControllerMetrics::CountResyncPass(int64_t enqueued) {
  resync_passes_->Inc();
  resync_enqueued_->Inc(enqueued);
}

void ControllerMetrics::CountOrphansDestroyed(int64_t n) { orphans_destroyed_->Inc(n); }

ControllerMetricsSnapshot ControllerMetrics::Take() const {
  ControllerMetricsSnapshot s;
  s.reconciles_ok = ok_->Value();
  s.reconciles_requeued = requeued_->Value();
  s.reconciles_retried = retried_->Value();
  s.reconciles_terminal = terminal_->Value();
  s.reconciles_lease_lost = lease_lost_->Value();
  s.queue_depth = gauges_->queue_depth.load();
  s.workers_busy = gauges_->workers_busy.load();
  s.resync_passes = resync_passes_->Value();
  s.resync_enqueued = resync_enqueued_->Value();
  s.orphans_destroyed = orphans_destroyed_->Value();
  return s;
}

}  // namespace eph::controller
