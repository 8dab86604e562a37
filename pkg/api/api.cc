#include "pkg/api/api.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <condition_variable>
#include <mutex>
#include <stop_token>
#include <thread>

#include "absl/strings/str_cat.h"
#include "pkg/api/tokens.h"
#include "pkg/config/duration.h"
#include "pkg/names/names.h"
#include "pkg/server/errors.h"

namespace eph::api {

using nlohmann::json;
using server::HttpRequest;
using server::HttpResponse;

namespace {

json Timestamp(const std::optional<TimePoint>& t) {
  return t ? json(FormatRfc3339(*t)) : json(nullptr);
}

json EnvJson(const state::Environment& env) {
  return {{"name", env.name},
          {"project", env.project},
          {"pr", env.pr_number},
          {"state", std::string(state::EnvStateName(env.state))},
          {"url", env.url},
          {"reason", env.reason},
          {"provider", env.provider},
          {"head_sha", env.head_sha},
          {"created_at", FormatRfc3339(env.created_at)},
          {"updated_at", FormatRfc3339(env.updated_at)},
          {"expires_at", Timestamp(env.expires_at)},
          {"last_activity_at", Timestamp(env.last_activity_at)}};
}

json EventJson(const state::EnvEvent& e) {
  return {{"id", e.id},
          {"from_state", e.from_state.empty() ? json(nullptr) : json(e.from_state)},
          {"to_state", e.to_state},
          {"reason", e.reason},
          {"at", FormatRfc3339(e.at)}};
}

std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

constexpr double kMaxPullRequest = 2147483647;

bool IsWriteMethod(const std::string& method) { return method != "GET" && method != "HEAD"; }

// A JSON object body, or InvalidArgument saying what is wrong with it.
absl::StatusOr<json> ParseBody(const HttpRequest& req) {
  json body = json::parse(req.body, nullptr, false);
  if (body.is_discarded() || !body.is_object()) {
    return absl::InvalidArgumentError("the request body must be a JSON object");
  }
  return body;
}

// Limits on the strings the API reads. Every one is checked before anything else looks at the
// text, so no parser, pattern or store query ever sees more than this.
// The longest value docs/openapi.json allows: four "9999.999µs" parts, 11 bytes each (µ is two).
constexpr size_t kMaxDurationLength = 44;
constexpr size_t kMaxComponentLength = 253;  // a DNS subdomain, the longest Kubernetes name
constexpr int64_t kMaxTailLines = 100000;
constexpr size_t kMaxEventIdDigits = 18;  // below INT64_MAX, so it never overflows

// Input named in an error message: short, so a hostile megabyte is not echoed back.
std::string Shown(std::string_view text) {
  constexpr size_t kMaxShown = 64;
  if (text.size() <= kMaxShown) return std::string(text);
  return absl::StrCat(std::string(text.substr(0, kMaxShown)), "... (", text.size(), " characters)");
}

// A non-negative decimal number of at most `max_digits` digits, nothing else (no sign, no
// spaces): what atoll would take for anything.
std::optional<int64_t> ParseCount(std::string_view text, size_t max_digits) {
  if (text.empty() || text.size() > max_digits) return std::nullopt;
  int64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + (c - '0');
  }
  return value;
}

absl::Status ProjectError() {
  return absl::InvalidArgumentError(absl::StrCat(
      "\"project\" must be a repository as \"owner/repo\" (letters, digits, '_', '.' and '-'; "
      "owner at most ",
      names::kMaxOwnerLength, " characters, repo at most ", names::kMaxRepoLength, ")"));
}

// Names are DNS labels (names.h), so a longer one names no environment: refused before the
// store is asked, and not echoed whole.
absl::Status NoSuchEnvironment(const std::string& name) {
  return absl::NotFoundError("no environment named " + Shown(name));
}

bool ParseBool(const std::map<std::string, std::string>& query, const char* key) {
  auto it = query.find(key);
  return it != query.end() && (it->second == "true" || it->second == "1");
}

}  // namespace

std::string EnvironmentJson(const state::Environment& env) { return Dump(EnvJson(env)); }

ApiServer::ApiServer(state::Store& store, const Clock& clock, MetricsRegistry& metrics,
                     webhook::WebhookIntake& intake, ApiOptions options)
    : store_(store),
      clock_(clock),
      metrics_(metrics),
      intake_(intake),
      options_(std::move(options)),
      intents_(store, clock,
               options_.random != nullptr ? *options_.random : SecureRandom::Instance(),
               options_.lifecycle, options_.on_enqueued) {
  Routes();
}

