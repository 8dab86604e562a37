// ForgeReporter: what a pull request shows of its environment. The sticky comment (found by a
// hidden marker, edited in place), the forge's Deployment and its statuses, and the `eph` check
// run with a broken eph.yaml's errors at their lines.
//
// Reports are level-triggered like the reconciler that makes them: the fingerprint of what was
// last told is kept in the environment's record, so a pass with nothing new writes nothing to the
// forge. What the pull request shows never decides an environment's fate: refused writes
// (permissions, a deleted pull request) are logged and tried again on a later pass; only errors
// worth a retry are returned.
//
// Thread-safety: thread-safe (the store and the forge are; the set of reported checks has its own
// mutex). Report must not run concurrently for the same environment (the work queue's lease).
#pragma once

#include <deque>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "pkg/base/clock.h"
#include "pkg/config/config.h"
#include "pkg/forge/forge.h"
#include "pkg/state/store.h"

namespace eph::controller {

class ForgeReporter {
 public:
  // All references must outlive the reporter.
  ForgeReporter(state::Store& store, forge::Forge& forge, const Clock& clock);

  // The hidden marker that identifies an environment's pull-request comment.
  static std::string CommentMarker(const std::string& environment);

  // Tells the forge about the environment's state, unless it already knows, and returns the
  // stored row. `unsaved`: `env` differs from the stored row (a state the pass just settled), so
  // it is written whatever the forge answered: one write for both.
  absl::StatusOr<state::Environment> Report(state::Environment env, bool unsaved = false);

  // eph.yaml (`config_path`) at `repo`@`sha` has these errors (`message`: all of them as text):
  // a failed check run with an annotation per error, once per commit while ephd runs. Best
  // effort: the environment's reason and its comment carry the same text.
  void ReportBrokenConfig(const std::string& repo, const std::string& sha,
                          const std::string& config_path,
                          const std::vector<config::Diagnostic>& diagnostics,
                          const std::string& message);

 private:
  // Commits whose broken eph.yaml was already reported as a check ("repo@sha"), so a pull
  // request's every webhook does not add another check run. In memory and bounded: after a
  // restart a commit may be reported once more, which is harmless.
  bool FirstConfigCheckReport(const std::string& repo, const std::string& sha);

  state::Store& store_;
  forge::Forge& forge_;
  const Clock& clock_;
  std::mutex checks_mu_;
  std::set<std::string> reported_checks_;
  std::deque<std::string> reported_checks_order_;
};

}  // namespace eph::controller
