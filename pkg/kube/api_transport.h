// CurlTransport: one HTTP exchange at a time with one API server over libcurl, TLS set up from a
// KubeConfig. Used by KubeClient, which adds authentication refresh, retries and the API's
// semantics on top; nothing else should need it.
//
// Contract:
//  - TLS is verified against the configured CA only (PEM held in memory, never written to disk),
//    or against the system store when there is none, unless insecure_skip_tls_verify. A
//    verification failure is FailedPrecondition naming the CA's origin.
//  - A transfer stops promptly (well under a second) when `stop` is requested, from any thread;
//    the result is then Cancelled.
//  - Transport failures are Unavailable (DeadlineExceeded for timeouts); RequestNotSent() tells
//    whether the request provably never reached the server, so even a POST may be retried.
//  - Any HTTP status is a successful exchange here; interpreting it is the caller's job.
//
// Thread-safety: Perform() may be called from many threads at once. Connections are kept alive
// in a small pool of handles and reused.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "pkg/kube/credentials.h"
#include "pkg/kube/kube_config.h"

namespace eph::kube {

struct HttpRequest {
  std::string method = "GET";
  std::string path_and_query;  // "/api/v1/...?...", appended to the server URL
  std::optional<std::string> body;
  std::string content_type = "application/json";  // of the body
  std::string accept = "application/json";
  std::chrono::milliseconds timeout{0};  // whole exchange; 0: no limit (streams)
  // When set, the body of a 2xx response is handed over as it arrives instead of collected.
  // Returning false stops the transfer; Perform then returns the response with `stopped_by_reader`.
  std::function<bool(std::string_view)> on_body;
};

struct HttpResponse {
  long status = 0;
  std::map<std::string, std::string> headers;  // names in lower case
  std::string body;                            // unless streamed to on_body
  bool streamed = false;                       // on_body received at least one byte
  bool stopped_by_reader = false;
};

struct TransportOptions {
  std::chrono::milliseconds connect_timeout{10'000};
  std::string user_agent = "eph";
  size_t max_response_bytes = size_t{512} << 20;
  size_t max_idle_handles = 16;
};

class CurlTransport {
 public:
  CurlTransport(const KubeConfig& config, TransportOptions options);
  ~CurlTransport();
  CurlTransport(const CurlTransport&) = delete;
  CurlTransport& operator=(const CurlTransport&) = delete;

  [[nodiscard]] absl::StatusOr<HttpResponse> Perform(const HttpRequest& request,
                                                     const Credentials& credentials,
                                                     const std::stop_token& stop = {});

  const std::string& server() const { return server_; }

 private:
  struct Handle;
  std::unique_ptr<Handle> Acquire();
  void Release(std::unique_ptr<Handle> handle);

  const std::string server_;
  std::string url_base_;    // server_, or with tls-server-name as host
  std::string connect_to_;  // CURLOPT_CONNECT_TO entry for tls-server-name
  const std::string ca_pem_;
  const std::string ca_origin_;
  const bool insecure_;
  const std::string proxy_url_;
  const TransportOptions options_;

  std::mutex mu_;
  std::vector<std::unique_ptr<Handle>> idle_;
};

// True if a transport failure happened before any byte of the request was sent.
bool RequestNotSent(const absl::Status& status);

}  // namespace eph::kube
