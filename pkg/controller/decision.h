// DecideEnvironment: the decision table of docs/reconciler.md, as one pure function. Given a
// pull request's live state and its eph.yaml, should it have an environment?
//
// Order of the rules (the first that applies decides, and its reason is what users see):
//   1. merged / closed                                 -> no  ("pull request merged")
//   2. from a fork and environment.allow_forks false  -> no  ("pull request is from a fork")
//   3. per trigger, in file order, the first one whose label is on the pull request:
//        a skip label present                          -> no  ("label no-preview added")
//        draft and not include_drafts                  -> no  ("pull request is a draft")
//        paths set and no changed file matches         -> no  ("no changed file matches ...")
//        a wait_for_checks check failed                -> no  ("check build failed")
//        a wait_for_checks check pending or missing    -> wait (look again later)
//        otherwise                                     -> yes
//   4. no trigger label on the pull request            -> no  ("label preview removed")
// A later trigger is consulted when an earlier one says no, so two triggers with different
// settings behave as "either may create the environment".
//
// Changed files and checks are fetched only when a trigger needs them (each costs a forge call).
//
// Thread-safety: pure function of its inputs (the sources are called on the calling thread).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "pkg/config/config.h"
#include "pkg/forge/forge.h"

namespace eph::controller {

// Label that triggers environments when eph.yaml lists no trigger (PRODUCT.md's `preview`).
inline constexpr char kDefaultTriggerLabel[] = "preview";

struct Decision {
  enum class Want { kYes, kNo, kWait };
  Want want = Want::kNo;
  std::string reason;  // why not (kNo), what it waits for (kWait); empty for kYes
  // kNo only: the trigger label is absent. An environment that expired may be recreated once
  // this has been seen (docs/reconciler.md, "TTL and idle timeout").
  bool label_absent = false;
};

struct DecisionSources {
  std::function<absl::StatusOr<std::vector<std::string>>()> changed_files;
  std::function<absl::StatusOr<std::vector<forge::CheckResult>>()> checks;
};

// Errors only come from the sources (forge errors, passed through unchanged).
absl::StatusOr<Decision> DecideEnvironment(const forge::PullRequest& pr,
                                           const config::ProjectConfig& config,
                                           const DecisionSources& sources);

// Whether any of `trigger_labels` (or the default label when empty) is on the pull request.
bool HasTriggerLabel(const forge::PullRequest& pr, const std::vector<std::string>& trigger_labels);
// The labels of every trigger, deduplicated, in file order; the default label if none.
std::vector<std::string> TriggerLabels(const config::ProjectConfig& config);
// "label preview removed" / "labels preview, deploy removed".
std::string LabelRemovedReason(const std::vector<std::string>& trigger_labels);

}  // namespace eph::controller
