#include "pkg/server/http_server.h"

#include <curl/curl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
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

}  // namespace
}  // namespace eph::server
