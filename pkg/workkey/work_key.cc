#include "pkg/workkey/work_key.h"

#include <charconv>

namespace eph {

std::string PullRequestKey(const std::string& repo, int64_t number) {
  return repo + "#" + std::to_string(number);
}

std::string EnvironmentKey(const std::string& name) {
  return std::string(kEnvironmentKeyPrefix) + name;
}

std::string WorkKeyFor(const state::Environment& env) {
  return env.pr_number > 0 ? PullRequestKey(env.project, env.pr_number) : EnvironmentKey(env.name);
}

absl::StatusOr<WorkKey> ParseWorkKey(std::string_view key) {
  auto invalid = [&] {
    return absl::InvalidArgumentError("malformed work key '" + std::string(key) +
                                      "': want owner/repo#N or env:NAME");
  };
  WorkKey out;
  if (key.starts_with(kEnvironmentKeyPrefix)) {
    out.kind = WorkKey::Kind::kEnvironment;
    out.environment = std::string(key.substr(kEnvironmentKeyPrefix.size()));
    if (out.environment.empty()) return invalid();
    return out;
  }
  const size_t hash = key.rfind('#');
  if (hash == std::string_view::npos) return invalid();
  const std::string_view repo = key.substr(0, hash);
  const std::string_view number = key.substr(hash + 1);
  const size_t slash = repo.find('/');
  if (slash == std::string_view::npos || slash == 0 || slash + 1 == repo.size() ||
      repo.find('/', slash + 1) != std::string_view::npos) {
    return invalid();
  }
  int64_t n = 0;
  auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), n);
  if (ec != std::errc() || end != number.data() + number.size() || n <= 0) return invalid();
  out.kind = WorkKey::Kind::kPullRequest;
  out.repo = std::string(repo);
  out.pr_number = n;
  return out;
}

}  // namespace eph
