#include "pkg/forge/forge.h"

namespace eph::forge {

std::string_view PullRequestStateName(PullRequestState state) {
  switch (state) {
    case PullRequestState::kOpen:
      return "open";
    case PullRequestState::kClosed:
      return "closed";
    case PullRequestState::kMerged:
      return "merged";
  }
  return "unknown";
}

std::string_view CheckStateName(CheckState state) {
  switch (state) {
    case CheckState::kPending:
      return "pending";
    case CheckState::kSuccess:
      return "success";
    case CheckState::kFailure:
      return "failure";
  }
  return "unknown";
}

std::string_view DeploymentStateName(DeploymentState state) {
  switch (state) {
    case DeploymentState::kInProgress:
      return "in_progress";
    case DeploymentState::kSuccess:
      return "success";
    case DeploymentState::kFailure:
      return "failure";
    case DeploymentState::kInactive:
      return "inactive";
  }
  return "unknown";
}

}  // namespace eph::forge
