// libFuzzer target for ephd's HTTP request path: the canonical request target
// (server::ParseRequestTarget, the function the HTTP server refuses non-canonical targets with),
// then ApiServer::Handle (auth check, router, the JSON bodies of every endpoint, webhooks) against
// a real SQLite store.
//
// An input reads like the request it stands for, so seeds are written by hand:
//
//   POST /api/v1/environments?x=1
//   Authorization: Bearer $WRITE
//
//   {"project":"acme/shop","pr":7}
//
// The first line is the method and the raw request target; header lines follow up to an empty
// line; the rest is the body. In header values "$WRITE" and "$READ" stand for the secrets of a
// write and a read token stored once at start, and "$SIGN" for the body's valid GitHub signature,
// so the fuzzer reaches the handlers behind the auth check and the webhook intake behind the
// signature check; an input without them is an attacker without credentials.
//
// Besides crashes and sanitizer findings, every input checks what a user relies on:
//  - an /api request that carries no known token is answered 401, and one with only a read token
//    that is not a GET or HEAD is answered 401 or 403;
//  - nothing changes in the store (environments, deliveries, queued work) unless the request
//    carried the write token or a valid webhook signature;
//  - no answer is 500 (an unexpected failure), and every JSON answer parses as JSON.
// A broken invariant aborts, which libFuzzer (and the corpus test) reports as a crash.
//
// Streamed bodies (events, logs) run with a writer that takes a few chunks and then reports the
// client gone, so they cannot block the fuzzer.
//
// The store starts afresh every kInputsPerStore inputs so it stays small and the fuzzer fast.
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "pkg/api/api.h"
#include "pkg/api/tokens.h"
#include "pkg/base/clock.h"
#include "pkg/base/metrics.h"
#include "pkg/base/random.h"
#include "pkg/providers/fake_provider.h"
#include "pkg/server/http.h"
#include "pkg/state/store.h"
#include "pkg/webhook/intake.h"
#include "pkg/webhook/signature.h"

namespace eph::api {
namespace {

using namespace std::chrono_literals;

constexpr int kInputsPerStore = 2000;
constexpr size_t kMaxHeaders = 32;
constexpr char kWebhookSecret[] = "fuzz-webhook-secret";
// Fixed, so that an input found by one run means the same thing in the next.
constexpr char kWriteSecret[] =
    "eph_0000000000000000000000000000000000000000000000000000000000000001";
constexpr char kReadSecret[] =
    "eph_0000000000000000000000000000000000000000000000000000000000000002";

[[noreturn]] void Fail(const std::string& what, const server::HttpRequest& req,
                       const server::HttpResponse& res) {
  std::fprintf(stderr, "api_request_fuzz: %s\n  %s %s (path %s)\n  -> %d %s\n", what.c_str(),
               req.method.c_str(), req.target.c_str(), req.path.c_str(), res.status,
               res.body.substr(0, 500).c_str());
  std::abort();
}

// Takes the first few chunks, then behaves as a client that went away.
class ShortLivedStreamWriter final : public server::StreamWriter {
 public:
  bool Write(std::string_view chunk) override {
    if (writes_ >= 4) return false;
    ++writes_;
    bytes_ += chunk.size();
    return true;
  }
  // Not cancelled on the first look, so a producer runs its loop body once.
  bool Cancelled() const override { return ++looks_ > 1 || writes_ >= 4; }

 private:
  int writes_ = 0;
  size_t bytes_ = 0;
  mutable int looks_ = 0;
};

// One store, its API and the environments the seeds refer to.
class Fixture {
 public:
  Fixture() {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern =
        std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/eph-api-fuzz-XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr) Die("cannot create a temporary directory");
    dir_ = pattern;
    auto store = state::OpenStore("sqlite:" + dir_ + "/eph.db");
    if (!store.ok()) Die("cannot open the store: " + std::string(store.status().message()));
    store_ = std::move(*store);
    intake_ = std::make_unique<webhook::WebhookIntake>(*store_, clock_, metrics_, kWebhookSecret);
    AddToken("fuzz-writer", state::TokenScope::kWrite, kWriteSecret);
    AddToken("fuzz-reader", state::TokenScope::kRead, kReadSecret);

