#include "pkg/server/http_server.h"

#include <poll.h>
#include <pthread.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cerrno>
#include <condition_variable>
#include <functional>
#include <memory>
#include <optional>
#include <system_error>
#include <utility>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "pkg/base/clock.h"
#include "pkg/base/listener_limits.h"
#include "pkg/server/errors.h"

namespace eph::server {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using Steady = std::chrono::steady_clock;

namespace {

// A joinable thread with a small stack. A stream's thread only formats and writes chunks; the
// default 8 MiB of address space per thread is what let 500 streams reserve gigabytes.
class StreamThread {
 public:
  static constexpr size_t kStackBytes = 1 << 20;

  StreamThread() = default;
  template <typename F>
  explicit StreamThread(F f) {
    auto* heap = new F(std::move(f));
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, kStackBytes);
    const int rc = pthread_create(
        &thread_, &attr,
        [](void* arg) -> void* {
          std::unique_ptr<F> fn(static_cast<F*>(arg));
          (*fn)();
          return nullptr;
        },
        heap);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
      delete heap;
      throw std::system_error(rc, std::generic_category(), "pthread_create");
    }
    joinable_ = true;
  }
  StreamThread(StreamThread&& o) noexcept : thread_(o.thread_), joinable_(o.joinable_) {
    o.joinable_ = false;
  }
  StreamThread& operator=(StreamThread&& o) noexcept {
    if (this != &o) {
      if (joinable_) std::terminate();
      thread_ = o.thread_;
      joinable_ = std::exchange(o.joinable_, false);
    }
    return *this;
  }
  StreamThread(const StreamThread&) = delete;
  StreamThread& operator=(const StreamThread&) = delete;
  ~StreamThread() {
    if (joinable_) std::terminate();  // as std::thread: every stream thread is joined or detached
  }

  bool joinable() const { return joinable_; }
  void join() {
    pthread_join(thread_, nullptr);
    joinable_ = false;
  }
  void detach() {
    pthread_detach(thread_);
    joinable_ = false;
  }

 private:
  pthread_t thread_{};
  bool joinable_ = false;
};

constexpr auto kAcceptBackoffMin = std::chrono::milliseconds(10);
constexpr auto kAcceptBackoffMax = std::chrono::seconds(1);

// Runs `f` on `pool` and resumes the awaiting coroutine on its own executor afterwards, so that
// blocking handlers never occupy an I/O thread.
template <typename F>
auto RunOn(asio::thread_pool& pool, F f) {
  return asio::async_initiate<decltype(asio::use_awaitable), void()>(
      [&pool, f = std::move(f)](auto handler) mutable {
        auto ex = asio::get_associated_executor(handler);
        asio::post(pool, [f = std::move(f), handler = std::move(handler), ex]() mutable {
          f();
          asio::post(ex, std::move(handler));
        });
      },
      asio::use_awaitable);
}

bool OutOfDescriptors(const beast::error_code& ec) {
  return ec == asio::error::no_descriptors || ec.value() == ENFILE ||
         ec == asio::error::no_buffer_space || ec == asio::error::no_memory;
}

// Writes a streamed response's chunks straight to the socket from the stream's own thread,
// while the connection's coroutine waits. Every write has a deadline and gives up at once when
// the server stops, so a client that stops reading can neither hold a thread for ever nor
// block shutdown.
class SocketStreamWriter final : public StreamWriter {
 public:
  SocketStreamWriter(int fd, const std::atomic<bool>& stopping,
                     std::chrono::milliseconds write_timeout)
      : fd_(fd), stopping_(stopping), write_timeout_(write_timeout) {}

  bool Write(std::string_view chunk) override {
    if (failed_ || stopping_.load()) return false;
    if (chunk.empty()) return true;
    std::string frame = absl::StrCat(absl::Hex(chunk.size()), "\r\n");
    frame.append(chunk);
    frame.append("\r\n");
    if (!WriteAll(frame)) failed_ = true;
    return !failed_;
  }

