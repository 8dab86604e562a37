#include "pkg/controller/work_queue_runner.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <thread>

#include <unistd.h>

#include "pkg/controller/test_world.h"
#include "pkg/workkey/work_key.h"

namespace eph::controller::testing {
namespace {

using providers::FakeProvider;
using providers::Phase;
using state::EnvState;
using std::chrono::milliseconds;
using std::chrono::seconds;

// Generous: only reached when something is broken.
constexpr Duration kDeadline = std::chrono::seconds(20);

// Records what the runner settled and lets a test wait for it without sleeping.
class SettleLog {
 public:
  void Add(const std::string& key, ReconcileOutcome outcome) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      entries_.push_back({key, outcome});
    }
    cv_.notify_all();
  }
  std::function<void(const std::string&, ReconcileOutcome)> Callback() {
    return [this](const std::string& key, ReconcileOutcome outcome) { Add(key, outcome); };
  }
  // Waits until `done()` holds, re-checking after each settled key. False on timeout.
  bool WaitFor(const std::function<bool()>& done, Duration timeout = kDeadline) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    std::unique_lock<std::mutex> lock(mu_);
    while (true) {
      const size_t seen = entries_.size();
      lock.unlock();
      const bool ok = done();
      lock.lock();
      if (ok) return true;
      if (entries_.size() != seen) continue;  // settled while we looked: look again
      if (!cv_.wait_until(lock, deadline, [&] { return entries_.size() != seen; })) return false;
    }
  }
  size_t size() const {
    std::lock_guard<std::mutex> lock(mu_);
    return entries_.size();
  }
  std::vector<std::pair<std::string, ReconcileOutcome>> entries() const {
    std::lock_guard<std::mutex> lock(mu_);
    return entries_;
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::pair<std::string, ReconcileOutcome>> entries_;
};

// A one-shot gate: Wait() blocks until Open().
class Gate {
 public:
  void Open() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      open_ = true;
    }
    cv_.notify_all();
  }
  bool Wait(Duration timeout = kDeadline) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return open_; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
};

class ScriptedReconciler final : public Reconciler {
 public:
  std::function<absl::StatusOr<ReconcileResult>(const std::string&)> reconcile;
  absl::StatusOr<ReconcileResult> Reconcile(const std::string& key) override {
    return reconcile(key);
  }
  absl::Status RecordTerminalFailure(const std::string& key, const absl::Status& error) override {
    std::lock_guard<std::mutex> lock(mu);
    terminal.push_back({key, error});
    return absl::OkStatus();
  }
  std::mutex mu;
  std::vector<std::pair<std::string, absl::Status>> terminal;
};

// Wraps a reconciler and records the most reconciles of one key that ever ran at once.
class OverlapDetector final : public Reconciler {
 public:
  explicit OverlapDetector(Reconciler& inner) : inner_(inner) {}
  absl::StatusOr<ReconcileResult> Reconcile(const std::string& key) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      max_ = std::max(max_, ++in_flight_[key]);
      ++total_;
    }
    // Widen the window in which a second worker could wrongly enter.
    for (int i = 0; i < 50; ++i) std::this_thread::yield();
    absl::StatusOr<ReconcileResult> result = inner_.Reconcile(key);
    {
      std::lock_guard<std::mutex> lock(mu_);
      --in_flight_[key];
    }
    return result;
  }
  absl::Status RecordTerminalFailure(const std::string& key, const absl::Status& error) override {
    return inner_.RecordTerminalFailure(key, error);
  }
  int max() const {
    std::lock_guard<std::mutex> lock(mu_);
    return max_;
  }
  int total() const {
    std::lock_guard<std::mutex> lock(mu_);
    return total_;
  }

 private:
  Reconciler& inner_;
  mutable std::mutex mu_;
  std::map<std::string, int> in_flight_;
  int max_ = 0;
  int total_ = 0;
};

WorkQueueOptions Options(SettleLog* log = nullptr, int workers = 2) {
  WorkQueueOptions o;
  o.workers = workers;
  o.owner = "test";
  if (log != nullptr) o.on_settled = log->Callback();
  return o;
}

