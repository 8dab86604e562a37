// HttpServer: ephd's HTTP/1.1 server on Boost.Beast.
//
// Why Beast: it is the HTTP layer of Boost.Asio, packaged by Debian, header-only, and gives exact
// control over limits (header and body size, per-phase timeouts) that a webhook receiver needs;
// it does no routing, which Eph does itself in pkg/api.
//
// Model: a few I/O threads run C++20 coroutines, one per connection on a strand of its own
// (keep-alive, pipelining not supported). Handlers may block (they talk to the store), so each
// request's handler runs on a worker pool, never on an I/O thread. Streamed responses (SSE,
// followed logs) run on a thread of their own, at most max_streams at once; a finished stream's
// thread is joined when the next one starts, so threads (and their stacks) never pile up.
//
// Limits, each enforced here so that no handler can forget one:
// - Connections: at most max_connections. At the limit, or when accept() runs out of file
//   descriptors, the connection idle the longest (waiting for a request) is closed to make
//   room; if none is idle the newcomer gets 503. Accept errors back off (10 ms doubling to 1 s)
//   and are logged at most once per 10 s with a count. Saturation() reports a limit hit in the
//   last 30 s, for /readyz.
// - Memory held by request bodies: before a body is read, the admission check (if set) decides
//   from the header alone (e.g. a missing or unknown API token) and can refuse without reading
//   it; then the body's declared size is reserved from max_pending_body_bytes, shared by all
//   connections until the handler returns. A body that does not fit gets 503 with Retry-After,
//   unread. A body over max_body_bytes gets 413, unread.
// - Time: every read has a deadline (read_timeout, idle_timeout); every write too (read_timeout
//   for ordinary responses, write_timeout for each chunk of a stream, which also ends at once
//   when the server stops). A malformed request gets 400; a request target that is not
//   canonical (ParseRequestTarget) gets 400; a handler that throws gets a JSON 500 with no
//   details (the single top-level catch for a request).
//
// Shutdown: Stop() stops accepting, lets in-flight requests finish (up to shutdown_grace), tells
// streams to end and waits for them (up to stream_stop_grace), then returns. Its total time is
// bounded by shutdown_grace + stream_stop_grace.
//
// Thread-safety: Start/Stop from one thread; handlers are called concurrently; Saturation() and
// the counters from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "pkg/server/http.h"

namespace eph::server {

// Called with a request's method, path, query and headers (no body yet) for every request that
// has a body, before the body is read. Returns true to read the body and run the handler; false
// to answer with `res` at once and close the connection, the body unread.
using AdmissionCheck = std::function<bool(const HttpRequest& head, HttpResponse& res)>;

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 8080;  // 0 picks a free port; see HttpServer::port()
  int io_threads = 2;
  int worker_threads = 8;
  size_t max_body_bytes = 25 * 1024 * 1024;
  size_t max_header_bytes = 64 * 1024;
  std::chrono::seconds read_timeout{30};
  std::chrono::seconds idle_timeout{60};
  std::chrono::seconds shutdown_grace{20};
  int max_streams = 256;
  // Open connections at most; 0: a quarter of the soft RLIMIT_NOFILE, at least 64.
  int max_connections = 0;
  // Request bodies held before their handler has run, over all connections together.
  size_t max_pending_body_bytes = size_t{100} * 1024 * 1024;
  // One chunk of a streamed response that cannot be written for this long ends the stream.
  std::chrono::milliseconds write_timeout{10'000};
  // How long Stop() waits for streams to end once told to.
  std::chrono::milliseconds stream_stop_grace{5'000};
  AdmissionCheck admit;
};

class HttpServer {
 public:
  HttpServer(HttpServerOptions options, Handler handler);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds and starts serving. Unavailable if the address cannot be bound.
  absl::Status Start();
  // Graceful stop; idempotent.
  void Stop();
  uint16_t port() const;
  // Requests currently being handled (for tests of graceful shutdown).
  int64_t in_flight() const;
  // Open connections and streams, and the connection limit in force.
  int64_t connections() const;
  int64_t streams() const;
  int max_connections() const;
  // Unavailable, saying which, if a limit (connections, descriptors, streams, body memory) was
  // hit in the last 30 seconds; OK otherwise.
  absl::Status Saturation() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace eph::server
