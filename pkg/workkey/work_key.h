// Work keys: what the durable queue holds. A key names the thing to reconcile, never an event:
// the reconciler reads the current state itself (level-triggered), so keys merge freely.
//
//   "owner/repo#42"   a pull request (what webhooks enqueue)
//   "env:NAME"        an environment created by hand, without a pull request
//
// The one place the format lives: the webhook intake, the controller and its intents all use
// this library.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "pkg/state/store.h"

namespace eph {

inline constexpr std::string_view kEnvironmentKeyPrefix = "env:";

struct WorkKey {
  enum class Kind { kPullRequest, kEnvironment };
  Kind kind = Kind::kPullRequest;
  std::string repo;         // kPullRequest: "owner/repo"
  int64_t pr_number = 0;    // kPullRequest: > 0
  std::string environment;  // kEnvironment: the environment's name
};

std::string PullRequestKey(const std::string& repo, int64_t number);
std::string EnvironmentKey(const std::string& name);
// The key that reconciles `env`: its pull request's key, or "env:NAME" without one.
std::string WorkKeyFor(const state::Environment& env);
// InvalidArgument for anything that is not one of the two forms above.
absl::StatusOr<WorkKey> ParseWorkKey(std::string_view key);

}  // namespace eph