int64_t Depth(World& w) {
  absl::StatusOr<int64_t> d = w.store->QueueDepth();
  EXPECT_TRUE(d.ok()) << d.status();
  return d.ok() ? *d : -1;
}

// True when no key is due: everything left in the queue waits for a later deadline.
bool NothingDue(World& w) {
  absl::StatusOr<std::optional<TimePoint>> next = w.store->NextDue();
  EXPECT_TRUE(next.ok()) << next.status();
  return next.ok() && (!next->has_value() || **next > w.clock.Now());
}

TimePoint NextDue(World& w) {
  absl::StatusOr<std::optional<TimePoint>> next = w.store->NextDue();
  EXPECT_TRUE(next.ok() && next->has_value());
  return next.ok() && next->has_value() ? **next : TimePoint{};
}

void Enqueue(World& w, int64_t pr) {
  ASSERT_TRUE(w.store->Enqueue(PullRequestKey(kRepo, pr), w.clock.Now()).ok());
}

// Leases say who holds them: this host and process, so that two ephd on one machine differ.
TEST(WorkQueueRunnerTest, ProcessOwnerIsHostAndPid) {
  char host[256] = {};
  ASSERT_EQ(gethostname(host, sizeof(host) - 1), 0);
  EXPECT_EQ(ProcessOwner(), std::string(host) + ":" + std::to_string(getpid()));
}

TEST(WorkQueueRunnerTest, RunOnceReconcilesADueKeyAndCompletesIt) {
  World w;
  ControllerMetrics metrics;
  WorkQueueRunner runner(*w.store, *w.reconciler, w.clock, w.random, metrics, Options());
  w.OpenPr(1);
  Enqueue(w, 1);

  absl::StatusOr<bool> worked = runner.RunOnce("t");
  ASSERT_TRUE(worked.ok()) << worked.status();
  EXPECT_TRUE(*worked);
  EXPECT_EQ(w.Live(1)->state, EnvState::kReady);
  EXPECT_EQ(w.store->completions(), 1);
  // Completed; the key is back only for the environment's next deadline (idle, 4h).
  EXPECT_EQ(Depth(w), 1);
  EXPECT_EQ(NextDue(w), w.clock.Now() + std::chrono::hours(4));
  EXPECT_FALSE(*runner.RunOnce("t"));
  const ControllerMetricsSnapshot m = metrics.Take();
  EXPECT_EQ(m.reconciles_requeued, 1);
  EXPECT_EQ(m.reconciles_retried + m.reconciles_terminal + m.reconciles_lease_lost, 0);
  EXPECT_EQ(m.queue_depth, 1);
  EXPECT_EQ(m.workers_busy, 0);
}

TEST(WorkQueueRunnerTest, BrokenConfigIsNeverRetried) {
  World w("version: \"1.0\"\nname: my-app\nkubernetes:\n  manifests: [/etc]\n");
  ControllerMetrics metrics;
  WorkQueueRunner runner(*w.store, *w.reconciler, w.clock, w.random, metrics, Options());
  w.OpenPr(2);
  Enqueue(w, 2);
  ASSERT_TRUE(*runner.RunOnce("t"));

  EXPECT_EQ(w.Live(2)->state, EnvState::kFailed);
  EXPECT_THAT(w.Live(2)->reason, ::testing::HasSubstr("eph.yaml:4"));
  EXPECT_TRUE(w.store->retries().empty());
  // Not looked at again before its TTL (72h, the default) unless something happens.
  EXPECT_EQ(NextDue(w), w.clock.Now() + std::chrono::hours(72));
  EXPECT_FALSE(*runner.RunOnce("t"));
  EXPECT_EQ(w.AllProviderCalls(), 0);
  // A webhook for the same commit (e.g. a comment edit) changes nothing either.
  Enqueue(w, 2);
  ASSERT_TRUE(*runner.RunOnce("t"));
  EXPECT_TRUE(w.store->retries().empty());
  EXPECT_TRUE(NothingDue(w));
  EXPECT_EQ(w.AllProviderCalls(), 0);
}

