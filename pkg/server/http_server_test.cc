#include "pkg/server/http_server.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "absl/strings/str_cat.h"

namespace eph::server {
namespace {

struct Reply {
  long status = 0;
  std::string body;
  std::string error;
};

size_t Collect(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

Reply Fetch(uint16_t port, const std::string& path, const std::string& method = "GET",
            const std::string& body = "", long timeout_ms = 5000) {
  Reply r;
  CURL* curl = curl_easy_init();
  const std::string url = absl::StrCat("http://127.0.0.1:", port, path);
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method.c_str());
  if (!body.empty() || method == "POST") {
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  }
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, Collect);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &r.body);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, timeout_ms);
  const CURLcode rc = curl_easy_perform(curl);
  if (rc != CURLE_OK) r.error = curl_easy_strerror(rc);
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &r.status);
  curl_easy_cleanup(curl);
  return r;
}

HttpServerOptions TestOptions() {
  HttpServerOptions o;
  o.port = 0;
  o.max_body_bytes = 1024;
  o.shutdown_grace = std::chrono::seconds(5);
  return o;
}

TEST(HttpServerTest, ServesHandlerResponsesWithQueryAndBody) {
  HttpServer server(TestOptions(), [](const HttpRequest& req, HttpResponse& res) {
    res.SetText(201, absl::StrCat(req.method, " ", req.path, " q=", req.query.count("a") ? req.query.at("a") : "", " b=", req.body));
  });
  ASSERT_TRUE(server.Start().ok());
  ASSERT_NE(server.port(), 0);
  const Reply r = Fetch(server.port(), "/x%20y?a=1+2", "POST", "hello");
  EXPECT_EQ(r.status, 201) << r.error;
  EXPECT_EQ(r.body, "POST /x y q=1 2 b=hello");
  server.Stop();
}

TEST(HttpServerTest, OversizedBodyGets413WithoutRunningTheHandler) {
  std::atomic<int> calls{0};
  HttpServer server(TestOptions(), [&](const HttpRequest&, HttpResponse& res) {
    ++calls;
    res.SetText(200, "ok");
  });
  ASSERT_TRUE(server.Start().ok());
  const Reply r = Fetch(server.port(), "/", "POST", std::string(4096, 'x'));
  EXPECT_EQ(r.status, 413);
  EXPECT_THAT(r.body, ::testing::HasSubstr("payload_too_large"));
  EXPECT_EQ(calls.load(), 0);
  server.Stop();
}

TEST(HttpServerTest, ThrowingHandlerGivesJson500WithoutDetails) {
  HttpServer server(TestOptions(), [](const HttpRequest&, HttpResponse&) {
    throw std::runtime_error("secret detail");
  });
  ASSERT_TRUE(server.Start().ok());
  const Reply r = Fetch(server.port(), "/");
  EXPECT_EQ(r.status, 500);
  EXPECT_THAT(r.body, ::testing::HasSubstr(R"("code":"internal")"));
  EXPECT_THAT(r.body, ::testing::Not(::testing::HasSubstr("secret")));
  server.Stop();
}

TEST(HttpServerTest, StopWaitsForInFlightRequests) {
  std::atomic<bool> entered{false}, release{false};
  HttpServer server(TestOptions(), [&](const HttpRequest&, HttpResponse& res) {
    entered = true;
    while (!release) std::this_thread::yield();
    res.SetText(200, "finished");
  });
  ASSERT_TRUE(server.Start().ok());
  Reply r;
  std::thread client([&] { r = Fetch(server.port(), "/slow"); });
  while (!entered) std::this_thread::yield();
  std::thread stopper([&] { server.Stop(); });
  EXPECT_EQ(server.in_flight(), 1);
  release = true;
  stopper.join();
  client.join();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "finished");
}

TEST(HttpServerTest, StreamsChunksUntilProducerReturns) {
  HttpServer server(TestOptions(), [](const HttpRequest&, HttpResponse& res) {
    res.headers["Content-Type"] = "text/event-stream";
    res.stream = [](StreamWriter& w) {
      for (int i = 0; i < 3; ++i) w.Write(absl::StrCat("data: ", i, "\n\n"));
    };
  });
  ASSERT_TRUE(server.Start().ok());
  const Reply r = Fetch(server.port(), "/events");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "data: 0\n\ndata: 1\n\ndata: 2\n\n");
  server.Stop();
}

TEST(HttpServerTest, BusyPortIsAClearError) {
  HttpServer first(TestOptions(), [](const HttpRequest&, HttpResponse&) {});
  ASSERT_TRUE(first.Start().ok());
  HttpServerOptions o = TestOptions();
  o.port = first.port();
  HttpServer second(o, [](const HttpRequest&, HttpResponse&) {});
  const absl::Status s = second.Start();
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(s.message()), ::testing::HasSubstr("cannot listen"));
}

