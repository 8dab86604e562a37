// EnvRecord: what the reconciler remembers about an environment between passes, kept in
// Environment::spec_json next to the desired spec. Everything the reconciler needs to be
// idempotent lives here: which commit the provider has, which commit failed terminally, what
// the forge was last told, which deployment belongs to the environment.
//
// spec_json may lack any of these fields (an environment created by hand starts without a
// record); parsing is lenient and fills defaults, never fails.
//
// Thread-safety: plain values and pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "pkg/providers/provider.h"

namespace eph::controller {

struct EnvRecord {
  // Desired spec, as last rendered from eph.yaml. (The namespace, `forced` and the gateway's
  // backend are typed fields of state::Environment, which others read.)
  std::vector<std::string> trigger_labels;  // labels that keep a PR environment alive
  int64_t idle_timeout_ms = 0;              // 0: no idle timeout
  std::vector<providers::ImageTag> images;

  // Reconciler bookkeeping.
  std::string applied_sha;        // commit the provider last accepted (Apply OK)
  std::string failed_sha;         // commit that failed terminally: not retried until it changes
  bool provider_touched = false;  // Apply was attempted: Destroy must run before `destroyed`
  // Set when destruction starts: whether the pull request may get a new environment at the
  // same head commit. False for reasons the PR itself caused (closed, label removed), true for
  // TTL, idle timeout and manual deletion. Unset means true.
  std::optional<bool> block_recreate;
  int64_t deployment_id = 0;  // forge deployment for deployment_sha
  std::string deployment_sha;
  std::string reported;  // fingerprint of the status last written to the forge
  bool database_touched = false;  // Ensure was called: Drop must run before `destroyed`
  // When the apply of `apply_sha` began (ms since the epoch, on the reconciler's clock): the
  // progress deadline is measured from it. Kept across the passes that apply the same commit.
  int64_t apply_started_ms = 0;
  std::string apply_sha;
  // The components the provider said the last Apply made (ApplyResult::components).
  std::vector<std::string> components;
  // `/eph` commands: the newest comment handled (GitHub comment ids only grow), and what the
  // last one did, shown in the sticky comment.
  int64_t last_comment_id = 0;
  std::string command_note;
};

EnvRecord ParseEnvRecord(const std::string& spec_json);
std::string EnvRecordJson(const EnvRecord& record);

}  // namespace eph::controller