TEST(WorkQueueRunnerTest, TransientProviderErrorsAreRetriedWithGrowingBackoff) {
  World w;
  ControllerMetrics metrics;
  WorkQueueOptions options = Options();
  options.backoff.base = seconds(2);
  options.backoff.jitter = 0.2;
  WorkQueueRunner runner(*w.store, *w.reconciler, w.clock, w.random, metrics, options);
  w.OpenPr(3);
  for (int i = 0; i < 4; ++i) {
    w.provider->FailNext(FakeProvider::Method::kApply, absl::UnavailableError("apiserver down"));
  }
  Enqueue(w, 3);

  std::vector<Duration> delays;
  for (int attempt = 0; attempt < 4; ++attempt) {
    const TimePoint now = w.clock.Now();
    ASSERT_TRUE(*runner.RunOnce("t")) << "attempt " << attempt;
    ASSERT_EQ(w.store->retries().size(), static_cast<size_t>(attempt + 1));
    const RecordingStore::Retry retry = w.store->retries().back();
    EXPECT_EQ(retry.attempts, attempt);
    EXPECT_THAT(retry.error, ::testing::HasSubstr("apiserver down"));
    delays.push_back(retry.retry_at - now);
    // Not due before its time.
    EXPECT_FALSE(*runner.RunOnce("t"));
    w.clock.Set(retry.retry_at);
  }
  for (size_t i = 0; i < delays.size(); ++i) {
    const double expected = 2.0 * (1 << i);
    const double got = std::chrono::duration<double>(delays[i]).count();
    EXPECT_GE(got, expected * 0.8) << i;
    EXPECT_LE(got, expected * 1.2) << i;
    if (i > 0) {
      EXPECT_GT(delays[i], delays[i - 1]);
    }
  }
  ASSERT_TRUE(*runner.RunOnce("t"));
  EXPECT_EQ(w.Live(3)->state, EnvState::kReady);
  EXPECT_TRUE(NothingDue(w));
  EXPECT_EQ(w.store->retries().size(), 4u);
  EXPECT_EQ(metrics.Take().reconciles_retried, 4);
  EXPECT_EQ(metrics.Take().reconciles_requeued, 1);
}

TEST(WorkQueueRunnerTest, TerminalErrorIsRecordedAndCompletedNotRetried) {
  World w;
  ScriptedReconciler scripted;
  scripted.reconcile = [](const std::string&) -> absl::StatusOr<ReconcileResult> {
    return absl::FailedPreconditionError("namespace quota exhausted");
  };
  ControllerMetrics metrics;
  WorkQueueRunner runner(*w.store, scripted, w.clock, w.random, metrics, Options());
  Enqueue(w, 4);
  ASSERT_TRUE(*runner.RunOnce("t"));
  ASSERT_EQ(scripted.terminal.size(), 1u);
  EXPECT_EQ(scripted.terminal[0].first, PullRequestKey(kRepo, 4));
  EXPECT_EQ(scripted.terminal[0].second.message(), "namespace quota exhausted");
  EXPECT_TRUE(w.store->retries().empty());
  EXPECT_EQ(Depth(w), 0);
  EXPECT_EQ(metrics.Take().reconciles_terminal, 1);
}

TEST(WorkQueueRunnerTest, OtherErrorsAreRetriedToo) {
  World w;
  ScriptedReconciler scripted;
  scripted.reconcile = [](const std::string&) -> absl::StatusOr<ReconcileResult> {
    return absl::AbortedError("environment changed meanwhile");
  };
  ControllerMetrics metrics;
  WorkQueueRunner runner(*w.store, scripted, w.clock, w.random, metrics, Options());
  Enqueue(w, 5);
  ASSERT_TRUE(*runner.RunOnce("t"));
  EXPECT_EQ(w.store->retries().size(), 1u);
  EXPECT_TRUE(scripted.terminal.empty());
  EXPECT_EQ(Depth(w), 1);
}