void ApiServer::Routes() {
  router_.Add("GET", "/healthz", [](const HttpRequest&, HttpResponse& res, const PathParams&) {
    res.SetJson(200, R"({"status":"ok"})");
  });
  router_.Add("GET", "/readyz", [this](const HttpRequest&, HttpResponse& res, const PathParams&) {
    absl::Status s = store_.Ping();
    if (s.ok() && options_.ready_check) s = options_.ready_check();
    if (!s.ok()) {
      server::SetError(res, absl::UnavailableError("not ready: " + std::string(s.message())));
      return;
    }
    res.SetJson(200, R"({"status":"ready"})");
  });
  router_.Add("GET", "/metrics", [this](const HttpRequest&, HttpResponse& res, const PathParams&) {
    res.SetText(200, metrics_.RenderPrometheus(), "text/plain; version=0.0.4");
  });
  router_.Add("POST", "/webhooks/github",
              [this](const HttpRequest& req, HttpResponse& res, const PathParams&) {
                auto r = intake_.HandleGitHub(req.Header("X-GitHub-Event"),
                                              req.Header("X-GitHub-Delivery"),
                                              req.Header("X-Hub-Signature-256"), req.body);
                if (!r.status.ok()) {
                  server::SetError(res, r.status);
                } else {
                  res.SetJson(r.HttpStatus(), r.BodyJson());
                }
                // Nothing was stored: the sender (or an operator's redelivery) should try again
                // shortly. The store gives up within seconds, so this comes well before a
                // sender's own timeout, which it would not count as retryable.
                if (r.status.code() == absl::StatusCode::kUnavailable) {
                  res.headers["Retry-After"] = "5";
                }
              });
  router_.Add("GET", "/api/v1/openapi.json",
              [](const HttpRequest&, HttpResponse& res, const PathParams&) {
                res.SetJson(200, OpenApiDocument());
              });
  router_.Add("GET", "/api/v1/environments",
              [this](const HttpRequest& req, HttpResponse& res, const PathParams&) {
                ListEnvironments(req, res);
              });
  router_.Add("POST", "/api/v1/environments",
              [this](const HttpRequest& req, HttpResponse& res, const PathParams&) {
                CreateEnvironment(req, res);
              });
  router_.Add("GET", "/api/v1/environments/{name}",
              [this](const HttpRequest&, HttpResponse& res, const PathParams& p) {
                GetEnvironment(p.at("name"), res);
              });
  router_.Add("DELETE", "/api/v1/environments/{name}",
              [this](const HttpRequest&, HttpResponse& res, const PathParams& p) {
                DeleteEnvironment(p.at("name"), res);
              });
  router_.Add("POST", "/api/v1/environments/{name}/extend",
              [this](const HttpRequest& req, HttpResponse& res, const PathParams& p) {
                ExtendEnvironment(p.at("name"), req, res);
              });
  router_.Add("GET", "/api/v1/environments/{name}/logs",
              [this](const HttpRequest& req, HttpResponse& res, const PathParams& p) {
                Logs(p.at("name"), req, res);
              });
  router_.Add(
      "GET", "/api/v1/events",
      [this](const HttpRequest& req, HttpResponse& res, const PathParams&) { Events(req, res); });
}

absl::Status ApiServer::Authorize(const HttpRequest& req) {
  const std::string token = BearerToken(req.Header("Authorization"));
  if (token.empty()) {
    return absl::UnauthenticatedError(
        "an API token is required: send Authorization: Bearer <token> (ephd token create)");
  }
  auto found = store_.FindTokenByHash(HashToken(token));
  if (!found.ok()) return found.status();
  if (!found->has_value()) {
    return absl::UnauthenticatedError("the API token is unknown or revoked");
  }
  if ((*found)->scope != state::TokenScope::kWrite && IsWriteMethod(req.method)) {
    return absl::PermissionDeniedError("the API token \"" + (*found)->name +
                                       "\" is read-only; this needs a write token");
  }
  return absl::OkStatus();
}

bool IsApiPath(const std::string& path) { return path == "/api" || path.rfind("/api/", 0) == 0; }

bool ApiServer::Admit(const HttpRequest& head, HttpResponse& res) {
  if (IsApiPath(head.path)) return AuthorizeInto(head, res);
  if (head.path == "/webhooks/github" && head.method == "POST") {
    if (absl::Status refused = intake_.CheckGitHubHeaders(head.Header("X-Hub-Signature-256"));
        !refused.ok()) {
      server::SetError(res, refused);
      return false;
    }
  }
  return true;
}

