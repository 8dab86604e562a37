#include "pkg/controller/lifecycle.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "pkg/controller/env_record.h"

namespace eph::controller {

absl::StatusOr<std::string> NewEnvironmentName(state::Store& store, Random& random,
                                               const names::NameInputs& inputs,
                                               const names::NameOptions& options) {
  absl::Status lookup_error;
  auto taken = [&](const std::string& candidate) {
    absl::StatusOr<bool> t = store.NameTaken(candidate);
    if (!t.ok()) {
      lookup_error = t.status();
      return true;  // stop trying names: the store cannot say
    }
    return *t;
  };
  absl::StatusOr<std::string> made = names::MakeName(inputs, options, random, taken);
  if (!lookup_error.ok()) return lookup_error;
  return made;
}

std::string EnvironmentUrl(std::string_view url_template, std::string_view host) {
  std::string url(url_template);
  constexpr std::string_view kHost = "{host}";
  for (size_t at = url.find(kHost); at != std::string::npos; at = url.find(kHost, at + host.size())) {
    url.replace(at, kHost.size(), host);
  }
  return url;
}

std::string NamespaceOf(const state::Environment& env, std::string_view prefix) {
  return env.namespace_name.empty() ? std::string(prefix) + env.name : env.namespace_name;
}

namespace {

bool Ending(const state::Environment& env) {
  return env.state == state::EnvState::kDestroyed || env.state == state::EnvState::kDestroying;
}

std::string StateText(const state::Environment& env) {
  return env.state == state::EnvState::kDestroyed ? "destroyed" : "being destroyed";
}

}  // namespace

absl::Status Extend(state::Environment& env, Duration by, TimePoint now) {
  if (by < Duration::zero()) {
    return absl::InvalidArgumentError("an extension must be a duration such as 24h, not negative");
  }
  if (Ending(env)) {
    return absl::FailedPreconditionError(
        absl::StrCat(env.name, " is ", StateText(env), "; it cannot be extended"));
  }
  if (!env.expires_at) {
    return absl::FailedPreconditionError(
        absl::StrCat(env.name, " has no TTL (it is kept); it cannot be extended"));
  }
  const TimePoint from = std::max(now, *env.expires_at);
  // Compared as durations from now: `from + by` itself could overflow.
  if (by > kMaxExpiryAhead || from - now > kMaxExpiryAhead - by) {
    return absl::FailedPreconditionError(absl::StrCat(
        env.name, " would then expire more than 366 days from now; keep removes the TTL"));
  }
  env.expires_at = from + by;
  env.updated_at = now;
  return absl::OkStatus();
}

absl::Status Keep(state::Environment& env) {
  if (Ending(env)) {
    return absl::FailedPreconditionError(
        absl::StrCat(env.name, " is ", StateText(env), "; it cannot be kept"));
  }
  env.expires_at.reset();
  return absl::OkStatus();
}

absl::Status Redeploy(state::Environment& env, TimePoint now) {
  if (env.state == state::EnvState::kDestroying) {
    return absl::FailedPreconditionError(
        absl::StrCat(env.name, " is being destroyed; it cannot be redeployed"));
  }
  EnvRecord record = ParseEnvRecord(env.spec_json);
  if (env.state == state::EnvState::kDestroyed) {
    record.block_recreate = false;
  } else {
    record.applied_sha.clear();
    record.failed_sha.clear();
  }
  env.spec_json = EnvRecordJson(record);
  env.updated_at = now;
  return absl::OkStatus();
}

bool StartDestroy(state::Environment& env, const std::string& reason, TimePoint now) {
  if (Ending(env)) return false;
  env.state = state::EnvState::kDestroying;
  env.reason = reason;
  env.updated_at = now;
  return true;
}

}  // namespace eph::controller