TEST(WorkQueueRunnerTest, RequeueAfterBringsTheKeyBackLater) {
  World w;
  ControllerMetrics metrics;
  WorkQueueRunner runner(*w.store, *w.reconciler, w.clock, w.random, metrics, Options());
  w.provider->SetPhaseAfterApply(Phase::kProgressing);
  w.OpenPr(6);
  Enqueue(w, 6);
  ASSERT_TRUE(*runner.RunOnce("t"));
  EXPECT_EQ(w.Live(6)->state, EnvState::kProvisioning);
  EXPECT_EQ(Depth(w), 1);
  absl::StatusOr<std::optional<TimePoint>> next = w.store->NextDue();
  ASSERT_TRUE(next.ok() && next->has_value());
  EXPECT_EQ(**next, w.clock.Now() + w.options.progress_poll);
  EXPECT_FALSE(*runner.RunOnce("t"));
  EXPECT_TRUE(w.store->retries().empty());  // a requeue is not a failure

  w.provider->SetPhase(w.Live(6)->name, Phase::kReady);
  w.clock.Advance(w.options.progress_poll);
  ASSERT_TRUE(*runner.RunOnce("t"));
  EXPECT_EQ(w.Live(6)->state, EnvState::kReady);
  // Ready: the next visit is the idle deadline, 4h away.
  next = w.store->NextDue();
  ASSERT_TRUE(next.ok() && next->has_value());
  EXPECT_EQ(**next, w.clock.Now() + std::chrono::hours(4));
  EXPECT_EQ(metrics.Take().reconciles_requeued, 2);
}

TEST(WorkQueueRunnerTest, WorkersPickUpNotifiedWork) {
  World w;
  SettleLog log;
  ControllerMetrics metrics;
  WorkQueueRunner runner(*w.store, *w.reconciler, w.clock, w.random, metrics, Options(&log));
  runner.Start();
  w.OpenPr(7);
  Enqueue(w, 7);
  runner.Notify();
  ASSERT_TRUE(log.WaitFor([&] { return log.size() >= 1; }));
  EXPECT_EQ(w.Live(7)->state, EnvState::kReady);
  runner.Stop();
}

TEST(WorkQueueRunnerTest, WorkersWakeForARequeuedKeyWhenTheClockReachesIt) {
  World w;
  SettleLog log;
  ControllerMetrics metrics;
  WorkQueueRunner runner(*w.store, *w.reconciler, w.clock, w.random, metrics, Options(&log));
  w.provider->SetPhaseAfterApply(Phase::kProgressing);
  w.OpenPr(8);
  Enqueue(w, 8);
  runner.Start();
  runner.Notify();
  ASSERT_TRUE(log.WaitFor([&] { return log.size() >= 1; }));
  EXPECT_EQ(log.entries()[0].second, ReconcileOutcome::kRequeued);

  w.provider->SetPhase(w.Live(8)->name, Phase::kReady);
  w.clock.Advance(w.options.progress_poll);
  runner.Notify();  // the fake clock moved: let the workers look again
  ASSERT_TRUE(log.WaitFor([&] { return log.size() >= 2; }));
  EXPECT_EQ(w.Live(8)->state, EnvState::kReady);
  runner.Stop();
}

TEST(WorkQueueRunnerTest, TwoWorkersNeverReconcileTheSameKeyAtOnce) {
  World w;
  SettleLog log;
  ControllerMetrics metrics;
  OverlapDetector detector(*w.reconciler);
  WorkQueueRunner runner(*w.store, detector, w.clock, w.random, metrics,
                         Options(&log, /*workers=*/4));
  w.provider->SetCallHook([](FakeProvider::Method, const std::string&) {
    for (int i = 0; i < 50; ++i) std::this_thread::yield();
  });
  constexpr int kPrs = 6;
  for (int pr = 1; pr <= kPrs; ++pr) w.OpenPr(pr);
  runner.Start();
  // Keys arrive again and again while they are being worked on, as webhooks do.
  for (int round = 0; round < 8; ++round) {
    for (int pr = 1; pr <= kPrs; ++pr) {
      Enqueue(w, pr);
      runner.Notify();
    }
  }
  auto settled = [&] {
    if (!NothingDue(w)) return false;
    for (int pr = 1; pr <= kPrs; ++pr) {
      std::optional<state::Environment> env = w.Live(pr);
      if (!env || env->state != EnvState::kReady) return false;
    }
    return true;
  };
  ASSERT_TRUE(log.WaitFor(settled));
  runner.Stop();

  EXPECT_EQ(detector.max(), 1);
  EXPECT_EQ(w.provider->MaxConcurrentPerEnvironment(), 1);
  EXPECT_GE(detector.total(), kPrs);
  for (int pr = 1; pr <= kPrs; ++pr) {
    EXPECT_EQ(w.History(pr).size(), 1u) << "#" << pr;
    EXPECT_EQ(w.provider->Calls(FakeProvider::Method::kApply, w.Live(pr)->name), 1) << pr;
  }
  EXPECT_EQ(metrics.Take().reconciles_lease_lost, 0);
}

