#include "pkg/api/api.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "test/support/testbed.h"

namespace eph::api {
namespace {

using nlohmann::json;

class ApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = state::OpenStore("sqlite:" + eph::testing::MakeTempDir("api") + "/eph.db");
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
    intake_ = std::make_unique<webhook::WebhookIntake>(*store_, clock_, metrics_, "s");
    api_ = std::make_unique<ApiServer>(*store_, clock_, metrics_, *intake_, ApiOptions{});
  }

  server::HttpResponse Call(const std::string& method, const std::string& path,
                            std::map<std::string, std::string> query = {}) {
    server::HttpRequest req;
    req.method = method;
    req.path = path;
    req.query = std::move(query);
    server::HttpResponse res;
    api_->Handle(req, res);
    return res;
  }

  state::Environment MakeEnv(const std::string& name, int64_t pr) {
    state::Environment e;
    e.name = name;
    e.project = "acme/shop";
    e.pr_number = pr;
    e.state = state::EnvState::kReady;
    e.url = "https://" + name + ".preview.localhost";
    e.created_at = e.updated_at = clock_.Now();
    e.expires_at = clock_.Now() + std::chrono::hours(72);
    auto stored = store_->CreateEnvironment(e);
    EXPECT_TRUE(stored.ok()) << stored.status();
    return *stored;
  }

  FakeClock clock_;
  MetricsRegistry metrics_;
  std::unique_ptr<state::Store> store_;
  std::unique_ptr<webhook::WebhookIntake> intake_;
  std::unique_ptr<ApiServer> api_;
};

TEST_F(ApiTest, EmptyListIsAnEmptyItemsArray) {
  auto res = Call("GET", "/api/v1/environments");
  EXPECT_EQ(res.status, 200);
  EXPECT_EQ(json::parse(res.body), json::parse(R"({"items":[]})"));
}

TEST_F(ApiTest, ListAndGetShowTheProductFields) {
  MakeEnv("shop-calm-river-42", 42);
  auto res = Call("GET", "/api/v1/environments");
  ASSERT_EQ(res.status, 200);
  auto items = json::parse(res.body)["items"];
  ASSERT_EQ(items.size(), 1u);
  for (const char* field : {"name", "project", "pr", "state", "url", "reason", "created_at",
                            "updated_at", "expires_at"}) {
    EXPECT_TRUE(items[0].contains(field)) << field;
  }
  EXPECT_EQ(items[0]["pr"], 42);
  EXPECT_EQ(items[0]["state"], "ready");
  EXPECT_EQ(items[0]["created_at"], "2026-01-01T00:00:00.000Z");
  EXPECT_EQ(items[0]["expires_at"], "2026-01-04T00:00:00.000Z");

  auto one = Call("GET", "/api/v1/environments/shop-calm-river-42");
  EXPECT_EQ(one.status, 200);
  EXPECT_EQ(json::parse(one.body)["url"], "https://shop-calm-river-42.preview.localhost");
}

TEST_F(ApiTest, UnknownEnvironmentIs404Json) {
  auto res = Call("GET", "/api/v1/environments/nope");
  EXPECT_EQ(res.status, 404);
  EXPECT_EQ(json::parse(res.body)["error"]["code"], "not_found");
  EXPECT_EQ(Call("DELETE", "/api/v1/environments/nope").status, 404);
}

TEST_F(ApiTest, DeleteRecordsTheWishAndQueuesTheReconciler) {
  MakeEnv("shop-a-b-1", 1);
  auto res = Call("DELETE", "/api/v1/environments/shop-a-b-1");
  EXPECT_EQ(res.status, 202);
  EXPECT_EQ(json::parse(res.body)["state"], "destroying");
  EXPECT_EQ(*store_->QueueDepth(), 1);
  auto events = store_->EventsFor("shop-a-b-1");
  ASSERT_TRUE(events.ok());
  EXPECT_EQ(events->back().to_state, "destroying");
  // Idempotent: a second delete changes nothing more.
  EXPECT_EQ(Call("DELETE", "/api/v1/environments/shop-a-b-1").status, 202);
  EXPECT_EQ(store_->EventsFor("shop-a-b-1")->size(), events->size());
}

TEST_F(ApiTest, HealthReadinessAndMetrics) {
  EXPECT_EQ(Call("GET", "/healthz").status, 200);
  EXPECT_EQ(Call("GET", "/readyz").status, 200);
  auto m = Call("GET", "/metrics");
  EXPECT_EQ(m.status, 200);
  EXPECT_THAT(m.body, ::testing::HasSubstr("eph_http_request_duration_seconds"));
}

TEST_F(ApiTest, ReadinessFollowsTheReadyCheck) {
  ApiOptions options;
  options.ready_check = [] { return absl::UnavailableError("workers stopped"); };
  ApiServer api(*store_, clock_, metrics_, *intake_, options);
  server::HttpRequest req;
  req.method = "GET";
  req.path = "/readyz";
  server::HttpResponse res;
  api.Handle(req, res);
  EXPECT_EQ(res.status, 503);
  EXPECT_THAT(res.body, ::testing::HasSubstr("workers stopped"));
}

}  // namespace
}  // namespace eph::api
