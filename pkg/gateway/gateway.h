// Gateway: ephd's preview reverse proxy. It serves `*.<base_domain>` (default
// `preview.localhost`): the Host `<environment>.<base_domain>[:port]` of each request selects an
// environment, a BackendResolver maps the environment to its web service on loopback, and the
// request is proxied there over HTTP/1.1.
//
// Contract:
// - Keep-alive on both sides. Each I/O thread keeps its own small pool of idle backend
//   connections per backend, so a connection is never shared between threads and the pool
//   needs no lock. An idempotent request without a body is retried once on a fresh connection
//   if a reused one fails before any byte of the response arrived (the backend closed it while
//   idle); for other requests, which must not be replayed, a reused connection is checked
//   first.
// - Bodies stream both ways through a fixed buffer (no body limit, nothing buffered whole);
//   chunked bodies stay chunked. A response delimited by EOF is re-chunked for HTTP/1.1 clients.
//   The request body is sent whole before the response is read (no full-duplex HTTP/1.1).
// - `Upgrade: websocket` is forwarded; after the backend's 101 the two sockets are spliced
//   byte-for-byte both ways until either side closes or the websocket idle timeout passes.
// - X-Forwarded-For is appended to (the gateway is the edge), X-Forwarded-Host and
//   X-Forwarded-Proto are set, `Forwarded` is appended when enabled. Hop-by-hop headers
//   (Connection and the fields it names, Keep-Alive, TE, Trailer, Upgrade except for websockets,
//   Proxy-*) are removed; message framing (Transfer-Encoding, Content-Length) is re-applied by
//   the gateway. The Host header is passed through unchanged.
// - A host outside base_domain, an unknown environment, or one without a backend gets 404 with
//   one fixed page, byte-identical for every name, so it reveals nothing about which
//   environments exist. Backend refuses or cannot be reached: 502. No response header within
//   backend_timeout: 504. Request header over max_header_bytes: 431. Malformed request: 400.
// - Requests whose framing or routing is ambiguous (CheckRequest in request_check.h: two Host
//   fields, a Transfer-Encoding other than one `chunked`, Transfer-Encoding with Content-Length,
//   an absolute-form target whose Host names another authority) get 400, or 501 for a transfer
//   coding it does not know, and the connection closes: nothing ambiguous reaches a backend. An
//   absolute-form target routes by its authority and is sent on in origin-form.
// - Connections: at most max_connections. At the limit, or when accept() runs out of file
//   descriptors, the client connection idle the longest (waiting for a request) is closed to
//   make room; if none is idle the newcomer gets a fixed 503 and is closed. Accept errors back
//   off (10 ms doubling to 1 s) and are logged at most once per 10 s with a count.
//   Saturation() reports a limit hit in the last 30 s (for /readyz).
// - ActivitySink is called for each environment at most once per activity_interval (measured on
//   the injected Clock), for proxied requests and for client-to-backend websocket traffic.
//   ephd writes last_activity_at from it, which drives idle_timeout.
//
// Thread-safety: Start/Stop from one thread; Saturation() and the counters from any thread. The
// resolver is called concurrently from the I/O threads and must be fast (it runs on an I/O
// thread; cache in the caller if it is not). The activity sink is called from one dedicated
// thread, so it may block (a store write) without stalling the proxy.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "pkg/base/clock.h"
#include "pkg/base/metrics.h"
#include "pkg/gateway/request_check.h"  // EnvironmentFromHost

namespace eph::gateway {

// Where an environment's web service listens (published on 127.0.0.1 only).
struct Backend {
  std::string host = "127.0.0.1";
  uint16_t port = 0;
};

// nullopt: no such environment, or it has no backend (yet) — both answered with the same 404.
using BackendResolver = std::function<std::optional<Backend>(std::string_view environment)>;
using ActivitySink = std::function<void(std::string_view environment, TimePoint at)>;

struct GatewayOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 8081;  // 0 picks a free port; see Gateway::port()
  std::string base_domain = "preview.localhost";
  int io_threads = 2;
  size_t max_header_bytes = size_t{64} * 1024;  // request and response headers
  // Client side: first request header must arrive within read_timeout; between keep-alive
  // requests the connection may idle for client_idle_timeout; each body read/write must make
  // progress within read_timeout.
  std::chrono::milliseconds read_timeout{30'000};
  std::chrono::milliseconds client_idle_timeout{60'000};
  // Backend side: connect, then the response header must arrive within backend_timeout (504);
  // each read of the response body must also make progress within backend_timeout.
  // Timeouts are enforced by a per-thread sweep, up to one tick late (1/8 of the shortest
  // timeout, clamped to 5..250 ms).
  std::chrono::milliseconds connect_timeout{5'000};
  std::chrono::milliseconds backend_timeout{60'000};
  // Idle backend connections kept per backend per I/O thread, and for how long. Keep it above
  // the number of concurrent requests one thread sees, or connections churn.
  size_t max_idle_per_backend = 128;
  std::chrono::milliseconds pool_idle_timeout{30'000};
  // A spliced websocket with no traffic either way for this long is closed.
  std::chrono::milliseconds websocket_idle_timeout{3'600'000};
  // The activity sink hears about an environment at most once per interval.
  Duration activity_interval = std::chrono::seconds(60);
  std::string forwarded_proto = "http";  // "https" when a TLS terminator fronts the gateway
  bool add_forwarded_header = false;     // RFC 7239 `Forwarded`, appended
  std::chrono::milliseconds shutdown_grace{10'000};
  // Open client connections at most (spliced websockets included); 0: DefaultMaxConnections().
  int max_connections = 0;
};

// The connection limit max_connections = 0 stands for: half the soft RLIMIT_NOFILE (the other half
// is left for backend connections and the rest of the process), at least 64.
int DefaultMaxConnections();

class Gateway {
 public:
  // `clock` and `metrics` (optional) must outlive the gateway. Metrics registered:
  // eph_gateway_requests_total{result=proxied|not_found|bad_gateway|timeout|bad_request},
  // eph_gateway_backend_connects_total, eph_gateway_websockets_total.
  Gateway(GatewayOptions options, BackendResolver resolver, ActivitySink activity, Clock& clock,
          MetricsRegistry* metrics = nullptr);
  ~Gateway();
  Gateway(const Gateway&) = delete;
  Gateway& operator=(const Gateway&) = delete;

  // Binds and starts serving. Unavailable if the address cannot be bound.
  absl::Status Start();
  // Stops accepting, lets in-flight requests finish (up to shutdown_grace), then closes every
  // connection including spliced websockets, and flushes pending activity. Idempotent.
  void Stop();
  uint16_t port() const;
  // Requests currently being proxied (for tests of graceful shutdown).
  int64_t in_flight() const;
  // Open client connections (spliced websockets included), and the limit in force.
  int64_t connections() const;
  int max_connections() const;
  // Unavailable, naming the limit (connections or file descriptors), if one was hit in the last
  // 30 s on the injected Clock; OK otherwise.
  absl::Status Saturation() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace eph::gateway
