// ForgeEvent: a webhook delivery decoded by its forge into what Eph acts on. Each forge has a
// decoder (github_events.h); the intake stores the result next to the raw body (state::Delivery
// kind, comment_id, author, text), so the controller never reads a forge's JSON and a second
// forge needs no controller change.
//
// Thread-safety: a plain value.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "pkg/state/store.h"

namespace eph::webhook {

struct ForgeEvent {
  // One of state::kDelivery*: pull_request, comment, checks, installation, push, other.
  std::string kind = state::kDeliveryOther;
  std::string repo;    // "owner/repo"; empty when the delivery names none
  std::string action;  // the forge's action word, for the audit trail
  // The pull requests it concerns (their keys are queued).
  std::vector<int64_t> pull_requests;
  // kind "comment": a person's (not a bot's) new comment on a pull request.
  int64_t comment_id = 0;
  std::string author;
  std::string text;
};

}  // namespace eph::webhook
