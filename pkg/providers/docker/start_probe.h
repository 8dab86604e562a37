// StartProber: Eph's emulation of a healthcheck's `start_interval` on Docker engines older than
// API 1.44 (Docker 25). Those drop the setting and run a container's first check one `interval`
// after it starts, so an app that is up in milliseconds counts as starting for a whole interval.
//
// Contract:
//  - Track() a running container whose service sets start_interval while its engine health is
//    `starting`; during its start period Eph runs the healthcheck's test in it (the Runner:
//    the engine's exec API) every start_interval, the first one start_interval after the
//    container started, as a newer engine would. The first exit 0 marks it Passed and announces
//    its environment to every sink (the provider's change watchers), so the reconciler observes
//    at once. A failed check, or a runner error, only waits for the next one; a container that is
//    gone or no longer running (NotFound, FailedPrecondition) is dropped. No check starts after
//    the start period.
//  - Nothing else changes: the engine's own checks go on at `interval`, and once its health
//    leaves `starting` the engine's word wins (the caller Forgets the container).
//  - Memory only: after a restart of ephd, the next Observe tracks the container again; a
//    container that already passed before the restart waits for the engine's own check.
//  - Bounded: at most max_tracked containers are probed (more wait for the engine's own check),
//    at most max_passed passes are remembered (the oldest forgotten first).
//  - Checks run one at a time on the prober's own thread, started by the first Track when
//    `background` is set and stopped by the destructor; times come from the injected Clock.
//    Without `background` nothing runs until RunDue() is called (tests, with a FakeClock).
//
// Thread-safety: every method may be called from any thread. Sinks are called on the prober's
// thread, never after RemoveSink has returned.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "pkg/base/clock.h"
#include "pkg/providers/docker/engine_client.h"
#include "pkg/providers/provider.h"

namespace eph::providers::docker {

struct StartProbe {
  std::string container_id;
  std::string environment;           // announced when the check passes
  std::vector<std::string> command;  // what exec runs: CMD's arguments, or /bin/sh -c for CMD-SHELL
  TimePoint started{};               // the container's StartedAt
  Duration start_interval{};
  Duration start_period{};
  Duration timeout{};  // of one check
};

// What to emulate for a container, from its inspect (GET /containers/{id}/json): nullopt unless
// it carries kStartIntervalLabel, its engine dropped Healthcheck.StartInterval (a newer engine
// keeps it and checks by itself), its test runs a command and its StartedAt reads. Pure.
std::optional<StartProbe> StartProbeOf(const nlohmann::json& container,
                                       const std::string& environment);

// One check through the engine's exec API: create, start attached (the answer ends when the
// command does, its output is discarded; bounded by probe.timeout), then the exit code.
// NotFound for a container that is gone, FailedPrecondition for one not running.
absl::StatusOr<int> ExecCheck(const EngineClient& engine, const StartProbe& probe);

class StartProber {
 public:
  // Runs probe.command in the container and returns its exit code.
  using Runner = std::function<absl::StatusOr<int>(const StartProbe& probe)>;
  struct Options {
    bool background = true;
    size_t max_tracked = 256;
    size_t max_passed = 4096;
  };

  StartProber(const Clock& clock, Runner runner, Options options);
  StartProber(const Clock& clock, Runner runner) : StartProber(clock, std::move(runner), {}) {}
  ~StartProber();
  StartProber(const StartProber&) = delete;
  StartProber& operator=(const StartProber&) = delete;

  // Idempotent; ignored once the start period is over, or for a container that passed.
  void Track(StartProbe probe);
  bool Passed(const std::string& container_id) const;
  // Stops probing the container and forgets that it passed.
  void Forget(const std::string& container_id);
  size_t Tracked() const;

  uint64_t AddSink(ChangeSink sink);
  void RemoveSink(uint64_t id);

  // Runs every check due at the clock's now, on the caller's thread; when the next one is due.
  std::optional<TimePoint> RunDue();

 private:
  struct Entry {
    StartProbe probe;
    TimePoint next{};
  };
  void Loop(std::stop_token stop);
  // After one check of `id` ended at `at` with `code`: true if it passed.
  bool Record(const std::string& id, const absl::StatusOr<int>& code, TimePoint at);
  void Announce(const std::string& environment);

  const Clock& clock_;
  const Runner runner_;
  const Options options_;
  mutable std::mutex mu_;
  std::condition_variable_any wake_;
  bool changed_ = false;                  // a Track since the thread last looked
  std::map<std::string, Entry> tracked_;  // by container id
  std::map<std::string, TimePoint> passed_;
  std::deque<std::string> passed_order_;  // oldest first, for max_passed
  std::mutex sinks_mu_;
  std::map<uint64_t, ChangeSink> sinks_;
  uint64_t next_sink_ = 1;
  std::jthread thread_;  // last: stopped and joined before the members above go
};

}  // namespace eph::providers::docker