// A raw connection, for what curl will not send or will not wait for.
int RawConnect(uint16_t port, int rcvbuf = 0) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (rcvbuf > 0) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

std::string RawRead(int fd, std::chrono::milliseconds timeout) {
  std::string out;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  char buf[4096];
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

std::string RawExchange(uint16_t port, const std::string& request) {
  const int fd = RawConnect(port);
  ::send(fd, request.data(), request.size(), MSG_NOSIGNAL);
  std::string answer = RawRead(fd, std::chrono::seconds(5));
  ::close(fd);
  return answer;
}

TEST(ParseRequestTargetTest, AcceptsCanonicalPathsOnly) {
  auto ok = ParseRequestTarget("/api/v1/environments/x%20y?a=1&b=%2F");
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->path, "/api/v1/environments/x y");
  EXPECT_EQ(ok->query.at("b"), "/");
  EXPECT_TRUE(ParseRequestTarget("/").ok());
  EXPECT_TRUE(ParseRequestTarget("/assets/").ok());  // one trailing '/' is a directory
  for (const char* bad :
       {"", "*", "api", "http://host/api", "//api", "/api//v1", "/api/./v1", "/api/../api",
        "/./api", "/..", "/.", "/%2e%2e/x", "/%2E/api", "/a%2fb", "/a%2Fb", "/a%", "/a%4",
        "/a%zz", "/a%00b", "/a\\b", "/a%5cb", "/a\tb", "/a%7f"}) {
    EXPECT_EQ(ParseRequestTarget(bad).status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_FALSE(ParseRequestTarget("/" + std::string(kMaxPathBytes, 'a')).ok());
}

TEST(HttpServerTest, NonCanonicalTargetGets400WithoutRunningTheHandler) {
  std::atomic<int> calls{0};
  HttpServer server(TestOptions(), [&](const HttpRequest&, HttpResponse& res) {
    ++calls;
    res.SetText(200, "ok");
  });
  ASSERT_TRUE(server.Start().ok());
  const std::string answer =
      RawExchange(server.port(), "GET //api/v1/environments HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_THAT(answer, ::testing::StartsWith("HTTP/1.1 400"));
  EXPECT_THAT(answer, ::testing::HasSubstr("empty segment"));
  EXPECT_EQ(calls.load(), 0);
  server.Stop();
}

TEST(HttpServerTest, AdmissionRefusesFromTheHeaderWithoutReadingTheBody) {
  std::atomic<int> calls{0};
  HttpServerOptions o = TestOptions();
  o.max_body_bytes = 1 << 20;
  o.admit = [](const HttpRequest& head, HttpResponse& res) {
    EXPECT_TRUE(head.body.empty());
    if (head.Header("Authorization").empty()) {
      res.SetJson(401, R"({"error":{"code":"unauthenticated","message":"no"}})");
      return false;
    }
    return true;
  };
  HttpServer server(o, [&](const HttpRequest& req, HttpResponse& res) {
    ++calls;
    res.SetText(200, absl::StrCat(req.body.size()));
  });
  ASSERT_TRUE(server.Start().ok());
  // The body is never sent: the refusal must come from the header alone.
  const int fd = RawConnect(server.port());
  const std::string head = "POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 500000\r\n\r\n";
  ::send(fd, head.data(), head.size(), MSG_NOSIGNAL);
  EXPECT_THAT(RawRead(fd, std::chrono::seconds(3)), ::testing::StartsWith("HTTP/1.1 401"));
  ::close(fd);
  EXPECT_EQ(calls.load(), 0);
  const std::string body(1000, 'b');
  const std::string admitted = RawExchange(
      server.port(), "POST /x HTTP/1.1\r\nHost: x\r\nAuthorization: t\r\nConnection: close\r\n"
                     "Content-Length: 1000\r\n\r\n" + body);
  EXPECT_THAT(admitted, ::testing::StartsWith("HTTP/1.1 200"));
  EXPECT_THAT(admitted, ::testing::EndsWith("1000"));
  server.Stop();
}

TEST(HttpServerTest, BodiesBeyondTheSharedBudgetGet503Unread) {
  std::atomic<bool> release{false};
  std::atomic<int> entered{0};
  HttpServerOptions o = TestOptions();
  o.max_body_bytes = 1000;
  o.max_pending_body_bytes = 1500;  // one body of 1000 fits, a second does not
  HttpServer server(o, [&](const HttpRequest&, HttpResponse& res) {
    ++entered;
    while (!release) std::this_thread::yield();
    res.SetText(200, "ok");
  });
  ASSERT_TRUE(server.Start().ok());
  Reply first;
  std::thread holder([&] { first = Fetch(server.port(), "/a", "POST", std::string(1000, 'a')); });
  while (entered == 0) std::this_thread::yield();
  const Reply second = Fetch(server.port(), "/b", "POST", std::string(1000, 'b'));
  EXPECT_EQ(second.status, 503);
  EXPECT_FALSE(server.Saturation().ok());
  release = true;
  holder.join();
  EXPECT_EQ(first.status, 200);
  // Released once the handler ran: the next body fits again.
  EXPECT_EQ(Fetch(server.port(), "/c", "POST", std::string(1000, 'c')).status, 200);
  server.Stop();
}

TEST(HttpServerTest, AtTheConnectionLimitTheLongestIdleConnectionMakesRoom) {
  HttpServerOptions o = TestOptions();
  o.max_connections = 4;
  HttpServer server(o, [](const HttpRequest&, HttpResponse& res) { res.SetText(200, "ok"); });
  ASSERT_TRUE(server.Start().ok());
  std::vector<int> idle;
  for (int i = 0; i < 20; ++i) idle.push_back(RawConnect(server.port()));
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(Fetch(server.port(), "/healthz").status, 200) << i;
  }
  EXPECT_LE(server.connections(), 5);
  EXPECT_EQ(server.max_connections(), 4);
  const absl::Status saturation = server.Saturation();
  EXPECT_EQ(saturation.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(saturation.message()), ::testing::HasSubstr("connection limit 4"));
  for (int fd : idle) ::close(fd);
  server.Stop();
}

TEST(HttpServerTest, StreamsAreCappedAndTheirThreadsReaped) {
  HttpServerOptions o = TestOptions();
  o.max_streams = 2;
  std::atomic<bool> release{false};
  HttpServer server(o, [&](const HttpRequest& req, HttpResponse& res) {
    res.headers["Content-Type"] = "text/event-stream";
    const bool hold = req.path == "/hold";
    res.stream = [&release, hold](StreamWriter& w) {
      w.Write("data: hello\n\n");
      while (hold && !release && !w.Cancelled()) std::this_thread::yield();
    };
  });
  ASSERT_TRUE(server.Start().ok());
  for (int i = 0; i < 50; ++i) ASSERT_EQ(Fetch(server.port(), "/quick").status, 200) << i;
  EXPECT_LE(server.streams(), 1);
  std::vector<int> held;
  for (int i = 0; i < 2; ++i) {
    const int fd = RawConnect(server.port());
    const std::string req = "GET /hold HTTP/1.1\r\nHost: x\r\n\r\n";
    ::send(fd, req.data(), req.size(), MSG_NOSIGNAL);
    held.push_back(fd);
  }
  for (int i = 0; i < 200 && server.streams() < 2; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(server.streams(), 2);
  EXPECT_EQ(Fetch(server.port(), "/quick").status, 503);
  release = true;
  for (int fd : held) ::close(fd);
  server.Stop();
}

// A handler whose stream writes 64 KiB chunks until a write is refused, then sets `failed`.
Handler FloodUntilRefused(std::atomic<bool>& failed) {
  return [&failed](const HttpRequest&, HttpResponse& res) {
    res.stream = [&failed](StreamWriter& w) {
      const std::string chunk(64 * 1024, 'x');
      while (w.Write(chunk)) {
      }
      failed = true;
    };
  };
}

// A client with a 1 KiB receive buffer that asks for the flood and then never reads.
int SlowReaderAsksForAFlood(uint16_t port) {
  const int fd = RawConnect(port, 1024);
  const std::string req = "GET /flood HTTP/1.1\r\nHost: x\r\n\r\n";
  ::send(fd, req.data(), req.size(), MSG_NOSIGNAL);
  return fd;
}

TEST(HttpServerTest, AReaderThatStopsReadingEndsItsStreamAndNeverBlocksStop) {
  HttpServerOptions o = TestOptions();
  o.write_timeout = std::chrono::milliseconds(60'000);  // longer than this test may take
  std::atomic<bool> write_failed{false};
  HttpServer server(o, FloodUntilRefused(write_failed));
  ASSERT_TRUE(server.Start().ok());
  const int fd = SlowReaderAsksForAFlood(server.port());
  for (int i = 0; i < 500 && server.streams() == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(server.streams(), 1);
  // The producer is now blocked on a full socket; Stop must end it and return promptly.
  const auto start = std::chrono::steady_clock::now();
  server.Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(3));
  EXPECT_TRUE(write_failed.load());
  ::close(fd);
}

TEST(HttpServerTest, AStalledWriteGivesUpAtItsDeadline) {
  HttpServerOptions o = TestOptions();
  o.write_timeout = std::chrono::milliseconds(300);
  std::atomic<bool> write_failed{false};
  HttpServer server(o, FloodUntilRefused(write_failed));
  ASSERT_TRUE(server.Start().ok());
  const int fd = SlowReaderAsksForAFlood(server.port());
  for (int i = 0; i < 500 && !write_failed; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(write_failed.load());
  ::close(fd);
  server.Stop();
}

}  // namespace
}  // namespace eph::server
