#include "pkg/controller/decision.h"

#include <algorithm>

#include "pkg/config/repo_path.h"

namespace eph::controller {
namespace {

bool Contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

std::string Join(const std::vector<std::string>& v) {
  std::string out;
  for (const std::string& s : v) {
    if (!out.empty()) out += ", ";
    out += s;
  }
  return out;
}

}  // namespace

std::vector<std::string> TriggerLabels(const config::ProjectConfig& config) {
  std::vector<std::string> out;
  for (const config::Trigger& trigger : config.triggers) {
    for (const std::string& label : trigger.labels) {
      if (!Contains(out, label)) out.push_back(label);
    }
  }
  if (out.empty()) out.push_back(kDefaultTriggerLabel);
  return out;
}

bool HasTriggerLabel(const forge::PullRequest& pr, const std::vector<std::string>& trigger_labels) {
  if (trigger_labels.empty()) return Contains(pr.labels, kDefaultTriggerLabel);
  return std::any_of(trigger_labels.begin(), trigger_labels.end(),
                     [&](const std::string& l) { return Contains(pr.labels, l); });
}

std::string LabelRemovedReason(const std::vector<std::string>& trigger_labels) {
  if (trigger_labels.size() <= 1) {
    return "label " +
           (trigger_labels.empty() ? std::string(kDefaultTriggerLabel) : trigger_labels.front()) +
           " removed";
  }
  return "labels " + Join(trigger_labels) + " removed";
}

absl::StatusOr<Decision> DecideEnvironment(const forge::PullRequest& pr,
                                           const config::ProjectConfig& config,
                                           const DecisionSources& sources) {
  auto no = [](std::string reason) { return Decision{Decision::Want::kNo, std::move(reason)}; };
  if (pr.state == forge::PullRequestState::kMerged) return no("pull request merged");
  if (pr.state == forge::PullRequestState::kClosed) return no("pull request closed");
  if (pr.from_fork && !config.environment.allow_forks) return no("pull request is from a fork");

  std::vector<config::Trigger> triggers = config.triggers;
  if (triggers.empty()) triggers.push_back(config::Trigger{.labels = {kDefaultTriggerLabel}});

  std::optional<std::vector<std::string>> changed;
  std::optional<std::vector<forge::CheckResult>> checks;
  std::optional<Decision> first_refusal;
  auto refuse = [&](std::string reason) {
    if (!first_refusal) first_refusal = no(std::move(reason));
  };
  std::optional<Decision> waiting;

  for (const config::Trigger& trigger : triggers) {
    const bool labelled = std::any_of(trigger.labels.begin(), trigger.labels.end(),
                                      [&](const std::string& l) { return Contains(pr.labels, l); });
    if (!labelled) continue;
    auto skip = std::find_if(trigger.skip_labels.begin(), trigger.skip_labels.end(),
                             [&](const std::string& l) { return Contains(pr.labels, l); });
    if (skip != trigger.skip_labels.end()) {
      refuse("label " + *skip + " added");
      continue;
    }
    if (pr.draft && !trigger.include_drafts) {
      refuse("pull request is a draft");
      continue;
    }
    if (!trigger.paths.empty()) {
      if (!changed) {
        if (!sources.changed_files) return absl::InternalError("no source for changed files");
        absl::StatusOr<std::vector<std::string>> files = sources.changed_files();
        if (!files.ok()) return files.status();
        changed = std::move(*files);
      }
      if (!config::PathFilterIncludesAny(trigger.paths, *changed)) {
        refuse("no changed file matches triggers[].paths");
        continue;
      }
    }
    if (!trigger.wait_for_checks.empty()) {
      if (!checks) {
        if (!sources.checks) return absl::InternalError("no source for checks");
        absl::StatusOr<std::vector<forge::CheckResult>> results = sources.checks();
        if (!results.ok()) return results.status();
        checks = std::move(*results);
      }
      std::string failed;
      std::string pending;
      for (const std::string& name : trigger.wait_for_checks) {
        auto it = std::find_if(checks->begin(), checks->end(),
                               [&](const forge::CheckResult& c) { return c.name == name; });
        if (it != checks->end() && it->state == forge::CheckState::kFailure) {
          if (failed.empty()) failed = name;
        } else if (it == checks->end() || it->state == forge::CheckState::kPending) {
          if (pending.empty()) pending = name;
        }
      }
      if (!failed.empty()) {
        refuse("check " + failed + " failed");
        continue;
      }
      if (!pending.empty()) {
        if (!waiting) waiting = Decision{Decision::Want::kWait, "waiting for check " + pending};
        continue;
      }
    }
    return Decision{Decision::Want::kYes, ""};
  }
  if (waiting) return *waiting;
  if (first_refusal) return *first_refusal;
  Decision absent = no(LabelRemovedReason(TriggerLabels(config)));
  absent.label_absent = true;
  return absent;
}

}  // namespace eph::controller
