#include "pkg/gateway/gateway.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <condition_variable>
#include <limits>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

namespace eph::gateway {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr size_t kBigBody = size_t{20} * 1024 * 1024;
constexpr size_t kFirstPart = size_t{1024} * 1024;

// Polls `pred` until it holds or `timeout` passes; no fixed sleeps.
template <typename Pred>
bool WaitFor(Pred pred, milliseconds timeout = milliseconds(10'000)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::yield();
  }
  return pred();
}

// Bounds a blocking socket conversation: after `timeout` the socket is shut down, so a read
// that would hang (a gateway that buffers, say) fails instead of hanging the test.
class SocketDeadline {
 public:
  SocketDeadline(int fd, milliseconds timeout)
      : thread_([this, fd, timeout] {
          std::unique_lock<std::mutex> lock(mu_);
          if (!cv_.wait_for(lock, timeout, [this] { return done_; })) {
            expired_ = true;
            ::shutdown(fd, SHUT_RDWR);
          }
        }) {}
  ~SocketDeadline() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      done_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  bool expired() const { return expired_; }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  std::atomic<bool> expired_{false};
  std::thread thread_;
};

char PatternByte(size_t i) { return static_cast<char>('a' + (i * 7) % 26); }

// A real HTTP/1.1 backend (thread per connection, blocking Beast) with a route per behaviour
// under test, plus a websocket echo on /ws.
class TestBackend {
 public:
  TestBackend() : acceptor_(io_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
    port_ = acceptor_.local_endpoint().port();
    accept_thread_ = std::thread([this] { AcceptLoop(); });
  }
  ~TestBackend() { Stop(); }

