// Test support for the controller tests: a whole little world (SQLite store in a temp dir,
// FakeForge, FakeProvider registered as "kubernetes", FakeClock, seeded Random) and a Store
// decorator that records how the work queue was settled.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "pkg/base/clock.h"
#include "pkg/base/random.h"
#include "pkg/controller/reconciler.h"
#include "pkg/workkey/work_key.h"
#include "pkg/forge/fake_forge.h"
#include "pkg/providers/fake_provider.h"
#include "pkg/state/store.h"

namespace eph::controller::testing {

inline constexpr char kRepo[] = "acme/shop";
inline constexpr char kBaseDomain[] = "preview.example.com";

// eph.yaml with a `preview` label trigger, 72h TTL and a 4h idle timeout; `extra_trigger` is
// appended to the trigger's keys (e.g. "    wait_for_checks: [\"build\"]\n").
std::string ConfigYaml(const std::string& extra_trigger = "",
                       const std::string& extra_environment = "");

// A 40-character commit id, different for each i.
std::string Sha(int i);

// Forwards to a real Store and records RetryWork / CompleteWork calls.
class RecordingStore final : public state::Store {
 public:
  struct Retry {
    std::string key;
    TimePoint retry_at;
    int64_t attempts = 0;  // failed attempts before this one
    std::string error;
  };
  explicit RecordingStore(std::unique_ptr<state::Store> inner) : inner_(std::move(inner)) {}

  std::vector<Retry> retries() const;
  int64_t completions() const;

  absl::Status Ping() override { return inner_->Ping(); }
  absl::StatusOr<int> SchemaVersion() override { return inner_->SchemaVersion(); }
  absl::StatusOr<std::string> InstallationId() override { return inner_->InstallationId(); }
  uint64_t LocalChangeCount() override { return inner_->LocalChangeCount(); }
  uint64_t WaitForLocalChange(uint64_t seen, std::chrono::milliseconds timeout) override {
    return inner_->WaitForLocalChange(seen, timeout);
  }
  absl::StatusOr<bool> RecordDelivery(const state::Delivery& d,
                                      const std::optional<std::string>& key) override {
    return inner_->RecordDelivery(d, key);
  }
  state::DeliveryCommitStats DeliveryCommits() override { return inner_->DeliveryCommits(); }
  absl::StatusOr<std::optional<state::Delivery>> GetDelivery(const std::string& id) override {
    return inner_->GetDelivery(id);
  }
  absl::StatusOr<int64_t> CountDeliveries() override { return inner_->CountDeliveries(); }
  absl::StatusOr<std::vector<state::Delivery>> ListPullRequestDeliveries(
      const std::string& repo, int64_t pr_number, const std::string& kind, TimePoint since,
      int limit) override {
    return inner_->ListPullRequestDeliveries(repo, pr_number, kind, since, limit);
  }
  absl::Status Enqueue(const std::string& key, TimePoint not_before) override {
    return inner_->Enqueue(key, not_before);
  }
  absl::Status EnqueueMany(const std::vector<std::string>& keys, TimePoint not_before) override {
    return inner_->EnqueueMany(keys, not_before);
  }
  absl::StatusOr<state::Lease> RenewLease(const state::Lease& lease, TimePoint now,
                                          Duration lease_for) override {
    return inner_->RenewLease(lease, now, lease_for);
  }
  absl::StatusOr<std::optional<state::Lease>> ClaimWork(const std::string& owner, TimePoint now,
                                                        Duration lease_for) override {
    return inner_->ClaimWork(owner, now, lease_for);
  }
  absl::Status CompleteWork(const state::Lease& lease, TimePoint now) override;
  absl::Status RetryWork(const state::Lease& lease, TimePoint retry_at,
                         const std::string& error) override;
  absl::StatusOr<int64_t> QueueDepth() override { return inner_->QueueDepth(); }
  absl::StatusOr<std::optional<TimePoint>> NextDue() override { return inner_->NextDue(); }
  absl::StatusOr<state::Environment> CreateEnvironment(const state::Environment& env) override {
    return inner_->CreateEnvironment(env);
  }
  absl::StatusOr<std::optional<state::Environment>> GetEnvironment(
      const std::string& name) override {
    return inner_->GetEnvironment(name);
  }
  absl::StatusOr<std::optional<state::Environment>> FindLiveEnvironment(
      const std::string& project, int64_t pr_number) override {
    return inner_->FindLiveEnvironment(project, pr_number);
  }
  absl::StatusOr<std::vector<state::Environment>> ListEnvironments(
      const state::EnvironmentFilter& filter) override {
    return inner_->ListEnvironments(filter);
  }
  absl::StatusOr<state::Environment> UpdateEnvironment(const state::Environment& env) override {
    return inner_->UpdateEnvironment(env);
  }
  absl::Status TouchEnvironment(const std::string& name, TimePoint at) override {
    return inner_->TouchEnvironment(name, at);
  }
  absl::StatusOr<bool> NameTaken(const std::string& name) override {
    return inner_->NameTaken(name);
  }
  absl::StatusOr<std::vector<state::EnvEvent>> ListEvents(int64_t after_id, int limit) override {
    return inner_->ListEvents(after_id, limit);
  }
  absl::StatusOr<std::vector<state::EnvEvent>> EventsFor(const std::string& env) override {
    return inner_->EventsFor(env);
  }
  absl::Status UpsertProject(const state::Project& p) override { return inner_->UpsertProject(p); }
  absl::StatusOr<std::optional<state::Project>> GetProject(const std::string& repo) override {
    return inner_->GetProject(repo);
  }
  absl::StatusOr<std::vector<state::Project>> ListProjects() override {
    return inner_->ListProjects();
  }
  absl::StatusOr<state::ApiToken> CreateToken(const state::ApiToken& t) override {
    return inner_->CreateToken(t);
  }
  absl::StatusOr<std::optional<state::ApiToken>> FindTokenByHash(const std::string& hash) override {
    return inner_->FindTokenByHash(hash);
  }
  absl::StatusOr<std::vector<state::ApiToken>> ListTokens() override {
    return inner_->ListTokens();
  }
  absl::Status RevokeToken(const std::string& name, TimePoint at) override {
    return inner_->RevokeToken(name, at);
  }