  // Also true once the client has hung up, which a producer that has nothing to write (a quiet
  // followed log) would otherwise never learn.
  bool Cancelled() const override {
    if (failed_ || stopping_.load()) return true;
    pollfd p{fd_, POLLRDHUP, 0};
    return ::poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) != 0;
  }
  bool failed() const { return failed_.load(); }

 private:
  bool WriteAll(std::string_view data) {
    const auto deadline = Steady::now() + write_timeout_;
    while (!data.empty()) {
      const ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) {
        data.remove_prefix(static_cast<size_t>(n));
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        const auto left = deadline - Steady::now();
        if (stopping_.load() || left <= Steady::duration::zero()) return false;
        // Short slices, so that Stop() is noticed within a tenth of a second.
        const auto slice = std::min<Steady::duration>(left, std::chrono::milliseconds(100));
        pollfd p{fd_, POLLOUT, 0};
        ::poll(&p, 1,
               static_cast<int>(
                   std::chrono::duration_cast<std::chrono::milliseconds>(slice).count()) +
                   1);
        continue;
      }
      return false;
    }
    return true;
  }

  int fd_;
  const std::atomic<bool>& stopping_;
  std::chrono::milliseconds write_timeout_;
  std::atomic<bool> failed_{false};  // read by Cancelled() from other threads too
};

}  // namespace

class HttpServer::Impl {
 public:
  Impl(HttpServerOptions options, Handler handler)
      : options_(std::move(options)),
        handler_(std::move(handler)),
        workers_(static_cast<size_t>(std::max(options_.worker_threads, 1))),
        acceptor_(io_),
        max_connections_(options_.max_connections > 0 ? options_.max_connections
                                                      : ConnectionLimitFromOpenFiles(4)) {}

  ~Impl() { Stop(); }

  absl::Status Start() {
    beast::error_code ec;
    const auto address = asio::ip::make_address(options_.host, ec);
    if (ec) return absl::InvalidArgumentError(absl::StrCat("bad listen host ", options_.host));
    tcp::endpoint endpoint(address, options_.port);
    acceptor_.open(endpoint.protocol(), ec);
    if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(endpoint, ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      return absl::UnavailableError(
          absl::StrCat("cannot listen on ", options_.host, ":", options_.port, ": ", ec.message()));
    }
    port_ = acceptor_.local_endpoint().port();
    asio::co_spawn(io_, Accept(), asio::detached);
    for (int i = 0; i < std::max(options_.io_threads, 1); ++i) {
      io_threads_.emplace_back([this] { io_.run(); });
    }
    return absl::OkStatus();
  }

  void Stop() {
    if (stopped_.exchange(true)) return;
    stopping_ = true;
    asio::post(io_, [this] {
      beast::error_code ec;
      acceptor_.close(ec);
    });
    // Let in-flight requests finish, up to the grace period.
    {
      std::unique_lock<std::mutex> lock(mu_);
      idle_cv_.wait_until(lock, Steady::now() + options_.shutdown_grace,
                          [this] { return in_flight_ == 0; });
    }
    // Streams see `stopping_` at their next write or Cancelled() check.
    {
      std::unique_lock<std::mutex> lock(streams_mu_);
      streams_cv_.wait_until(lock, Steady::now() + options_.stream_stop_grace,
                             [this] { return running_streams_.empty(); });
      if (!running_streams_.empty()) {
        spdlog::error("http: {} stream(s) did not end within {} ms of shutdown; leaving them",
                      running_streams_.size(), options_.stream_stop_grace.count());
        for (auto& [id, thread] : running_streams_) thread.detach();
        running_streams_.clear();
      }
    }
    io_.stop();
    for (auto& t : io_threads_) {
      if (t.joinable()) t.join();
    }
    workers_.join();
    ReapStreams();
  }

  uint16_t port() const { return port_; }
  int64_t in_flight() const {
    std::lock_guard<std::mutex> lock(mu_);
    return in_flight_;
  }
  int64_t connections() const {
    std::lock_guard<std::mutex> lock(conns_mu_);
    return static_cast<int64_t>(conns_.size());
  }
  int64_t streams() const {
    std::lock_guard<std::mutex> lock(streams_mu_);
    return static_cast<int64_t>(running_streams_.size());
  }
  int max_connections() const { return max_connections_; }

  absl::Status Saturation() const { return limits_.Saturation(SystemClock::Instance().Now()); }

 private:
  // One accepted connection. Its coroutine runs on the connection's own strand, so the accept
  // loop can close it from there (to make room) without racing the coroutine.
  struct Connection {
    explicit Connection(tcp::socket socket) : stream(std::move(socket)) {}
    beast::tcp_stream stream;
    bool idle = false;  // waiting for a request; guarded by conns_mu_
    Steady::time_point idle_since;
  };

  void NoteLimit(std::string what) { limits_.Note(std::move(what), SystemClock::Instance().Now()); }

