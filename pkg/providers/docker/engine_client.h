// EngineClient: HTTP/1.1 to a Docker Engine API over its unix socket, every path prefixed with
// the pinned API version (/v1.41), on the one HTTP client (pkg/http).
//
// Contract:
//  - Any HTTP status is a successful exchange; ErrorFromResponse() turns an answer the caller did
//    not expect into a Status carrying the engine's own message, by the one mapping
//    (pkg/http/status_map.h, with Docker's overrides).
//  - Transport failures are Unavailable ("cannot reach the Docker engine at ..."), timeouts
//    DeadlineExceeded: both transient for the reconciler.
//  - A streamed request hands the body to `on_body` as it arrives; returning false ends the
//    transfer (the result is then the response with stopped_by_reader).
//
// Thread-safety: Perform() may be called from many threads at once (one curl handle per call).
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace eph::providers::docker {

inline constexpr char kApiVersion[] = "v1.41";
// The first API version whose container create keeps Healthcheck.StartInterval (Docker 25).
inline constexpr char kStartIntervalApiVersion[] = "v1.44";

struct EngineRequest {
  std::string method = "GET";
  std::string path;                      // "/containers/json?all=1", without the version prefix
  std::string api_version;               // "v1.44"; empty: kApiVersion
  std::optional<std::string> body;       // JSON
  std::vector<std::string> headers;      // extra "Name: value" lines (X-Registry-Auth)
  std::chrono::milliseconds timeout{0};  // 0: the client's default; streams pass -1 for none
  std::function<bool(std::string_view)> on_body;  // for 2xx bodies only; see above
  // Polled about once a second while the transfer waits (a quiet log stream): true ends it, as
  // if on_body had returned false.
  std::function<bool()> cancelled;
};

struct EngineResponse {
  long status = 0;
  std::string body;  // unless streamed
  std::string content_type;
  bool stopped_by_reader = false;
};

struct EngineClientOptions {
  std::string socket_path;  // "/var/run/docker.sock"
  std::chrono::milliseconds connect_timeout{5'000};
  std::chrono::milliseconds request_timeout{60'000};
  size_t max_response_bytes = size_t{64} << 20;
};

class EngineClient {
 public:
  explicit EngineClient(EngineClientOptions options);

  [[nodiscard]] absl::StatusOr<EngineResponse> Perform(const EngineRequest& request) const;

  // GET / POST / DELETE with a JSON body or none; the answer of any status.
  [[nodiscard]] absl::StatusOr<EngineResponse> Get(const std::string& path) const;
  [[nodiscard]] absl::StatusOr<EngineResponse> Post(const std::string& path,
                                                    std::optional<std::string> body) const;
  [[nodiscard]] absl::StatusOr<EngineResponse> Delete(const std::string& path) const;

  const EngineClientOptions& options() const { return options_; }

 private:
  const EngineClientOptions options_;
};

// The engine's {"message": "..."} of a non-2xx answer, or the raw body.
std::string EngineMessage(const EngineResponse& response);

// A Status for an answer the caller did not expect, by http::Api::kDockerEngine: e.g. 400
// InvalidArgument, 404 NotFound, 409 FailedPrecondition (a conflict the user must resolve, e.g. a
// name taken by an object Eph does not own), 5xx Unavailable unless the engine's message shows a
// configuration error (port already allocated, executable not found), which is
// FailedPrecondition. Never OK (a 304 where content was expected is Unknown). `what` prefixes
// the message.
absl::Status ErrorFromResponse(const EngineResponse& response, std::string_view what);

// "unix:///var/run/docker.sock" -> "/var/run/docker.sock"; InvalidArgument for anything else.
[[nodiscard]] absl::StatusOr<std::string> SocketPathFromHost(const std::string& docker_host);

// Whether an engine answering /version with ApiVersion `engine` ("1.41", "1.45") speaks
// `wanted` ("v1.44"). False for anything unreadable.
bool ApiVersionAtLeast(std::string_view engine, std::string_view wanted);

// Percent-encodes a query parameter value.
std::string UrlEncode(std::string_view value);

}  // namespace eph::providers::docker
