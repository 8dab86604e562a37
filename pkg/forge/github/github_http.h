// GitHubHttp: one HTTPS exchange with the GitHub REST API over libcurl. GitHubForge adds
// authentication, rate limiting and the API's meaning on top; nothing else should need it.
//
// Contract:
//  - Any HTTP status is a successful exchange here; transport failures are Unavailable
//    (DeadlineExceeded for timeouts). Redirects (the tarball endpoint answers 302) are followed,
//    at most five; libcurl does not resend the Authorization header to another host.
//  - A response body larger than `max_response_bytes` is ResourceExhausted.
//
// Thread-safety: Perform() may be called from many threads at once (one curl handle each).
#pragma once

#include <chrono>
#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace eph::forge::github {

struct HttpExchange {
  std::string method = "GET";
  std::string url;                   // absolute
  std::vector<std::string> headers;  // "Name: value"
  std::optional<std::string> body;
  std::chrono::milliseconds timeout{30'000};
  size_t max_response_bytes = size_t{64} << 20;
};

struct HttpAnswer {
  long status = 0;
  std::map<std::string, std::string> headers;  // names in lower case, of the last response
  std::string body;
};

[[nodiscard]] absl::StatusOr<HttpAnswer> PerformHttp(const HttpExchange& exchange);

}  // namespace eph::forge::github
