#include "pkg/api/api.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "pkg/api/tokens.h"
#include "pkg/providers/fake_provider.h"
#include "test/support/testbed.h"

namespace eph::api {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Not;
using namespace std::chrono_literals;

// Collects what a streamed response writes; reports itself cancelled (the client went away)
// once `stop_after` returns true for what it holds.
class RecordingStreamWriter final : public server::StreamWriter {
 public:
  explicit RecordingStreamWriter(std::function<bool(const std::string&)> stop_after)
      : stop_after_(std::move(stop_after)) {}

  bool Write(std::string_view chunk) override {
    std::lock_guard<std::mutex> lock(mu_);
    body_.append(chunk);
    if (stop_after_(body_)) cancelled_ = true;
    return !cancelled_;
  }
  bool Cancelled() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return cancelled_ || force_cancel_;
  }
  void Cancel() {
    std::lock_guard<std::mutex> lock(mu_);
    force_cancel_ = true;
  }
  std::string body() const {
    std::lock_guard<std::mutex> lock(mu_);
    return body_;
  }

 private:
  std::function<bool(const std::string&)> stop_after_;
  mutable std::mutex mu_;
  std::string body_;
  bool cancelled_ = false;
  bool force_cancel_ = false;
};

// The `id:` lines of a server-sent event stream, in order.
std::vector<int64_t> EventIds(const std::string& body) {
  std::vector<int64_t> ids;
  size_t pos = 0;
  while ((pos = body.find("id: ", pos)) != std::string::npos) {
    ids.push_back(std::stoll(body.substr(pos + 4)));
    pos += 4;
  }
  return ids;
}

size_t Count(const std::string& haystack, const std::string& needle) {
  size_t n = 0;
  for (size_t pos = haystack.find(needle); pos != std::string::npos;
       pos = haystack.find(needle, pos + 1)) {
    ++n;
  }
  return n;
}

class ApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = eph::testing::MakeTempDir("api");
    auto store = state::OpenStore("sqlite:" + dir_ + "/eph.db");
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
    intake_ = std::make_unique<webhook::WebhookIntake>(*store_, clock_, metrics_, "s");
    write_token_ = MakeToken("writer", state::TokenScope::kWrite);
    read_token_ = MakeToken("reader", state::TokenScope::kRead);
    Rebuild([](ApiOptions&) {});
  }

  void Rebuild(const std::function<void(ApiOptions&)>& adjust) {
    ApiOptions options;
    options.random = &random_;
    options.providers = &providers_;
    options.events_poll = 5ms;
    options.events_keepalive = 50ms;
    adjust(options);
    api_ = std::make_unique<ApiServer>(*store_, clock_, metrics_, *intake_, options);
  }

  std::string MakeToken(const std::string& name, state::TokenScope scope) {
    const std::string secret = GenerateTokenSecret(random_);
    state::ApiToken t;
    t.name = name;
    t.scope = scope;
    t.hash = HashToken(secret);
    t.created_at = clock_.Now();
    EXPECT_TRUE(store_->CreateToken(t).ok());
    return secret;
  }

  server::HttpResponse Call(const std::string& method, const std::string& path,
                            std::map<std::string, std::string> query = {},
                            const std::string& body = "", std::optional<std::string> token = {},
                            server::Headers headers = {}) {
    server::HttpRequest req;
    req.method = method;
    req.path = path;
    req.query = std::move(query);
    req.body = body;
    req.headers = std::move(headers);
    const std::string t = token.value_or(write_token_);
    if (!t.empty()) req.headers["Authorization"] = "Bearer " + t;
    server::HttpResponse res;
    api_->Handle(req, res);
    return res;
  }

  state::Environment MakeEnv(const std::string& name, int64_t pr,
                             state::EnvState st = state::EnvState::kReady) {
    state::Environment e;
    e.name = name;
    e.project = "acme/shop";
    e.pr_number = pr;
    e.state = st;
    e.url = "https://" + name + ".preview.localhost";
    e.created_at = e.updated_at = clock_.Now();
    e.expires_at = clock_.Now() + std::chrono::hours(72);
    auto stored = store_->CreateEnvironment(e);
    EXPECT_TRUE(stored.ok()) << stored.status();
    return *stored;
  }

  void SetState(const std::string& name, state::EnvState st) {
    auto e = **store_->GetEnvironment(name);
    e.state = st;
    ASSERT_TRUE(store_->UpdateEnvironment(e).ok());
  }

  std::string dir_;
  FakeClock clock_;
  SeededRandom random_{42};
  MetricsRegistry metrics_;
  providers::ProviderRegistry providers_;
  std::unique_ptr<state::Store> store_;
  std::unique_ptr<webhook::WebhookIntake> intake_;
  std::unique_ptr<ApiServer> api_;
  std::string write_token_;
  std::string read_token_;
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