    auto fake = std::make_unique<providers::FakeProvider>("fake");
    providers::FakeProvider* provider = fake.get();
    if (!providers_.Add(std::move(fake)).ok()) Die("cannot add the fake provider");
    // Names the seed corpus uses: a ready environment with logs, one whose provider is not
    // enabled here, one being destroyed and one destroyed.
    AddEnvironment("shop-ready-1", 1, state::EnvState::kReady, "fake");
    AddEnvironment("shop-other-2", 2, state::EnvState::kReady, "kubernetes");
    AddEnvironment("shop-going-3", 3, state::EnvState::kDestroying, "fake");
    AddEnvironment("shop-gone-4", 4, state::EnvState::kDestroyed, "fake");
    providers::ApplyRequest apply;
    apply.environment = "shop-ready-1";
    apply.namespace_name = "eph-shop-ready-1";
    if (!provider->Apply(apply).ok()) Die("cannot apply the seeded environment");
    provider->SetLogs("shop-ready-1", {{"app", clock_.Now(), "listening on :8080"},
                                       {"db", clock_.Now(), "ready to accept connections"}});

    ApiOptions options;
    options.random = &random_;
    options.providers = &providers_;
    options.events_poll = 1ms;
    options.events_keepalive = 1ms;
    api_ = std::make_unique<ApiServer>(*store_, clock_, metrics_, *intake_, options);
  }

