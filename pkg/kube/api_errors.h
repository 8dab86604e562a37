// How answers of the Kubernetes API become absl::Status: the HTTP status (or the Status object
// of a watch ERROR event) goes through the one mapping, pkg/http/status_map.h, with the
// Kubernetes overrides written there (409 AlreadyExists → AlreadyExists, other 409 → Aborted,
// 410 → Aborted with IsGone() true: relist). 429 and 5xx arrive here only after the client's own
// retries.
//
// The message is "<what>: <the API's Status message>" (or the start of the body when it is not
// a Status), so a user sees exactly what the API server said. The HTTP status and the API's
// reason travel with the Status as payloads (ApiHttpStatus, ApiReason).
//
// Thread-safety: stateless functions.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "nlohmann/json.hpp"

namespace eph::kube {

// `what` names the request, e.g. "PATCH /api/v1/namespaces/a/configmaps/b".
absl::Status StatusFromApiResponse(long http_status, const std::string& body,
                                   const std::string& what);

// For a meta/v1 Status object (the object of a watch ERROR event).
absl::Status StatusFromApiStatus(const nlohmann::json& status, const std::string& what);

// The HTTP status an error came from, 0 if it did not come from the API server.
int ApiHttpStatus(const absl::Status& status);
// The API's machine-readable reason ("AlreadyExists", "Expired", ...), "" if none.
std::string ApiReason(const absl::Status& status);
// 410 Gone: the requested resourceVersion is too old; list again.
bool IsGone(const absl::Status& status);

// A status's message as a std::string (this Abseil's string_view is not std::string_view, so it
// does not go into fmt or std APIs directly).
std::string MessageOf(const absl::Status& status);

}  // namespace eph::kube