  void Stop() {
    if (stopping_.exchange(true)) return;
    release_download = true;
    {
      std::lock_guard<std::mutex> lock(mu_);
      cv_.notify_all();
    }
    // Wake the blocking accept with a connection of our own, then every connection thread.
    beast::error_code ec;
    tcp::socket waker(io_);
    waker.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port_), ec);
    accept_thread_.join();
    std::vector<std::thread> threads;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (auto& socket : sockets_) ::shutdown(socket->native_handle(), SHUT_RDWR);
      threads.swap(threads_);
    }
    for (auto& t : threads) t.join();
  }

  uint16_t port() const { return port_; }
  int connections() const { return connections_.load(); }
  std::string last_headers() const {
    std::lock_guard<std::mutex> lock(mu_);
    return last_headers_;
  }

  std::atomic<uint64_t> upload_received{0};
  std::atomic<bool> release_download{false};

 private:
  void AcceptLoop() {
    while (!stopping_) {
      beast::error_code ec;
      auto socket = std::make_unique<tcp::socket>(io_);
      acceptor_.accept(*socket, ec);
      if (ec || stopping_) break;
      const int id = connections_.fetch_add(1);
      std::lock_guard<std::mutex> lock(mu_);
      // Sockets stay open until the backend is destroyed, so Stop never shuts down a reused fd.
      tcp::socket* s = socket.get();
      sockets_.push_back(std::move(socket));
      threads_.emplace_back([this, id, s] { Serve(id, *s); });
    }
  }

  void Serve(int id, tcp::socket& socket) {
    beast::flat_buffer buffer;
    beast::error_code ec;
    for (;;) {
      http::request_parser<http::buffer_body> parser;
      parser.body_limit(std::numeric_limits<uint64_t>::max());
      http::read_header(socket, buffer, parser, ec);
      if (ec) return;
      auto& req = parser.get();
      const std::string target(req.target());
      if (websocket::is_upgrade(req)) {
        websocket::stream<tcp::socket&> ws(socket);
        ws.accept(req, ec);
        while (!ec) {
          beast::flat_buffer msg;
          ws.read(msg, ec);
          if (ec) break;
          ws.text(ws.got_text());
          ws.write(msg.data(), ec);
        }
        return;
      }
      std::string headers;
      for (const auto& f : req) {
        headers += std::string(f.name_string()) + ": " + std::string(f.value()) + "\n";
      }
      {
        std::lock_guard<std::mutex> lock(mu_);
        last_headers_ = headers;
      }
      // Read the request body as it streams, counting it.
      char buf[64 * 1024];
      uint64_t received = 0;
      while (!parser.is_done()) {
        req.body().data = buf;
        req.body().size = sizeof(buf);
        http::read_some(socket, buffer, parser, ec);
        if (ec == http::error::need_buffer) ec = {};
        if (ec) return;
        received += sizeof(buf) - req.body().size;
        upload_received = received;
      }
      http::response<http::string_body> res{http::status::ok, 11};
      res.set("X-Backend-Connection", std::to_string(id));
      if (target == "/headers") {
        res.set(http::field::keep_alive, "timeout=99");
        res.set("Proxy-Foo", "x");
        res.set(http::field::connection, "X-Resp-Hop");
        res.set("X-Resp-Hop", "1");
        res.body() = headers;
      } else if (target == "/upload") {
        res.body() = "received=" + std::to_string(received);
      } else if (target == "/chunked") {
        http::response<http::empty_body> head{http::status::ok, 11};
        head.chunked(true);
        http::response_serializer<http::empty_body> sr{head};
        http::write_header(socket, sr, ec);
        for (std::string_view part : {"alpha", "beta", "gamma"}) {
          asio::write(socket, http::make_chunk(asio::buffer(part.data(), part.size())), ec);
        }
        asio::write(socket, http::make_chunk_last(), ec);
        if (ec) return;
        continue;
      } else if (target == "/until-eof") {
        const std::string_view raw = "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil-eof";
        asio::write(socket, asio::buffer(raw.data(), raw.size()), ec);
        socket.shutdown(tcp::socket::shutdown_send, ec);
        return;
      } else if (target == "/close-after") {
        res.body() = "closing";
        res.prepare_payload();
        http::write(socket, res, ec);
        socket.shutdown(tcp::socket::shutdown_both, ec);
        return;
      } else if (target == "/download") {
        http::response<http::empty_body> head{http::status::ok, 11};
        head.content_length(kBigBody);
        http::response_serializer<http::empty_body> sr{head};
        http::write_header(socket, sr, ec);
        std::string body(kBigBody, '\0');
        for (size_t i = 0; i < kBigBody; ++i) body[i] = PatternByte(i);
        asio::write(socket, asio::buffer(body.data(), kFirstPart), ec);
        {
          // Hold the rest back until the client has seen the first part (or the test gives up).
          std::unique_lock<std::mutex> lock(mu_);
          cv_.wait_for(lock, seconds(15), [this] { return release_download.load(); });
        }
        asio::write(socket, asio::buffer(body.data() + kFirstPart, kBigBody - kFirstPart), ec);
        if (ec) return;
        continue;
      } else if (target == "/gated") {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait_for(lock, seconds(15), [this] { return release_download.load(); });
        res.body() = "gated";
      } else if (target == "/slow") {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait_for(lock, seconds(30), [this] { return stopping_.load(); });
        return;
      } else {
        res.body() = "hello from " + target;
      }
      res.keep_alive(req.keep_alive());
      res.prepare_payload();
      http::write(socket, res, ec);
      if (ec || !req.keep_alive()) return;
    }
  }

 public:
  void ReleaseDownload() {
    std::lock_guard<std::mutex> lock(mu_);
    release_download = true;
    cv_.notify_all();
  }

 private:
  asio::io_context io_;
  tcp::acceptor acceptor_;
  uint16_t port_ = 0;
  std::thread accept_thread_;
  std::atomic<bool> stopping_{false};
  std::atomic<int> connections_{0};
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<tcp::socket>> sockets_;
  std::vector<std::thread> threads_;
  std::string last_headers_;
};

