// EnvironmentController: the controller as ephd runs it. The reconciler, the work-queue workers
// that run it, and what puts keys on the queue besides the webhook intake and the API: the
// periodic resync and the providers' change streams. It knows how these fit: the feeds wake the
// workers, the workers renew their leases through the store, the feeds stop before the workers
// they call into.
//
// Thread-safety: Start and Stop from one thread; Notify and running from any.
#pragma once

#include "pkg/base/clock.h"
#include "pkg/base/metrics.h"
#include "pkg/base/random.h"
#include "pkg/controller/metrics.h"
#include "pkg/controller/provider_changes.h"
#include "pkg/controller/reconciler.h"
#include "pkg/controller/resync.h"
#include "pkg/controller/work_queue_runner.h"
#include "pkg/forge/forge.h"
#include "pkg/providers/provider.h"
#include "pkg/state/store.h"

namespace eph::controller {

struct EnvironmentControllerOptions {
  ReconcilerOptions reconciler;
  // Without a `renew_lease`, the workers renew their leases with Store::RenewLease.
  WorkQueueOptions queue;
  // `forge` is the controller's forge (it looks for labelled pull requests without an
  // environment).
  ResyncOptions resync;
};

class EnvironmentController {
 public:
  // All references must outlive the controller.
  EnvironmentController(state::Store& store, forge::Forge& forge,
                        providers::ProviderRegistry& providers, MetricsRegistry& metrics,
                        const Clock& clock, Random& random, EnvironmentControllerOptions options);
  ~EnvironmentController();  // Stop()
  EnvironmentController(const EnvironmentController&) = delete;
  EnvironmentController& operator=(const EnvironmentController&) = delete;

  // The workers, then the resync and the change feed.
  void Start();
  // The change feed and the resync first (they call into the workers), then the workers, each
  // finishing the key in hand. Safe without Start and twice.
  void Stop();
  // Work was enqueued (by the intake or the API): wake an idle worker.
  void Notify() { runner_.Notify(); }
  bool running() const { return runner_.running(); }

 private:
  ControllerMetrics metrics_;
  EnvironmentReconciler reconciler_;
  WorkQueueRunner runner_;
  Resyncer resync_;
  ProviderChangeFeed changes_;
};

}  // namespace eph::controller
