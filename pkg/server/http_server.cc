#include "pkg/server/http_server.h"

#include <spdlog/spdlog.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "pkg/server/errors.h"

namespace eph::server {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

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

// Runs `f` on a new thread (for long-lived streams) and resumes the coroutine afterwards.
template <typename F>
auto RunOnThread(std::vector<std::thread>& threads, std::mutex& mu, F f) {
  return asio::async_initiate<decltype(asio::use_awaitable), void()>(
      [&threads, &mu, f = std::move(f)](auto handler) mutable {
        auto ex = asio::get_associated_executor(handler);
        std::lock_guard<std::mutex> lock(mu);
        threads.emplace_back([f = std::move(f), handler = std::move(handler), ex]() mutable {
          f();
          asio::post(ex, std::move(handler));
        });
      },
      asio::use_awaitable);
}

class SocketStreamWriter final : public StreamWriter {
 public:
  SocketStreamWriter(tcp::socket& socket, const std::atomic<bool>& stopping)
      : socket_(socket), stopping_(stopping) {}

  bool Write(std::string_view chunk) override {
    if (failed_ || stopping_.load()) return false;
    if (chunk.empty()) return true;
    beast::error_code ec;
    asio::write(socket_, http::make_chunk(asio::buffer(chunk.data(), chunk.size())), ec);
    if (ec) failed_ = true;
    return !failed_;
  }
  bool Cancelled() const override { return failed_ || stopping_.load(); }
  bool failed() const { return failed_; }

 private:
  tcp::socket& socket_;
  const std::atomic<bool>& stopping_;
  bool failed_ = false;
};

}  // namespace