TEST(WorkQueueRunnerTest, StopFinishesTheItemInHandAndTakesNoMore) {
  World w;
  SettleLog log;
  ControllerMetrics metrics;
  WorkQueueRunner runner(*w.store, *w.reconciler, w.clock, w.random, metrics,
                         Options(&log, /*workers=*/1));
  Gate entered;
  Gate release;
  w.provider->SetCallHook([&](FakeProvider::Method method, const std::string&) {
    if (method != FakeProvider::Method::kApply) return;
    entered.Open();
    release.Wait();
  });
  w.OpenPr(9);
  Enqueue(w, 9);
  runner.Start();
  runner.Notify();
  ASSERT_TRUE(entered.Wait());

  std::thread stopper([&] { runner.Stop(); });
  EXPECT_EQ(log.size(), 0u);  // still inside Apply
  release.Open();
  stopper.join();

  // Stop returned only after the item was reconciled and settled.
  ASSERT_EQ(log.size(), 1u);
  EXPECT_EQ(log.entries()[0].second, ReconcileOutcome::kRequeued);  // for its idle deadline
  EXPECT_EQ(w.Live(9)->state, EnvState::kReady);
  EXPECT_EQ(w.store->completions(), 1);
  EXPECT_FALSE(runner.running());

  // Stopped workers take nothing.
  w.OpenPr(10);
  Enqueue(w, 10);
  runner.Notify();
  EXPECT_FALSE(NothingDue(w));
  EXPECT_EQ(log.size(), 1u);
  EXPECT_TRUE(w.History(10).empty());
  runner.Stop();  // idempotent
}

TEST(WorkQueueRunnerTest, LeaseIsRenewedDuringALongReconcile) {
  World w;
  SettleLog log;
  ControllerMetrics metrics;
  WorkQueueOptions options = Options(&log, /*workers=*/1);
  options.lease_for = seconds(60);
  std::mutex renew_mu;
  std::condition_variable renewed_cv;
  std::vector<std::string> renewed;
  options.renew_lease = [&](const state::Lease& lease, TimePoint,
                            Duration) -> absl::StatusOr<state::Lease> {
    {
      std::lock_guard<std::mutex> lock(renew_mu);
      renewed.push_back(lease.key);
    }
    renewed_cv.notify_all();
    return lease;
  };
  WorkQueueRunner runner(*w.store, *w.reconciler, w.clock, w.random, metrics, options);
  Gate entered;
  Gate release;
  w.provider->SetCallHook([&](FakeProvider::Method method, const std::string&) {
    if (method != FakeProvider::Method::kApply) return;
    entered.Open();
    release.Wait();
  });
  w.OpenPr(11);
  Enqueue(w, 11);
  runner.Start();
  runner.Notify();
  ASSERT_TRUE(entered.Wait());
  {
    std::lock_guard<std::mutex> lock(renew_mu);
    EXPECT_TRUE(renewed.empty());  // fresh lease: nothing to renew yet
  }
  w.clock.Advance(seconds(30));  // half the lease gone
  runner.Notify();
  {
    std::unique_lock<std::mutex> lock(renew_mu);
    ASSERT_TRUE(renewed_cv.wait_for(lock, kDeadline, [&] { return !renewed.empty(); }));
    EXPECT_EQ(renewed[0], PullRequestKey(kRepo, 11));
  }
  release.Open();
  ASSERT_TRUE(log.WaitFor([&] { return log.size() >= 1; }));
  EXPECT_EQ(log.entries()[0].second, ReconcileOutcome::kRequeued);
  EXPECT_EQ(w.store->completions(), 1);  // the lease was still valid
  runner.Stop();
}

}  // namespace
}  // namespace eph::controller::testing
