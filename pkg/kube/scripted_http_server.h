// ScriptedHttpServer: a tiny HTTP/1.1 server on 127.0.0.1 (port 0) for KubeClient's unit tests.
// The test's handler decides, per request, what goes on the wire: a normal response, a chunked
// stream written piece by piece (watch events split anywhere), or a connection cut mid-stream.
// Only for tests; the real API server is used wherever it can be (test/bed/kubernetes).
//
// Every connection serves one request and then closes (Connection: close), so the client always
// reconnects and the handler sees requests in order.
//
// Thread-safety: each connection is served on its own thread; the handler must be thread-safe
// if requests can overlap. requests() may be called from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace eph::kube::testing {

struct ScriptedRequest {
  std::string method;
  std::string target;  // path and query as sent
  std::string path;
  std::map<std::string, std::string> query;    // decoded
  std::map<std::string, std::string> headers;  // names in lower case
  std::string body;
};

class ScriptedExchange {
 public:
  ScriptedExchange(int fd, ScriptedRequest request, const std::atomic<bool>& stopping)
      : fd_(fd), request_(std::move(request)), stopping_(stopping) {}

  const ScriptedRequest& request() const { return request_; }

  // A complete response with Content-Length.
  void Respond(int status, const std::string& body,
               const std::vector<std::pair<std::string, std::string>>& headers = {},
               const std::string& content_type = "application/json");
  // A chunked response: Begin, then any number of Send (each one HTTP chunk, flushed at once),
  // then End for a clean end or Cut to drop the connection mid-stream.
  void BeginStream(int status = 200, const std::string& content_type = "application/json");
  bool Send(std::string_view data);
  void End();
  void Cut();
  // Blocks until the client closes the connection, the server stops, or `timeout` passes.
  // True if the client closed it.
  bool WaitForClientClose(std::chrono::milliseconds timeout);

 private:
  bool WriteAll(std::string_view data);

  int fd_;
  ScriptedRequest request_;
  const std::atomic<bool>& stopping_;
};

class ScriptedHttpServer {
 public:
  using Handler = std::function<void(ScriptedExchange&)>;

  explicit ScriptedHttpServer(Handler handler);
  ~ScriptedHttpServer();  // closes every connection and joins the threads
  ScriptedHttpServer(const ScriptedHttpServer&) = delete;
  ScriptedHttpServer& operator=(const ScriptedHttpServer&) = delete;

  int port() const { return port_; }
  std::string url() const;  // http://127.0.0.1:PORT
  std::vector<ScriptedRequest> requests() const;
  // Waits until at least `n` requests have arrived; false on timeout.
  bool WaitForRequests(size_t n, std::chrono::milliseconds timeout) const;

 private:
  void AcceptLoop();
  void Serve(int fd);

  Handler handler_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  std::vector<ScriptedRequest> requests_;
  std::vector<int> open_fds_;
  std::vector<std::thread> threads_;
  std::thread acceptor_;
};

}  // namespace eph::kube::testing
