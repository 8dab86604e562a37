// Resyncer: the periodic safety net under the webhooks.
//
// Each pass (every `interval` on the injected Clock, and once at Start):
//  1. enqueues the work key of every live environment, so a missed webhook (close, unlabel,
//     push) and a TTL / idle deadline are acted on within one interval, and a missed requeue
//     (ephd died after CompleteWork) is recovered;
//  2. sweeps orphans: asks every enabled provider for the objects it holds with Eph's labels
//     (ListOwned) and destroys those whose eph.dev/environment is not a live environment —
//     leftovers of a crash or of a destroy that reported done too early. Objects without the
//     environment label are never touched.
//  3. with a forge, finds labelled pull requests without an environment: for each project Eph
//     has seen (with the trigger labels of its eph.yaml as last read), one list of its open pull
//     requests; each carrying a trigger label and without a live environment is enqueued, so a
//     lost `labeled` webhook is caught within one interval too. One API call per project and
//     pass; the reconciler decides as for a webhook (draft, fork, /eph down still apply).
//
// Thread-safety: Start/Stop from one thread; RunOnce and Wake from any thread.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "pkg/base/clock.h"
#include "pkg/controller/databases.h"
#include "pkg/controller/metrics.h"
#include "pkg/forge/forge.h"
#include "pkg/providers/provider.h"
#include "pkg/state/store.h"

namespace eph::controller {

struct ResyncOptions {
  Duration interval = std::chrono::minutes(5);
  bool sweep_orphans = true;
  // The Store's InstallationId: only objects carrying it (providers::kInstallationLabel) are
  // swept, so installations sharing a cluster, engine or database server never destroy each
  // other's environments. Empty: every Eph-labelled object is this installation's.
  std::string installation;
  // Also sweeps databases and roles of environments that are not live (null: no databases).
  EnvironmentDatabases* databases = nullptr;
  // Lists the open pull requests of known projects (step 3; null: skipped).
  forge::Forge* forge = nullptr;
  // The longest the background thread sleeps without checking the clock (real time).
  Duration max_wait = std::chrono::seconds(30);
};

struct ResyncReport {
  int64_t enqueued = 0;
  int64_t orphans_destroyed = 0;
  int64_t labelled_found = 0;  // labelled pull requests without an environment, enqueued
  std::vector<std::string> errors;  // per provider / environment; the pass goes on past them
};

class Resyncer {
 public:
  // `on_enqueued` wakes the work queue (WorkQueueRunner::Notify). References must outlive this.
  Resyncer(state::Store& store, providers::ProviderRegistry& providers, const Clock& clock,
           ControllerMetrics& metrics, ResyncOptions options,
           std::function<void()> on_enqueued = {});
  ~Resyncer();  // Stop()
  Resyncer(const Resyncer&) = delete;
  Resyncer& operator=(const Resyncer&) = delete;

  // One full pass. Errors only when listing environments failed.
  absl::StatusOr<ResyncReport> RunOnce();
  // Step 1 alone: returns the number of keys enqueued.
  absl::StatusOr<int64_t> EnqueueLive();
  // Step 2 alone: returns what was destroyed; errors are appended to `errors`.
  int64_t SweepOrphans(std::vector<std::string>& errors);
  // Step 3 alone: returns the pull requests enqueued; errors are appended to `errors`.
  int64_t EnqueueLabelledWithoutEnvironment(std::vector<std::string>& errors);

  // Runs a pass now and then every `interval` on a background thread.
  void Start();
  void Stop();
  // Makes the background thread look at the clock again (after FakeClock::Advance in tests).
  void Wake();
  // Completed background and RunOnce passes.
  int64_t passes() const;
  // Waits (real time) until at least `n` passes completed; false on timeout.
  bool WaitForPasses(int64_t n, Duration timeout);

 private:
  void Loop();

  state::Store& store_;
  providers::ProviderRegistry& providers_;
  const Clock& clock_;
  ControllerMetrics& metrics_;
  const ResyncOptions options_;
  std::function<void()> on_enqueued_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  bool woken_ = false;
  int64_t passes_ = 0;
  std::thread thread_;
};

}  // namespace eph::controller