  // Closes the connection idle the longest, if any; returns whether one was closed.
  bool EvictIdle() {
    std::shared_ptr<Connection> oldest;
    {
      std::lock_guard<std::mutex> lock(conns_mu_);
      for (const auto& [id, conn] : conns_) {
        if (conn->idle && (!oldest || conn->idle_since < oldest->idle_since)) oldest = conn;
      }
      if (!oldest) return false;
      oldest->idle = false;  // never picked twice
    }
    asio::post(oldest->stream.get_executor(), [oldest] { oldest->stream.cancel(); });
    return true;
  }

  // The newcomer gets a fixed 503 with no wait: the socket is fresh, so the short write goes
  // into its empty send buffer or not at all.
  static void RefuseBusy(tcp::socket& socket) {
    static const std::string kBusy = [] {
      const std::string body =
          ErrorJson("unavailable", "too many connections to ephd; try again soon");
      return absl::StrCat(
          "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
          "Retry-After: 1\r\nConnection: close\r\nContent-Length: ",
          body.size(), "\r\n\r\n", body);
    }();
    beast::error_code ec;
    socket.non_blocking(true, ec);
    socket.write_some(asio::buffer(kBusy.data(), kBusy.size()), ec);
    socket.close(ec);
  }

  asio::awaitable<void> Accept() {
    auto backoff = std::chrono::duration_cast<Steady::duration>(kAcceptBackoffMin);
    asio::steady_timer pause(io_);
    while (!stopping_) {
      beast::error_code ec;
      tcp::socket socket(asio::make_strand(io_));
      co_await acceptor_.async_accept(socket, asio::redirect_error(asio::use_awaitable, ec));
      if (ec) {
        if (stopping_ || ec == asio::error::operation_aborted) co_return;
        if (OutOfDescriptors(ec)) {
          NoteLimit("out of file descriptors");
          EvictIdle();
        }
        accept_errors_.Log(ec.message(), Steady::now());
        pause.expires_after(backoff);
        co_await pause.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        backoff = std::min<Steady::duration>(backoff * 2, kAcceptBackoffMax);
        continue;
      }
      backoff = kAcceptBackoffMin;
      if (connections() >= max_connections_) {
        NoteLimit(absl::StrCat("connection limit ", max_connections_, " reached"));
        if (!EvictIdle()) {
          RefuseBusy(socket);
          continue;
        }
      }
      auto conn = std::make_shared<Connection>(std::move(socket));
      {
        std::lock_guard<std::mutex> lock(conns_mu_);
        conns_.emplace(conn.get(), conn);
      }
      asio::co_spawn(conn->stream.get_executor(), Serve(conn), asio::detached);
    }
  }

  void Begin() {
    std::lock_guard<std::mutex> lock(mu_);
    ++in_flight_;
  }
  void End() {
    std::lock_guard<std::mutex> lock(mu_);
    if (--in_flight_ == 0) idle_cv_.notify_all();
  }

  void SetIdle(Connection& conn, bool idle) {
    std::lock_guard<std::mutex> lock(conns_mu_);
    conn.idle = idle;
    if (idle) conn.idle_since = Steady::now();
  }

  // Reserves `bytes` of the shared body budget; false if they do not fit.
  bool ReserveBody(size_t bytes) {
    std::lock_guard<std::mutex> lock(body_mu_);
    if (pending_body_bytes_ + bytes > options_.max_pending_body_bytes) return false;
    pending_body_bytes_ += bytes;
    return true;
  }
  void ReleaseBody(size_t bytes) {
    std::lock_guard<std::mutex> lock(body_mu_);
    pending_body_bytes_ -= bytes;
  }

  // The request as handlers see it, with its canonical path; InvalidArgument for a target that
  // is not canonical (ParseRequestTarget), which is refused before any handler runs.
  static absl::StatusOr<HttpRequest> ToRequest(const http::request_header<>& req,
                                               const std::string& remote) {
    const std::string raw_target(req.target());
    auto target = ParseRequestTarget(raw_target);
    if (!target.ok()) return target.status();
    HttpRequest out;
    out.method = std::string(req.method_string());
    out.target = raw_target;
    out.path = std::move(target->path);
    out.query = std::move(target->query);
    for (const auto& field : req) {
      out.headers[std::string(field.name_string())] = std::string(field.value());
    }
    out.remote_address = remote;
    return out;
  }

