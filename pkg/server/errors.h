// The one place where an absl::Status becomes an HTTP status and a JSON error body
// {"error":{"code","message"}}. Every handler reports failures through here, so clients see the
// same shape and the same mapping everywhere, and never a stack trace.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "pkg/server/http.h"

namespace eph::server {

// Canonical code → HTTP status (InvalidArgument → 400, NotFound → 404, AlreadyExists → 409,
// Unauthenticated → 401, PermissionDenied → 403, FailedPrecondition → 409, Unavailable → 503,
// ResourceExhausted → 429, DeadlineExceeded → 504, anything else → 500).
int HttpStatusFor(absl::StatusCode code);

// snake_case name of the code, e.g. "invalid_argument", used as error.code.
std::string ErrorCodeName(absl::StatusCode code);

// {"error":{"code":...,"message":...}} with proper JSON escaping.
std::string ErrorJson(const std::string& code, const std::string& message);

// Fills `res` for `status` (must not be OK). Internal errors get a generic message: their detail
// goes to the log, not to the client.
void SetError(HttpResponse& res, const absl::Status& status);

}  // namespace eph::server
