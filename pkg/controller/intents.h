// EnvironmentIntents: the one way to change an environment's life from outside a reconcile
// pass. The API (and the dashboard and CLI through it) create environments by hand, destroy,
// extend and keep them here; nobody else writes an environment's row or the controller's
// record in it. (Redeploy and down exist as `/eph` comment commands only, for now.) Each intent is a compare-and-swap on the row (retried a few times
// if the reconciler wrote it meanwhile) and enqueues the environment's work key, so the
// reconciler carries it out. The rules themselves are in lifecycle.h, which the reconciler's
// `/eph` comment commands apply too.
//
// Errors are absl::Status codes the API maps through server/errors.h: InvalidArgument,
// NotFound, AlreadyExists, FailedPrecondition, Aborted (kept changing), Unavailable (store).
//
// Thread-safety: thread-safe (the store is; the object holds no mutable state).
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "pkg/base/clock.h"
#include "pkg/base/random.h"
#include "pkg/controller/lifecycle.h"
#include "pkg/state/store.h"

namespace eph::controller {

struct CreateIntent {
  std::string project;  // "owner/repo", already validated
  int64_t pr = 0;       // 0: an environment without a pull request
  std::string name;     // empty: made up from the repository and pull request
};

class EnvironmentIntents {
 public:
  // `random` picks names; `on_enqueued` (may be empty) wakes the queue workers. All references
  // must outlive the object.
  EnvironmentIntents(state::Store& store, const Clock& clock, Random& random,
                     LifecyclePolicy policy, std::function<void()> on_enqueued = {});

  // A `pending` environment, kept whatever its pull request's labels say (`forced`).
  absl::StatusOr<state::Environment> Create(const CreateIntent& intent);
  // `destroying` with `reason`; an environment already ending is returned as it is.
  absl::StatusOr<state::Environment> Destroy(const std::string& name, const std::string& reason);
  absl::StatusOr<state::Environment> Extend(const std::string& name, Duration by);
  absl::StatusOr<state::Environment> Keep(const std::string& name);

  // The namespace `env`'s objects live in (for logs).
  std::string NamespaceOf(const state::Environment& env) const;
  const LifecyclePolicy& policy() const { return policy_; }

 private:
  // Reads `name`, lets `change` edit it (false: nothing to write), writes it back
  // compare-and-swap, and enqueues it if `enqueue`.
  absl::StatusOr<state::Environment> Change(
      const std::string& name, bool enqueue,
      const std::function<absl::StatusOr<bool>(state::Environment&)>& change);
  absl::StatusOr<std::string> NewName(const CreateIntent& intent);
  void Enqueue(const state::Environment& env);

  state::Store& store_;
  const Clock& clock_;
  Random& random_;
  const LifecyclePolicy policy_;
  const std::function<void()> on_enqueued_;
};

}  // namespace eph::controller