  asio::awaitable<void> WriteSimple(beast::tcp_stream& stream, int status, std::string body,
                                    bool keep_alive, unsigned version, const Headers& headers = {},
                                    bool head = false) {
    http::response<http::string_body> res{static_cast<http::status>(status), version};
    res.set(http::field::server, "ephd");
    for (const auto& [k, v] : headers) res.set(k, v);
    if (headers.find("Content-Type") == headers.end()) {
      res.set(http::field::content_type, "application/json");
    }
    res.keep_alive(keep_alive);
    const size_t size = body.size();
    if (!head) res.body() = std::move(body);
    res.prepare_payload();
    if (head) res.content_length(size);
    // Beast says "Content-Length: 0" for an empty body, but a 304's length would have to be the
    // representation's own (RFC 9110, 8.6) and a 204 may not have one.
    if (status == 304 || status == 204) res.erase(http::field::content_length);
    beast::error_code ec;
    stream.expires_after(options_.read_timeout);
    co_await http::async_write(stream, res, asio::redirect_error(asio::use_awaitable, ec));
  }

  asio::awaitable<void> WriteError(beast::tcp_stream& stream, int status, std::string code,
                                   std::string message, Headers headers = {}) {
    co_await WriteSimple(stream, status, ErrorJson(code, message), false, 11, headers);
  }

  // Runs the handler on the worker pool: the single top-level catch for a request.
  asio::awaitable<void> RunHandler(const HttpRequest& request, HttpResponse& response) {
    co_await RunOn(workers_, [&] {
      try {
        handler_(request, response);
      } catch (const std::exception& e) {
        spdlog::error("http: handler for {} {} threw: {}", request.method, request.path, e.what());
        response = HttpResponse{};
        response.SetJson(500, ErrorJson("internal", "internal error"));
      } catch (...) {
        response = HttpResponse{};
        response.SetJson(500, ErrorJson("internal", "internal error"));
      }
    });
  }

  // Answers a request header that could not be read; a connection closed or idle is left alone.
  asio::awaitable<void> AnswerHeaderError(beast::tcp_stream& stream, beast::error_code ec) {
    if (ec == http::error::end_of_stream || ec == asio::error::eof ||
        ec == beast::error::timeout || ec == asio::error::operation_aborted ||
        ec == asio::error::connection_reset) {
      co_return;
    }
    if (ec == http::error::header_limit) {
      co_await WriteError(stream, 431, "header_too_large", "request header too large");
    } else if (ec == http::error::body_limit) {  // Content-Length beyond the limit, in the header
      co_await WriteError(stream, 413, "payload_too_large",
                          absl::StrCat("request body exceeds ", options_.max_body_bytes, " bytes"));
    } else {
      co_await WriteError(stream, 400, "bad_request", "malformed HTTP request");
    }
  }

  // Reads `request`'s body, if it has one: refused from the header alone where possible, unread;
  // else reserved from the shared budget before a byte of it is read. The bytes reserved (0 for
  // no body; release them after the handler), or nothing when the request was answered here and
  // the connection must close.
  asio::awaitable<std::optional<size_t>> ReadBody(beast::tcp_stream& stream,
                                                  beast::flat_buffer& buffer,
                                                  http::request_parser<http::string_body>& parser,
                                                  HttpRequest& request, unsigned version) {
    if (parser.is_done()) co_return size_t{0};
    HttpResponse response;
    const uint64_t declared = parser.content_length().value_or(options_.max_body_bytes);
    if (declared > options_.max_body_bytes) {
      co_await WriteError(stream, 413, "payload_too_large",
                          absl::StrCat("request body exceeds ", options_.max_body_bytes,
                                       " bytes"));
      co_return std::nullopt;
    }
    if (options_.admit) {
      bool admitted = true;
      co_await RunOn(workers_, [&] {
        try {
          admitted = options_.admit(request, response);
        } catch (const std::exception& e) {
          spdlog::error("http: admission check for {} threw: {}", request.path, e.what());
          response = HttpResponse{};
          response.SetJson(500, ErrorJson("internal", "internal error"));
          admitted = false;
        }
      });
      if (!admitted) {
        co_await WriteSimple(stream, response.status, std::move(response.body), false, version,
                             response.headers);
        co_return std::nullopt;
      }
    }
    const size_t reserved = static_cast<size_t>(declared);
    if (!ReserveBody(reserved)) {
      NoteLimit("request body memory limit reached");
      Headers retry;
      retry["Retry-After"] = "1";
      co_await WriteError(stream, 503, "unavailable",
                          "ephd is reading too many request bodies at once; try again soon",
                          std::move(retry));
      co_return std::nullopt;
    }
    stream.expires_after(options_.read_timeout);
    beast::error_code ec;
    co_await http::async_read(stream, buffer, parser,
                              asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      ReleaseBody(reserved);
      if (ec == http::error::body_limit) {
        co_await WriteError(stream, 413, "payload_too_large",
                            absl::StrCat("request body exceeds ", options_.max_body_bytes,
                                         " bytes"));
      } else if (ec != beast::error::timeout && ec != asio::error::operation_aborted &&
                 ec != asio::error::connection_reset && ec != http::error::end_of_stream &&
                 ec != asio::error::eof && ec != http::error::partial_message) {
        co_await WriteError(stream, 400, "bad_request", "malformed HTTP request");
      }
      co_return std::nullopt;
    }
    request.body = parser.release().body();
    co_return reserved;
  }

