#include "pkg/http/http_client.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <thread>

#include "pkg/kube/scripted_http_server.h"

namespace eph::http {
namespace {

using kube::testing::ScriptedExchange;
using kube::testing::ScriptedHttpServer;
using ::testing::HasSubstr;

TEST(HttpClientTest, SendsMethodHeadersAndBodyAndReadsTheAnswer) {
  ScriptedHttpServer server([](ScriptedExchange& ex) {
    ex.Respond(201, "made:" + ex.request().body, {{"X-Thing", " yes "}});
  });
  HttpClient client;
  auto r = client.Perform({.method = "PUT",
                           .url = server.url() + "/a?b=c",
                           .headers = {"X-Caller: test"},
                           .body = "payload"});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 201);
  EXPECT_EQ(r->body, "made:payload");
  EXPECT_EQ(HeaderOf(*r, "x-thing"), "yes");
  const auto seen = server.requests();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].method, "PUT");
  EXPECT_EQ(seen[0].target, "/a?b=c");
  EXPECT_EQ(seen[0].headers.at("x-caller"), "test");
}

TEST(HttpClientTest, AnEmptyBodyIsSentWithItsLength) {
  ScriptedHttpServer server([](ScriptedExchange& ex) { ex.Respond(204, ""); });
  auto r = Perform({.method = "POST", .url = server.url() + "/start", .body = ""});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(server.requests().at(0).headers.at("content-length"), "0");
}

TEST(HttpClientTest, StreamsTwoHundredsAndCollectsErrors) {
  ScriptedHttpServer server([](ScriptedExchange& ex) {
    if (ex.request().path == "/bad") {
      ex.Respond(500, "{\"message\":\"broken\"}");
      return;
    }
    ex.BeginStream();
    ex.Send("one");
    ex.Send("two");
    ex.End();
  });
  std::string got;
  Request request{.url = server.url() + "/ok", .timeout = std::chrono::milliseconds(0)};
  request.on_body = [&got](std::string_view chunk) {
    got += chunk;
    return true;
  };
  auto ok = Perform(request);
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(got, "onetwo");
  EXPECT_TRUE(ok->streamed);
  EXPECT_TRUE(ok->body.empty());

  got.clear();
  request.url = server.url() + "/bad";
  auto bad = Perform(request);
  ASSERT_TRUE(bad.ok()) << bad.status();
  EXPECT_EQ(bad->status, 500);
  EXPECT_EQ(bad->body, "{\"message\":\"broken\"}");
  EXPECT_EQ(got, "");
}

TEST(HttpClientTest, AReaderThatSaysStopEndsTheTransfer) {
  ScriptedHttpServer server([](ScriptedExchange& ex) {
    ex.BeginStream();
    ex.Send("first");
    ex.WaitForClientClose(std::chrono::seconds(10));
  });
  Request request{.url = server.url() + "/s", .timeout = std::chrono::milliseconds(0)};
  request.on_body = [](std::string_view) { return false; };
  auto r = Perform(request);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->stopped_by_reader);
}

TEST(HttpClientTest, StopAndCancelledEndAQuietStreamPromptly) {
  ScriptedHttpServer server([](ScriptedExchange& ex) {
    ex.BeginStream();
    ex.WaitForClientClose(std::chrono::seconds(10));
  });
  Request request{.url = server.url() + "/quiet", .timeout = std::chrono::milliseconds(0)};
  request.on_body = [](std::string_view) { return true; };

  std::stop_source stop;
  std::jthread stopper([&stop] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    stop.request_stop();
  });
  const auto start = std::chrono::steady_clock::now();
  auto stopped = Perform(request, stop.get_token());
  EXPECT_EQ(stopped.status().code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(FailureOf(stopped.status()), TransportFailure::kCancelled);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));

  std::atomic<bool> cancel{false};
  request.cancelled = [&cancel] { return cancel.load(); };
  std::jthread canceller([&cancel] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    cancel = true;
  });
  auto cancelled = Perform(request);
  ASSERT_TRUE(cancelled.ok()) << cancelled.status();
  EXPECT_TRUE(cancelled->stopped_by_reader);
}

TEST(HttpClientTest, TooLargeIsResourceExhausted) {
  ScriptedHttpServer server([](ScriptedExchange& ex) { ex.Respond(200, std::string(1000, 'x')); });
  auto r = Perform({.url = server.url() + "/big", .max_response_bytes = 100});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(FailureOf(r.status()), TransportFailure::kTooLarge);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("larger than 100 bytes"));
}

TEST(HttpClientTest, RefusedConnectionIsUnavailableAndNotSent) {
  int port = 0;
  {
    ScriptedHttpServer gone([](ScriptedExchange& ex) { ex.Respond(200, ""); });
    port = gone.port();
  }
  auto r = Perform({.method = "POST", .url = "http://127.0.0.1:" + std::to_string(port) + "/x"});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(FailureOf(r.status()), TransportFailure::kConnect);
  EXPECT_TRUE(RequestNotSent(r.status()));
  const absl::Status prefixed = Prefixed(r.status(), "GitHub unreachable");
  EXPECT_TRUE(RequestNotSent(prefixed));
  EXPECT_THAT(std::string(prefixed.message()), HasSubstr("GitHub unreachable: POST http://"));
}

TEST(HttpClientTest, RedirectsAreFollowedOnlyWhenAsked) {
  ScriptedHttpServer server([](ScriptedExchange& ex) {
    if (ex.request().path == "/old") {
      ex.Respond(302, "", {{"Location", "/new"}});
    } else {
      ex.Respond(200, "here");
    }
  });
  auto kept = Perform({.url = server.url() + "/old"});
  ASSERT_TRUE(kept.ok()) << kept.status();
  EXPECT_EQ(kept->status, 302);
  auto followed = Perform({.url = server.url() + "/old", .max_redirects = 5});
  ASSERT_TRUE(followed.ok()) << followed.status();
  EXPECT_EQ(followed->status, 200);
  EXPECT_EQ(followed->body, "here");
}

}  // namespace
}  // namespace eph::http
