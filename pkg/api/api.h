// ApiServer: ephd's HTTP surface (PRODUCT.md): webhooks, the environments API, health, metrics.
// It turns HTTP into calls on the store and the webhook intake, and every failure into the JSON
// error shape of pkg/server/errors.h. Deleting an environment only records the wish (state
// destroying) and enqueues its key: the reconciler does the work.
//
// Thread-safety: Handle is called concurrently by the HTTP server's workers.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "pkg/api/router.h"
#include "pkg/base/clock.h"
#include "pkg/base/metrics.h"
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
};

class ApiServer {
 public:
  ApiServer(state::Store& store, const Clock& clock, MetricsRegistry& metrics,
            webhook::WebhookIntake& intake, ApiOptions options);

  void Handle(const server::HttpRequest& req, server::HttpResponse& res);

 private:
  void Routes();
  void ListEnvironments(const server::HttpRequest& req, server::HttpResponse& res);
  void GetEnvironment(const std::string& name, server::HttpResponse& res);
  void DeleteEnvironment(const std::string& name, server::HttpResponse& res);

  state::Store& store_;
  const Clock& clock_;
  MetricsRegistry& metrics_;
  webhook::WebhookIntake& intake_;
  ApiOptions options_;
  Router router_;
};

// The JSON shape of one environment in the API (PRODUCT.md).
std::string EnvironmentJson(const state::Environment& env);

}  // namespace eph::api
