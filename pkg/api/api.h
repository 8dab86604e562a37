// ApiServer: ephd's HTTP surface (PRODUCT.md, docs/api.md): webhooks, the environments API with
// server-sent events and logs, health, metrics, the OpenAPI document and the dashboard's static
// files. It turns HTTP into calls on the store, the webhook intake and the providers, and every
// failure into the JSON error shape of pkg/server/errors.h. Creating or deleting an environment
// only records the wish and enqueues its key: the reconciler does the work.
//
// Authentication: every /api/v1/* request needs `Authorization: Bearer <token>` naming an
// unrevoked API token (401 otherwise); a read token may only GET (403 otherwise). The token is
// looked up by its SHA-256, so comparing secrets never leaks timing. Webhooks carry their own
// signatures; health, readiness, metrics and the dashboard's files are open.
//
// Thread-safety: Handle is called concurrently by the HTTP server's workers; streamed bodies
// (events, logs) run on threads of their own and only read the store and providers.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "pkg/api/router.h"
#include "pkg/base/clock.h"
#include "pkg/base/metrics.h"
#include "pkg/base/random.h"
#include "pkg/controller/intents.h"
#include "pkg/dashboard/dashboard.h"
#include "pkg/providers/provider.h"
#include "pkg/server/http.h"
#include "pkg/state/store.h"
#include "pkg/webhook/intake.h"

namespace eph::api {

struct ApiOptions {
  std::string version = "0.1.0";
  // Extra readiness checks (e.g. "workers running"); the store's Ping is always checked.
  std::function<absl::Status()> ready_check;
  // Called after the API enqueued work, to wake the workers.
  std::function<void()> on_enqueued;
  // Providers whose logs the logs endpoint streams; nullptr: none (logs are refused).
  providers::ProviderRegistry* providers = nullptr;
  // Names of manually created environments; nullptr: SecureRandom.
  Random* random = nullptr;
  // Where environments made by hand live and for how long: ephd passes the reconciler's.
  controller::LifecyclePolicy lifecycle{.base_domain = "preview.localhost"};
  // The dashboard, served at / (dashboard::ServeDashboard); nullptr: a page at / saying there is
  // none. ephd passes the one built into it, or a directory (--web-dir).
  std::shared_ptr<const dashboard::DashboardFiles> dashboard;
  // The event stream wakes at once for changes made by this process (Store::WaitForLocalChange)
  // and reads the store this often for other processes' (ephd replicas sharing PostgreSQL);
  // it sends a comment when idle for events_keepalive.
  std::chrono::milliseconds events_poll{2000};
  std::chrono::milliseconds events_keepalive{15000};
};

// True for "/api" and paths below it: the ones that need a token. The path must be canonical
// (server::ParseRequestTarget), so a prefix test is exact: "//api" and "/./api" never get here.
bool IsApiPath(const std::string& path);

class ApiServer {
 public:
  ApiServer(state::Store& store, const Clock& clock, MetricsRegistry& metrics,
            webhook::WebhookIntake& intake, ApiOptions options);

  void Handle(const server::HttpRequest& req, server::HttpResponse& res);

  // The HTTP server's admission check (server::AdmissionCheck): decides from a request's header
  // alone, before its body is read, what Handle would refuse anyway — an API call without a
  // known token of the right scope, a webhook without a well-formed signature header — so that
  // nobody unauthenticated can make ephd hold a body it will throw away. Handle checks the same
  // again: it stays correct when called without admission (tests, other servers).
  bool Admit(const server::HttpRequest& head, server::HttpResponse& res);

 private:
  void Routes();
  // OK, or the 401/403 error for this request.
  absl::Status Authorize(const server::HttpRequest& req);
  // Authorize, with a refusal written into `res` (401 with WWW-Authenticate, 403, 503).
  bool AuthorizeInto(const server::HttpRequest& req, server::HttpResponse& res);
  void ListEnvironments(const server::HttpRequest& req, server::HttpResponse& res);
  void CreateEnvironment(const server::HttpRequest& req, server::HttpResponse& res);
  void GetEnvironment(const std::string& name, server::HttpResponse& res);
  void DeleteEnvironment(const std::string& name, server::HttpResponse& res);
  void ExtendEnvironment(const std::string& name, const server::HttpRequest& req,
                         server::HttpResponse& res);
  void Logs(const std::string& name, const server::HttpRequest& req, server::HttpResponse& res);
  void Events(const server::HttpRequest& req, server::HttpResponse& res);
  void StreamEvents(int64_t after_id, server::StreamWriter& out);

  state::Store& store_;
  const Clock& clock_;
  MetricsRegistry& metrics_;
  webhook::WebhookIntake& intake_;
  ApiOptions options_;
  // Every change to an environment's life goes through the controller's intents.
  controller::EnvironmentIntents intents_;
  Router router_;
};

// The JSON shape of one environment in the API (PRODUCT.md).
std::string EnvironmentJson(const state::Environment& env);

// The OpenAPI 3.1 document served at /api/v1/openapi.json (docs/openapi.json, compiled in).
const std::string& OpenApiDocument();

}  // namespace eph::api