class HttpServer::Impl {
 public:
  Impl(HttpServerOptions options, Handler handler)
      : options_(std::move(options)),
        handler_(std::move(handler)),
        workers_(static_cast<size_t>(std::max(options_.worker_threads, 1))),
        acceptor_(io_) {}

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
    const auto deadline = std::chrono::steady_clock::now() + options_.shutdown_grace;
    {
      std::unique_lock<std::mutex> lock(mu_);
      idle_cv_.wait_until(lock, deadline, [this] { return in_flight_ == 0; });
    }
    io_.stop();
    for (auto& t : io_threads_) {
      if (t.joinable()) t.join();
    }
    workers_.join();
    std::vector<std::thread> streams;
    {
      std::lock_guard<std::mutex> lock(streams_mu_);
      streams.swap(stream_threads_);
    }
    for (auto& t : streams) {
      if (t.joinable()) t.join();
    }
  }

  uint16_t port() const { return port_; }
  int64_t in_flight() const {
    std::lock_guard<std::mutex> lock(mu_);
    return in_flight_;
  }

 private:
  asio::awaitable<void> Accept() {
    while (!stopping_) {
      beast::error_code ec;
      tcp::socket socket =
          co_await acceptor_.async_accept(asio::redirect_error(asio::use_awaitable, ec));
      if (ec) {
        if (stopping_ || ec == asio::error::operation_aborted) co_return;
        spdlog::warn("http: accept failed: {}", ec.message());
        continue;
      }
      asio::co_spawn(io_, Serve(beast::tcp_stream(std::move(socket))), asio::detached);
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

  // The request as handlers see it, with its canonical path; InvalidArgument for a target that
  // is not canonical (ParseRequestTarget), which is refused before any handler runs.
  static absl::StatusOr<HttpRequest> ToRequest(http::request<http::string_body>& req,
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
    out.body = std::move(req.body());
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
    beast::error_code ec;
    stream.expires_after(options_.read_timeout);
    co_await http::async_write(stream, res, asio::redirect_error(asio::use_awaitable, ec));
  }

  asio::awaitable<void> Serve(beast::tcp_stream stream) {
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
      co_await http::async_read_header(stream, buffer, parser,
                                       asio::redirect_error(asio::use_awaitable, ec));
      if (!ec) {
        // The header is in: the body gets its own, fresh deadline.
        stream.expires_after(options_.read_timeout);
        if (parser.get().has_content_length() &&
            parser.content_length().value_or(0) > options_.max_body_bytes) {
          ec = http::error::body_limit;
        } else {
          co_await http::async_read(stream, buffer, parser,
                                    asio::redirect_error(asio::use_awaitable, ec));
        }
      }
      first = false;
      if (ec == http::error::end_of_stream || ec == asio::error::eof ||
          ec == beast::error::timeout || ec == asio::error::operation_aborted ||
          ec == asio::error::connection_reset) {
        break;
      }
      if (ec == http::error::body_limit) {
        co_await WriteSimple(
            stream, 413,
            ErrorJson("payload_too_large",
                      absl::StrCat("request body exceeds ", options_.max_body_bytes, " bytes")),
            false, 11);
        break;
      }
      if (ec == http::error::header_limit) {
        co_await WriteSimple(stream, 431, ErrorJson("header_too_large", "request header too large"),
                             false, 11);
        break;
      }
      if (ec) {
        co_await WriteSimple(stream, 400, ErrorJson("bad_request", "malformed HTTP request"), false,
                             11);
        break;
      }
      auto& req = parser.get();
      const bool keep_alive = req.keep_alive();
      const unsigned version = req.version();
      const bool head = req.method() == http::verb::head;
      auto parsed = ToRequest(req, remote);
      if (!parsed.ok()) {
        co_await WriteSimple(stream, 400,
                             ErrorJson("bad_request", std::string(parsed.status().message())),
                             false, version);
        break;
      }
      HttpRequest request = std::move(*parsed);
      HttpResponse response;
      Begin();
      co_await RunOn(workers_, [&] {
        try {
          handler_(request, response);
        } catch (const std::exception& e) {
          spdlog::error("http: handler for {} {} threw: {}", request.method, request.path,
                        e.what());
          response = HttpResponse{};
          response.SetJson(500, ErrorJson("internal", "internal error"));
        } catch (...) {
          response = HttpResponse{};
          response.SetJson(500, ErrorJson("internal", "internal error"));
        }
      });
      if (!response.stream) {
        co_await WriteSimple(stream, response.status, std::move(response.body), keep_alive, version,
                             response.headers, head);
        End();
        if (!keep_alive) break;
        continue;
      }
      // Streamed response: headers now, then chunks from the producer's own thread.
      http::response<http::empty_body> res{static_cast<http::status>(response.status), version};
      res.set(http::field::server, "ephd");
      for (const auto& [k, v] : response.headers) res.set(k, v);
      res.chunked(true);
      res.keep_alive(false);
      http::response_serializer<http::empty_body> sr{res};
      stream.expires_never();
      co_await http::async_write_header(stream, sr, asio::redirect_error(asio::use_awaitable, ec));
      End();
      if (ec) break;
      bool ok = false;
      co_await RunOnThread(stream_threads_, streams_mu_, [&] {
        SocketStreamWriter writer(stream.socket(), stopping_);
        try {
          response.stream(writer);
        } catch (const std::exception& e) {
          spdlog::error("http: stream for {} threw: {}", request.path, e.what());
        }
        ok = !writer.failed();
      });
      if (ok) {
        stream.expires_after(options_.read_timeout);
        co_await asio::async_write(stream, http::make_chunk_last(),
                                   asio::redirect_error(asio::use_awaitable, ec));
      }
      break;
    }
    beast::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
  }

  HttpServerOptions options_;
  Handler handler_;
  asio::io_context io_;
  asio::thread_pool workers_;
  tcp::acceptor acceptor_;
  std::vector<std::thread> io_threads_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> stopped_{false};
  uint16_t port_ = 0;

  mutable std::mutex mu_;
  std::condition_variable idle_cv_;
  int64_t in_flight_ = 0;

  std::mutex streams_mu_;
  std::vector<std::thread> stream_threads_;
};

HttpServer::HttpServer(HttpServerOptions options, Handler handler)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(handler))) {}
HttpServer::~HttpServer() = default;
absl::Status HttpServer::Start() { return impl_->Start(); }
void HttpServer::Stop() { impl_->Stop(); }
uint16_t HttpServer::port() const { return impl_->port(); }
int64_t HttpServer::in_flight() const { return impl_->in_flight(); }

}  // namespace eph::server
