// ApiClient: the CLI's view of ephd's HTTP API (on pkg/http). It turns transport failures and
// JSON errors into absl::Status with one-line messages a user can act on, by the one mapping
// (pkg/http/status_map.h: ephd's own error code wins, the inverse of pkg/server/errors.h):
//   Unavailable       ephd is not reachable at the server address
//   Unauthenticated   token missing or refused (401)
//   PermissionDenied  token lacks the scope (403)
//   NotFound          no such environment (404)
//
// Thread-safety: one client per thread.
#pragma once

#include <functional>
#include <string>

#include "absl/status/statusor.h"

namespace eph::client {

struct ClientOptions {
  std::string server = "http://127.0.0.1:8080";
  std::string token;
  long timeout_ms = 30000;
};

class ApiClient {
 public:
  explicit ApiClient(ClientOptions options) : options_(std::move(options)) {}

  // Non-2xx answers become a Status carrying the server's error message.
  absl::StatusOr<std::string> Get(const std::string& path);
  absl::StatusOr<std::string> Post(const std::string& path, const std::string& json_body);
  absl::StatusOr<std::string> Delete(const std::string& path);
  // Streams the body to `on_chunk` (which returns false to stop), for -f / SSE.
  absl::Status Stream(const std::string& path, const std::function<bool(std::string_view)>& on_chunk);

  const ClientOptions& options() const { return options_; }

 private:
  absl::StatusOr<std::string> Call(const std::string& method, const std::string& path,
                                   const std::string* body);
  ClientOptions options_;
};

// Percent-encodes one path segment.
std::string EscapePathSegment(const std::string& s);

}  // namespace eph::client