TEST_F(ApiTest, GetCarriesTheStateHistory) {
  MakeEnv("shop-a-b-3", 3, state::EnvState::kPending);
  SetState("shop-a-b-3", state::EnvState::kProvisioning);
  auto res = Call("GET", "/api/v1/environments/shop-a-b-3");
  ASSERT_EQ(res.status, 200);
  auto events = json::parse(res.body)["events"];
  ASSERT_EQ(events.size(), 2u) << res.body;
  EXPECT_TRUE(events[0]["from_state"].is_null());
  EXPECT_EQ(events[0]["to_state"], "pending");
  EXPECT_EQ(events[1]["from_state"], "pending");
  EXPECT_EQ(events[1]["to_state"], "provisioning");
  EXPECT_TRUE(events[1]["id"].is_number_integer());
  EXPECT_EQ(events[1]["at"], "2026-01-01T00:00:00.000Z");
}

TEST_F(ApiTest, UnknownEnvironmentIs404Json) {
  auto res = Call("GET", "/api/v1/environments/nope");
  EXPECT_EQ(res.status, 404);
  EXPECT_EQ(json::parse(res.body)["error"]["code"], "not_found");
  EXPECT_EQ(Call("DELETE", "/api/v1/environments/nope").status, 404);
  EXPECT_EQ(Call("POST", "/api/v1/environments/nope/extend", {}, R"({"by":"1h"})").status, 404);
  EXPECT_EQ(Call("GET", "/api/v1/environments/nope/logs").status, 404);
  EXPECT_EQ(json::parse(Call("GET", "/api/v1/nothing").body)["error"]["code"], "not_found");
}

TEST_F(ApiTest, ApiNeedsAKnownUnrevokedToken) {
  auto missing = Call("GET", "/api/v1/environments", {}, "", "");
  EXPECT_EQ(missing.status, 401);
  EXPECT_EQ(json::parse(missing.body)["error"]["code"], "unauthenticated");
  EXPECT_THAT(missing.headers["WWW-Authenticate"], HasSubstr("Bearer"));

  auto unknown = Call("GET", "/api/v1/environments", {}, "", "eph_not-a-token");
  EXPECT_EQ(unknown.status, 401);
  EXPECT_THAT(json::parse(unknown.body)["error"]["message"].get<std::string>(),
              HasSubstr("unknown or revoked"));

  server::HttpRequest basic;
  basic.method = "GET";
  basic.path = "/api/v1/environments";
  basic.headers["Authorization"] = "Basic " + write_token_;
  server::HttpResponse res;
  api_->Handle(basic, res);
  EXPECT_EQ(res.status, 401);

  // Every API path, even unknown ones and the document, is behind the token.
  EXPECT_EQ(Call("GET", "/api/v1/openapi.json", {}, "", "").status, 401);
  EXPECT_EQ(Call("GET", "/api/v1/events", {}, "", "").status, 401);
  EXPECT_EQ(Call("GET", "/api/v1/nothing", {}, "", "").status, 401);

  ASSERT_TRUE(store_->RevokeToken("writer", clock_.Now()).ok());
  EXPECT_EQ(Call("GET", "/api/v1/environments").status, 401);
}

