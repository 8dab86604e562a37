#include "pkg/controller/resync.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <set>
#include <utility>

#include "pkg/workkey/work_key.h"

namespace eph::controller {

Resyncer::Resyncer(state::Store& store, providers::ProviderRegistry& providers, const Clock& clock,
                   ControllerMetrics& metrics, ResyncOptions options,
                   std::function<void()> on_enqueued)
    : store_(store),
      providers_(providers),
      clock_(clock),
      metrics_(metrics),
      options_(std::move(options)),
      on_enqueued_(std::move(on_enqueued)) {}

Resyncer::~Resyncer() { Stop(); }

absl::StatusOr<int64_t> Resyncer::EnqueueLive() {
  absl::StatusOr<std::vector<state::Environment>> live = store_.ListEnvironments({});
  if (!live.ok()) return live.status();
  const TimePoint now = clock_.Now();
  std::set<std::string> keys;
  for (const state::Environment& env : *live) {
    if (state::IsLive(env.state)) keys.insert(WorkKeyFor(env));
  }
  // One transaction for the whole pass: with 10,000 environments, one commit (one fsync on
  // SQLite) per key would dominate the pass.
  const std::vector<std::string> batch(keys.begin(), keys.end());
  absl::Status s = store_.EnqueueMany(batch, now);
  if (!s.ok()) return s;
  const int64_t enqueued = static_cast<int64_t>(batch.size());
  if (enqueued > 0 && on_enqueued_) on_enqueued_();
  return enqueued;
}

int64_t Resyncer::SweepOrphans(std::vector<std::string>& errors) {
  int64_t destroyed = 0;
  for (providers::Provider* provider : providers_.Enabled()) {
    const std::string provider_name = provider->Info().name;
    absl::StatusOr<std::vector<providers::OwnedObject>> owned = provider->ListOwned();
    if (!owned.ok()) {
      errors.push_back(provider_name + ": list owned objects: " + owned.status().ToString());
      continue;
    }
    // environment -> a namespace its objects live in (any one; Destroy goes by label).
    std::map<std::string, std::string> by_environment;
    for (const providers::OwnedObject& object : *owned) {
      if (object.environment.empty()) continue;  // never touch an object without the label
      // Another installation's (or an unstamped object, which cannot be proven ours).
      if (!options_.installation.empty() && object.installation != options_.installation) {
        continue;
      }
      std::string& ns = by_environment[object.environment];
      if (ns.empty()) ns = object.kind == "Namespace" ? object.name : object.namespace_name;
    }
    for (const auto& [environment, namespace_name] : by_environment) {
      absl::StatusOr<std::optional<state::Environment>> env = store_.GetEnvironment(environment);
      if (!env.ok()) {
        errors.push_back(environment + ": " + env.status().ToString());
        continue;
      }
      if (env->has_value() && state::IsLive((*env)->state)) continue;
      spdlog::info("resync: {} holds objects of {}, which is not live; destroying them",
                   provider_name, environment);
      absl::StatusOr<providers::DestroyResult> gone =
          provider->Destroy({environment, namespace_name});
      if (!gone.ok()) {
        errors.push_back(provider_name + ": destroy orphan " + environment + ": " +
                         gone.status().ToString());
        continue;
      }
      ++destroyed;
    }
  }
  if (options_.databases != nullptr) {
    // Listed first, then each checked in the store: an environment created meanwhile is live by
    // the time it is checked, so its new database is never taken for an orphan.
    absl::StatusOr<std::set<std::string>> with_databases =
        options_.databases->EnvironmentsWithDatabases();
    if (!with_databases.ok()) {
      errors.push_back("databases: list: " + with_databases.status().ToString());
    } else {
      for (const std::string& environment : *with_databases) {
        absl::StatusOr<std::optional<state::Environment>> env = store_.GetEnvironment(environment);
        if (!env.ok()) {
          errors.push_back(environment + ": " + env.status().ToString());
          continue;
        }
        if (env->has_value() && state::IsLive((*env)->state)) continue;
        spdlog::info("resync: the database of {}, which is not live, is dropped", environment);
        if (absl::Status dropped = options_.databases->Drop(environment); !dropped.ok()) {
          errors.push_back("databases: drop orphan " + environment + ": " + dropped.ToString());
          continue;
        }
        ++destroyed;
      }
    }
  }
  if (destroyed > 0) metrics_.CountOrphansDestroyed(destroyed);
  return destroyed;
}

int64_t Resyncer::EnqueueLabelledWithoutEnvironment(std::vector<std::string>& errors) {
  if (options_.forge == nullptr) return 0;
  absl::StatusOr<std::vector<state::Project>> projects = store_.ListProjects();
  if (!projects.ok()) {
    errors.push_back("projects: " + projects.status().ToString());
    return 0;
  }
  std::vector<std::string> keys;
  for (const state::Project& project : *projects) {
    if (!project.enabled || project.trigger_labels.empty()) continue;
    absl::StatusOr<std::vector<forge::PullRequest>> open =
        options_.forge->ListOpenPullRequests(project.repo);
    if (!open.ok()) {
      errors.push_back(project.repo + ": listing open pull requests: " + open.status().ToString());
      continue;
    }
    // The newest environment of each pull request, whatever its state.
    state::EnvironmentFilter filter;
    filter.include_destroyed = true;
    filter.project = project.repo;
    absl::StatusOr<std::vector<state::Environment>> environments = store_.ListEnvironments(filter);
    if (!environments.ok()) {
      errors.push_back(project.repo + ": " + environments.status().ToString());
      continue;
    }
    std::map<int64_t, const state::Environment*> newest;
    for (const state::Environment& env : *environments) {
      const state::Environment*& slot = newest[env.pr_number];
      if (slot == nullptr || env.created_at > slot->created_at) slot = &env;
    }
    for (const forge::PullRequest& pr : *open) {
      const bool labelled = std::any_of(
          pr.labels.begin(), pr.labels.end(), [&](const std::string& label) {
            return std::find(project.trigger_labels.begin(), project.trigger_labels.end(),
                             label) != project.trigger_labels.end();
          });
      if (!labelled) continue;
      // Live: step 1 enqueued it. Destroyed at this very commit (TTL, `/eph down`, the API):
      // Eph has acted on it already, and the next push decides again.
      if (auto it = newest.find(pr.number);
          it != newest.end() &&
          (state::IsLive(it->second->state) || it->second->head_sha == pr.head_sha)) {
        continue;
      }
      keys.push_back(PullRequestKey(project.repo, pr.number));
    }
  }
  if (keys.empty()) return 0;
  if (absl::Status s = store_.EnqueueMany(keys, clock_.Now()); !s.ok()) {
    errors.push_back("enqueue: " + s.ToString());
    return 0;
  }
  spdlog::info("resync: {} labelled pull request(s) without an environment enqueued",
               keys.size());
  if (on_enqueued_) on_enqueued_();
  return static_cast<int64_t>(keys.size());
}

absl::StatusOr<ResyncReport> Resyncer::RunOnce() {
  ResyncReport report;
  absl::StatusOr<int64_t> enqueued = EnqueueLive();
  if (!enqueued.ok()) return enqueued.status();
  report.enqueued = *enqueued;
  if (options_.sweep_orphans) report.orphans_destroyed = SweepOrphans(report.errors);
  report.labelled_found = EnqueueLabelledWithoutEnvironment(report.errors);
  for (const std::string& e : report.errors) spdlog::warn("resync: {}", e);
  metrics_.CountResyncPass(report.enqueued);
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++passes_;
  }
  cv_.notify_all();
  return report;
}

void Resyncer::Start() {
  std::lock_guard<std::mutex> lock(mu_);
  if (thread_.joinable()) return;
  stopping_ = false;
  thread_ = std::thread([this] { Loop(); });
}

void Resyncer::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!thread_.joinable()) return;
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void Resyncer::Wake() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    woken_ = true;
  }
  cv_.notify_all();
}

int64_t Resyncer::passes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return passes_;
}

bool Resyncer::WaitForPasses(int64_t n, Duration timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, timeout, [&] { return passes_ >= n; });
}

void Resyncer::Loop() {
  TimePoint next_run = clock_.Now();
  while (true) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) return;
    }
    const TimePoint now = clock_.Now();
    if (now >= next_run) {
      // Scheduled from the pass's start, so a slow pass does not stretch the interval.
      next_run = now + options_.interval;
      absl::StatusOr<ResyncReport> report = RunOnce();
      if (!report.ok()) spdlog::warn("resync: {}", report.status().ToString());
    }
    const Duration wait = std::clamp(next_run - clock_.Now(),
                                     Duration(std::chrono::milliseconds(1)), options_.max_wait);
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, wait, [&] { return stopping_ || woken_; });
    woken_ = false;
  }
}

}  // namespace eph::controller
