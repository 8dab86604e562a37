// HttpServer: ephd's HTTP/1.1 server on Boost.Beast.
//
// Why Beast: it is the HTTP layer of Boost.Asio, packaged by Debian, header-only, and gives exact
// control over limits (header and body size, per-phase timeouts) that a webhook receiver needs;
// it does no routing, which Eph does itself in pkg/api.
//
// Model: a few I/O threads run C++20 coroutines, one per connection (keep-alive, pipelining not
// supported). Handlers may block (they talk to the store), so each request's handler runs on a
// worker pool, never on an I/O thread. Streamed responses (SSE, followed logs) run on a thread of
// their own. Every response carries a body size limit check and every read a timeout. A body over
// the limit gets 413 without being read; a malformed request gets 400; a handler that throws gets
// a JSON 500 with no details (the single top-level catch for a request).
//
// Shutdown: Stop() stops accepting, lets in-flight requests finish (up to a deadline), cancels
// streams, then returns.
//
// Thread-safety: Start/Stop from one thread; handlers are called concurrently.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "pkg/server/http.h"

namespace eph::server {

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

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace eph::server