// The test client: one blocking connection to the gateway.
class Client {
 public:
  explicit Client(uint16_t port) : socket_(io_) {
    socket_.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
    deadline_ = std::make_unique<SocketDeadline>(socket_.native_handle(), milliseconds(20'000));
  }

  http::response<http::string_body> Send(http::request<http::string_body> req,
                                         beast::error_code* error = nullptr) {
    req.prepare_payload();
    beast::error_code ec;
    http::write(socket_, req, ec);
    http::response_parser<http::string_body> parser;
    parser.body_limit(std::numeric_limits<uint64_t>::max());
    if (req.method() == http::verb::head) parser.skip(true);
    if (!ec) http::read(socket_, buffer_, parser, ec);
    if (error != nullptr) *error = ec;
    EXPECT_FALSE(ec && error == nullptr) << ec.message();
    last_chunked_ = parser.get().chunked();
    return parser.release();
  }

  http::response<http::string_body> Get(const std::string& host, const std::string& target) {
    http::request<http::string_body> req{http::verb::get, target, 11};
    req.set(http::field::host, host);
    return Send(std::move(req));
  }

  bool last_chunked() const { return last_chunked_; }
  tcp::socket& socket() { return socket_; }
  beast::flat_buffer& buffer() { return buffer_; }

 private:
  asio::io_context io_;
  tcp::socket socket_;
  beast::flat_buffer buffer_;
  std::unique_ptr<SocketDeadline> deadline_;
  bool last_chunked_ = false;
};

class GatewayTest : public ::testing::Test {
 protected:
  void StartGateway(GatewayOptions options = {}) {
    options.port = 0;
    options.shutdown_grace = milliseconds(2'000);
    gateway_ = std::make_unique<Gateway>(
        options,
        [this](std::string_view env) -> std::optional<Backend> {
          std::lock_guard<std::mutex> lock(mu_);
          auto it = backends_.find(std::string(env));
          if (it == backends_.end()) return std::nullopt;
          return it->second;
        },
        [this](std::string_view env, TimePoint at) {
          std::lock_guard<std::mutex> lock(mu_);
          activity_.emplace_back(std::string(env), at);
        },
        clock_);
    ASSERT_TRUE(gateway_->Start().ok());
  }

  void TearDown() override {
    if (gateway_) gateway_->Stop();
  }

  void Route(const std::string& env, uint16_t port) {
    std::lock_guard<std::mutex> lock(mu_);
    backends_[env] = Backend{"127.0.0.1", port};
  }

  std::string Host(const std::string& env) const {
    return env + ".preview.localhost:" + std::to_string(gateway_->port());
  }

  std::vector<std::pair<std::string, TimePoint>> Activity() {
    std::lock_guard<std::mutex> lock(mu_);
    return activity_;
  }

  FakeClock clock_;
  std::mutex mu_;
  std::map<std::string, Backend> backends_;
  std::vector<std::pair<std::string, TimePoint>> activity_;
  std::unique_ptr<Gateway> gateway_;
};

// Header lines "name: value" as the backend received them, names lower-cased.
std::map<std::string, std::string> ParseHeaders(const std::string& text) {
  std::map<std::string, std::string> out;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    const std::string line = text.substr(start, end - start);
    const size_t colon = line.find(": ");
    if (colon != std::string::npos) {
      std::string name = line.substr(0, colon);
      for (char& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      out[name] = line.substr(colon + 2);
    }
    start = end + 1;
  }
  return out;
}

TEST(EnvironmentFromHostTest, AcceptsOneLabelUnderTheBaseDomainOnly) {
  const std::string_view base = "preview.localhost";
  EXPECT_EQ(EnvironmentFromHost("shop-brave-otter-12.preview.localhost", base),
            "shop-brave-otter-12");
  EXPECT_EQ(EnvironmentFromHost("Shop-1.Preview.Localhost:8081", base), "shop-1");
  EXPECT_EQ(EnvironmentFromHost("app.preview.localhost.", base), "app");
  EXPECT_EQ(EnvironmentFromHost("preview.localhost", base), std::nullopt);
  EXPECT_EQ(EnvironmentFromHost(".preview.localhost", base), std::nullopt);
  EXPECT_EQ(EnvironmentFromHost("a.b.preview.localhost", base), std::nullopt);
  EXPECT_EQ(EnvironmentFromHost("app.example.com", base), std::nullopt);
  EXPECT_EQ(EnvironmentFromHost("appxpreview.localhost", base), std::nullopt);
  EXPECT_EQ(EnvironmentFromHost("app.preview.localhost:80x", base), std::nullopt);
  EXPECT_EQ(EnvironmentFromHost("-app.preview.localhost", base), std::nullopt);
  EXPECT_EQ(EnvironmentFromHost("a_b.preview.localhost", base), std::nullopt);
  EXPECT_EQ(EnvironmentFromHost("[::1]:8081", base), std::nullopt);
  EXPECT_EQ(EnvironmentFromHost("", base), std::nullopt);
}

TEST_F(GatewayTest, KeepAliveReusesClientAndPooledBackendConnections) {
  TestBackend backend;
  GatewayOptions options;
  options.io_threads = 1;  // one pool, so a second client connection must reuse it too
  StartGateway(options);
  Route("app", backend.port());

  Client client(gateway_->port());
  std::set<std::string> backend_connections;
  for (int i = 0; i < 5; ++i) {
    auto res = client.Get(Host("app"), "/page" + std::to_string(i));
    ASSERT_EQ(res.result_int(), 200);
    EXPECT_EQ(res.body(), "hello from /page" + std::to_string(i));
    EXPECT_TRUE(res.keep_alive());
    backend_connections.insert(std::string(res["X-Backend-Connection"]));
  }
  Client second(gateway_->port());
  auto res = second.Get(Host("app"), "/again");
  ASSERT_EQ(res.result_int(), 200);
  backend_connections.insert(std::string(res["X-Backend-Connection"]));
  EXPECT_EQ(backend_connections.size(), 1u);
  EXPECT_EQ(backend.connections(), 1);
}

TEST_F(GatewayTest, ReplacesAPooledConnectionTheBackendClosed) {
  TestBackend backend;
  StartGateway();
  Route("app", backend.port());
  Client client(gateway_->port());
  ASSERT_EQ(client.Get(Host("app"), "/close-after").body(), "closing");
  // The backend closed its end after answering; the next request must not see that.
  for (int i = 0; i < 3; ++i) {
    auto res = client.Get(Host("app"), "/next");
    EXPECT_EQ(res.result_int(), 200);
    EXPECT_EQ(res.body(), "hello from /next");
  }
}

TEST_F(GatewayTest, SetsForwardedHeadersAndDropsHopByHopOnes) {
  TestBackend backend;
  GatewayOptions options;
  options.add_forwarded_header = true;
  StartGateway(options);
  Route("app", backend.port());

  Client client(gateway_->port());
  http::request<http::string_body> req{http::verb::get, "/headers", 11};
  req.set(http::field::host, Host("app"));
  req.set("X-Forwarded-For", "203.0.113.7");
  req.set(http::field::connection, "keep-alive, X-Secret-Hop, Upgrade");
  req.set("X-Secret-Hop", "hidden");
  req.set(http::field::keep_alive, "timeout=5");
  req.set(http::field::te, "trailers");
  req.set(http::field::upgrade, "h2c");
  req.set(http::field::proxy_authorization, "Basic eDp5");
  req.set("Proxy-Connection", "keep-alive");
  req.set("X-Kept", "yes");
  auto res = client.Send(std::move(req));
  ASSERT_EQ(res.result_int(), 200);

  const auto seen = ParseHeaders(res.body());
  EXPECT_EQ(seen.at("x-forwarded-for"), "203.0.113.7, 127.0.0.1");
  EXPECT_EQ(seen.at("x-forwarded-host"), Host("app"));
  EXPECT_EQ(seen.at("x-forwarded-proto"), "http");
  EXPECT_EQ(seen.at("forwarded"), "for=127.0.0.1;host=\"" + Host("app") + "\";proto=http");
  EXPECT_EQ(seen.at("host"), Host("app"));
  EXPECT_EQ(seen.at("x-kept"), "yes");
  for (const char* hop : {"connection", "x-secret-hop", "keep-alive", "te", "upgrade",
                          "proxy-authorization", "proxy-connection"}) {
    EXPECT_EQ(seen.count(hop), 0u) << hop << " reached the backend";
  }
  // And on the way back.
  EXPECT_EQ(res.count(http::field::keep_alive), 0u);
  EXPECT_EQ(res.count("Proxy-Foo"), 0u);
  EXPECT_EQ(res.count("X-Resp-Hop"), 0u);
  EXPECT_EQ(res[http::field::via], "1.1 eph-gateway");
  EXPECT_TRUE(res.keep_alive());
  // The client connection is still usable.
  EXPECT_EQ(client.Get(Host("app"), "/x").result_int(), 200);
}

TEST_F(GatewayTest, UnknownHostsGetTheSame404Page) {
  TestBackend backend;
  StartGateway();
  Route("known", backend.port());
  {
    std::lock_guard<std::mutex> lock(mu_);
    backends_.erase("pending");  // an environment with no backend yet resolves to nothing too
  }
  Client client(gateway_->port());
  std::vector<http::response<http::string_body>> replies;
  for (const std::string& host :
       {Host("nope-one"), Host("another-name-42"), Host("pending"), std::string("example.com"),
        std::string("preview.localhost"), Host("a.known")}) {
    replies.push_back(client.Get(host, "/secret/path"));
  }
  for (const auto& res : replies) {
    EXPECT_EQ(res.result_int(), 404);
    EXPECT_EQ(res.body(), replies[0].body());
    EXPECT_EQ(res[http::field::content_type], "text/html; charset=utf-8");
    EXPECT_THAT(res.body(), ::testing::Not(::testing::HasSubstr("known")));
    EXPECT_THAT(res.body(), ::testing::Not(::testing::HasSubstr("nope")));
    std::vector<std::string> fields, first_fields;
    for (const auto& f : res)
      fields.push_back(std::string(f.name_string()) + ":" + std::string(f.value()));
    for (const auto& f : replies[0])
      first_fields.push_back(std::string(f.name_string()) + ":" + std::string(f.value()));
    EXPECT_EQ(fields, first_fields);
  }
  EXPECT_EQ(backend.connections(), 0);
  EXPECT_TRUE(Activity().empty());
}

TEST_F(GatewayTest, DeadBackendGets502AndSilentBackendGets504) {
  TestBackend backend;
  uint16_t dead_port;
  {
    asio::io_context io;
    tcp::acceptor probe(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    dead_port = probe.local_endpoint().port();
  }
  GatewayOptions options;
  options.backend_timeout = milliseconds(300);
  StartGateway(options);
  Route("dead", dead_port);
  Route("slow", backend.port());
  Client client(gateway_->port());
  auto res = client.Get(Host("dead"), "/");
  EXPECT_EQ(res.result_int(), 502);
  EXPECT_THAT(res.body(), ::testing::HasSubstr("Bad Gateway"));
  res = client.Get(Host("slow"), "/slow");
  EXPECT_EQ(res.result_int(), 504);
  EXPECT_THAT(res.body(), ::testing::HasSubstr("Gateway Timeout"));
}

TEST_F(GatewayTest, ClosesIdleKeepAliveConnections) {
  TestBackend backend;
  GatewayOptions options;
  options.client_idle_timeout = milliseconds(200);
  StartGateway(options);
  Route("app", backend.port());
  Client client(gateway_->port());
  ASSERT_EQ(client.Get(Host("app"), "/").result_int(), 200);
  // Nothing more is sent: the gateway closes the connection (well before the socket deadline).
  const auto start = std::chrono::steady_clock::now();
  char byte;
  beast::error_code ec;
  client.socket().read_some(asio::buffer(&byte, 1), ec);
  EXPECT_EQ(ec, asio::error::eof);
  EXPECT_LT(std::chrono::steady_clock::now() - start, seconds(10));
}

TEST_F(GatewayTest, OversizedRequestHeaderGets431) {
  GatewayOptions options;
  options.max_header_bytes = 4096;
  StartGateway(options);
  Client client(gateway_->port());
  http::request<http::string_body> req{http::verb::get, "/", 11};
  req.set(http::field::host, Host("app"));
  req.set("X-Big", std::string(8192, 'x'));
  beast::error_code ec;
  auto res = client.Send(std::move(req), &ec);
  EXPECT_EQ(res.result_int(), 431);
}

TEST_F(GatewayTest, PassesChunkedResponsesAndReframesEofDelimitedOnes) {
  TestBackend backend;
  StartGateway();
  Route("app", backend.port());
  Client client(gateway_->port());
  auto res = client.Get(Host("app"), "/chunked");
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_EQ(res.body(), "alphabetagamma");
  EXPECT_TRUE(client.last_chunked());
  // A body delimited by the backend closing is re-chunked, so the client connection survives.
  res = client.Get(Host("app"), "/until-eof");
  EXPECT_EQ(res.body(), "until-eof");
  EXPECT_TRUE(client.last_chunked());
  EXPECT_TRUE(res.keep_alive());
  EXPECT_EQ(client.Get(Host("app"), "/after").body(), "hello from /after");

  // HTTP/1.0 clients get no chunking: the body runs to the close.
  Client old(gateway_->port());
  http::request<http::string_body> req{http::verb::get, "/chunked", 10};
  req.set(http::field::host, Host("app"));
  res = old.Send(std::move(req));
  EXPECT_EQ(res.body(), "alphabetagamma");
  EXPECT_FALSE(old.last_chunked());
}

TEST_F(GatewayTest, StreamsALargeUploadWithoutBufferingIt) {
  TestBackend backend;
  StartGateway();
  Route("app", backend.port());
  Client client(gateway_->port());

  http::request<http::empty_body> head{http::verb::post, "/upload", 11};
  head.set(http::field::host, Host("app"));
  head.content_length(kBigBody);
  http::request_serializer<http::empty_body> sr{head};
  http::write_header(client.socket(), sr);
  std::string body(kBigBody, '\0');
  for (size_t i = 0; i < kBigBody; ++i) body[i] = PatternByte(i);
  asio::write(client.socket(), asio::buffer(body.data(), kFirstPart));
  // The backend sees the start of the body while most of it has not even been sent.
  EXPECT_TRUE(WaitFor([&] { return backend.upload_received.load() >= kFirstPart / 2; }))
      << "backend received " << backend.upload_received.load() << " bytes";
  asio::write(client.socket(), asio::buffer(body.data() + kFirstPart, kBigBody - kFirstPart));
  http::response<http::string_body> res;
  http::read(client.socket(), client.buffer(), res);
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_EQ(res.body(), "received=" + std::to_string(kBigBody));
}

TEST_F(GatewayTest, AnswersExpectContinueItself) {
  TestBackend backend;
  StartGateway();
  Route("app", backend.port());
  Client client(gateway_->port());
  http::request<http::empty_body> head{http::verb::put, "/upload", 11};
  head.set(http::field::host, Host("app"));
  head.set(http::field::expect, "100-continue");
  head.content_length(5);
  http::request_serializer<http::empty_body> sr{head};
  http::write_header(client.socket(), sr);
  http::response<http::string_body> interim;
  http::read(client.socket(), client.buffer(), interim);
  ASSERT_EQ(interim.result_int(), 100);
  asio::write(client.socket(), asio::buffer(std::string_view("12345")));
  http::response<http::string_body> res;
  http::read(client.socket(), client.buffer(), res);
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_EQ(res.body(), "received=5");
  EXPECT_EQ(ParseHeaders(backend.last_headers()).count("expect"), 0u);
}

TEST_F(GatewayTest, StreamsALargeDownloadWithoutBufferingIt) {
  TestBackend backend;
  StartGateway();
  Route("app", backend.port());
  Client client(gateway_->port());
  http::request<http::empty_body> req{http::verb::get, "/download", 11};
  req.set(http::field::host, Host("app"));
  http::write(client.socket(), req);

  http::response_parser<http::buffer_body> parser;
  parser.body_limit(std::numeric_limits<uint64_t>::max());
  http::read_header(client.socket(), client.buffer(), parser);
  ASSERT_EQ(parser.get().result_int(), 200);
  std::vector<char> buf(size_t{64} * 1024);
  size_t received = 0;
  bool pattern_ok = true;
  beast::error_code ec;
  while (!parser.is_done()) {
    // The backend holds back all but the first MiB until we have seen it: a gateway that
    // buffered whole bodies would stall here until the socket deadline.
    if (received >= kFirstPart / 2) backend.ReleaseDownload();
    parser.get().body().data = buf.data();
    parser.get().body().size = buf.size();
    http::read_some(client.socket(), client.buffer(), parser, ec);
    if (ec == http::error::need_buffer) ec = {};
    ASSERT_FALSE(ec) << ec.message() << " after " << received << " bytes";
    const size_t n = buf.size() - parser.get().body().size;
    for (size_t i = 0; i < n; ++i) pattern_ok &= buf[i] == PatternByte(received + i);
    received += n;
  }
  EXPECT_EQ(received, kBigBody);
  EXPECT_TRUE(pattern_ok);
}

TEST_F(GatewayTest, SplicesWebsockets) {
  TestBackend backend;
  StartGateway();
  Route("app", backend.port());
  asio::io_context io;
  websocket::stream<tcp::socket> ws(io);
  ws.next_layer().connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), gateway_->port()));
  SocketDeadline deadline(ws.next_layer().native_handle(), milliseconds(20'000));
  ws.handshake(Host("app"), "/ws");
  for (const std::string& message : {std::string("hello"), std::string(300'000, 'w')}) {
    ws.text(true);
    ws.write(asio::buffer(message));
    beast::flat_buffer echoed;
    ws.read(echoed);
    EXPECT_EQ(beast::buffers_to_string(echoed.data()), message);
  }
  ws.close(websocket::close_code::normal);
  EXPECT_FALSE(deadline.expired());
}

TEST_F(GatewayTest, ReportsActivityAtMostOncePerIntervalPerEnvironment) {
  TestBackend backend;
  GatewayOptions options;
  options.activity_interval = seconds(60);
  StartGateway(options);
  Route("one", backend.port());
  Route("two", backend.port());
  const TimePoint t0 = clock_.Now();
  Client client(gateway_->port());
  for (int i = 0; i < 3; ++i) ASSERT_EQ(client.Get(Host("one"), "/").result_int(), 200);
  clock_.Advance(seconds(30));
  ASSERT_EQ(client.Get(Host("one"), "/").result_int(), 200);
  ASSERT_EQ(client.Get(Host("two"), "/").result_int(), 200);
  clock_.Advance(seconds(31));
  ASSERT_EQ(client.Get(Host("one"), "/").result_int(), 200);
  ASSERT_EQ(client.Get(Host("nobody"), "/").result_int(), 404);
  // The sink runs on its own thread, in order; wait for the last expected call.
  ASSERT_TRUE(WaitFor([&] { return Activity().size() >= 3; }));
  gateway_->Stop();  // flushes the sink: nothing else may have been queued
  const std::vector<std::pair<std::string, TimePoint>> expected = {
      {"one", t0}, {"two", t0 + seconds(30)}, {"one", t0 + seconds(61)}};
  EXPECT_EQ(Activity(), expected);
}

TEST_F(GatewayTest, StopLetsInFlightRequestsFinishAndClosesWebsockets) {
  TestBackend backend;
  StartGateway();
  Route("app", backend.port());

  asio::io_context io;
  websocket::stream<tcp::socket> ws(io);
  ws.next_layer().connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), gateway_->port()));
  SocketDeadline ws_deadline(ws.next_layer().native_handle(), milliseconds(20'000));
  ws.handshake(Host("app"), "/ws");

  Client client(gateway_->port());
  http::response<http::string_body> res;
  std::thread request([&] { res = client.Get(Host("app"), "/gated"); });
  // The backend has the request, so it is in flight at the gateway. (Threads run: no ASSERT.)
  EXPECT_TRUE(WaitFor([&] { return !backend.last_headers().empty(); }));
  EXPECT_EQ(gateway_->in_flight(), 1);
  const uint16_t port = gateway_->port();
  std::thread stopper([&] { gateway_->Stop(); });
  // Once the listener refuses connections, Stop is waiting for the request; the backend now
  // answers it.
  EXPECT_TRUE(WaitFor([&] {
    asio::io_context probe_io;
    tcp::socket probe(probe_io);
    beast::error_code probe_ec;
    probe.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), probe_ec);
    return probe_ec == asio::error::connection_refused;
  }));
  backend.ReleaseDownload();
  request.join();
  stopper.join();
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_EQ(res.body(), "gated");
  EXPECT_FALSE(res.keep_alive());  // answered during shutdown: the connection closes

  beast::flat_buffer buffer;
  beast::error_code ec;
  ws.read(buffer, ec);
  EXPECT_TRUE(ec);  // the spliced websocket was closed by Stop
  EXPECT_FALSE(ws_deadline.expired());
}

TEST_F(GatewayTest, StopIsGracefulAndIdempotent) {
  TestBackend backend;
  StartGateway();
  Route("app", backend.port());
  Client client(gateway_->port());
  EXPECT_EQ(client.Get(Host("app"), "/").result_int(), 200);
  gateway_->Stop();
  gateway_->Stop();
  EXPECT_EQ(gateway_->in_flight(), 0);
  beast::error_code ec;
  http::request<http::string_body> req{http::verb::get, "/", 11};
  req.set(http::field::host, Host("app"));
  client.Send(std::move(req), &ec);
  EXPECT_TRUE(ec);  // the idle keep-alive connection was closed
}

}  // namespace
}  // namespace eph::gateway
