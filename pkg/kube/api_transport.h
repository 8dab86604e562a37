// ApiTransport: one exchange with one API server, set up from a KubeConfig (TLS against the
// cluster's CA, client certificates or a bearer token, tls-server-name, proxy) on top of the one
// HTTP client, pkg/http. Used by KubeClient, which adds authentication refresh, retries and the
// API's semantics; nothing else should need it.
//
// Contract: that of http::HttpClient (transport failures Unavailable, timeouts
// DeadlineExceeded, http::RequestNotSent, prompt stop → Cancelled, any HTTP status a successful
// exchange), plus:
//  - TLS is verified against the configured CA only (PEM held in memory, never written to disk),
//    or against the system store when there is none, unless insecure_skip_tls_verify. A
//    verification failure is FailedPrecondition naming the CA's origin and what to fix.
//
// Thread-safety: Perform() may be called from many threads at once. Connections are kept alive
// in a small pool of handles and reused.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "pkg/http/http_client.h"
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

using HttpResponse = http::Response;

struct TransportOptions {
  std::chrono::milliseconds connect_timeout{10'000};
  std::string user_agent = "eph";
  size_t max_response_bytes = size_t{512} << 20;
  size_t max_idle_handles = 16;
};

class ApiTransport {
 public:
  ApiTransport(const KubeConfig& config, TransportOptions options);

  [[nodiscard]] absl::StatusOr<HttpResponse> Perform(const HttpRequest& request,
                                                     const Credentials& credentials,
                                                     const std::stop_token& stop = {});

  const std::string& server() const { return server_; }

 private:
  http::Request Build(const HttpRequest& request, const Credentials& credentials) const;
  absl::Status ExplainTls(const absl::Status& status) const;

  const std::string server_;
  std::string url_base_;    // server_, or with tls-server-name as host
  std::string connect_to_;  // CURLOPT_CONNECT_TO entry for tls-server-name
  const std::string ca_pem_;
  const std::string ca_origin_;
  const bool insecure_;
  const std::string proxy_url_;
  const TransportOptions options_;
  http::HttpClient client_;
};

}  // namespace eph::kube