  asio::awaitable<void> Serve(std::shared_ptr<Connection> conn) {
    struct Unregister {
      ~Unregister() {
        std::lock_guard<std::mutex> lock(impl.conns_mu_);
        impl.conns_.erase(conn);
      }
      Impl& impl;
      Connection* conn;
    } unregister{*this, conn.get()};
    beast::tcp_stream& stream = conn->stream;
    beast::flat_buffer buffer;
    std::string remote;
    {
      beast::error_code ec;
      auto ep = stream.socket().remote_endpoint(ec);
      if (!ec) remote = absl::StrCat(ep.address().to_string(), ":", ep.port());
    }
    bool first = true;
    while (!stopping_) {
      http::request_parser<http::string_body> parser;
      parser.header_limit(static_cast<uint32_t>(options_.max_header_bytes));
      parser.body_limit(options_.max_body_bytes);
      beast::error_code ec;
      stream.expires_after(first ? options_.read_timeout : options_.idle_timeout);
      SetIdle(*conn, true);
      co_await http::async_read_header(stream, buffer, parser,
                                       asio::redirect_error(asio::use_awaitable, ec));
      SetIdle(*conn, false);
      first = false;
      if (ec) {
        co_await AnswerHeaderError(stream, ec);
        break;
      }
      const auto& head = parser.get();
      const bool keep_alive = head.keep_alive();
      const unsigned version = head.version();
      const bool is_head = head.method() == http::verb::head;
      auto parsed = ToRequest(head, remote);
      if (!parsed.ok()) {
        co_await WriteError(stream, 400, "bad_request", std::string(parsed.status().message()));
        break;
      }
      HttpRequest request = std::move(*parsed);
      HttpResponse response;

      const std::optional<size_t> reserved =
          co_await ReadBody(stream, buffer, parser, request, version);
      if (!reserved) break;  // answered; the connection closes
      Begin();
      co_await RunHandler(request, response);
      request.body = std::string();
      if (*reserved > 0) ReleaseBody(*reserved);
      if (!response.stream) {
        co_await WriteSimple(stream, response.status, std::move(response.body), keep_alive,
                             version, response.headers, is_head);
        End();
        if (!keep_alive) break;
        continue;
      }
      co_await ServeStream(stream, request, response, version);
      End();
      break;
    }
    beast::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
  }

  // Runs `f` on a new thread and resumes the coroutine afterwards. The thread is registered
  // before it can finish; when done it moves itself to `finished_streams_`, which the next
  // stream (or Stop) joins: no thread, and no thread stack, outlives its stream for long.
  template <typename F>
  auto RunOnStreamThread(F f) {
    return asio::async_initiate<decltype(asio::use_awaitable), void()>(
        [this, f = std::move(f)](auto handler) mutable {
          auto ex = asio::get_associated_executor(handler);
          std::lock_guard<std::mutex> lock(streams_mu_);
          const uint64_t id = ++stream_ids_;
          running_streams_.emplace(
              id, StreamThread([this, id, f = std::move(f), handler = std::move(handler),
                               ex]() mutable {
                f();
                {
                  std::lock_guard<std::mutex> done_lock(streams_mu_);
                  auto it = running_streams_.find(id);
                  if (it != running_streams_.end()) {
                    finished_streams_.push_back(std::move(it->second));
                    running_streams_.erase(it);
                  }
                  streams_cv_.notify_all();
                }
                asio::post(ex, std::move(handler));
              }));
        },
        asio::use_awaitable);
  }

