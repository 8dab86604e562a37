// GitHub's decoder: a webhook delivery's event name and JSON payload → ForgeEvent.
//
// Thread-safety: pure function.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "pkg/webhook/forge_event.h"

namespace eph::webhook {

// InvalidArgument if `body` is not a JSON object. Events Eph does not act on decode as "other".
absl::StatusOr<ForgeEvent> DecodeGitHubEvent(const std::string& event, const std::string& body);

}  // namespace eph::webhook
