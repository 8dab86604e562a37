#include "pkg/controller/environment_controller.h"

#include <utility>

namespace eph::controller {
namespace {

WorkQueueOptions WithLeaseRenewal(WorkQueueOptions options, state::Store& store) {
  if (!options.renew_lease) {
    options.renew_lease = [&store](const state::Lease& lease, TimePoint now, Duration lease_for) {
      return store.RenewLease(lease, now, lease_for);
    };
  }
  return options;
}

ResyncOptions WithForge(ResyncOptions options, forge::Forge& forge) {
  options.forge = &forge;
  return options;
}

}  // namespace

EnvironmentController::EnvironmentController(state::Store& store, forge::Forge& forge,
                                             providers::ProviderRegistry& providers,
                                             MetricsRegistry& metrics, const Clock& clock,
                                             Random& random, EnvironmentControllerOptions options)
    : metrics_(metrics),
      reconciler_(store, forge, providers, clock, random, std::move(options.reconciler)),
      runner_(store, reconciler_, clock, random, metrics_,
              WithLeaseRenewal(std::move(options.queue), store)),
      resync_(store, providers, clock, metrics_, WithForge(std::move(options.resync), forge),
              [this] { runner_.Notify(); }),
      changes_(store, providers, clock, [this] { runner_.Notify(); }) {}

EnvironmentController::~EnvironmentController() { Stop(); }

void EnvironmentController::Start() {
  runner_.Start();
  resync_.Start();
  changes_.Start();
}

void EnvironmentController::Stop() {
  changes_.Stop();
  resync_.Stop();
  runner_.Stop();
}

}  // namespace eph::controller
