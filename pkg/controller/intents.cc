#include "pkg/controller/intents.h"

#include <spdlog/spdlog.h>

#include "absl/strings/str_cat.h"
#include "pkg/names/names.h"
#include "pkg/workkey/work_key.h"

namespace eph::controller {

namespace {

// Compare-and-swap attempts before telling the caller to try again.
constexpr int kAttempts = 5;

absl::Status NoSuchEnvironment(const std::string& name) {
  return absl::NotFoundError("no environment named " + name);
}

}  // namespace

EnvironmentIntents::EnvironmentIntents(state::Store& store, const Clock& clock, Random& random,
                                       LifecyclePolicy policy, std::function<void()> on_enqueued)
    : store_(store),
      clock_(clock),
      random_(random),
      policy_(std::move(policy)),
      on_enqueued_(std::move(on_enqueued)) {}

std::string EnvironmentIntents::NamespaceOf(const state::Environment& env) const {
  return controller::NamespaceOf(env, policy_.namespace_prefix);
}

absl::StatusOr<std::string> EnvironmentIntents::NewName(const CreateIntent& intent) {
  const std::string repo = intent.project.substr(intent.project.find('/') + 1);
  return NewEnvironmentName(store_, random_, {names::ToDnsLabelPart(repo), intent.pr, "", ""},
                            names::NameOptions{});
}

absl::StatusOr<state::Environment> EnvironmentIntents::Create(const CreateIntent& intent) {
  const std::string pr_text = absl::StrCat(intent.project, "#", intent.pr);
  if (intent.pr > 0) {
    absl::StatusOr<std::optional<state::Environment>> live =
        store_.FindLiveEnvironment(intent.project, intent.pr);
    if (!live.ok()) return live.status();
    if (live->has_value()) {
      return absl::AlreadyExistsError(
          absl::StrCat(pr_text, " already has environment ", (*live)->name, " (",
                       std::string(state::EnvStateName((*live)->state)), ")"));
    }
  }
  state::Environment env;
  if (intent.name.empty()) {
    absl::StatusOr<std::string> name = NewName(intent);
    if (!name.ok()) return name.status();
    env.name = *name;
  } else {
    env.name = intent.name;
  }
  const TimePoint now = clock_.Now();
  env.project = intent.project;
  env.pr_number = intent.pr;
  env.state = state::EnvState::kPending;
  env.reason = "created through the API";
  env.url = EnvironmentUrl(policy_.url_template, env.name + "." + policy_.base_domain);
  env.namespace_name = policy_.namespace_prefix + env.name;
  // A pull request's environment made by hand is kept whatever its labels say.
  env.forced = intent.pr > 0;
  env.created_at = env.updated_at = now;
  env.expires_at = now + policy_.default_ttl;
  absl::StatusOr<state::Environment> stored = store_.CreateEnvironment(env);
  if (!stored.ok()) {
    if (stored.status().code() == absl::StatusCode::kAlreadyExists) {
      return absl::AlreadyExistsError(intent.pr > 0
                                          ? pr_text + " already has a live environment"
                                          : "an environment named " + env.name + " exists");
    }
    return stored.status();
  }
  Enqueue(*stored);
  return stored;
}

absl::StatusOr<state::Environment> EnvironmentIntents::Change(
    const std::string& name, bool enqueue,
    const std::function<absl::StatusOr<bool>(state::Environment&)>& change,
    const AlongWith& along) {
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    absl::StatusOr<std::optional<state::Environment>> found = store_.GetEnvironment(name);
    if (!found.ok()) return found.status();
    if (!found->has_value()) return NoSuchEnvironment(name);
    state::Environment env = **found;
    absl::StatusOr<bool> changed = change(env);
    if (!changed.ok()) return changed.status();
    if (!*changed && !along) return env;
    if (along) along(env);
    absl::StatusOr<state::Environment> stored = store_.UpdateEnvironment(env);
    if (!stored.ok() && stored.status().code() == absl::StatusCode::kAborted) continue;
    if (!stored.ok()) return stored.status();
    if (enqueue) Enqueue(*stored);
    return stored;
  }
  return absl::AbortedError("environment " + name + " kept changing; try again");
}

absl::StatusOr<state::Environment> EnvironmentIntents::Destroy(const std::string& name,
                                                               const std::string& reason,
                                                               const AlongWith& along,
                                                               CarriedOutBy by) {
  return Change(
      name, /*enqueue=*/by == CarriedOutBy::kQueue,
      [&](state::Environment& env) -> absl::StatusOr<bool> {
        return StartDestroy(env, reason, clock_.Now());
      },
      along);
}

absl::StatusOr<state::Environment> EnvironmentIntents::Extend(const std::string& name, Duration by,
                                                              const AlongWith& along) {
  // The reconciler reads the new deadline on its next pass; no need to wake it early.
  return Change(
      name, /*enqueue=*/false,
      [&](state::Environment& env) -> absl::StatusOr<bool> {
        absl::Status s = controller::Extend(env, by, clock_.Now());
        if (!s.ok()) return s;
        return true;
      },
      along);
}

absl::StatusOr<state::Environment> EnvironmentIntents::Keep(const std::string& name,
                                                            const AlongWith& along,
                                                            CarriedOutBy by) {
  return Change(
      name, /*enqueue=*/by == CarriedOutBy::kQueue,
      [&](state::Environment& env) -> absl::StatusOr<bool> {
        if (absl::Status s = controller::Keep(env); !s.ok()) return s;
        env.updated_at = clock_.Now();
        return true;
      },
      along);
}

absl::StatusOr<state::Environment> EnvironmentIntents::Redeploy(const std::string& name,
                                                                const AlongWith& along,
                                                                CarriedOutBy by) {
  return Change(
      name, /*enqueue=*/by == CarriedOutBy::kQueue,
      [&](state::Environment& env) -> absl::StatusOr<bool> {
        if (absl::Status s = controller::Redeploy(env, clock_.Now()); !s.ok()) return s;
        return true;
      },
      along);
}

void EnvironmentIntents::Enqueue(const state::Environment& env) {
  absl::Status s = store_.Enqueue(WorkKeyFor(env), clock_.Now());
  if (!s.ok()) spdlog::warn("intents: enqueue for {} failed: {}", env.name, std::string(s.message()));
  if (on_enqueued_) on_enqueued_();
}

}  // namespace eph::controller