 private:
  std::unique_ptr<state::Store> inner_;
  mutable std::mutex mu_;
  std::vector<Retry> retries_;
  int64_t completions_ = 0;
};

// Everything a reconciler needs, wired together. Not thread-safe to set up; the parts it holds
// are each thread-safe once running.
struct World {
  explicit World(std::string config_yaml = ConfigYaml());

  // Opens pull request `number` with `labels` at commit `sha`, with eph.yaml at that commit.
  void OpenPr(int64_t number, std::vector<std::string> labels = {"preview"},
              const std::string& sha = Sha(1));
  // The default branch `main` at `sha`, with `yaml` as its eph.yaml: the project's policy.
  void SetDefaultBranchConfig(const std::string& yaml, const std::string& sha = Sha(100));
  absl::StatusOr<ReconcileResult> Reconcile(int64_t number);
  // Reconcile that must succeed (records a test failure otherwise).
  ReconcileResult MustReconcile(int64_t number);

  std::optional<state::Environment> Live(int64_t number);
  // Every environment the pull request ever had, oldest first.
  std::vector<state::Environment> History(int64_t number);
  int64_t EventCount();
  int64_t ProviderCalls();  // Apply + Destroy, the calls that change anything
  int64_t AllProviderCalls();

  FakeClock clock;
  SeededRandom random{7};
  std::string config_yaml;
  RecordingStore* store = nullptr;  // owned by `store_owner`
  std::unique_ptr<state::Store> store_owner;
  forge::FakeForge forge;
  providers::ProviderRegistry registry;
  providers::FakeProvider* provider = nullptr;  // owned by `registry`
  ReconcilerOptions options;
  std::unique_ptr<EnvironmentReconciler> reconciler;
};

}  // namespace eph::controller::testing
