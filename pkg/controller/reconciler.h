// EnvironmentReconciler: makes one work key's environment match what its pull request asks for.
//
// Level-triggered: Reconcile(key) never looks at the event that enqueued the key. It reads the
// pull request's live state and eph.yaml at its head commit (Forge), the environment (Store) and
// what actually runs (Provider::Observe), then takes the steps that converge them: create, update
// on a new head commit, destroy (closed, merged, label removed, draft, fork, failed checks, TTL,
// idle timeout), or nothing. Running it twice in a row changes nothing the second time: no
// provider Apply/Destroy, no store event, no forge write. docs/reconciler.md has the decision
// table and the rules below in full.
//
// Results:
//  - OK: converged for now. `requeue_after` asks to look again later (still provisioning,
//    waiting for checks, destroy in progress, next TTL / idle deadline).
//  - An error status: the work queue decides by its code (retry_policy.h). Transient errors
//    leave everything as it was, so the retry simply repeats the pass. Terminal errors from the
//    provider are recorded on the environment (`failed` with the message) by the reconciler
//    itself and reported as OK, so they never loop; RecordTerminalFailure() covers the rest.
//  - A broken or missing eph.yaml makes the environment `failed` with the parse errors as reason
//    (created for that purpose if the pull request carries the trigger label), never calls the
//    provider, and is not looked at again until the head commit changes.
//
// Thread-safety: Reconcile may run on many threads at once for different keys. It must not run
// concurrently for the same key; the work queue guarantees that (one lease per key).
#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "pkg/base/clock.h"
#include "pkg/base/random.h"
#include "pkg/config/config.h"
#include "pkg/config/policy.h"
#include "pkg/controller/comment_commands.h"
#include "pkg/controller/databases.h"
#include "pkg/controller/env_record.h"
#include "pkg/controller/forge_reporter.h"
#include "pkg/controller/intents.h"
#include "pkg/controller/lifecycle.h"
#include "pkg/controller/render.h"
#include "pkg/controller/secret_source.h"
#include "pkg/forge/forge.h"
#include "pkg/names/names.h"
#include "pkg/providers/provider.h"
#include "pkg/state/store.h"

namespace eph::controller {

struct ReconcileResult {
  // Look at the key again after this long (measured on the injected clock).
  std::optional<Duration> requeue_after;
  // One line for logs: what the pass did.
  std::string summary;
};

// What the work queue runs. An interface so the queue can be tested with a scripted reconciler.
class Reconciler {
 public:
  virtual ~Reconciler() = default;
  virtual absl::StatusOr<ReconcileResult> Reconcile(const std::string& key) = 0;
  // Reconcile(key) returned a terminal error: record it on the key's environment (`failed`, the
  // message as reason) so users see it, and so the same commit is not tried again.
  virtual absl::Status RecordTerminalFailure(const std::string& key, const absl::Status& error) = 0;
};

struct ReconcilerOptions {
  // Where environments live (URL, namespace): the same policy the intents apply.
  LifecyclePolicy lifecycle;
  // The Store's InstallationId, stamped on every object as providers::kInstallationLabel (empty:
  // not stamped).
  std::string installation;
  std::string config_path = "eph.yaml";               // where eph.yaml lives in a repository
  Duration progress_poll = std::chrono::seconds(10);  // while the provider is progressing
  Duration checks_poll = std::chrono::minutes(1);     // while wait_for_checks are pending
  Duration destroy_poll = std::chrono::seconds(10);   // while the provider is still deleting
  // Where each apply's checkout of the repository goes (a fresh directory, removed after the
  // apply); empty: the system's temporary directory.
  std::string source_root;
  // Per-environment databases (eph.yaml `database:`); null: this ephd has none, and an
  // environment asking for one fails saying so. Must outlive the reconciler.
  EnvironmentDatabases* databases = nullptr;
  // Values of eph.yaml's `environment.secrets` (ephd's secrets_dir); null: this ephd has none,
  // and an environment naming a secret fails saying so. Must outlive the reconciler.
  const SecretSource* secrets = nullptr;
};

class EnvironmentReconciler final : public Reconciler {
 public:
  // All references must outlive the reconciler.
  EnvironmentReconciler(state::Store& store, forge::Forge& forge,
                        providers::ProviderRegistry& providers, const Clock& clock, Random& random,
                        ReconcilerOptions options);

