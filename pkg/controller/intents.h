// EnvironmentIntents: the one way to change an environment's life from outside the
// reconciler's own convergence. The API (and the dashboard and CLI through it) create
// environments by hand, destroy, extend and keep them here; the reconciler's `/eph` comment
// commands (comment_commands.h) destroy, extend, keep and redeploy through the same calls. Each
// intent is a compare-and-swap on the row (retried a few times if the reconciler wrote it
// meanwhile) and, except Extend, enqueues the environment's work key, so the reconciler carries
// it out (unless the caller is that reconcile pass: CarriedOutBy). The rules themselves are in lifecycle.h.
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
  // Edits written in the same compare-and-swap as an intent whenever the intent succeeds (also
  // when the intent itself has nothing to change): how a comment command records that it was
  // carried out, so that it is carried out once.
  using AlongWith = std::function<void(state::Environment&)>;
  // Who carries a change out: the reconciler, woken through the work queue (every caller
  // outside a pass), or the reconcile pass that made the change (the `/eph` comment commands),
  // which holds the environment's work key and goes on with the record returned, so that
  // enqueueing the key again would only cost a second pass that finds nothing to do.
  enum class CarriedOutBy { kQueue, kThisPass };

  // `random` picks names; `on_enqueued` (may be empty) wakes the queue workers. All references
  // must outlive the object.
  EnvironmentIntents(state::Store& store, const Clock& clock, Random& random,
                     LifecyclePolicy policy, std::function<void()> on_enqueued = {});

  // A `pending` environment, kept whatever its pull request's labels say (`forced`).
  absl::StatusOr<state::Environment> Create(const CreateIntent& intent);
  // `destroying` with `reason`; an environment already ending is returned as it is.
  absl::StatusOr<state::Environment> Destroy(const std::string& name, const std::string& reason,
                                             const AlongWith& along = {},
                                             CarriedOutBy by = CarriedOutBy::kQueue);
  // Not enqueued: the reconciler reads the new deadline on its next pass.
  absl::StatusOr<state::Environment> Extend(const std::string& name, Duration by,
                                            const AlongWith& along = {});
  absl::StatusOr<state::Environment> Keep(const std::string& name, const AlongWith& along = {},
                                          CarriedOutBy by = CarriedOutBy::kQueue);
  // Applies the commit again (lifecycle.h Redeploy): a live environment's next pass applies even
  // an unchanged or failed commit; a destroyed one's pull request may get a new environment at
  // the same commit.
  absl::StatusOr<state::Environment> Redeploy(const std::string& name,
                                              const AlongWith& along = {},
                                              CarriedOutBy by = CarriedOutBy::kQueue);

  // The namespace `env`'s objects live in (for logs).
  std::string NamespaceOf(const state::Environment& env) const;
  const LifecyclePolicy& policy() const { return policy_; }

 private:
  // Reads `name`, lets `change` edit it (false: nothing to write) and `along` after it, writes
  // it back compare-and-swap, and enqueues it if `enqueue`.
  absl::StatusOr<state::Environment> Change(
      const std::string& name, bool enqueue,
      const std::function<absl::StatusOr<bool>(state::Environment&)>& change,
      const AlongWith& along);
  absl::StatusOr<std::string> NewName(const CreateIntent& intent);
  void Enqueue(const state::Environment& env);

  state::Store& store_;
  const Clock& clock_;
  Random& random_;
  const LifecyclePolicy policy_;
  const std::function<void()> on_enqueued_;
};

}  // namespace eph::controller
