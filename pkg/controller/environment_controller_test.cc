#include "pkg/controller/environment_controller.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "pkg/controller/test_world.h"
#include "pkg/workkey/work_key.h"

namespace eph::controller::testing {
namespace {

// Polls `done` until it holds or `deadline` of real time passes.
template <typename F>
bool WaitFor(F done, std::chrono::seconds deadline = std::chrono::seconds(20)) {
  const auto until = std::chrono::steady_clock::now() + deadline;
  while (std::chrono::steady_clock::now() < until) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return done();
}

TEST(EnvironmentControllerTest, WorkersTakeANotifiedKeyToAReadyEnvironmentAndStopInOrder) {
  World w;
  w.OpenPr(80);
  MetricsRegistry metrics;
  EnvironmentControllerOptions options;
  options.reconciler = w.options;
  options.queue.workers = 2;
  options.resync.interval = std::chrono::hours(24);
  EnvironmentController controller(*w.store, w.forge, w.registry, metrics, w.clock, w.random,
                                   options);
  EXPECT_FALSE(controller.running());
  controller.Start();
  EXPECT_TRUE(controller.running());
  ASSERT_TRUE(w.store->Enqueue(PullRequestKey(kRepo, 80), w.clock.Now()).ok());
  controller.Notify();
  EXPECT_TRUE(WaitFor([&] {
    std::optional<state::Environment> live = w.Live(80);
    return live && live->state == state::EnvState::kReady;
  })) << "the notified key was reconciled";
  controller.Stop();
  EXPECT_FALSE(controller.running());
  controller.Stop();  // twice is harmless
}

}  // namespace
}  // namespace eph::controller::testing
