// HttpClient: Eph's one HTTP/1.1 client (libcurl), over TCP (with TLS) or a unix socket. The
// CLI's ephd client, the GitHub forge, the Kubernetes client and the Docker engine client are
// thin users of it; they add their API's meaning (paths, authentication, retries) on top and map
// answers to a Status with status_map.h.
//
// Contract:
//  - Any HTTP status is a successful exchange here: interpreting it is the caller's job.
//  - Transport failures are Unavailable, timeouts DeadlineExceeded (both transient), a body over
//    max_response_bytes ResourceExhausted, TLS verification and unusable client certificates
//    FailedPrecondition (a retry cannot fix them). FailureOf() tells which kind it was;
//    RequestNotSent() whether the request provably never reached the server, so even a POST may
//    be retried.
//  - A transfer stops promptly (well under a second) when `stop` is requested, from any thread;
//    the result is then Cancelled. `Request::cancelled` is polled at least once a second and ends
//    the transfer like a reader that returns false: the answer is the response so far, with
//    stopped_by_reader.
//  - With `on_body`, a 2xx body goes to the reader as it arrives instead of being collected;
//    other bodies are always collected, so the caller can read the error.
//
// Thread-safety: Perform() may be called from many threads at once. Idle handles (and with them
// keep-alive connections) are pooled up to HttpClientOptions::max_idle_handles.
#pragma once

#include <chrono>
#include <cstddef>
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

namespace eph::http {

struct TlsOptions {
  std::string ca_pem;  // trust only this CA (PEM, in memory); empty: the system store
  bool insecure_skip_verify = false;
  std::string client_certificate_pem;  // with client_key_pem: mutual TLS
  std::string client_key_pem;
};

struct Request {
  std::string method = "GET";
  std::string url;                   // absolute; over a unix socket the host is only a name
  std::vector<std::string> headers;  // "Name: value"
  std::optional<std::string> body;   // sent as is, with Content-Length (also when empty)
  std::chrono::milliseconds timeout{30'000};  // whole exchange; 0: no limit (streams)
  size_t max_response_bytes = size_t{64} << 20;
  std::chrono::milliseconds connect_timeout{10'000};
  std::string unix_socket;  // connect to this socket instead of the URL's host
  TlsOptions tls;
  std::string connect_to;  // a CURLOPT_CONNECT_TO entry "host:port:connect-host:connect-port"
  std::string proxy;
  std::string user_agent;
  int max_redirects = 0;          // > 0: follow that many (http and https only)
  bool accept_encoding = false;   // ask for gzip/deflate and decode
  bool tcp_keepalive = false;     // probes on an idle connection (long watches)
  std::string what;               // names the request in errors; "" for "METHOD URL"
  std::function<bool(std::string_view)> on_body;  // see the contract
  std::function<bool()> cancelled;                // see the contract
};

struct Response {
  long status = 0;
  std::map<std::string, std::string> headers;  // names in lower case, of the last response
  std::string body;                            // unless streamed to on_body
  bool streamed = false;                       // on_body received at least one byte
  bool stopped_by_reader = false;
};

// What kind of transport failure a non-OK result of Perform() was.
enum class TransportFailure {
  kNone,  // not a transport failure (e.g. a Status of the caller's own)
  kConnect,
  kTimeout,
  kTooLarge,
  kTlsNameMismatch,    // the certificate does not name the host
  kTlsUntrusted,       // the certificate is not signed by a trusted CA
  kClientCertificate,  // our certificate or key cannot be used
  kCancelled,
  kOther,
};

struct HttpClientOptions {
  size_t max_idle_handles = 0;  // 0: a fresh handle (and connection) per request
};

class HttpClient {
 public:
  explicit HttpClient(HttpClientOptions options = {});
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  [[nodiscard]] absl::StatusOr<Response> Perform(const Request& request,
                                                 const std::stop_token& stop = {});

 private:
  struct Handle;
  std::unique_ptr<Handle> Acquire();
  void Release(std::unique_ptr<Handle> handle);

  const HttpClientOptions options_;
  std::mutex mu_;
  std::vector<std::unique_ptr<Handle>> idle_;
};

// One exchange on a fresh handle, for callers without a client of their own (tests, tools).
[[nodiscard]] absl::StatusOr<Response> Perform(const Request& request,
                                               const std::stop_token& stop = {});

TransportFailure FailureOf(const absl::Status& status);
// True if a transport failure happened before any byte of the request was sent.
bool RequestNotSent(const absl::Status& status);
// `status` with "<prefix>: " before its message, code and payloads kept.
absl::Status Prefixed(const absl::Status& status, std::string_view prefix);
// The scheme, host and port (the scheme's default if not given) of an absolute URL.
struct Origin {
  std::string scheme;
  std::string host;
  std::string port;
};
[[nodiscard]] std::optional<Origin> OriginOf(const std::string& url);
// A header of `response` by its lower-case name, "" if absent.
std::string HeaderOf(const Response& response, const std::string& name);

}  // namespace eph::http
