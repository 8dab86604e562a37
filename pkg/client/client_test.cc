#include "pkg/client/client.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "pkg/kube/scripted_http_server.h"

namespace eph::client {
namespace {

using kube::testing::ScriptedExchange;
using kube::testing::ScriptedHttpServer;
using ::testing::HasSubstr;

absl::Status GetFrom(int status, const std::string& body) {
  ScriptedHttpServer server([&](ScriptedExchange& ex) { ex.Respond(status, body); });
  ApiClient api({.server = server.url(), .token = "t"});
  return api.Get("/api/v1/environments/x").status();
}

std::string Msg(const absl::Status& st) { return std::string(st.message()); }

TEST(ApiClientTest, EphdsOwnErrorCodeWins) {
  const absl::Status internal =
      GetFrom(500, R"({"error":{"code":"internal","message":"internal error"}})");
  EXPECT_EQ(internal.code(), absl::StatusCode::kInternal);
  EXPECT_EQ(Msg(internal), "internal error");
  EXPECT_EQ(GetFrom(409, R"({"error":{"code":"already_exists","message":"taken"}})").code(),
            absl::StatusCode::kAlreadyExists);
  const absl::Status missing =
      GetFrom(404, R"({"error":{"code":"not_found","message":"no environment named x"}})");
  EXPECT_EQ(missing.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Msg(missing), "no environment named x");
}

// A 5xx that is not ephd's answer (a proxy in front of it) is an outage, as a 503 always was:
// before the shared table, a 502 or 504 was Internal (exit 1) and a 503 Unavailable (exit 3).
TEST(ApiClientTest, AProxysServerErrorIsUnavailable) {
  const absl::Status st = GetFrom(502, "<html>Bad Gateway</html>");
  EXPECT_EQ(st.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(Msg(st), "HTTP 502: <html>Bad Gateway</html>");
}

TEST(ApiClientTest, A404ThatIsNotEphdsMeansTheWrongAddress) {
  const absl::Status st = GetFrom(404, "not here");
  EXPECT_EQ(st.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(Msg(st), HasSubstr("does not point at an ephd API (it answered 404: not here)"));
  EXPECT_EQ(GetFrom(404, R"({"error":{"code":"not_found","message":"no such endpoint: GET /x"}})")
                .code(),
            absl::StatusCode::kUnavailable);
}

TEST(ApiClientTest, RefusedTokensSayWhatToSet) {
  const absl::Status st =
      GetFrom(401, R"({"error":{"code":"unauthenticated","message":"unknown token"}})");
  EXPECT_EQ(st.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(Msg(st), "unknown token (set EPH_TOKEN to a valid API token)");
}

TEST(ApiClientTest, AnUnreachableServerSaysSo) {
  ApiClient api({.server = "http://127.0.0.1:1", .timeout_ms = 2000});
  const absl::Status st = api.Get("/healthz").status();
  EXPECT_EQ(st.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(Msg(st), HasSubstr("cannot reach ephd at http://127.0.0.1:1: "));
}

}  // namespace
}  // namespace eph::client
