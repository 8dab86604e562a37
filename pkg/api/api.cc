#include "pkg/api/api.h"

#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

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

std::string Dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string WorkKeyFor(const state::Environment& env) {
  return env.pr_number > 0 ? webhook::PullRequestKey(env.project, env.pr_number)
                           : "env:" + env.name;
}

}  // namespace

std::string EnvironmentJson(const state::Environment& env) { return Dump(EnvJson(env)); }

ApiServer::ApiServer(state::Store& store, const Clock& clock, MetricsRegistry& metrics,
                     webhook::WebhookIntake& intake, ApiOptions options)
    : store_(store), clock_(clock), metrics_(metrics), intake_(intake),
      options_(std::move(options)) {
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
      res.SetJson(503, server::ErrorJson("unavailable",
                                         "not ready: " + std::string(s.message())));
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
                res.SetJson(r.http_status, std::move(r.body_json));
              });
  router_.Add("GET", "/api/v1/environments",
              [this](const HttpRequest& req, HttpResponse& res, const PathParams&) {
                ListEnvironments(req, res);
              });
  router_.Add("GET", "/api/v1/environments/{name}",
              [this](const HttpRequest&, HttpResponse& res, const PathParams& p) {
                GetEnvironment(p.at("name"), res);
              });
  router_.Add("DELETE", "/api/v1/environments/{name}",
              [this](const HttpRequest&, HttpResponse& res, const PathParams& p) {
                DeleteEnvironment(p.at("name"), res);
              });
}

void ApiServer::Handle(const HttpRequest& req, HttpResponse& res) {
  const auto start = std::chrono::steady_clock::now();
  router_.Dispatch(req, res);
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
  if (auto it = req.query.find("project"); it != req.query.end()) filter.project = it->second;
  if (auto it = req.query.find("all"); it != req.query.end()) {
    filter.include_destroyed = it->second == "true" || it->second == "1";
  }
  auto envs = store_.ListEnvironments(filter);
  if (!envs.ok()) return server::SetError(res, envs.status());
  json items = json::array();
  for (const auto& env : *envs) items.push_back(EnvJson(env));
  res.SetJson(200, Dump({{"items", items}}));
}

void ApiServer::GetEnvironment(const std::string& name, HttpResponse& res) {
  auto env = store_.GetEnvironment(name);
  if (!env.ok()) return server::SetError(res, env.status());
  if (!env->has_value()) {
    return server::SetError(res, absl::NotFoundError("no environment named " + name));
  }
  res.SetJson(200, EnvironmentJson(**env));
}

void ApiServer::DeleteEnvironment(const std::string& name, HttpResponse& res) {
  // Compare-and-swap: retry a few times if the reconciler wrote the row meanwhile.
  for (int attempt = 0; attempt < 5; ++attempt) {
    auto env = store_.GetEnvironment(name);
    if (!env.ok()) return server::SetError(res, env.status());
    if (!env->has_value()) {
      return server::SetError(res, absl::NotFoundError("no environment named " + name));
    }
    state::Environment e = **env;
    if (e.state == state::EnvState::kDestroyed || e.state == state::EnvState::kDestroying) {
      res.SetJson(202, EnvironmentJson(e));
      return;
    }
    e.state = state::EnvState::kDestroying;
    e.reason = "destroyed on request through the API";
    e.updated_at = clock_.Now();
    auto stored = store_.UpdateEnvironment(e);
    if (!stored.ok() && stored.status().code() == absl::StatusCode::kAborted) continue;
    if (!stored.ok()) return server::SetError(res, stored.status());
    auto q = store_.Enqueue(WorkKeyFor(*stored), clock_.Now());
    if (!q.ok()) spdlog::warn("api: enqueue after delete of {} failed: {}", name, std::string(q.message()));
    if (options_.on_enqueued) options_.on_enqueued();
    res.SetJson(202, EnvironmentJson(*stored));
    return;
  }
  server::SetError(res, absl::AbortedError("environment " + name +
                                           " kept changing; try again"));
}

}  // namespace eph::api
