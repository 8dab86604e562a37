// FakeProvider: an in-memory Provider. A TEST DOUBLE for reconciler and work-queue tests; it
// is never registered by RegisterBuiltinProviders and never runs in ephd.
//
// It keeps one record per applied environment and answers Observe from it, so the reconciler's
// view of "actual state" behaves like a real provider's. Tests script it:
//   - FailNext(kApply, code) makes the next Apply return that error (queued, one per call);
//   - SetPhaseAfterApply(kProgressing) keeps environments progressing until SetPhase(...);
//   - SetPhase(env, kFailed, "crash loop") reports a failure;
//   - SetDestroyPending(n) makes the next n Destroy calls report "still in progress";
//   - AddForeignObject() plants a labelled object for the orphan sweep;
//   - SetCallHook() runs inside every call (e.g. to block a worker mid-reconcile).
// and inspect it: calls per method and environment, the last ApplyRequest, and the highest
// number of calls that ever overlapped for one environment (must stay 1: the work queue
// promises one worker per key).
//
// Thread-safety: every method is safe to call from any thread.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "pkg/providers/provider.h"

namespace eph::providers {

inline constexpr char kFakeDatabaseAdminUrl[] =
    "postgresql://eph_admin:fake-server-secret@127.0.0.1:5999/postgres";

class FakeProvider final : public Provider {
 public:
  enum class Method { kApply, kObserve, kDestroy, kLogs, kListOwned, kEnsureDatabaseServer };
  using CallHook = std::function<void(Method method, const std::string& environment)>;

  explicit FakeProvider(std::string name = "fake");

  ProviderInfo Info() const override;
  absl::StatusOr<ApplyResult> Apply(const ApplyRequest& request) override;
  absl::StatusOr<Observation> Observe(const EnvironmentRef& ref) override;
  absl::StatusOr<DestroyResult> Destroy(const EnvironmentRef& ref) override;
  absl::Status Logs(const LogsRequest& request, const LogSink& sink) override;
  absl::StatusOr<std::vector<OwnedObject>> ListOwned() override;
  // Not ready for the first SetDatabaseServerPending(n) calls, then ready at a fixed admin URL
  // (kFakeDatabaseAdminUrl) with the instance's name as host.
  absl::StatusOr<DatabaseServer> EnsureDatabaseServer(const DatabaseServerRequest& request) override;

  // --- scripting ---
  // The next call of `method` fails with this status (queued: one entry per call).
  void FailNext(Method method, absl::Status status);
  // Phase an environment reports after Apply (default kReady).
  void SetPhaseAfterApply(Phase phase);
  // The next `n` Applies start only part of the environment (ApplyResult::needs_reapply), as
  // the Docker provider does while a dependency is not healthy yet.
  void SetNeedsReapply(int n);
  // Overrides what Observe reports for an applied environment.
  void SetPhase(const std::string& environment, Phase phase, std::string message = "");
  // Observe stops reporting the environment's only component, "app", until the next Apply (a
  // container removed by hand).
  void LoseComponent(const std::string& environment);
  // URL that Observe reports (empty by default: the reconciler builds it from base_domain).
  void SetUrl(const std::string& environment, std::string url);
  // The next `n` Destroy calls report done=false (objects still terminating).
  void SetDestroyPending(int n);
  // The next `n` EnsureDatabaseServer calls report the server not ready yet.
  void SetDatabaseServerPending(int n);
  // An object with Eph's labels that no Apply created (e.g. left over from a crash).
  void AddForeignObject(OwnedObject object);
  void SetLogs(const std::string& environment, std::vector<LogLine> lines);
  // Runs inside every call, while the call counts as in flight for its environment.
  void SetCallHook(CallHook hook);

  // --- inspection ---
  int64_t Calls(Method method) const;
  int64_t Calls(Method method, const std::string& environment) const;
  // Environments that currently exist (applied and not destroyed).
  std::set<std::string> Existing() const;
  bool Exists(const std::string& environment) const;
  std::optional<ApplyRequest> LastApply(const std::string& environment) const;
  std::optional<DatabaseServerRequest> LastDatabaseServer(const std::string& environment) const;
  // The most calls for a single environment that were ever in flight at the same time.
  int MaxConcurrentPerEnvironment() const;

 private:
  struct Record {
    ApplyRequest request;
    Phase phase = Phase::kReady;
    std::string message;
    std::string url;
    bool component_lost = false;
  };
  // Marks a call in flight for its environment for as long as it lives.
  class InFlight;

  std::optional<absl::Status> TakeFailure(Method method);

  const std::string name_;
  mutable std::mutex mu_;
  std::map<Method, std::deque<absl::Status>> failures_;
  Phase phase_after_apply_ = Phase::kReady;
  int needs_reapply_ = 0;
  int destroy_pending_ = 0;
  int database_server_pending_ = 0;
  std::map<std::string, DatabaseServerRequest> database_servers_;
  std::map<std::string, Record> records_;
  std::vector<OwnedObject> foreign_;
  std::map<std::string, std::vector<LogLine>> logs_;
  std::map<std::string, ApplyRequest> last_apply_;
  std::map<std::pair<Method, std::string>, int64_t> calls_;
  std::map<std::string, int> in_flight_;
  int max_concurrent_ = 0;
  CallHook hook_;
};

}  // namespace eph::providers