TEST_F(ApiTest, ReadTokensMayOnlyRead) {
  MakeEnv("shop-a-b-1", 1);
  EXPECT_EQ(Call("GET", "/api/v1/environments", {}, "", read_token_).status, 200);
  EXPECT_EQ(Call("GET", "/api/v1/environments/shop-a-b-1", {}, "", read_token_).status, 200);
  auto del = Call("DELETE", "/api/v1/environments/shop-a-b-1", {}, "", read_token_);
  EXPECT_EQ(del.status, 403);
  EXPECT_EQ(json::parse(del.body)["error"]["code"], "permission_denied");
  EXPECT_EQ(
      Call("POST", "/api/v1/environments/shop-a-b-1/extend", {}, R"({"by":"1h"})", read_token_)
          .status,
      403);
  EXPECT_EQ(
      Call("POST", "/api/v1/environments", {}, R"({"project":"a/b","pr":1})", read_token_).status,
      403);
  EXPECT_EQ((**store_->GetEnvironment("shop-a-b-1")).state, state::EnvState::kReady);
}

TEST_F(ApiTest, HealthMetricsAndWebhooksNeedNoToken) {
  EXPECT_EQ(Call("GET", "/healthz", {}, "", "").status, 200);
  EXPECT_EQ(Call("GET", "/readyz", {}, "", "").status, 200);
  auto m = Call("GET", "/metrics", {}, "", "");
  EXPECT_EQ(m.status, 200);
  EXPECT_THAT(m.body, HasSubstr("eph_http_request_duration_seconds"));
  // Refused for its signature, not for a missing token.
  auto hook = Call("POST", "/webhooks/github", {}, "{}", "");
  EXPECT_EQ(hook.status, 401);
  EXPECT_THAT(hook.body, HasSubstr("X-Hub-Signature-256"));
}