  absl::StatusOr<ReconcileResult> Reconcile(const std::string& key) override;
  absl::Status RecordTerminalFailure(const std::string& key, const absl::Status& error) override;

  // The hidden marker that identifies an environment's pull-request comment.
  static std::string CommentMarker(const std::string& environment);

 private:
  // What is being deployed: a pull request's head, or a commit chosen by hand.
  struct Target {
    std::string repo;
    int64_t pr_number = 0;
    std::string sha;
    std::string branch;
    bool restricted = false;  // a fork's: the provider's strict profile (ApplyRequest)
  };
  // eph.yaml at a commit: the config, or the message that says why there is none.
  struct LoadedConfig {
    std::optional<config::ProjectConfig> config;
    std::string error;
  };

  // A step of a pass either lets the pass go on (nullopt) or ends it with a result; EndPass
  // makes a step's answer of a pass's result.
  using Step = absl::StatusOr<std::optional<ReconcileResult>>;
  static Step EndPass(absl::StatusOr<ReconcileResult> result);

  absl::StatusOr<ReconcileResult> ReconcilePullRequest(const std::string& repo, int64_t number);
  absl::StatusOr<ReconcileResult> ReconcileByName(const std::string& name);
  // Carries out the pull request's new `/eph` comment commands (CommentCommands) on its live
  // environment (or, without one, its newest destroyed one), updating `live`. A result when a
  // command ended the pass (`/eph down`).
  absl::StatusOr<std::optional<ReconcileResult>> HandleCommands(
      const std::string& repo, int64_t number, std::optional<state::Environment>& live);

  // The steps of ReconcilePullRequest. A result when the live environment's pass ends before
  // eph.yaml is read: expired, or failed at this very commit.
  Step EndedBeforeConfig(const state::Environment& live, const EnvRecord& record,
                         const forge::PullRequest& pr);
  // Whether the pull request wants an environment now (decision.h): a result when it does not,
  // or must wait; nullopt when it does. `forced`: created by hand, so triggers do not apply.
  Step Decide(const std::optional<state::Environment>& live, const forge::PullRequest& pr,
              const config::ProjectConfig& config, bool forced);
  // eph.yaml at the head commit is missing or broken (`error`): the environment fails, or is
  // created failed, unless the pull request no longer asks for one.
  absl::StatusOr<ReconcileResult> WithoutConfig(const std::optional<state::Environment>& live,
                                                const EnvRecord& record,
                                                const forge::PullRequest& pr, const Target& target,
                                                const std::string& error);

  absl::StatusOr<LoadedConfig> LoadProjectConfig(const std::string& repo, const std::string& sha);
  // eph.yaml on the pull request's default branch; nullopt when there is none or it is broken.
  absl::StatusOr<std::optional<config::ProjectConfig>> DefaultBranchConfig(
      const forge::PullRequest& pr);
  // The head's config with the project's policy from the default branch (config/policy.h).
  absl::StatusOr<config::PolicyOutcome> ApplyPolicy(const forge::PullRequest& pr,
                                                    const config::ProjectConfig& head);
  // A name no environment ever had, for `project`'s pull request; the store's error if it
  // cannot be asked.
  absl::StatusOr<std::string> NewName(const std::string& project, const Target& target,
                                      const names::NameOptions& options);
  absl::StatusOr<ReconcileResult> Create(const Target& target, const config::ProjectConfig& config);
  absl::StatusOr<ReconcileResult> CreateFailed(const Target& target, const std::string& reason);
  absl::StatusOr<ReconcileResult> Converge(state::Environment env, const Target& target,
                                           const config::ProjectConfig& config);
  absl::StatusOr<ReconcileResult> ApplyAndObserve(state::Environment env, const Target& target,
                                                  const config::ProjectConfig& config,
                                                  providers::Provider& provider);
  // The steps of ApplyAndObserve.
  // One apply of a commit as its steps carry it along.
  struct ApplyPass {
    state::Environment env;     // the row as this pass changes it
    state::Environment stored;  // the row as last written
    EnvRecord record;           // env's record, edited by the steps
    providers::ApplyRequest request;
    // eph.yaml's secrets (name -> value), to keep them out of messages the app may fill.
    std::map<std::string, std::string> secrets;
  };
  // The new spec, state and commit on `env`, written before Apply (unless the row already says
  // so): a crash mid-Apply leaves a record that objects may exist.
  absl::StatusOr<ApplyPass> StoreApplyIntent(state::Environment env, const Target& target,
                                             const config::ProjectConfig& config,
                                             const RenderedSpec& spec);
  providers::ApplyRequest ApplyRequestFor(const state::Environment& env, const Target& target,
                                          const config::ProjectConfig& config,
                                          const RenderedSpec& spec) const;
  // eph.yaml's databases, made before the app; their settings go into the request's secret
  // environment. Ends the pass on a failure or while a server of the environment's own starts.
  Step EnsureDatabases(ApplyPass& pass, const Target& target, const config::ProjectConfig& config,
                       providers::Provider& provider);
  // The database servers of the environment's own, all started before any is waited for; the
  // ready ones in `servers`.
  Step EnsureOwnDatabaseServers(ApplyPass& pass, const Target& target,
                                const config::ProjectConfig& config, providers::Provider& provider,
                                std::map<std::string, DatabaseServerAccess>& servers);
  // What the provider shows right after Apply, settled, reported and written in one write.
  absl::StatusOr<ReconcileResult> ObserveApplied(ApplyPass& pass, const Target& target,
                                                 const config::ProjectConfig& config,
                                                 providers::Provider& provider,
                                                 const providers::ApplyResult& applied);
  absl::StatusOr<ReconcileResult> ObserveOnly(state::Environment env, const Target& target,
                                              const config::ProjectConfig& config,
                                              providers::Provider& provider);
  absl::StatusOr<ReconcileResult> Fail(state::Environment env, const std::string& reason,
                                       const std::string& sha);
  absl::StatusOr<ReconcileResult> Destroy(state::Environment env, const std::string& reason,
                                          bool block_recreate);
  absl::StatusOr<ReconcileResult> FinishDestroy(state::Environment env);