  ~Fixture() {
    api_.reset();
    intake_.reset();
    store_.reset();
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  ApiServer& api() { return *api_; }
  state::Store& store() { return *store_; }

 private:
  [[noreturn]] static void Die(const std::string& why) {
    std::fprintf(stderr, "api_request_fuzz: %s\n", why.c_str());
    std::abort();
  }

  void AddToken(const std::string& name, state::TokenScope scope, const char* secret) {
    state::ApiToken t;
    t.name = name;
    t.scope = scope;
    t.hash = HashToken(secret);
    t.created_at = clock_.Now();
    if (!store_->CreateToken(t).ok()) Die("cannot create token " + name);
  }

  void AddEnvironment(const std::string& name, int64_t pr, state::EnvState st,
                      const std::string& provider) {
    state::Environment e;
    e.name = name;
    e.project = "acme/shop";
    e.pr_number = pr;
    e.state = st;
    e.provider = provider;
    e.url = "https://" + name + ".preview.localhost";
    e.created_at = e.updated_at = clock_.Now();
    e.expires_at = clock_.Now() + std::chrono::hours(72);
    if (!store_->CreateEnvironment(e).ok()) Die("cannot create environment " + name);
  }

  std::string dir_;
  FakeClock clock_;
  SeededRandom random_{42};
  MetricsRegistry metrics_;
  providers::ProviderRegistry providers_;
  std::unique_ptr<state::Store> store_;
  std::unique_ptr<webhook::WebhookIntake> intake_;
  std::unique_ptr<ApiServer> api_;
};

std::unique_ptr<Fixture>& CurrentFixture() {
  static std::unique_ptr<Fixture> fixture;
  return fixture;
}

Fixture& FixtureForNextInput() {
  static int inputs = 0;
  auto& fixture = CurrentFixture();
  if (!fixture || inputs++ % kInputsPerStore == 0) {
    fixture.reset();
    fixture = std::make_unique<Fixture>();
  }
  return *fixture;
}

std::string_view NextLine(std::string_view& in) {
  const size_t end = in.find('\n');
  std::string_view line = in.substr(0, end);
  in = end == std::string_view::npos ? std::string_view() : in.substr(end + 1);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return line;
}

void ReplaceAll(std::string& s, std::string_view from, std::string_view to) {
  for (size_t pos = s.find(from); pos != std::string::npos; pos = s.find(from, pos + to.size())) {
    s.replace(pos, from.size(), to);
  }
}

struct StoreCounts {
  uint64_t environment_changes = 0;
  int64_t deliveries = 0;
  int64_t queued = 0;
  bool operator==(const StoreCounts&) const = default;
};

StoreCounts Count(state::Store& store) {
  StoreCounts c;
  c.environment_changes = store.LocalChangeCount();
  auto deliveries = store.CountDeliveries();
  auto queued = store.QueueDepth();
  c.deliveries = deliveries.ok() ? *deliveries : -1;
  c.queued = queued.ok() ? *queued : -1;
  return c;
}

}  // namespace
}  // namespace eph::api

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // Handlers log refusals; at tens of thousands of requests a second that is only noise.
  spdlog::set_level(spdlog::level::off);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace eph;
  using namespace eph::api;
  std::string_view in(reinterpret_cast<const char*>(data), size);

  server::HttpRequest req;
  const std::string_view request_line = NextLine(in);
  const size_t space = request_line.find(' ');
  req.method = std::string(request_line.substr(0, space));
  if (space != std::string_view::npos) {
    std::string_view target = request_line.substr(space + 1);
    target = target.substr(0, target.find(' '));  // an HTTP version after the target is ignored
    req.target = std::string(target);
  }
  // Exactly what the HTTP server does: a target that is not canonical never reaches a handler.
  auto target = server::ParseRequestTarget(req.target);
  if (!target.ok()) return 0;
  req.path = std::move(target->path);
  req.query = std::move(target->query);

  std::vector<std::pair<std::string, std::string>> headers;
  while (!in.empty() && headers.size() < kMaxHeaders) {
    const std::string_view line = NextLine(in);
    if (line.empty()) break;
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    headers.emplace_back(std::string(line.substr(0, colon)), std::string(value));
  }
  req.body = std::string(in);
  const std::string signature = webhook::SignGitHub(kWebhookSecret, req.body);
  for (auto& [name, value] : headers) {
    ReplaceAll(value, "$WRITE", kWriteSecret);
    ReplaceAll(value, "$READ", kReadSecret);
    ReplaceAll(value, "$SIGN", signature);
    // As the server builds its header map: a repeated header keeps its last value.
    req.headers[name] = value;
  }
  // What the request could possibly prove, judged generously from everything it sent (a secret
  // spelt out literally counts as well as one substituted).
  bool sent_write = false, sent_read = false, signed_body = false;
  for (const auto& [name, value] : req.headers) {
    sent_write |= value.find(kWriteSecret) != std::string::npos;
    sent_read |= value.find(kReadSecret) != std::string::npos;
    signed_body |= value.find(signature) != std::string::npos;
  }
  req.remote_address = "127.0.0.1";

  Fixture& fixture = FixtureForNextInput();
  const StoreCounts before = Count(fixture.store());
  server::HttpResponse res;
  fixture.api().Handle(req, res);
  if (res.stream) {
    ShortLivedStreamWriter writer;
    res.stream(writer);
  }

  if (res.status < 100 || res.status > 599) Fail("status out of range", req, res);
  if (res.status == 500) Fail("500: an unexpected failure", req, res);
  if (IsApiPath(req.path)) {
    if (!sent_write && !sent_read && res.status != 401) {
      Fail("an /api request without a token was not refused with 401", req, res);
    }
    if (!sent_write && req.method != "GET" && req.method != "HEAD" && res.status != 401 &&
        res.status != 403) {
      Fail("a write through /api without the write token was not refused", req, res);
    }
  }
  if (!sent_write && !signed_body && !(Count(fixture.store()) == before)) {
    Fail("the store changed without the write token or a valid signature", req, res);
  }
  auto content_type = res.headers.find("Content-Type");
  if (!res.stream && content_type != res.headers.end() &&
      content_type->second.rfind("application/json", 0) == 0 &&
      nlohmann::json::parse(res.body, nullptr, false).is_discarded()) {
    Fail("a JSON answer is not JSON", req, res);
  }
  return 0;
}