TEST_F(ApiTest, ReadinessFollowsTheReadyCheck) {
  Rebuild([](ApiOptions& o) {
    o.ready_check = [] { return absl::UnavailableError("workers stopped"); };
  });
  auto res = Call("GET", "/readyz", {}, "", "");
  EXPECT_EQ(res.status, 503);
  EXPECT_THAT(res.body, HasSubstr("workers stopped"));
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

TEST_F(ApiTest, CreateForAPullRequestRecordsAPendingEnvironmentAndQueuesIt) {
  int woken = 0;
  Rebuild([&](ApiOptions& o) {
    o.on_enqueued = [&] { ++woken; };
    o.lifecycle.base_domain = "pr.example.com";
  });
  auto res = Call("POST", "/api/v1/environments", {}, R"({"project":"acme/shop","pr":7})");
  ASSERT_EQ(res.status, 201) << res.body;
  auto env = json::parse(res.body);
  const std::string name = env["name"];
  EXPECT_THAT(name, ::testing::MatchesRegex("shop-[a-z]+-[a-z]+-7-[a-z2-7]{10}"));
  EXPECT_EQ(env["state"], "pending");
  EXPECT_EQ(env["project"], "acme/shop");
  EXPECT_EQ(env["pr"], 7);
  EXPECT_EQ(env["url"], "https://" + name + ".pr.example.com");
  EXPECT_EQ(env["expires_at"], "2026-01-04T00:00:00.000Z");
  EXPECT_EQ(res.headers["Location"], "/api/v1/environments/" + name);
  EXPECT_EQ(*store_->QueueDepth(), 1);
  EXPECT_EQ(woken, 1);
  ASSERT_TRUE((*store_->GetEnvironment(name)).has_value());

  // One live environment per pull request.
  auto again = Call("POST", "/api/v1/environments", {}, R"({"project":"acme/shop","pr":7})");
  EXPECT_EQ(again.status, 409);
  EXPECT_THAT(json::parse(again.body)["error"]["message"].get<std::string>(), HasSubstr(name));
}

TEST_F(ApiTest, CreateWithANameAndBadBodiesAreRefused) {
  auto float_pr = Call("POST", "/api/v1/environments", {}, R"({"project":"acme/shop","pr":8.0})");
  ASSERT_EQ(float_pr.status, 201) << float_pr.body;
  EXPECT_EQ(json::parse(float_pr.body)["pr"], 8);
  EXPECT_EQ(Call("GET", "/api/v1/environments", {{"all", "maybe"}}).status, 400);
  auto named = Call("POST", "/api/v1/environments", {}, R"({"project":"acme/shop","name":"demo"})");
  ASSERT_EQ(named.status, 201) << named.body;
  EXPECT_EQ(json::parse(named.body)["pr"], 0);
  EXPECT_EQ(
      Call("POST", "/api/v1/environments", {}, R"({"project":"acme/shop","name":"demo"})").status,
      409);
  for (const char* bad :
       {"", "[]", "not json", R"({"pr":1})", R"({"project":"noslash","pr":1})",
        R"({"project":"a/b"})", R"({"project":"a/b","pr":0})", R"({"project":"a/b","pr":"7"})",
        R"({"project":"a/b","pr":7.5})", R"({"project":"a/b","pr":99999999999999999999})",
        R"({"project":"a/b","name":"Not_A_Label"})", R"({"project":"a/b","pr":1,"extra":true})",
        R"({"project":"a/b","name":"n","pr":null})", R"({"project":"a/b","pr":1,"name":null})"}) {
    auto res = Call("POST", "/api/v1/environments", {}, bad);
    EXPECT_EQ(res.status, 400) << bad;
    EXPECT_EQ(json::parse(res.body)["error"]["code"], "invalid_argument") << bad;
  }
}

TEST_F(ApiTest, LongStringsAreRefusedWithAShortMessage) {
  // 30,000 characters crashed ephd: a backtracking pattern ran out of stack.
  for (size_t length : {30'000u, 1'000'000u}) {
    const json body = {{"project", "acme/" + std::string(length, 'a')}, {"pr", 1}};
    auto res = Call("POST", "/api/v1/environments", {}, body.dump());
    EXPECT_EQ(res.status, 400) << length;
    EXPECT_THAT(res.body, HasSubstr("owner/repo"));
    EXPECT_LT(res.body.size(), 400u);
  }
  for (const std::string& project :
       {std::string(40, 'o') + "/shop", "acme/" + std::string(101, 'r'), std::string("a/b/c")}) {
    EXPECT_EQ(Call("POST", "/api/v1/environments", {}, json{{"project", project}, {"pr", 1}}.dump())
                  .status,
              400)
        << project;
  }
  auto limits =
      Call("POST", "/api/v1/environments", {},
           json{{"project", std::string(39, 'o') + "/" + std::string(100, 'r')}, {"pr", 1}}.dump());
  EXPECT_EQ(limits.status, 201) << limits.body;
  auto long_name = Call("POST", "/api/v1/environments", {},
                        json{{"project", "acme/shop"}, {"name", std::string(100'000, 'a')}}.dump());
  EXPECT_EQ(long_name.status, 400);
  auto long_key =
      Call("POST", "/api/v1/environments", {},
           json{{"project", "acme/shop"}, {"pr", 2}, {std::string(100'000, 'k'), 1}}.dump());
  EXPECT_EQ(long_key.status, 400);
  EXPECT_LT(long_key.body.size(), 400u);
  EXPECT_EQ(Call("GET", "/api/v1/environments", {{"project", std::string(100'000, 'p')}}).status,
            400);
  auto missing = Call("GET", "/api/v1/environments/" + std::string(100'000, 'n'));
  EXPECT_EQ(missing.status, 404);
  EXPECT_LT(missing.body.size(), 400u);

  MakeEnv("shop-a-b-1", 1);
  auto long_by = Call("POST", "/api/v1/environments/shop-a-b-1/extend", {},
                      json{{"by", std::string(100'000, '1') + "h"}}.dump());
  EXPECT_EQ(long_by.status, 400);
  EXPECT_LT(long_by.body.size(), 400u);
}

TEST_F(ApiTest, LogQueryParametersAreChecked) {
  MakeEnv("shop-a-b-1", 1);
  auto fake = std::make_unique<providers::FakeProvider>("fake");
  ASSERT_TRUE(providers_.Add(std::move(fake)).ok());
  auto e = **store_->GetEnvironment("shop-a-b-1");
  e.provider = "fake";
  ASSERT_TRUE(store_->UpdateEnvironment(e).ok());
  const std::string path = "/api/v1/environments/shop-a-b-1/logs";
  for (const char* tail : {"x", "-1", "1e3", " 5", "+5", "100001", "99999999999999999999"}) {
    auto res = Call("GET", path, {{"tail", tail}});
    EXPECT_EQ(res.status, 400) << tail;
    EXPECT_THAT(res.body, HasSubstr("tail must be a number")) << tail;
  }
  EXPECT_EQ(Call("GET", path, {{"component", std::string(254, 'c')}}).status, 400);
  EXPECT_EQ(Call("GET", path, {{"tail", "100000"}}).status, 200);
  EXPECT_EQ(Call("GET", path, {{"tail", "0"}}).status, 200);
  EXPECT_EQ(
      Call("GET", "/api/v1/events", {}, "", {}, {{"Last-Event-ID", "99999999999999999999"}}).status,
      400);
  EXPECT_EQ(Call("GET", "/api/v1/events", {}, "", {}, {{"Last-Event-ID", "+1"}}).status, 400);
}

TEST_F(ApiTest, ExtendMovesTheExpiryFromTheLaterOfNowAndTheOldExpiry) {
  MakeEnv("shop-a-b-1", 1);  // expires 2026-01-04T00:00Z
  auto res = Call("POST", "/api/v1/environments/shop-a-b-1/extend", {}, R"({"by":"24h"})");
  ASSERT_EQ(res.status, 200) << res.body;
  EXPECT_EQ(json::parse(res.body)["expires_at"], "2026-01-05T00:00:00.000Z");

  // Already expired: counted from now.
  clock_.Advance(std::chrono::hours(24 * 10));
  res = Call("POST", "/api/v1/environments/shop-a-b-1/extend", {}, R"({"by":"1h30m"})");
  ASSERT_EQ(res.status, 200) << res.body;
  EXPECT_EQ(json::parse(res.body)["expires_at"], "2026-01-11T01:30:00.000Z");

  for (const char* bad : {R"({"by":"soon"})", R"({"by":"-1h"})", R"({"by":24})", R"({})",
                          R"({"by":"1h","until":"x"})", "x"}) {
    auto r = Call("POST", "/api/v1/environments/shop-a-b-1/extend", {}, bad);
    EXPECT_EQ(r.status, 400) << bad;
    EXPECT_EQ(json::parse(r.body)["error"]["code"], "invalid_argument");
  }

  // The longest value the document's pattern allows is accepted (found by schemathesis).
  res = Call("POST", "/api/v1/environments/shop-a-b-1/extend", {},
             json{{"by", "9999.999µs9999.999µs9999.999µs9999.999µs"}}.dump());
  EXPECT_EQ(res.status, 200) << res.body;
  res = Call("POST", "/api/v1/environments/shop-a-b-1/extend", {},
             R"({"by":"86.030ns6001.084ms0664.3ns23.827m"})");
  EXPECT_EQ(res.status, 200) << res.body;

  SetState("shop-a-b-1", state::EnvState::kDestroyed);
  auto gone = Call("POST", "/api/v1/environments/shop-a-b-1/extend", {}, R"({"by":"1h"})");
  EXPECT_EQ(gone.status, 409);
  EXPECT_EQ(json::parse(gone.body)["error"]["code"], "failed_precondition");
}

// Issue 13: the API allowed an expiry up to 100 years ahead and gave a kept environment (no
// TTL) a new one, while `/eph extend` refused both. One policy now (controller/lifecycle.h).
TEST_F(ApiTest, ExtendFollowsTheOneExtendPolicy) {
  MakeEnv("shop-a-b-1", 1);  // expires in 72 h
  auto far = Call("POST", "/api/v1/environments/shop-a-b-1/extend", {}, R"({"by":"8760h"})");
  EXPECT_EQ(far.status, 409) << far.body;
  EXPECT_THAT(json::parse(far.body)["error"]["message"].get<std::string>(),
              HasSubstr("366 days"));
  // 72 h + 363 days: exactly 366 days ahead.
  auto year = Call("POST", "/api/v1/environments/shop-a-b-1/extend", {}, R"({"by":"8712h"})");
  EXPECT_EQ(year.status, 200) << year.body;

  state::Environment kept = **store_->GetEnvironment("shop-a-b-1");
  kept.expires_at.reset();
  ASSERT_TRUE(store_->UpdateEnvironment(kept).ok());
  auto res = Call("POST", "/api/v1/environments/shop-a-b-1/extend", {}, R"({"by":"1h"})");
  EXPECT_EQ(res.status, 409) << res.body;
  EXPECT_THAT(json::parse(res.body)["error"]["message"].get<std::string>(), HasSubstr("no TTL"));
  EXPECT_FALSE((*store_->GetEnvironment("shop-a-b-1"))->expires_at.has_value());
}

// Issue 13: the API wrote "https://<name>.<base_domain>" whatever ephd's public URL was, and
// its own "eph-" namespace; both come from the one lifecycle policy now.
TEST_F(ApiTest, CreateFollowsThePublicUrlTemplateAndTheNamespacePrefix) {
  Rebuild([&](ApiOptions& o) {
    o.lifecycle.url_template = "http://{host}:8081";
    o.lifecycle.namespace_prefix = "pv-";
  });
  auto res = Call("POST", "/api/v1/environments", {}, R"({"project":"acme/shop","name":"demo"})");
  ASSERT_EQ(res.status, 201) << res.body;
  EXPECT_EQ(json::parse(res.body)["url"], "http://demo.preview.localhost:8081");
  const state::Environment stored = **store_->GetEnvironment("demo");
  EXPECT_EQ(stored.namespace_name, "pv-demo");
  EXPECT_FALSE(stored.forced);
  auto pr = Call("POST", "/api/v1/environments", {}, R"({"project":"acme/shop","pr":9})");
  ASSERT_EQ(pr.status, 201) << pr.body;
  EXPECT_TRUE((*store_->GetEnvironment(json::parse(pr.body)["name"]))->forced);
}

TEST_F(ApiTest, LogsAreRefusedWithoutAProviderAndStreamedWithOne) {
  MakeEnv("shop-a-b-1", 1);
  auto refused = Call("GET", "/api/v1/environments/shop-a-b-1/logs");
  EXPECT_EQ(refused.status, 409);
  EXPECT_EQ(json::parse(refused.body)["error"]["code"], "failed_precondition");
  EXPECT_FALSE(refused.stream);

  auto fake = std::make_unique<providers::FakeProvider>("fake");
  providers::FakeProvider* provider = fake.get();
  ASSERT_TRUE(providers_.Add(std::move(fake)).ok());
  providers::ApplyRequest apply;
  apply.environment = "shop-a-b-1";
  ASSERT_TRUE(provider->Apply(apply).ok());
  provider->SetLogs("shop-a-b-1",
                    {{"web", clock_.Now(), "GET / 200"}, {"api", clock_.Now(), "connected"}});
  auto e = **store_->GetEnvironment("shop-a-b-1");
  e.provider = "fake";
  ASSERT_TRUE(store_->UpdateEnvironment(e).ok());

  auto res = Call("GET", "/api/v1/environments/shop-a-b-1/logs", {{"component", "api"}});
  ASSERT_EQ(res.status, 200) << res.body;
  EXPECT_THAT(res.headers["Content-Type"], HasSubstr("text/plain"));
  ASSERT_TRUE(res.stream);
  RecordingStreamWriter out([](const std::string&) { return false; });
  res.stream(out);
  EXPECT_EQ(out.body(), "2026-01-01T00:00:00.000Z api connected\n");
}

TEST_F(ApiTest, EventsReplayAfterLastEventIdAsEnvironmentJson) {
  MakeEnv("shop-a-b-1", 1, state::EnvState::kPending);
  SetState("shop-a-b-1", state::EnvState::kProvisioning);
  MakeEnv("shop-c-d-2", 2, state::EnvState::kPending);
  auto all = *store_->ListEvents(0, 100);
  ASSERT_EQ(all.size(), 3u);

  auto res = Call("GET", "/api/v1/events", {}, "", {}, {{"Last-Event-ID", "0"}});
  ASSERT_EQ(res.status, 200);
  EXPECT_THAT(res.headers["Content-Type"], HasSubstr("text/event-stream"));
  ASSERT_TRUE(res.stream);
  RecordingStreamWriter out([](const std::string& body) { return Count(body, "\n\n") >= 4; });
  res.stream(out);  // ends once the writer says the client has gone
  const std::string body = out.body();
  EXPECT_EQ(EventIds(body), (std::vector<int64_t>{all[0].id, all[1].id, all[2].id}));
  EXPECT_THAT(body, HasSubstr("event: environment\ndata: {"));
  const size_t data = body.rfind("data: ");
  auto env = json::parse(body.substr(data + 6, body.find('\n', data) - data - 6));
  EXPECT_EQ(env["name"], "shop-c-d-2");
  EXPECT_EQ(env["state"], "pending");

  // Resuming after the first event (query form) sends only the later ones.
  auto resumed = Call("GET", "/api/v1/events", {{"last_event_id", std::to_string(all[0].id)}});
  RecordingStreamWriter rest([](const std::string& b) { return Count(b, "\n\n") >= 3; });
  resumed.stream(rest);
  EXPECT_EQ(EventIds(rest.body()), (std::vector<int64_t>{all[1].id, all[2].id}));

  EXPECT_EQ(Call("GET", "/api/v1/events", {}, "", {}, {{"Last-Event-ID", "x"}}).status, 400);
}

TEST_F(ApiTest, EventsWithoutLastEventIdSendOnlyNewChangesAndKeepAlive) {
  MakeEnv("shop-old-1", 1);
  auto res = Call("GET", "/api/v1/events");
  ASSERT_TRUE(res.stream);
  RecordingStreamWriter out([](const std::string& body) {
    return body.find("shop-new-2") != std::string::npos &&
           body.find(": keepalive") != std::string::npos;
  });
  std::thread streamer([&] { res.stream(out); });
  // The stream is open: a change made now arrives on it.
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (out.body().find(": connected") == std::string::npos &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(1ms);
  }
  MakeEnv("shop-new-2", 2);
  while (!out.Cancelled() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(1ms);
  }
  out.Cancel();
  streamer.join();
  EXPECT_THAT(out.body(), HasSubstr("shop-new-2"));
  EXPECT_THAT(out.body(), HasSubstr(": keepalive\n\n"));
  EXPECT_THAT(out.body(), ::testing::Not(HasSubstr("shop-old-1")));
}

// A change made by this process reaches an open stream at once, not at the next read of the
// store: with a one-minute poll, only the store's change signal can deliver it within the wait.
TEST_F(ApiTest, EventsArePushedWithoutWaitingForThePoll) {
  Rebuild([](ApiOptions& o) {
    o.events_poll = 60s;
    o.events_keepalive = 60s;
  });
  auto res = Call("GET", "/api/v1/events");
  ASSERT_TRUE(res.stream);
  RecordingStreamWriter out(
      [](const std::string& body) { return body.find("shop-pushed-3") != std::string::npos; });
  std::thread streamer([&] { res.stream(out); });
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (out.body().find(": connected") == std::string::npos &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(1ms);
  }
  MakeEnv("shop-pushed-3", 3);
  while (!out.Cancelled() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(1ms);
  }
  const bool arrived = out.Cancelled();
  out.Cancel();
  streamer.join();  // the stream notices the cancel within one wait: the change wakes it too
  EXPECT_TRUE(arrived) << out.body();
  EXPECT_THAT(out.body(), HasSubstr("shop-pushed-3"));
}

TEST_F(ApiTest, ServesTheOpenApiDocument) {
  auto res = Call("GET", "/api/v1/openapi.json", {}, "", read_token_);
  ASSERT_EQ(res.status, 200);
  auto doc = json::parse(res.body);
  EXPECT_EQ(doc["openapi"], "3.1.0");
  for (const char* path :
       {"/api/v1/environments", "/api/v1/environments/{name}", "/api/v1/environments/{name}/extend",
        "/api/v1/environments/{name}/logs", "/api/v1/events", "/healthz", "/readyz", "/metrics"}) {
    EXPECT_TRUE(doc["paths"].contains(path)) << path;
  }
}

class StaticFilesTest : public ApiTest {
 protected:
  void SetUp() override {
    ApiTest::SetUp();
    web_ = dir_ + "/web";
    std::filesystem::create_directories(web_ + "/assets");
    std::ofstream(web_ + "/index.html") << "<!doctype html><title>eph</title>";
    std::ofstream(web_ + "/assets/app-1.js") << "console.log(1)";
    std::ofstream(web_ + "/assets/app-1.css") << "body{}";
    std::ofstream(web_ + "/favicon.svg") << "<svg/>";
    std::ofstream(dir_ + "/secret.txt") << "do not serve";
    std::filesystem::create_symlink(dir_ + "/secret.txt", web_ + "/leak.txt");
    Rebuild([&](ApiOptions& o) {
      o.dashboard = std::make_shared<dashboard::DirectoryDashboard>(web_);
    });
  }
  std::string web_;
};

TEST_F(StaticFilesTest, ServesTheDashboardWithContentTypes) {
  auto index = Call("GET", "/", {}, "", "");
  EXPECT_EQ(index.status, 200);
  EXPECT_EQ(index.body, "<!doctype html><title>eph</title>");
  EXPECT_EQ(index.headers["Content-Type"], "text/html; charset=utf-8");
  auto js = Call("GET", "/assets/app-1.js", {}, "", "");
  EXPECT_EQ(js.status, 200);
  EXPECT_EQ(js.headers["Content-Type"], "text/javascript; charset=utf-8");
  EXPECT_EQ(Call("GET", "/assets/app-1.css", {}, "", "").headers["Content-Type"],
            "text/css; charset=utf-8");
  EXPECT_EQ(Call("GET", "/favicon.svg", {}, "", "").headers["Content-Type"], "image/svg+xml");
  // No framing by other sites and nothing but the dashboard's own files may run.
  EXPECT_THAT(index.headers["Content-Security-Policy"], HasSubstr("default-src 'self'"));
  EXPECT_THAT(index.headers["Content-Security-Policy"], HasSubstr("frame-ancestors 'none'"));
  EXPECT_EQ(index.headers["X-Frame-Options"], "DENY");
  EXPECT_EQ(index.headers["Referrer-Policy"], "no-referrer");
}

TEST_F(StaticFilesTest, RefusesToLeaveTheDirectory) {
  for (const char* path : {"/../secret.txt", "/assets/../../secret.txt", "/./index.html",
                           "/leak.txt", "/..\\secret.txt"}) {
    auto res = Call("GET", path, {}, "", "");
    EXPECT_EQ(res.status, 404) << path;
    EXPECT_THAT(res.body, ::testing::Not(HasSubstr("do not serve"))) << path;
  }
  auto missing = Call("GET", "/nope.js", {}, "", "");
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(missing.body, "404 not found\n");
  // Under /api a miss is a JSON error, never the dashboard's index.html.
  auto api_missing = Call("GET", "/api/v1/nope");
  EXPECT_EQ(api_missing.status, 404);
  EXPECT_EQ(json::parse(api_missing.body)["error"]["code"], "not_found");
}

TEST_F(StaticFilesTest, ClientRoutesGetIndexButServerRoutesKeepTheirOwnAnswers) {
  auto route = Call("GET", "/environments/foo", {}, "", "", {{"Accept", "text/html"}});
  EXPECT_EQ(route.status, 200);
  EXPECT_THAT(route.body, HasSubstr("<title>eph</title>"));
  // The server's own paths answer as before, with or without a token: never index.html.
  for (const char* path : {"/healthz", "/readyz", "/metrics", "/api/v1/environments",
                           "/api/v1/nope", "/api", "/webhooks/github"}) {
    auto res = Call("GET", path, {}, "", "");
    EXPECT_THAT(res.body, Not(HasSubstr("<title>eph</title>"))) << path;
    EXPECT_THAT(res.headers["Content-Type"], Not(HasSubstr("text/html"))) << path;
  }
  EXPECT_EQ(Call("GET", "/api/v1/environments", {}, "", "").status, 401);
  EXPECT_EQ(json::parse(Call("GET", "/healthz", {}, "", "").body)["status"], "ok");
  // Only GET and HEAD reach the dashboard.
  EXPECT_NE(Call("POST", "/environments/foo", {}, "", "").status, 200);
}

TEST_F(ApiTest, WithoutADashboardTheRootSaysSo) {
  auto root = Call("GET", "/", {}, "", "");
  EXPECT_EQ(root.status, 404);
  EXPECT_EQ(root.headers["Content-Type"], "text/html; charset=utf-8");
  EXPECT_THAT(root.body, HasSubstr("no dashboard"));
  EXPECT_THAT(root.body, HasSubstr("npm ci"));
}

}  // namespace
}  // namespace eph::api