  // Writes `env` (compare-and-swap) and returns the stored row.
  absl::StatusOr<state::Environment> Save(const state::Environment& env);
  // Whether the pull request's newest environment was destroyed in a way that forbids a new one
  // at `head_sha` (TTL, idle timeout, manual deletion).
  absl::StatusOr<bool> RecreationBlocked(const std::string& repo, int64_t number,
                                         const std::string& head_sha);
  // The trigger label was seen absent: a blocked pull request may get an environment again.
  absl::Status LiftRecreationBlock(const std::string& repo, int64_t number);
  absl::StatusOr<std::optional<state::Environment>> NewestDestroyed(const std::string& repo,
                                                                    int64_t number);

  std::optional<std::string> ExpiryReason(const state::Environment& env,
                                          const EnvRecord& record) const;
  // Shortens `result.requeue_after` to the environment's next TTL / idle deadline.
  void RequeueForDeadlines(const state::Environment& env, ReconcileResult& result) const;
  std::string BaseDomain(const config::ProjectConfig& config) const;
  // `env`, being created or updated, is still progressing with `message` (why it is not ready,
  // secrets redacted): the message becomes its reason once the apply has taken a while (a
  // quarter of the progress deadline, at most kProgressReportAfter, so a healthy rollout does
  // not rewrite the pull request's comment for each Deployment), and past the progress deadline,
  // measured from when the apply of this commit began, `env` fails with it. Returns when to look
  // again: progress_poll, or sooner at the deadline.
  Duration SettleProgressing(state::Environment& env, const std::string& message,
                             const config::ProjectConfig& config) const;
  // `env` is ready as `observed` says: state, public URL and the gateway's backend.
  void SettleReady(state::Environment& env, const providers::Observation& observed,
                   const config::ProjectConfig& config) const;

  state::Store& store_;
  forge::Forge& forge_;
  providers::ProviderRegistry& providers_;
  const Clock& clock_;
  Random& random_;
  const ReconcilerOptions options_;

  // The sticky comment, deployments and check runs.
  ForgeReporter reporter_;
  // The `/eph` comment commands, carried out through the intents (which wake no one: the key
  // being reconciled runs again after this pass anyway).
  EnvironmentIntents intents_;
  CommentCommands commands_;

  // Records the project and the trigger labels of the eph.yaml just read (for the resync, which
  // looks for labelled pull requests without an environment). Writes only on a change.
  void RememberProject(const std::string& repo, const config::ProjectConfig& config);
  std::mutex projects_mu_;
  std::map<std::string, std::vector<std::string>> known_triggers_;
};

}  // namespace eph::controller
