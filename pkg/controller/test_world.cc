#include "pkg/controller/test_world.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "test/support/testbed.h"

namespace eph::controller::testing {

std::string ConfigYaml(const std::string& extra_trigger, const std::string& extra_environment) {
  return "version: \"1.0\"\n"
         "name: my-app\n"
         "triggers:\n"
         "  - type: pr_label\n"
         "    labels: [\"preview\"]\n" +
         extra_trigger +
         "environment:\n"
         "  ttl: 72h\n"
         "  idle_timeout: 4h\n" +
         extra_environment +
         "kubernetes:\n"
         "  manifests:\n"
         "    - ./k8s/base\n"
         "  images:\n"
         "    - name: api\n"
         "      newTag: \"pr-{pr_number}\"\n";
}

std::string Sha(int i) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(40, '0');
  for (int k = 0; k < 40; ++k) out[k] = kHex[(i * 7 + k * (i + 3)) % 16];
  return out;
}

std::vector<RecordingStore::Retry> RecordingStore::retries() const {
  std::lock_guard<std::mutex> lock(mu_);
  return retries_;
}

int64_t RecordingStore::completions() const {
  std::lock_guard<std::mutex> lock(mu_);
  return completions_;
}

absl::Status RecordingStore::CompleteWork(const state::Lease& lease, TimePoint now) {
  absl::Status s = inner_->CompleteWork(lease, now);
  std::lock_guard<std::mutex> lock(mu_);
  if (s.ok()) ++completions_;
  return s;
}

absl::Status RecordingStore::RetryWork(const state::Lease& lease, TimePoint retry_at,
                                       const std::string& error) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    retries_.push_back({lease.key, retry_at, lease.attempts, error});
  }
  return inner_->RetryWork(lease, retry_at, error);
}

World::World(std::string yaml) : config_yaml(std::move(yaml)) {
  const std::string url = "sqlite:" + eph::testing::MakeTempDir("controller") + "/eph.db";
  absl::StatusOr<std::unique_ptr<state::Store>> opened = state::OpenStore(url);
  if (!opened.ok()) {
    ADD_FAILURE() << "OpenStore(" << url << "): " << opened.status();
    std::abort();
  }
  auto recording = std::make_unique<RecordingStore>(std::move(*opened));
  store = recording.get();
  store_owner = std::move(recording);
  auto fake = std::make_unique<providers::FakeProvider>("kubernetes");
  provider = fake.get();
  if (absl::Status s = registry.Add(std::move(fake)); !s.ok()) ADD_FAILURE() << s;
  options.lifecycle.base_domain = kBaseDomain;
  reconciler =
      std::make_unique<EnvironmentReconciler>(*store, forge, registry, clock, random, options);
}

void World::OpenPr(int64_t number, std::vector<std::string> labels, const std::string& sha) {
  forge::PullRequest pr;
  pr.repo = kRepo;
  pr.number = number;
  pr.labels = std::move(labels);
  pr.head_sha = sha;
  pr.head_branch = "feature-" + std::to_string(number);
  pr.base_branch = "main";
  pr.default_branch = "main";
  forge.SetPullRequest(pr);
  forge.SetFile(kRepo, sha, "eph.yaml", config_yaml);
}

void World::SetDefaultBranchConfig(const std::string& yaml, const std::string& sha) {
  forge.SetBranch(kRepo, "main", sha);
  forge.SetFile(kRepo, sha, "eph.yaml", yaml);
}

absl::StatusOr<ReconcileResult> World::Reconcile(int64_t number) {
  return reconciler->Reconcile(PullRequestKey(kRepo, number));
}

ReconcileResult World::MustReconcile(int64_t number) {
  absl::StatusOr<ReconcileResult> r = Reconcile(number);
  if (!r.ok()) {
    ADD_FAILURE() << "Reconcile(#" << number << "): " << r.status();
    return {};
  }
  return *r;
}

std::optional<state::Environment> World::Live(int64_t number) {
  absl::StatusOr<std::optional<state::Environment>> env = store->FindLiveEnvironment(kRepo, number);
  if (!env.ok()) {
    ADD_FAILURE() << env.status();
    return std::nullopt;
  }
  return *env;
}

std::vector<state::Environment> World::History(int64_t number) {
  state::EnvironmentFilter filter;
  filter.include_destroyed = true;
  filter.project = kRepo;
  absl::StatusOr<std::vector<state::Environment>> all = store->ListEnvironments(filter);
  if (!all.ok()) {
    ADD_FAILURE() << all.status();
    return {};
  }
  std::vector<state::Environment> out;
  for (state::Environment& env : *all) {
    if (env.pr_number == number) out.push_back(std::move(env));
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
    return a.created_at < b.created_at || (a.created_at == b.created_at && a.name < b.name);
  });
  return out;
}

int64_t World::EventCount() {
  absl::StatusOr<std::vector<state::EnvEvent>> events = store->ListEvents(0, 100000);
  if (!events.ok()) {
    ADD_FAILURE() << events.status();
    return -1;
  }
  return static_cast<int64_t>(events->size());
}

int64_t World::ProviderCalls() {
  using M = providers::FakeProvider::Method;
  return provider->Calls(M::kApply) + provider->Calls(M::kDestroy);
}

int64_t World::AllProviderCalls() {
  using M = providers::FakeProvider::Method;
  return ProviderCalls() + provider->Calls(M::kObserve) + provider->Calls(M::kLogs) +
         provider->Calls(M::kListOwned);
}

}  // namespace eph::controller::testing
