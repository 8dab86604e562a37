#include "pkg/controller/reconciler.h"

#include <spdlog/spdlog.h>
#include <stdlib.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "pkg/config/duration.h"
#include "pkg/controller/decision.h"
#include "pkg/controller/render.h"
#include "pkg/controller/retry_policy.h"
#include "pkg/names/names.h"
#include "pkg/workkey/work_key.h"

namespace eph::controller {
namespace {

// A temporary directory holding one commit's files, removed with the object.
class SourceCheckout {
 public:
  static absl::StatusOr<SourceCheckout> Create(const std::string& root) {
    std::error_code ec;
    const std::filesystem::path base =
        root.empty() ? std::filesystem::temp_directory_path(ec) : std::filesystem::path(root);
    if (ec) return absl::InternalError("no temporary directory: " + ec.message());
    std::string pattern = (base / "eph-source-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) {
      return absl::InternalError("cannot create a checkout directory under " + base.string() +
                                 ": " + std::strerror(errno));
    }
    return SourceCheckout(std::move(pattern));
  }
  SourceCheckout(SourceCheckout&& other) noexcept : path_(std::exchange(other.path_, "")) {}
  SourceCheckout& operator=(SourceCheckout&&) = delete;
  ~SourceCheckout() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  explicit SourceCheckout(std::string path) : path_(std::move(path)) {}
  std::string path_;
};

using state::Environment;
using state::EnvState;

std::string ShortSha(const std::string& sha) { return sha.substr(0, 7); }

std::string StateName(EnvState s) { return std::string(state::EnvStateName(s)); }

// The first line of a (possibly multi-line) reason, for places that only fit one.
std::string FirstLine(const std::string& s) { return s.substr(0, s.find('\n')); }

bool SameRow(const Environment& a, const Environment& b) {
  return a.state == b.state && a.reason == b.reason && a.url == b.url && a.provider == b.provider &&
         a.head_sha == b.head_sha && a.spec_json == b.spec_json && a.expires_at == b.expires_at &&
         a.namespace_name == b.namespace_name && a.forced == b.forced &&
         a.backend_url == b.backend_url;
}

// The app's view of one database: every instance's URL as <NAME>_DATABASE_URL (the instance's
// name upper-cased, '-' as '_'), and the first instance's settings also as DATABASE_URL and PG*,
// the names apps and libpq read by default.
void AddDatabaseSettings(const std::string& instance,
                         const std::map<std::string, std::string>& settings, bool primary,
                         std::map<std::string, std::string>& env) {
  std::string prefix;
  for (char c : instance) prefix.push_back(c == '-' ? '_' : absl::ascii_toupper(c));
  if (auto url = settings.find("DATABASE_URL"); url != settings.end()) {
    env[prefix + "_DATABASE_URL"] = url->second;
  }
  if (primary) {
    for (const auto& [key, value] : settings) env[key] = value;
  }
}

// Why eph.yaml's database `instance` could not be had (`several`: eph.yaml has more than one).
std::string DatabaseFailure(const config::DatabaseInstance& instance, bool several,
                            const absl::Status& error) {
  return (several ? "database `" + instance.name + "`: " : std::string("database: ")) +
         std::string(error.message());
}

// eph.yaml's secrets as ephd has them now, those it can read, for redaction: a pass that only
// observes has no apply's values at hand.
std::map<std::string, std::string> ReadableSecrets(const config::ProjectConfig& config,
                                                   const SecretSource* source) {
  std::map<std::string, std::string> values;
  if (source == nullptr) return values;
  for (const std::string& name : config.environment.secrets) {
    absl::StatusOr<std::string> value = source->Get(name);
    if (value.ok()) values[name] = *std::move(value);
  }
  return values;
}

// A rollout slower than this says why it is not ready yet (sooner with a short deadline).
constexpr Duration kProgressReportAfter = std::chrono::seconds(30);

// How long an apply of `provider` may progress before the environment fails; nullopt: no limit.
// Kubernetes workloads have no deadline of their own but a Deployment's, so one pod Pending on
// an unbound claim would otherwise keep a StatefulSet "provisioning" until the TTL.
std::optional<absl::Duration> ProgressDeadline(const config::ProjectConfig& config,
                                               const std::string& provider) {
  if (provider == "kubernetes" && config.kubernetes) return config.kubernetes->progress_deadline;
  return std::nullopt;
}

}  // namespace

EnvironmentReconciler::Step EnvironmentReconciler::EndPass(absl::StatusOr<ReconcileResult> result) {
  if (!result.ok()) return result.status();
  return std::optional<ReconcileResult>(std::move(*result));
}

EnvironmentReconciler::EnvironmentReconciler(state::Store& store, forge::Forge& forge,
                                             providers::ProviderRegistry& providers,
                                             const Clock& clock, Random& random,
                                             ReconcilerOptions options)
    : store_(store),
      forge_(forge),
      providers_(providers),
      clock_(clock),
      random_(random),
      options_(std::move(options)),
      reporter_(store, forge, clock),
      intents_(store, clock, random, options_.lifecycle),
      commands_(store, forge, intents_, clock) {}

std::string EnvironmentReconciler::CommentMarker(const std::string& environment) {
  return ForgeReporter::CommentMarker(environment);
}

absl::StatusOr<ReconcileResult> EnvironmentReconciler::Reconcile(const std::string& key) {
  absl::StatusOr<WorkKey> parsed = ParseWorkKey(key);
  if (!parsed.ok()) return parsed.status();
  if (parsed->kind == WorkKey::Kind::kPullRequest) {
    return ReconcilePullRequest(parsed->repo, parsed->pr_number);
  }
  return ReconcileByName(parsed->environment);
}

absl::StatusOr<ReconcileResult> EnvironmentReconciler::ReconcilePullRequest(const std::string& repo,
                                                                            int64_t number) {
  absl::StatusOr<std::optional<Environment>> found = store_.FindLiveEnvironment(repo, number);
  if (!found.ok()) return found.status();
  std::optional<Environment> live = std::move(*found);
  // Destruction is one-way: once started (by this reconciler or the API) it is finished
  // whatever the pull request looks like now.
  if (live && live->state == EnvState::kDestroying) return FinishDestroy(*live);

  absl::StatusOr<forge::PullRequest> pr = forge_.GetPullRequest(repo, number);
  if (!pr.ok()) {
    if (pr.status().code() != absl::StatusCode::kNotFound) return pr.status();
    if (live) return Destroy(*live, "pull request not found", /*block_recreate=*/false);
    return ReconcileResult{std::nullopt, "pull request not found"};
  }
  if (pr->state != forge::PullRequestState::kOpen) {
    const std::string reason = pr->state == forge::PullRequestState::kMerged
                                   ? "pull request merged"
                                   : "pull request closed";
    if (live) return Destroy(*live, reason, /*block_recreate=*/false);
    return ReconcileResult{std::nullopt, reason};
  }
  Target target{repo, number, pr->head_sha, pr->head_branch};

  absl::StatusOr<std::optional<ReconcileResult>> commanded = HandleCommands(repo, number, live);
  if (!commanded.ok()) return commanded.status();
  if (commanded->has_value()) return **commanded;

  // The live environment's record (empty without one), read once for this pass.
  const EnvRecord record = live ? ParseEnvRecord(live->spec_json) : EnvRecord{};
  // Created by hand (EnvironmentIntents::Create): kept whatever the triggers say.
  const bool forced = live && live->forced;
  if (live) {
    Step ended = EndedBeforeConfig(*live, record, *pr);
    if (!ended.ok()) return ended.status();
    if (ended->has_value()) return **ended;
  }

  absl::StatusOr<LoadedConfig> loaded = LoadProjectConfig(repo, pr->head_sha);
  if (!loaded.ok()) return loaded.status();
  if (!loaded->config) return WithoutConfig(live, record, *pr, target, loaded->error);
  // The gates come from the default branch, what to deploy from the head (issue 16).
  absl::StatusOr<config::PolicyOutcome> policy = ApplyPolicy(*pr, *loaded->config);
  if (!policy.ok()) return policy.status();
  const config::ProjectConfig& config = policy->config;
  target.restricted = policy->restricted;
  RememberProject(repo, config);

  Step decided = Decide(live, *pr, config, forced);
  if (!decided.ok()) return decided.status();
  if (decided->has_value()) return **decided;
  // Only a wanted environment hears of what the policy refuses (a fork the policy does not
  // allow gets nothing, not a failed environment).
  if (!policy->refusal.empty()) return WithoutConfig(live, record, *pr, target, policy->refusal);
  if (live) return Converge(*live, target, config);
  absl::StatusOr<bool> blocked = RecreationBlocked(repo, number, pr->head_sha);
  if (!blocked.ok()) return blocked.status();
  if (*blocked) {
    return ReconcileResult{std::nullopt,
                           "environment was destroyed at this commit; waiting for a push or "
                           "for the label to be re-added"};
  }
  return Create(target, config);
}

EnvironmentReconciler::Step EnvironmentReconciler::Decide(const std::optional<Environment>& live,
                                                          const forge::PullRequest& pr,
                                                          const config::ProjectConfig& config,
                                                          bool forced) {
  DecisionSources sources;
  sources.changed_files = [&] { return forge_.ListChangedFiles(pr.repo, pr.number); };
  sources.checks = [&] { return forge_.ListChecks(pr.repo, pr.head_sha); };
  absl::StatusOr<Decision> decision = DecideEnvironment(pr, config, sources);
  if (!decision.ok()) return decision.status();
  if (live && decision->want != Decision::Want::kYes && forced &&
      !(pr.from_fork && !config.environment.allow_forks)) {
    // Created by hand: the triggers do not apply (a fork the project does not allow still does).
    decision->want = Decision::Want::kYes;
  }
  switch (decision->want) {
    case Decision::Want::kNo:
      if (live) return EndPass(Destroy(*live, decision->reason, /*block_recreate=*/false));
      if (decision->label_absent) {
        if (absl::Status s = LiftRecreationBlock(pr.repo, pr.number); !s.ok()) return s;
      }
      return EndPass(ReconcileResult{std::nullopt, decision->reason});
    case Decision::Want::kWait: {
      // An existing environment keeps running its last commit meanwhile.
      ReconcileResult result{options_.checks_poll, decision->reason};
      if (live) RequeueForDeadlines(*live, result);
      return EndPass(std::move(result));
    }
    case Decision::Want::kYes:
      break;
  }
  return std::nullopt;
}

absl::StatusOr<std::optional<ReconcileResult>> EnvironmentReconciler::HandleCommands(
    const std::string& repo, int64_t number, std::optional<Environment>& live) {
  std::optional<Environment> target = live;
  if (!target) {
    absl::StatusOr<std::optional<Environment>> newest = NewestDestroyed(repo, number);
    if (!newest.ok()) return newest.status();
    target = std::move(*newest);
  }
  if (!target) return std::nullopt;
  absl::StatusOr<CommentCommands::Outcome> handled = commands_.Handle(*target);
  if (!handled.ok()) return handled.status();
  if (!handled->env) return std::nullopt;
  if (handled->destroying) {
    absl::StatusOr<ReconcileResult> destroyed = FinishDestroy(*handled->env);
    if (!destroyed.ok()) return destroyed.status();
    return std::optional<ReconcileResult>(*destroyed);
  }
  if (live) {
    live = *handled->env;
  } else {
    // The destroyed environment's comment answers the command.
    absl::StatusOr<Environment> reported = reporter_.Report(*handled->env);
    if (!reported.ok()) return reported.status();
  }
  return std::nullopt;
}

absl::StatusOr<ReconcileResult> EnvironmentReconciler::ReconcileByName(const std::string& name) {
  absl::StatusOr<std::optional<Environment>> found = store_.GetEnvironment(name);
  if (!found.ok()) return found.status();
  if (!found->has_value() || (*found)->state == EnvState::kDestroyed) {
    return ReconcileResult{std::nullopt, "no live environment " + name};
  }
  Environment env = **found;
  if (env.pr_number > 0) return ReconcilePullRequest(env.project, env.pr_number);
  if (env.state == EnvState::kDestroying) return FinishDestroy(env);
  const EnvRecord record = ParseEnvRecord(env.spec_json);
  if (std::optional<std::string> expired = ExpiryReason(env, record)) {
    return Destroy(env, *expired, /*block_recreate=*/true);
  }
  if (env.head_sha.empty()) return Fail(env, "the environment names no commit to deploy", "");
  if (env.state == EnvState::kFailed && record.failed_sha == env.head_sha) {
    ReconcileResult result{std::nullopt, "failed; waiting for a new commit"};
    RequeueForDeadlines(env, result);
    return result;
  }
  absl::StatusOr<LoadedConfig> loaded = LoadProjectConfig(env.project, env.head_sha);
  if (!loaded.ok()) return loaded.status();
  if (!loaded->config) return Fail(env, loaded->error, env.head_sha);
  RememberProject(env.project, *loaded->config);
  return Converge(env, Target{env.project, 0, env.head_sha, ""}, *loaded->config);
}

EnvironmentReconciler::Step EnvironmentReconciler::EndedBeforeConfig(const Environment& live,
                                                                     const EnvRecord& record,
                                                                     const forge::PullRequest& pr) {
  if (std::optional<std::string> expired = ExpiryReason(live, record)) {
    return EndPass(Destroy(live, *expired, /*block_recreate=*/true));
  }
  // A terminal failure at this very commit (broken eph.yaml, rejected manifests) is not
  // retried: nothing can change until someone pushes. Only the label can still matter.
  if (live.state != EnvState::kFailed || record.failed_sha.empty() ||
      record.failed_sha != pr.head_sha) {
    return std::nullopt;
  }
  if (!live.forced && !HasTriggerLabel(pr, record.trigger_labels)) {
    return EndPass(Destroy(live, LabelRemovedReason(record.trigger_labels), false));
  }
  absl::StatusOr<Environment> reported = reporter_.Report(live);
  if (!reported.ok()) return reported.status();
  ReconcileResult result{std::nullopt,
                         "failed at " + ShortSha(pr.head_sha) + "; waiting for a new commit"};
  RequeueForDeadlines(*reported, result);
  return std::optional<ReconcileResult>(std::move(result));
}

absl::StatusOr<ReconcileResult> EnvironmentReconciler::WithoutConfig(
    const std::optional<Environment>& live, const EnvRecord& record, const forge::PullRequest& pr,
    const Target& target, const std::string& error) {
  // Without a readable eph.yaml the trigger labels are those the environment was created
  // with, or the default label.
  const std::vector<std::string>& labels = record.trigger_labels;
  const bool forced = live && live->forced;
  if (!forced && !HasTriggerLabel(pr, labels)) {
    if (live) return Destroy(*live, LabelRemovedReason(labels), false);
    return ReconcileResult{std::nullopt, "no trigger label"};
  }
  if (live) return Fail(*live, error, pr.head_sha);
  absl::StatusOr<bool> blocked = RecreationBlocked(target.repo, target.pr_number, pr.head_sha);
  if (!blocked.ok()) return blocked.status();
  if (*blocked) return ReconcileResult{std::nullopt, "recreation blocked at this commit"};
  return CreateFailed(target, error);
}

absl::StatusOr<EnvironmentReconciler::LoadedConfig> EnvironmentReconciler::LoadProjectConfig(
    const std::string& repo, const std::string& sha) {
  absl::StatusOr<std::string> text = forge_.ReadFile(repo, sha, options_.config_path);
  if (!text.ok()) {
    if (text.status().code() != absl::StatusCode::kNotFound) return text.status();
    return LoadedConfig{std::nullopt,
                        options_.config_path + ": not found at commit " + ShortSha(sha)};
  }
  config::ValidationResult parsed = config::ParseConfig(*text, options_.config_path);
  if (!parsed.ok()) {
    std::string message = config::FormatDiagnostics(parsed.diagnostics);
    while (!message.empty() && message.back() == '\n') message.pop_back();
    // The errors at their lines, as the forge shows them (GitHub: the `eph` check run).
    reporter_.ReportBrokenConfig(repo, sha, options_.config_path, parsed.diagnostics, message);
    return LoadedConfig{std::nullopt, message};
  }
  return LoadedConfig{std::move(parsed.config), ""};
}

absl::StatusOr<std::optional<config::ProjectConfig>> EnvironmentReconciler::DefaultBranchConfig(
    const forge::PullRequest& pr) {
  if (pr.default_branch.empty()) return std::nullopt;
  absl::StatusOr<std::string> sha = forge_.ResolveBranch(pr.repo, pr.default_branch);
  if (!sha.ok()) {
    if (sha.status().code() == absl::StatusCode::kNotFound) return std::nullopt;
    return sha.status();
  }
  absl::StatusOr<std::string> text = forge_.ReadFile(pr.repo, *sha, options_.config_path);
  if (!text.ok()) {
    if (text.status().code() == absl::StatusCode::kNotFound) return std::nullopt;
    return text.status();
  }
  config::ValidationResult parsed = config::ParseConfig(*text, options_.config_path);
  if (!parsed.ok()) {
    // Its own push reported the errors; meanwhile the project is as one without a policy.
    spdlog::warn("{}: {} on {} is not valid; no policy applies", pr.repo, options_.config_path,
                 pr.default_branch);
    return std::nullopt;
  }
  return std::move(parsed.config);
}

absl::StatusOr<config::PolicyOutcome> EnvironmentReconciler::ApplyPolicy(
    const forge::PullRequest& pr, const config::ProjectConfig& head) {
  absl::StatusOr<std::optional<config::ProjectConfig>> base = DefaultBranchConfig(pr);
  if (!base.ok()) return base.status();
  config::PolicyOutcome outcome =
      config::ApplyProjectPolicy(head, base->has_value() ? &**base : nullptr, pr.from_fork);
  for (const std::string& note : outcome.notes) {
    spdlog::debug("{}#{}: {}", pr.repo, pr.number, note);
  }
  return outcome;
}

void EnvironmentReconciler::RememberProject(const std::string& repo,
                                            const config::ProjectConfig& config) {
  std::vector<std::string> labels = TriggerLabels(config);
  {
    std::lock_guard<std::mutex> lock(projects_mu_);
    auto it = known_triggers_.find(repo);
    if (it != known_triggers_.end() && it->second == labels) return;
  }
  state::Project project;
  absl::StatusOr<std::optional<state::Project>> stored = store_.GetProject(repo);
  if (stored.ok() && stored->has_value()) project = **stored;
  project.repo = repo;
  if (project.created_at == TimePoint{}) project.created_at = clock_.Now();
  project.updated_at = clock_.Now();
  project.trigger_labels = labels;
  // Best effort: a missed write only delays the resync's search for this project.
  if (absl::Status s = store_.UpsertProject(project); !s.ok()) {
    spdlog::warn("{}: could not record the project: {}", repo, s.ToString());
    return;
  }
  std::lock_guard<std::mutex> lock(projects_mu_);
  known_triggers_[repo] = std::move(labels);
}

absl::StatusOr<std::string> EnvironmentReconciler::NewName(const std::string& project,
                                                           const Target& target,
                                                           const names::NameOptions& options) {
  return NewEnvironmentName(store_, random_, {project, target.pr_number, target.sha, target.branch},
                            options);
}

absl::StatusOr<ReconcileResult> EnvironmentReconciler::Create(const Target& target,
                                                              const config::ProjectConfig& config) {
  const TimePoint now = clock_.Now();
  names::NameOptions name_options;
  name_options.name_template = config.environment.name_template;
  name_options.random_suffix = config.environment.random_suffix;
  absl::StatusOr<std::string> name = NewName(config.name, target, name_options);
  if (!name.ok()) return name.status();

  Environment env;
  env.name = *name;
  env.project = target.repo;
  env.pr_number = target.pr_number;
  env.head_sha = target.sha;
  env.provider = ProviderFor(config);
  env.created_at = now;
  env.updated_at = now;
  env.expires_at = now + absl::ToChronoMilliseconds(config.environment.ttl);
  EnvRecord record;
  env.namespace_name = options_.lifecycle.namespace_prefix + env.name;
  record.trigger_labels = TriggerLabels(config);
  record.idle_timeout_ms = absl::ToInt64Milliseconds(config.environment.idle_timeout);
  providers::Provider* provider = providers_.Find(env.provider);
  if (provider == nullptr) {
    env.state = EnvState::kFailed;
    env.reason = "provider " + env.provider + " is not enabled on this ephd";
    record.failed_sha = target.sha;
  } else {
    // Recorded before Apply runs: if ephd dies mid-Apply, destroying still cleans up.
    env.state = EnvState::kProvisioning;
    record.provider_touched = true;
  }
  env.spec_json = EnvRecordJson(record);
  absl::StatusOr<Environment> stored = store_.CreateEnvironment(env);
  if (!stored.ok()) {
    // Someone else created one for this pull request meanwhile: look again.
    if (stored.status().code() == absl::StatusCode::kAlreadyExists) {
      return absl::AbortedError(std::string(stored.status().message()));
    }
    return stored.status();
  }
  spdlog::info("environment {}: created for {}#{} at {} ({})", stored->name, target.repo,
               target.pr_number, ShortSha(target.sha), StateName(stored->state));
  if (provider == nullptr) {
    absl::StatusOr<Environment> reported = reporter_.Report(*stored);
    if (!reported.ok()) return reported.status();
    ReconcileResult result{std::nullopt, "created " + stored->name + ", failed: " + env.reason};
    RequeueForDeadlines(*reported, result);
    return result;
  }
  return ApplyAndObserve(*stored, target, config, *provider);
}

absl::StatusOr<ReconcileResult> EnvironmentReconciler::CreateFailed(const Target& target,
                                                                    const std::string& reason) {
  const TimePoint now = clock_.Now();
  std::string project = names::ToDnsLabelPart(target.repo.substr(target.repo.find('/') + 1));
  if (project.empty()) project = "app";
  absl::StatusOr<std::string> name = NewName(project, target, {});
  if (!name.ok()) return name.status();

  Environment env;
  env.name = *name;
  env.project = target.repo;
  env.pr_number = target.pr_number;
  env.head_sha = target.sha;
  env.state = EnvState::kFailed;
  env.reason = reason;
  env.created_at = now;
  env.updated_at = now;
  env.expires_at = now + absl::ToChronoMilliseconds(config::kDefaultTtl);
  EnvRecord record;
  record.failed_sha = target.sha;
  env.spec_json = EnvRecordJson(record);
  absl::StatusOr<Environment> stored = store_.CreateEnvironment(env);
  if (!stored.ok()) {
    if (stored.status().code() == absl::StatusCode::kAlreadyExists) {
      return absl::AbortedError(std::string(stored.status().message()));
    }
    return stored.status();
  }
  spdlog::info("environment {}: created failed for {}#{}: {}", stored->name, target.repo,
               target.pr_number, FirstLine(reason));
  absl::StatusOr<Environment> reported = reporter_.Report(*stored);
  if (!reported.ok()) return reported.status();
  ReconcileResult result{std::nullopt, "created " + stored->name + ", failed: eph.yaml"};
  RequeueForDeadlines(*reported, result);
  return result;
}

absl::StatusOr<ReconcileResult> EnvironmentReconciler::Converge(
    Environment env, const Target& target, const config::ProjectConfig& config) {
  EnvRecord record = ParseEnvRecord(env.spec_json);
  const std::string wanted = ProviderFor(config);
  if (record.provider_touched && !env.provider.empty() && env.provider != wanted) {
    // eph.yaml moved to another provider: the old one's objects go first.
    providers::Provider* old = providers_.Find(env.provider);
    if (old == nullptr) {
      return absl::UnavailableError("provider " + env.provider +
                                    " is not enabled on this ephd; cannot move " + env.name +
                                    " off it");
    }
    absl::StatusOr<providers::DestroyResult> gone =
        old->Destroy({env.name, NamespaceOf(env, options_.lifecycle.namespace_prefix)});
    if (!gone.ok()) return gone.status();
    if (!gone->done) {
      return ReconcileResult{options_.destroy_poll,
                             "removing " + env.name + " from provider " + env.provider};
    }
    record.applied_sha.clear();
    record.provider_touched = false;
    env.provider = wanted;
    env.spec_json = EnvRecordJson(record);
  }
  providers::Provider* provider = providers_.Find(wanted);
  if (provider == nullptr) {
    return Fail(env, "provider " + wanted + " is not enabled on this ephd", target.sha);
  }
  if (record.applied_sha != target.sha) return ApplyAndObserve(env, target, config, *provider);
  return ObserveOnly(env, target, config, *provider);
}

absl::StatusOr<ReconcileResult> EnvironmentReconciler::ApplyAndObserve(
    Environment env, const Target& target, const config::ProjectConfig& config,
    providers::Provider& provider) {
  absl::StatusOr<RenderedSpec> spec =
      RenderSpec(config, {target.repo, target.pr_number, target.sha, target.branch});
  if (!spec.ok()) {
    if (IsTerminalError(spec.status())) {
      return Fail(env, std::string(spec.status().message()), target.sha);
    }
    return spec.status();
  }
  // Secrets before anything is stored or made: one that ephd lacks fails the environment before
  // the provider is called, instead of leaving an app that starts without it.
  absl::StatusOr<std::map<std::string, std::string>> secrets =
      ResolveSecrets(config.environment.secrets, options_.secrets);
  if (!secrets.ok()) {
    if (IsTerminalError(secrets.status())) {
      return Fail(env, std::string(secrets.status().message()), target.sha);
    }
    return secrets.status();
  }
  absl::StatusOr<ApplyPass> pass = StoreApplyIntent(std::move(env), target, config, *spec);
  if (!pass.ok()) return pass.status();
  pass->request = ApplyRequestFor(pass->env, target, config, *spec);
  // eph.yaml's variables and secrets (disjoint: the parser refuses a name in both) first;
  // EnsureDatabases adds Eph's database settings last, so Eph's names always win (eph.yaml may
  // not name them either).
  pass->request.secret_env = spec->variables;
  for (const auto& [name, value] : *secrets) pass->request.secret_env[name] = value;
  pass->secrets = *std::move(secrets);
  // A fresh checkout per apply, gone afterwards: renders never see another commit's files.
  absl::StatusOr<SourceCheckout> checkout = SourceCheckout::Create(options_.source_root);
  if (!checkout.ok()) return checkout.status();
  if (absl::Status fetched = forge_.FetchSource(target.repo, target.sha, checkout->path());
      !fetched.ok()) {
    if (IsTerminalError(fetched) || fetched.code() == absl::StatusCode::kResourceExhausted) {
      return Fail(pass->env, "fetching the source failed: " + std::string(fetched.message()),
                  target.sha);
    }
    return fetched;
  }
  pass->request.source_dir = checkout->path();
  if (config.database.enabled && !config.database.instances.empty()) {
    Step databases = EnsureDatabases(*pass, target, config, provider);
    if (!databases.ok()) return databases.status();
    if (databases->has_value()) return **databases;
  }
  const auto apply_started = std::chrono::steady_clock::now();
  absl::StatusOr<providers::ApplyResult> applied = provider.Apply(pass->request);
  // For bench/label_ready.sh's breakdown of a pass (and anyone asking where time goes).
  spdlog::debug("environment {}: apply took {} ms", pass->env.name,
                std::chrono::duration_cast<std::chrono::milliseconds>(
                    std::chrono::steady_clock::now() - apply_started)
                    .count());
  if (!applied.ok()) {
    if (IsTerminalError(applied.status())) {
      return Fail(pass->env,
                  "apply failed: " +
                      RedactSecretValues(std::string(applied.status().message()), pass->secrets),
                  target.sha);
    }
    return applied.status();
  }
  return ObserveApplied(*pass, target, config, provider, *applied);
}

absl::StatusOr<EnvironmentReconciler::ApplyPass> EnvironmentReconciler::StoreApplyIntent(
    Environment env, const Target& target, const config::ProjectConfig& config,
    const RenderedSpec& spec) {
  const Environment before = env;
  ApplyPass pass;
  pass.stored = env;
  EnvRecord& record = pass.record;
  record = ParseEnvRecord(env.spec_json);
  if (env.namespace_name.empty()) {
    env.namespace_name = options_.lifecycle.namespace_prefix + env.name;
  }
  record.trigger_labels = TriggerLabels(config);
  record.idle_timeout_ms = absl::ToInt64Milliseconds(config.environment.idle_timeout);
  record.images = spec.images;
  record.provider_touched = true;
  record.failed_sha.clear();
  env.state = record.applied_sha.empty() ? EnvState::kProvisioning : EnvState::kUpdating;
  // The progress deadline counts from the first pass that applies this commit; later passes at
  // the same commit (a partial start, objects lost and made again) keep the clock running.
  const bool was_applying =
      before.state == EnvState::kProvisioning || before.state == EnvState::kUpdating;
  if (!was_applying || record.apply_sha != target.sha) {
    record.apply_started_ms = ToUnixMillis(clock_.Now());
    record.apply_sha = target.sha;
  }
  env.reason.clear();
  env.head_sha = target.sha;
  env.provider = spec.provider;
  env.spec_json = EnvRecordJson(record);
  // The intent is stored before Apply: a crash mid-Apply leaves a record that objects may exist.
  // A row that already says so (provider touched, this state, commit and provider: a new
  // environment, or a later pass at the same commit) needs no extra write; what else changed
  // is written with the outcome.
  const bool intent_stored = ParseEnvRecord(before.spec_json).provider_touched &&
                             before.state == env.state && before.head_sha == env.head_sha &&
                             before.provider == env.provider;
  if (!SameRow(before, env) && !intent_stored) {
    env.updated_at = clock_.Now();
    absl::StatusOr<Environment> saved = Save(env);
    if (!saved.ok()) return saved.status();
    spdlog::info("environment {}: {} -> {} at {}", env.name, StateName(before.state),
                 StateName(env.state), ShortSha(target.sha));
    env = *saved;
    pass.stored = env;
  }
  pass.env = std::move(env);
  return pass;
}

providers::ApplyRequest EnvironmentReconciler::ApplyRequestFor(const Environment& env,
                                                               const Target& target,
                                                               const config::ProjectConfig& config,
                                                               const RenderedSpec& spec) const {
  providers::ApplyRequest request;
  request.environment = env.name;
  request.namespace_name = env.namespace_name;
  request.project = target.repo;
  request.pr_number = target.pr_number;
  request.head_sha = target.sha;
  request.host = env.name + "." + BaseDomain(config);
  request.config_json = spec.config_json;
  request.images = spec.images;
  request.restricted = target.restricted;
  request.labels = {{providers::kManagedByLabel, providers::kManagedByValue},
                    {providers::kEnvironmentLabel, env.name}};
  if (!options_.installation.empty()) {
    request.labels[providers::kInstallationLabel] = options_.installation;
  }
  return request;
}

EnvironmentReconciler::Step EnvironmentReconciler::EnsureDatabases(
    ApplyPass& pass, const Target& target, const config::ProjectConfig& config,
    providers::Provider& provider) {
  if (options_.databases == nullptr) {
    return EndPass(Fail(pass.env,
                        "eph.yaml asks for a database, but this ephd has no database server "
                        "(set EPH_DATABASE_ADMIN_URL)",
                        target.sha));
  }
  const std::vector<config::DatabaseInstance>& instances = config.database.instances;
  const bool several = instances.size() > 1;
  // Servers of the environment's own first; then the databases on them and on the shared
  // server; then the app.
  std::map<std::string, DatabaseServerAccess> own_servers;
  Step servers = EnsureOwnDatabaseServers(pass, target, config, provider, own_servers);
  if (!servers.ok() || servers->has_value()) return servers;
  const bool any_shared =
      std::any_of(instances.begin(), instances.end(), [](const config::DatabaseInstance& i) {
        return i.placement != config::DatabasePlacement::kEnvironment;
      });
  if (any_shared && !pass.record.database_touched) {
    // Recorded before the database exists, so a crash in between still drops it on destroy.
    pass.record.database_touched = true;
    pass.env.spec_json = EnvRecordJson(pass.record);
    absl::StatusOr<Environment> saved = Save(pass.env);
    if (!saved.ok()) return saved.status();
    pass.env = *saved;
    pass.stored = pass.env;
  }
  for (size_t i = 0; i < instances.size(); ++i) {
    const config::DatabaseInstance& instance = instances[i];
    const auto own = own_servers.find(instance.name);
    absl::StatusOr<std::map<std::string, std::string>> settings = options_.databases->Ensure(
        pass.env.name, several ? instance.name : "", target.repo, pass.request.source_dir, instance,
        own == own_servers.end() ? nullptr : &own->second);
    if (!settings.ok()) {
      if (IsTerminalError(settings.status()) ||
          settings.status().code() == absl::StatusCode::kDeadlineExceeded) {
        return EndPass(
            Fail(pass.env, DatabaseFailure(instance, several, settings.status()), target.sha));
      }
      return settings.status();
    }
    AddDatabaseSettings(instance.name, *settings, /*primary=*/i == 0, pass.request.secret_env);
  }
  return std::nullopt;
}

EnvironmentReconciler::Step EnvironmentReconciler::EnsureOwnDatabaseServers(
    ApplyPass& pass, const Target& target, const config::ProjectConfig& config,
    providers::Provider& provider, std::map<std::string, DatabaseServerAccess>& servers) {
  const std::vector<config::DatabaseInstance>& instances = config.database.instances;
  // All started before any is waited for.
  std::string waiting;
  for (const config::DatabaseInstance& instance : instances) {
    if (instance.placement != config::DatabasePlacement::kEnvironment) continue;
    providers::DatabaseServerRequest server_request{.environment = pass.env.name,
                                                    .namespace_name = pass.env.namespace_name,
                                                    .labels = pass.request.labels,
                                                    .name = instance.name,
                                                    .version = instance.version,
                                                    .image = instance.image};
    absl::StatusOr<providers::DatabaseServer> server =
        provider.EnsureDatabaseServer(server_request);
    if (!server.ok()) {
      if (IsTerminalError(server.status())) {
        return EndPass(Fail(pass.env,
                            DatabaseFailure(instance, instances.size() > 1, server.status()),
                            target.sha));
      }
      return server.status();
    }
    if (!server->ready) {
      if (waiting.empty()) {
        waiting = server->message.empty()
                      ? "waiting for its database server `" + instance.name + "`"
                      : server->message;
      }
      continue;
    }
    servers[instance.name] =
        DatabaseServerAccess{server->admin_url, server->app_host, server->app_port};
  }
  if (!waiting.empty()) {
    return ReconcileResult{options_.progress_poll, pass.env.name + ": " + waiting};
  }
  return std::nullopt;
}

absl::StatusOr<ReconcileResult> EnvironmentReconciler::ObserveApplied(
    ApplyPass& pass, const Target& target, const config::ProjectConfig& config,
    providers::Provider& provider, const providers::ApplyResult& applied) {
  Environment& env = pass.env;
  // Started only in part (the rest waits for a dependency's healthcheck): the commit is not
  // applied yet, so the next pass applies again instead of only observing.
  if (!applied.needs_reapply) pass.record.applied_sha = target.sha;
  pass.record.components = applied.components;
  env.spec_json = EnvRecordJson(pass.record);

  absl::StatusOr<providers::Observation> observed =
      provider.Observe({env.name, env.namespace_name});
  if (!observed.ok()) {
    // Keep what Apply achieved, so the retry only observes.
    absl::StatusOr<Environment> saved = Save(env);
    if (!saved.ok()) spdlog::warn("environment {}: {}", env.name, saved.status().ToString());
    return observed.status();
  }
  if (observed->phase == providers::Phase::kAbsent ||
      (applied.needs_reapply && observed->phase == providers::Phase::kReady)) {
    // Just applied, the provider has not caught up yet; or not all of it is started.
    observed->phase = providers::Phase::kProgressing;
  }
  env.updated_at = clock_.Now();
  const EnvState applying_state = env.state;
  Environment settled = env;
  switch (observed->phase) {
    case providers::Phase::kReady:
      SettleReady(settled, *observed, config);
      break;
    case providers::Phase::kFailed:
      settled.state = EnvState::kFailed;
      settled.reason = observed->message.empty()
                           ? "the provider reports the environment failed"
                           : RedactSecretValues(observed->message, pass.secrets);
      break;
    case providers::Phase::kProgressing:
    case providers::Phase::kAbsent:
      break;
  }
  std::optional<Duration> look_again;
  if (observed->phase == providers::Phase::kProgressing) {
    look_again =
        SettleProgressing(settled, RedactSecretValues(observed->message, pass.secrets), config);
  }
  // One write for the outcome and the forge's acknowledgement (Report writes it).
  absl::StatusOr<Environment> reported =
      reporter_.Report(settled, /*unsaved=*/!SameRow(pass.stored, settled));
  if (!reported.ok()) return reported.status();
  if (reported->state != applying_state) {
    spdlog::info("environment {}: {} -> {}", env.name, StateName(applying_state),
                 StateName(reported->state));
  }
  ReconcileResult result;
  result.summary =
      "applied " + ShortSha(target.sha) + " to " + env.name + ": " + StateName(reported->state);
  if (reported->state != EnvState::kFailed) result.requeue_after = look_again;
  RequeueForDeadlines(*reported, result);
  return result;
}

absl::StatusOr<ReconcileResult> EnvironmentReconciler::ObserveOnly(
    Environment env, const Target& target, const config::ProjectConfig& config,
    providers::Provider& provider) {
  EnvRecord record = ParseEnvRecord(env.spec_json);
  absl::StatusOr<providers::Observation> observed =
      provider.Observe({env.name, NamespaceOf(env, options_.lifecycle.namespace_prefix)});
  if (!observed.ok()) return observed.status();
  if (observed->phase == providers::Phase::kAbsent) {
    spdlog::warn("environment {}: its objects are gone; applying again", env.name);
    record.applied_sha.clear();
    env.spec_json = EnvRecordJson(record);
    return ApplyAndObserve(env, target, config, provider);
  }
  // Part of it removed behind Eph's back (a container deleted by hand): applied again, which
  // makes what is missing and keeps the rest.
  std::vector<std::string> missing;
  for (const std::string& name : record.components) {
    if (std::none_of(observed->components.begin(), observed->components.end(),
                     [&](const providers::ComponentStatus& c) { return c.name == name; })) {
      missing.push_back(name);
    }
  }
  if (!missing.empty()) {
    spdlog::warn("environment {}: {} gone; applying again", env.name, absl::StrJoin(missing, ", "));
    record.applied_sha.clear();
    env.spec_json = EnvRecordJson(record);
    return ApplyAndObserve(env, target, config, provider);
  }
  Environment settled = env;
  ReconcileResult result;
  switch (observed->phase) {
    case providers::Phase::kReady:
      SettleReady(settled, *observed, config);
      settled.reason.clear();
      break;
    case providers::Phase::kFailed: {
      settled.state = EnvState::kFailed;
      settled.reason =
          observed->message.empty()
              ? "the provider reports the environment failed"
              : RedactSecretValues(observed->message, ReadableSecrets(config, options_.secrets));
      break;
    }
    case providers::Phase::kProgressing:
    case providers::Phase::kAbsent:
      // A ready environment rolling its pods stays ready; a new one keeps being polled, says
      // why it is not ready yet, and fails past its progress deadline.
      if (env.state == EnvState::kProvisioning || env.state == EnvState::kUpdating) {
        const Duration look_again = SettleProgressing(
            settled,
            RedactSecretValues(observed->message, ReadableSecrets(config, options_.secrets)),
            config);
        if (settled.state != EnvState::kFailed) result.requeue_after = look_again;
      }
      break;
  }
  const bool changed = !SameRow(env, settled);
  if (changed) settled.updated_at = clock_.Now();
  // One write for the new state and the forge's acknowledgement (Report writes it).
  absl::StatusOr<Environment> reported = reporter_.Report(settled, /*unsaved=*/changed);
  if (!reported.ok()) return reported.status();
  if (changed) {
    spdlog::info("environment {}: {} -> {}", env.name, StateName(env.state),
                 StateName(reported->state));
  }
  result.summary = env.name + " " + StateName(reported->state);
  RequeueForDeadlines(*reported, result);
  return result;
}

absl::StatusOr<ReconcileResult> EnvironmentReconciler::Fail(Environment env,
                                                            const std::string& reason,
                                                            const std::string& sha) {
  const Environment before = env;
  EnvRecord record = ParseEnvRecord(env.spec_json);
  record.failed_sha = sha;
  env.state = EnvState::kFailed;
  env.reason = reason;
  if (!sha.empty()) env.head_sha = sha;
  env.spec_json = EnvRecordJson(record);
  if (!SameRow(before, env)) {
    env.updated_at = clock_.Now();
    absl::StatusOr<Environment> saved = Save(env);
    if (!saved.ok()) return saved.status();
    spdlog::info("environment {}: {} -> failed: {}", env.name, StateName(before.state),
                 FirstLine(reason));
    env = *saved;
  }
  absl::StatusOr<Environment> reported = reporter_.Report(env);
  if (!reported.ok()) return reported.status();
  ReconcileResult result{std::nullopt, env.name + " failed: " + FirstLine(reason)};
  RequeueForDeadlines(*reported, result);
  return result;
}

absl::StatusOr<ReconcileResult> EnvironmentReconciler::Destroy(Environment env,
                                                               const std::string& reason,
                                                               bool block_recreate) {
  if (env.state != EnvState::kDestroying) {
    EnvRecord record = ParseEnvRecord(env.spec_json);
    record.block_recreate = block_recreate;
    const EnvState from = env.state;
    env.state = EnvState::kDestroying;
    env.reason = reason;
    env.updated_at = clock_.Now();
    env.spec_json = EnvRecordJson(record);
    absl::StatusOr<Environment> saved = Save(env);
    if (!saved.ok()) return saved.status();
    spdlog::info("environment {}: {} -> destroying: {}", env.name, StateName(from), reason);
    env = *saved;
  }
  return FinishDestroy(env);
}

absl::StatusOr<ReconcileResult> EnvironmentReconciler::FinishDestroy(Environment env) {
  EnvRecord record = ParseEnvRecord(env.spec_json);
  if (record.provider_touched) {
    providers::Provider* provider = providers_.Find(env.provider);
    if (provider == nullptr) {
      return absl::UnavailableError("provider " + env.provider + " is not enabled on this ephd; " +
                                    env.name + " stays destroying until it is");
    }
    absl::StatusOr<providers::DestroyResult> gone =
        provider->Destroy({env.name, NamespaceOf(env, options_.lifecycle.namespace_prefix)});
    if (!gone.ok()) return gone.status();
    if (!gone->done) {
      absl::StatusOr<Environment> reported = reporter_.Report(env);
      if (!reported.ok()) return reported.status();
      return ReconcileResult{options_.destroy_poll,
                             "destroying " + env.name + ": " + gone->message};
    }
  }
  if (record.database_touched) {
    if (options_.databases == nullptr) {
      return absl::UnavailableError("environment " + env.name +
                                    " has a database, but this ephd has no database server; it "
                                    "stays destroying until one is configured");
    }
    if (absl::Status dropped = options_.databases->Drop(env.name); !dropped.ok()) return dropped;
  }
  // Destroyed without a recorded wish (the API's DELETE): keep the pull request from getting a
  // new environment at once.
  record.block_recreate = record.block_recreate.value_or(true);
  env.state = EnvState::kDestroyed;
  env.updated_at = clock_.Now();
  env.spec_json = EnvRecordJson(record);
  absl::StatusOr<Environment> saved = Save(env);
  if (!saved.ok()) return saved.status();
  spdlog::info("environment {}: destroyed: {}", env.name, env.reason);
  absl::StatusOr<Environment> reported = reporter_.Report(*saved);
  if (!reported.ok()) return reported.status();
  return ReconcileResult{std::nullopt, "destroyed " + env.name + ": " + env.reason};
}

absl::StatusOr<Environment> EnvironmentReconciler::Save(const Environment& env) {
  return store_.UpdateEnvironment(env);
}

absl::StatusOr<std::optional<Environment>> EnvironmentReconciler::NewestDestroyed(
    const std::string& repo, int64_t number) {
  state::EnvironmentFilter filter;
  filter.include_destroyed = true;
  filter.project = repo;
  absl::StatusOr<std::vector<Environment>> all = store_.ListEnvironments(filter);
  if (!all.ok()) return all.status();
  std::optional<Environment> newest;
  for (Environment& env : *all) {
    if (env.pr_number != number || env.state != EnvState::kDestroyed) continue;
    if (!newest || env.created_at > newest->created_at ||
        (env.created_at == newest->created_at && env.name > newest->name)) {
      newest = std::move(env);
    }
  }
  return newest;
}

absl::StatusOr<bool> EnvironmentReconciler::RecreationBlocked(const std::string& repo,
                                                              int64_t number,
                                                              const std::string& head_sha) {
  absl::StatusOr<std::optional<Environment>> newest = NewestDestroyed(repo, number);
  if (!newest.ok()) return newest.status();
  if (!newest->has_value()) return false;
  const EnvRecord record = ParseEnvRecord((*newest)->spec_json);
  return record.block_recreate.value_or(false) && (*newest)->head_sha == head_sha;
}

absl::Status EnvironmentReconciler::LiftRecreationBlock(const std::string& repo, int64_t number) {
  absl::StatusOr<std::optional<Environment>> newest = NewestDestroyed(repo, number);
  if (!newest.ok()) return newest.status();
  if (!newest->has_value()) return absl::OkStatus();
  Environment env = **newest;
  EnvRecord record = ParseEnvRecord(env.spec_json);
  if (!record.block_recreate.value_or(false)) return absl::OkStatus();
  record.block_recreate = false;
  env.spec_json = EnvRecordJson(record);
  return Save(env).status();
}

std::optional<std::string> EnvironmentReconciler::ExpiryReason(const Environment& env,
                                                               const EnvRecord& record) const {
  const TimePoint now = clock_.Now();
  if (env.expires_at && now >= *env.expires_at) return "ttl expired";
  if (record.idle_timeout_ms > 0) {
    // A push or any other change counts as activity too, so a just-updated environment is not
    // destroyed for idleness that happened before it.
    const TimePoint last = std::max(env.last_activity_at.value_or(env.updated_at), env.updated_at);
    const auto idle = std::chrono::milliseconds(record.idle_timeout_ms);
    if (now - last >= idle) {
      return "idle for " + config::DurationString(absl::Milliseconds(record.idle_timeout_ms));
    }
  }
  return std::nullopt;
}

void EnvironmentReconciler::RequeueForDeadlines(const Environment& env,
                                                ReconcileResult& result) const {
  if (!state::IsLive(env.state) || env.state == EnvState::kDestroying) return;
  std::optional<TimePoint> deadline = env.expires_at;
  const EnvRecord record = ParseEnvRecord(env.spec_json);
  if (record.idle_timeout_ms > 0) {
    const TimePoint last = std::max(env.last_activity_at.value_or(env.updated_at), env.updated_at);
    const TimePoint idle_at = last + std::chrono::milliseconds(record.idle_timeout_ms);
    if (!deadline || idle_at < *deadline) deadline = idle_at;
  }
  if (!deadline) return;
  const Duration in = std::max(Duration::zero(), *deadline - clock_.Now());
  if (!result.requeue_after || in < *result.requeue_after) result.requeue_after = in;
}

Duration EnvironmentReconciler::SettleProgressing(Environment& env, const std::string& message,
                                                  const config::ProjectConfig& config) const {
  EnvRecord record = ParseEnvRecord(env.spec_json);
  if (record.apply_started_ms == 0) return options_.progress_poll;  // a row from before
  const std::optional<absl::Duration> deadline = ProgressDeadline(config, env.provider);
  const Duration took = clock_.Now() - FromUnixMillis(record.apply_started_ms);
  Duration report_after = kProgressReportAfter;
  if (deadline) {
    report_after = std::min<Duration>(report_after, absl::ToChronoMilliseconds(*deadline / 4));
  }
  if (took >= report_after && !message.empty()) env.reason = message;
  Duration look_again = options_.progress_poll;
  if (took < report_after) look_again = std::min(look_again, report_after - took);
  if (!deadline) return look_again;
  const Duration left = Duration(absl::ToChronoMilliseconds(*deadline)) - took;
  if (left > Duration::zero()) return std::min(look_again, left);
  env.state = EnvState::kFailed;
  env.reason = absl::StrCat("not ready ", config::DurationString(*deadline),
                            " after the apply began (kubernetes.progress_deadline): ",
                            message.empty() ? "the provider reports no reason" : message);
  record.failed_sha = env.head_sha;  // not tried again until the commit changes
  env.spec_json = EnvRecordJson(record);
  return look_again;
}

void EnvironmentReconciler::SettleReady(Environment& env, const providers::Observation& observed,
                                        const config::ProjectConfig& config) const {
  env.state = EnvState::kReady;
  const std::string domain = BaseDomain(config);
  if (domain.empty()) {
    env.url = observed.url;
  } else {
    env.url = EnvironmentUrl(options_.lifecycle.url_template, env.name + "." + domain);
  }
  // Where the gateway sends this environment's traffic (a Docker port on 127.0.0.1); empty for
  // providers whose own ingress serves the host.
  env.backend_url = observed.url;
}

std::string EnvironmentReconciler::BaseDomain(const config::ProjectConfig& config) const {
  return config.environment.base_domain.value_or(options_.lifecycle.base_domain);
}

absl::Status EnvironmentReconciler::RecordTerminalFailure(const std::string& key,
                                                          const absl::Status& error) {
  absl::StatusOr<WorkKey> parsed = ParseWorkKey(key);
  if (!parsed.ok()) return absl::OkStatus();  // a malformed key has no environment
  absl::StatusOr<std::optional<Environment>> found =
      parsed->kind == WorkKey::Kind::kPullRequest
          ? store_.FindLiveEnvironment(parsed->repo, parsed->pr_number)
          : store_.GetEnvironment(parsed->environment);
  if (!found.ok()) return found.status();
  if (!found->has_value()) return absl::OkStatus();
  Environment env = **found;
  if (!state::IsLive(env.state)) return absl::OkStatus();
  if (env.state == EnvState::kDestroying) {
    // Giving up on a destruction would leak objects; the next resync tries again.
    spdlog::error("environment {}: destroy failed: {}", env.name, error.ToString());
    return absl::OkStatus();
  }
  return Fail(env, std::string(error.message()), env.head_sha).status();
}

}  // namespace eph::controller
