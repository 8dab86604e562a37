#include "pkg/controller/forge_reporter.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <optional>

#include "absl/strings/str_cat.h"
#include "pkg/controller/env_record.h"
#include "pkg/controller/retry_policy.h"

namespace eph::controller {
namespace {

using state::Environment;
using state::EnvState;

// GitHub refuses longer deployment status descriptions.
constexpr size_t kMaxDeploymentDescription = 140;

std::string ShortSha(const std::string& sha) { return sha.substr(0, 7); }

std::string StateName(EnvState s) { return std::string(state::EnvStateName(s)); }

std::string Truncate(const std::string& s, size_t n) {
  if (s.size() <= n) return s;
  return s.substr(0, n - 3) + "...";
}

// The first line of a (possibly multi-line) reason, for places that only fit one.
std::string FirstLine(const std::string& s) { return s.substr(0, s.find('\n')); }

std::string Fingerprint(const Environment& env) {
  return StateName(env.state) + "|" + env.reason + "|" + env.url + "|" + env.head_sha + "|" +
         (env.expires_at ? FormatRfc3339(*env.expires_at) : "kept");
}

// "2d 3h", "5h 10m", "12m": coarse, for people.
std::string Remaining(Duration left) {
  const int64_t minutes =
      std::max<int64_t>(0, std::chrono::duration_cast<std::chrono::minutes>(left).count());
  const int64_t days = minutes / (24 * 60), hours = minutes / 60 % 24, mins = minutes % 60;
  if (days > 0) return absl::StrCat(days, "d ", hours, "h");
  if (hours > 0) return absl::StrCat(hours, "h ", mins, "m");
  return absl::StrCat(mins, "m");
}

// The TTL line of a live environment's comment. The time left is as of the comment's writing;
// the absolute time is what stays true.
std::string ExpiryLine(const Environment& env, TimePoint now) {
  if (!env.expires_at) return "Kept: no TTL (`/eph down` removes it).";
  std::string when = FormatRfc3339(*env.expires_at);
  return "Expires " + when + " (in " + Remaining(*env.expires_at - now) +
         "). `/eph extend 24h` adds time, `/eph keep` removes the TTL.";
}

std::optional<forge::DeploymentState> DeploymentStateFor(EnvState s) {
  switch (s) {
    case EnvState::kProvisioning:
    case EnvState::kUpdating:
      return forge::DeploymentState::kInProgress;
    case EnvState::kReady:
      return forge::DeploymentState::kSuccess;
    case EnvState::kFailed:
      return forge::DeploymentState::kFailure;
    case EnvState::kDestroyed:
      return forge::DeploymentState::kInactive;
    case EnvState::kPending:
    case EnvState::kDestroying:
    case EnvState::kSleeping:
      return std::nullopt;
  }
  return std::nullopt;
}

std::string NotReadyYet(const Environment& env) {
  if (env.reason.empty()) return "";
  return "\n\nNot ready yet:\n\n```\n" + env.reason + "\n```";
}

std::string StatusLine(const Environment& env, const EnvRecord& record) {
  const std::string commit = "`" + ShortSha(env.head_sha) + "`";
  switch (env.state) {
    case EnvState::kPending:
      return "Waiting to be created.";
    // The reason, while it is being created or updated, is why it is not ready yet.
    case EnvState::kProvisioning:
      return "Being created from commit " + commit + "." + NotReadyYet(env);
    case EnvState::kUpdating:
      return "Being updated to commit " + commit + "." + NotReadyYet(env);
    case EnvState::kReady:
      return "Ready at " + env.url + " (commit " + commit + ").";
    case EnvState::kFailed:
      return "Failed at commit " + commit + ":\n\n```\n" + env.reason + "\n```";
    case EnvState::kDestroying:
      return "Being destroyed: " + env.reason + ".";
    case EnvState::kDestroyed:
      if (record.block_recreate.value_or(false)) {
        return "Destroyed: " + env.reason +
               ". Push a new commit, or remove and re-add the label, to get a new one.";
      }
      return "Destroyed: " + env.reason + ".";
    case EnvState::kSleeping:
      return "Sleeping.";
  }
  return "";
}

}  // namespace

ForgeReporter::ForgeReporter(state::Store& store, forge::Forge& forge, const Clock& clock)
    : store_(store), forge_(forge), clock_(clock) {}

std::string ForgeReporter::CommentMarker(const std::string& environment) {
  return "<!-- eph:environment=" + environment + " -->";
}

absl::StatusOr<Environment> ForgeReporter::Report(Environment env, bool unsaved) {
  EnvRecord record = ParseEnvRecord(env.spec_json);
  const std::string fingerprint = Fingerprint(env) + "|" + record.command_note;
  if (env.pr_number <= 0 || record.reported == fingerprint) {
    if (unsaved) return store_.UpdateEnvironment(env);
    return env;
  }

  const std::string marker = CommentMarker(env.name);
  std::string body =
      marker + "\n**Preview environment** `" + env.name + "`\n\n" + StatusLine(env, record) + "\n";
  if (env.state != EnvState::kDestroyed && env.state != EnvState::kDestroying) {
    body += "\n" + ExpiryLine(env, clock_.Now()) + "\n";
  }
  if (!record.command_note.empty()) body += "\nLast command: " + record.command_note + "\n";
  absl::Status forge_error = forge_.UpsertComment(env.project, env.pr_number, marker, body);

  std::optional<forge::DeploymentState> deployment_state = DeploymentStateFor(env.state);
  if (forge_error.ok() && deployment_state && record.provider_touched) {
    const bool needs_new = *deployment_state != forge::DeploymentState::kInactive &&
                           (record.deployment_id == 0 || record.deployment_sha != env.head_sha);
    if (needs_new) {
      absl::StatusOr<int64_t> id = forge_.CreateDeployment(
          {env.project, env.head_sha, env.name, "Eph preview environment " + env.name, true});
      if (id.ok()) {
        record.deployment_id = *id;
        record.deployment_sha = env.head_sha;
      } else {
        forge_error = id.status();
      }
    }
    if (forge_error.ok() && record.deployment_id != 0) {
      forge::DeploymentStatus status;
      status.state = *deployment_state;
      if (status.state == forge::DeploymentState::kSuccess) status.environment_url = env.url;
      status.description =
          Truncate(env.reason.empty() ? StatusLine(env, record) : FirstLine(env.reason),
                   kMaxDeploymentDescription);
      forge_error = forge_.SetDeploymentStatus(env.project, record.deployment_id, status);
    }
  }
  if (forge_error.ok()) record.reported = fingerprint;
  // The deployment id is kept even when its status could not be set, so the retry reuses it.
  if (unsaved || record.deployment_id != ParseEnvRecord(env.spec_json).deployment_id ||
      forge_error.ok()) {
    env.spec_json = EnvRecordJson(record);
    absl::StatusOr<Environment> saved = store_.UpdateEnvironment(env);
    if (!saved.ok()) return saved.status();
    env = *saved;
  }
  if (forge_error.ok()) return env;
  // What the pull request shows must never decide an environment's fate: a forge that refuses
  // the write (permissions, a deleted pull request) is logged, and the next pass tries again.
  // Only errors worth a retry are returned, and the retry finds the environment converged.
  if (IsTerminalError(forge_error) || forge_error.code() == absl::StatusCode::kPermissionDenied ||
      forge_error.code() == absl::StatusCode::kUnauthenticated ||
      forge_error.code() == absl::StatusCode::kNotFound) {
    spdlog::warn("environment {}: could not update the pull request: {}", env.name,
                 forge_error.ToString());
    return env;
  }
  return forge_error;
}

bool ForgeReporter::FirstConfigCheckReport(const std::string& repo, const std::string& sha) {
  constexpr size_t kRemembered = 4096;
  std::lock_guard<std::mutex> lock(checks_mu_);
  const std::string key = repo + "@" + sha;
  if (!reported_checks_.insert(key).second) return false;
  reported_checks_order_.push_back(key);
  if (reported_checks_order_.size() > kRemembered) {
    reported_checks_.erase(reported_checks_order_.front());
    reported_checks_order_.pop_front();
  }
  return true;
}

void ForgeReporter::ReportBrokenConfig(const std::string& repo, const std::string& sha,
                                       const std::string& config_path,
                                       const std::vector<config::Diagnostic>& diagnostics,
                                       const std::string& message) {
  forge::ConfigCheck check{repo,
                           sha,
                           false,
                           config_path + " has " + std::to_string(diagnostics.size()) + " error(s)",
                           "```\n" + message + "\n```",
                           {}};
  for (const config::Diagnostic& d : diagnostics) {
    check.annotations.push_back({d.file.empty() ? config_path : d.file, d.line, d.line, d.message});
  }
  if (!FirstConfigCheckReport(repo, sha)) return;
  if (absl::Status reported = forge_.ReportConfigCheck(check);
      !reported.ok() && reported.code() != absl::StatusCode::kUnimplemented) {
    spdlog::warn("{}: could not report the {} check at {}: {}", repo, config_path, ShortSha(sha),
                 reported.ToString());
  }
}

}  // namespace eph::controller