bool ApiServer::AuthorizeInto(const HttpRequest& req, HttpResponse& res) {
  absl::Status s = Authorize(req);
  if (s.ok()) return true;
  server::SetError(res, s);
  if (s.code() == absl::StatusCode::kUnauthenticated) {
    res.headers["WWW-Authenticate"] = "Bearer realm=\"ephd\"";
  }
  return false;
}

void ApiServer::Handle(const HttpRequest& req, HttpResponse& res) {
  const auto start = std::chrono::steady_clock::now();
  const bool api = IsApiPath(req.path);
  const bool open = req.path == "/healthz" || req.path == "/readyz" || req.path == "/metrics" ||
                    req.path.rfind("/webhooks/", 0) == 0;
  if (api) {
    if (AuthorizeInto(req, res)) router_.Dispatch(req, res);
  } else if (!open && (req.method == "GET" || req.method == "HEAD")) {
    dashboard::ServeDashboard(options_.dashboard.get(), req, res);
  } else {
    router_.Dispatch(req, res);
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  metrics_
      .GetHistogram("eph_http_request_duration_seconds", "Time to handle an HTTP request",
                    {0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5},
                    "status=\"" + std::to_string(res.status / 100) + "xx\"")
      .Observe(seconds);
}

void ApiServer::ListEnvironments(const HttpRequest& req, HttpResponse& res) {
  state::EnvironmentFilter filter;
  if (auto it = req.query.find("project"); it != req.query.end()) {
    if (!names::IsRepository(it->second)) return server::SetError(res, ProjectError());
    filter.project = it->second;
  }
  if (auto it = req.query.find("all"); it != req.query.end()) {
    if (it->second != "true" && it->second != "false" && it->second != "1" && it->second != "0") {
      return server::SetError(res, absl::InvalidArgumentError("all must be true or false"));
    }
    filter.include_destroyed = it->second == "true" || it->second == "1";
  }
  auto envs = store_.ListEnvironments(filter);
  if (!envs.ok()) return server::SetError(res, envs.status());
  // Serialised one environment at a time: a JSON tree of 10,000 environments would cost far
  // more memory than the text it renders to.
  std::string body = R"({"items":[)";
  body.reserve(envs->size() * 400 + 16);
  for (size_t i = 0; i < envs->size(); ++i) {
    if (i > 0) body += ',';
    body += Dump(EnvJson((*envs)[i]));
  }
  body += "]}";
  res.SetJson(200, std::move(body));
}

void ApiServer::CreateEnvironment(const HttpRequest& req, HttpResponse& res) {
  auto body = ParseBody(req);
  if (!body.ok()) return server::SetError(res, body.status());
  auto project_it = body->find("project");
  if (project_it == body->end() || !project_it->is_string() ||
      !names::IsRepository(project_it->get_ref<const std::string&>())) {
    return server::SetError(res, ProjectError());
  }
  const std::string project = project_it->get<std::string>();
  int64_t pr = 0;
  if (auto it = body->find("pr"); it != body->end()) {
    // JSON has one number type: 7 and 7.0 are the same pull request.
    const bool integral =
        it->is_number_integer() ||
        (it->is_number_float() && std::isfinite(it->get<double>()) &&
         it->get<double>() == std::floor(it->get<double>()) && std::fabs(it->get<double>()) < 9e15);
    if (!integral || it->get<double>() < 1 || it->get<double>() > kMaxPullRequest) {
      return server::SetError(res, absl::InvalidArgumentError(
                                       "\"pr\" must be a pull request number (1 to 2147483647)"));
    }
    pr = it->is_number_integer() ? it->get<int64_t>() : static_cast<int64_t>(it->get<double>());
  }
  std::string name;
  if (auto it = body->find("name"); it != body->end()) {
    if (!it->is_string() || !names::IsDnsLabel(it->get<std::string>(), names::kMaxNameLength)) {
      return server::SetError(
          res, absl::InvalidArgumentError(
                   "\"name\" must be a DNS label: lowercase letters, digits and '-', at most " +
                   std::to_string(names::kMaxNameLength) + " characters"));
    }
    name = it->get<std::string>();
  }
  if (pr == 0 && name.empty()) {
    return server::SetError(
        res, absl::InvalidArgumentError("give \"pr\" (a pull request number) or \"name\""));
  }
  for (const auto& [key, value] : body->items()) {
    if (key != "project" && key != "pr" && key != "name") {
      return server::SetError(res,
                              absl::InvalidArgumentError("unknown field \"" + Shown(key) + "\""));
    }
  }
  absl::StatusOr<state::Environment> created =
      intents_.Create({.project = project, .pr = pr, .name = name});
  if (!created.ok()) return server::SetError(res, created.status());
  res.SetJson(201, EnvironmentJson(*created));
  res.headers["Location"] = "/api/v1/environments/" + created->name;
}

void ApiServer::GetEnvironment(const std::string& name, HttpResponse& res) {
  auto env = store_.GetEnvironment(name);
  if (!env.ok()) return server::SetError(res, env.status());
  if (!env->has_value()) {
    return server::SetError(res, NoSuchEnvironment(name));
  }
  auto events = store_.EventsFor(name);
  if (!events.ok()) return server::SetError(res, events.status());
  json j = EnvJson(**env);
  json history = json::array();
  for (const auto& e : *events) history.push_back(EventJson(e));
  j["events"] = std::move(history);
  res.SetJson(200, Dump(j));
}

void ApiServer::DeleteEnvironment(const std::string& name, HttpResponse& res) {
  if (!names::IsDnsLabel(name, names::kMaxNameLength)) {
    return server::SetError(res, NoSuchEnvironment(name));
  }
  absl::StatusOr<state::Environment> destroyed =
      intents_.Destroy(name, "destroyed on request through the API");
  if (!destroyed.ok()) return server::SetError(res, destroyed.status());
  res.SetJson(202, EnvironmentJson(*destroyed));
}

void ApiServer::ExtendEnvironment(const std::string& name, const HttpRequest& req,
                                  HttpResponse& res) {
  auto body = ParseBody(req);
  if (!body.ok()) return server::SetError(res, body.status());
  auto by_it = body->find("by");
  if (by_it == body->end() || !by_it->is_string() ||
      by_it->get_ref<const std::string&>().size() > kMaxDurationLength) {
    return server::SetError(
        res, absl::InvalidArgumentError("\"by\" must be a duration such as \"24h\""));
  }
  auto by = config::ParseDuration(by_it->get<std::string>());
  if (!by.ok()) return server::SetError(res, by.status());
  for (const auto& [key, value] : body->items()) {
    if (key != "by") {
      return server::SetError(res,
                              absl::InvalidArgumentError("unknown field \"" + Shown(key) + "\""));
    }
  }
  if (!names::IsDnsLabel(name, names::kMaxNameLength)) {
    return server::SetError(res, NoSuchEnvironment(name));
  }
  const Duration extension = std::chrono::duration_cast<Duration>(absl::ToChronoNanoseconds(*by));
  absl::StatusOr<state::Environment> extended = intents_.Extend(name, extension);
  if (!extended.ok()) return server::SetError(res, extended.status());
  res.SetJson(200, EnvironmentJson(*extended));
}

void ApiServer::Logs(const std::string& name, const HttpRequest& req, HttpResponse& res) {
  auto env = store_.GetEnvironment(name);
  if (!env.ok()) return server::SetError(res, env.status());
  if (!env->has_value()) {
    return server::SetError(res, NoSuchEnvironment(name));
  }
  const state::Environment& e = **env;
  if (e.state == state::EnvState::kDestroyed) {
    return server::SetError(res,
                            absl::FailedPreconditionError(name + " is destroyed; it has no logs"));
  }
  providers::Provider* provider = nullptr;
  if (options_.providers != nullptr && !e.provider.empty()) {
    provider = options_.providers->Find(e.provider);
  }
  if (provider == nullptr) {
    return server::SetError(
        res, absl::FailedPreconditionError(e.provider.empty()
                                               ? name + " has no provider yet, so there are no logs"
                                               : name + "'s provider " + e.provider +
                                                     " is not enabled on this ephd"));
  }
  providers::LogsRequest request;
  request.environment = e.name;
  request.namespace_name = intents_.NamespaceOf(e);
  if (auto it = req.query.find("component"); it != req.query.end()) {
    if (it->second.size() > kMaxComponentLength) {
      return server::SetError(res, absl::InvalidArgumentError(absl::StrCat(
                                       "component must be at most ", kMaxComponentLength,
                                       " characters (a Deployment or service name)")));
    }
    request.component = it->second;
  }
  request.follow = ParseBool(req.query, "follow");
  if (auto it = req.query.find("tail"); it != req.query.end()) {
    std::optional<int64_t> tail = ParseCount(it->second, 6);
    if (!tail || *tail > kMaxTailLines) {
      return server::SetError(res, absl::InvalidArgumentError(absl::StrCat(
                                       "tail must be a number of lines from 0 to ", kMaxTailLines,
                                       " (0: the provider's default)")));
    }
    request.tail_lines = *tail;
  }
  res.status = 200;
  res.headers["Content-Type"] = "text/plain; charset=utf-8";
  res.headers["Cache-Control"] = "no-store";
  res.headers["X-Content-Type-Options"] = "nosniff";
  res.stream = [provider, request](server::StreamWriter& out) mutable {
    // A followed log can be quiet for hours: the provider learns that the reader has gone (or
    // that ephd is stopping) from this token, which a watcher requests, not from a failed write.
    std::stop_source stop;
    request.stop = stop.get_token();
    std::jthread watcher([&out, &stop](std::stop_token done) {
      std::mutex mu;
      std::condition_variable_any tick;
      std::unique_lock<std::mutex> lock(mu);
      while (!tick.wait_for(lock, done, std::chrono::milliseconds(200), [] { return false; }) &&
             !done.stop_requested()) {
        if (out.Cancelled()) {
          stop.request_stop();
          return;
        }
      }
    });
    absl::Status s = provider->Logs(request, [&out](const providers::LogLine& line) {
      std::string text = FormatRfc3339(line.at) + " " + line.component + " " + line.text + "\n";
      return out.Write(text) && !out.Cancelled();
    });
    // Headers are gone already: an error can only be told in the body.
    if (!s.ok() && !out.Cancelled()) {
      out.Write("eph: logs ended: " + std::string(s.message()) + "\n");
    }
  };
}

void ApiServer::Events(const HttpRequest& req, HttpResponse& res) {
  std::string last = req.Header("Last-Event-ID");
  if (last.empty()) {
    if (auto it = req.query.find("last_event_id"); it != req.query.end()) last = it->second;
  }
  int64_t after_id = -1;  // -1: only what happens from now on
  if (!last.empty()) {
    std::optional<int64_t> id = ParseCount(last, kMaxEventIdDigits);
    if (!id) {
      return server::SetError(
          res, absl::InvalidArgumentError("Last-Event-ID must be an event id (a number)"));
    }
    after_id = *id;
  }
  if (after_id < 0) {
    // Start after the newest event: page through the trail to find it.
    after_id = 0;
    for (;;) {
      auto page = store_.ListEvents(after_id, 1000);
      if (!page.ok()) return server::SetError(res, page.status());
      if (page->empty()) break;
      after_id = page->back().id;
      if (page->size() < 1000) break;
    }
  }
  res.status = 200;
  res.headers["Content-Type"] = "text/event-stream; charset=utf-8";
  res.headers["Cache-Control"] = "no-store";
  res.headers["X-Accel-Buffering"] = "no";
  res.stream = [this, after_id](server::StreamWriter& out) { StreamEvents(after_id, out); };
}

void ApiServer::StreamEvents(int64_t after_id, server::StreamWriter& out) {
  using Steady = std::chrono::steady_clock;
  // A first comment so proxies and clients see the stream open at once.
  if (!out.Write(": connected\n\n")) return;
  auto last_write = Steady::now();
  while (!out.Cancelled()) {
    // Counted before the read: a change committed while reading wakes the wait below at once.
    const uint64_t changes = store_.LocalChangeCount();
    auto events = store_.ListEvents(after_id, 100);
    if (!events.ok()) {
      // The store is down: say so and end; the client reconnects with Last-Event-ID.
      out.Write(": store unavailable: " + std::string(events.status().message()) + "\n\n");
      return;
    }
    for (const auto& e : *events) {
      after_id = e.id;
      auto env = store_.GetEnvironment(e.environment);
      if (!env.ok() || !env->has_value()) continue;
      std::string chunk = "id: " + std::to_string(e.id) +
                          "\nevent: environment\ndata: " + EnvironmentJson(**env) + "\n\n";
      if (!out.Write(chunk)) return;
      last_write = Steady::now();
    }
    if (events->size() == 100) continue;  // more are waiting
    if (Steady::now() - last_write >= options_.events_keepalive) {
      if (!out.Write(": keepalive\n\n")) return;
      last_write = Steady::now();
    }
    // Woken by this process's changes at once; other processes' are read on the timeout.
    const auto until_keepalive = std::chrono::duration_cast<std::chrono::milliseconds>(
        options_.events_keepalive - (Steady::now() - last_write));
    // In slices, so a reader that has gone frees its stream within a quarter second.
    const auto wait_until =
        Steady::now() + std::max(std::chrono::milliseconds(1),
                                 std::min(options_.events_poll, until_keepalive));
    while (!out.Cancelled() && store_.LocalChangeCount() == changes) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(wait_until -
                                                                              Steady::now());
      if (left <= std::chrono::milliseconds(0)) break;
      store_.WaitForLocalChange(changes, std::min(left, std::chrono::milliseconds(250)));
    }
  }
}

}  // namespace eph::api