  // Joins the threads of streams that have ended (they are exiting or gone already).
  void ReapStreams() {
    std::vector<StreamThread> done;
    {
      std::lock_guard<std::mutex> lock(streams_mu_);
      done.swap(finished_streams_);
    }
    for (auto& t : done) {
      if (t.joinable()) t.join();
    }
  }

  // A streamed response: headers now, then chunks from a thread of the stream's own, until the
  // stream ends.
  asio::awaitable<void> ServeStream(beast::tcp_stream& stream, const HttpRequest& request,
                                    HttpResponse& response, unsigned version) {
    ReapStreams();
    {
      std::lock_guard<std::mutex> lock(streams_mu_);
      if (static_cast<int>(running_streams_.size()) >= options_.max_streams) {
        NoteLimit(absl::StrCat("stream limit ", options_.max_streams, " reached"));
        // Fall through with a refusal below, outside the lock.
        response.stream = nullptr;
      }
    }
    if (!response.stream) {
      Headers retry;
      retry["Retry-After"] = "5";
      co_await WriteError(stream, 503, "unavailable",
                          absl::StrCat("ephd already serves ", options_.max_streams,
                                       " streams; try again later"),
                          std::move(retry));
      co_return;
    }
    http::response<http::empty_body> res{static_cast<http::status>(response.status), version};
    res.set(http::field::server, "ephd");
    for (const auto& [k, v] : response.headers) res.set(k, v);
    res.chunked(true);
    res.keep_alive(false);
    http::response_serializer<http::empty_body> sr{res};
    beast::error_code ec;
    stream.expires_after(options_.read_timeout);
    co_await http::async_write_header(stream, sr, asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return;
    stream.expires_never();
    bool ok = false;
    const int fd = stream.socket().native_handle();
    co_await RunOnStreamThread([&] {
      SocketStreamWriter writer(fd, stopping_, options_.write_timeout);
      try {
        response.stream(writer);
      } catch (const std::exception& e) {
        spdlog::error("http: stream for {} threw: {}", request.path, e.what());
      }
      ok = !writer.failed() && !stopping_.load();
    });
    ReapStreams();  // this stream's own thread, exiting now: its stack goes at once
    if (ok) {
      stream.expires_after(options_.read_timeout);
      co_await asio::async_write(stream, http::make_chunk_last(),
                                 asio::redirect_error(asio::use_awaitable, ec));
    }
  }

  HttpServerOptions options_;
  Handler handler_;

  // Declared before io_, so that they outlive it: destroying io_ destroys the frames of
  // coroutines still suspended on it, which unregister their connections on the way out.
  mutable std::mutex mu_;
  std::condition_variable idle_cv_;
  int64_t in_flight_ = 0;

  mutable std::mutex conns_mu_;
  std::map<Connection*, std::shared_ptr<Connection>> conns_;

  AcceptErrorLog accept_errors_{"http"};  // the accept coroutine's only
  LimitRecord limits_{"API listener"};

  mutable std::mutex body_mu_;
  size_t pending_body_bytes_ = 0;

  mutable std::mutex streams_mu_;
  std::condition_variable streams_cv_;
  uint64_t stream_ids_ = 0;
  std::map<uint64_t, StreamThread> running_streams_;
  std::vector<StreamThread> finished_streams_;

  std::atomic<bool> stopping_{false};
  std::atomic<bool> stopped_{false};
  asio::io_context io_;
  asio::thread_pool workers_;
  tcp::acceptor acceptor_;
  const int max_connections_;
  std::vector<std::thread> io_threads_;
  uint16_t port_ = 0;
};

HttpServer::HttpServer(HttpServerOptions options, Handler handler)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(handler))) {}
HttpServer::~HttpServer() = default;
absl::Status HttpServer::Start() { return impl_->Start(); }
void HttpServer::Stop() { impl_->Stop(); }
uint16_t HttpServer::port() const { return impl_->port(); }
int64_t HttpServer::in_flight() const { return impl_->in_flight(); }
int64_t HttpServer::connections() const { return impl_->connections(); }
int64_t HttpServer::streams() const { return impl_->streams(); }
int HttpServer::max_connections() const { return impl_->max_connections(); }
absl::Status HttpServer::Saturation() const { return impl_->Saturation(); }

}  // namespace eph::server
