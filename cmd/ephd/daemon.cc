#include "cmd/ephd/daemon.h"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "pkg/api/api.h"
#include "pkg/api/tokens.h"
#include "pkg/base/clock.h"
#include "pkg/base/host_port.h"
#include "pkg/base/listener_limits.h"
#include "pkg/base/metrics.h"
#include "pkg/base/random.h"
#include "pkg/config/duration.h"
#include "pkg/controller/databases.h"
#include "pkg/controller/metrics.h"
#include "pkg/controller/provider_changes.h"
#include "pkg/controller/reconciler.h"
#include "pkg/controller/resync.h"
#include "pkg/controller/server_databases.h"
#include "pkg/controller/work_queue_runner.h"
#include "pkg/forge/cached_forge.h"
#include "pkg/forge/forge.h"
#include "pkg/forge/github/github_forge.h"
#include "pkg/gateway/gateway.h"
#include "pkg/gateway/store_backends.h"
#include "pkg/providers/docker/docker_provider.h"
#include "pkg/providers/kubernetes/kubernetes_provider.h"
#include "pkg/providers/provider.h"
#include "pkg/server/http_server.h"
#include "pkg/state/store.h"
#include "pkg/webhook/intake.h"

namespace eph::daemon {

namespace {

void ConfigureLogging(const DaemonConfig& config) {
  auto logger = spdlog::stderr_color_mt("ephd");
  if (config.log_format == "json") {
    // Messages are key=value text of ours; JSON-escaping of quotes is not needed for them.
    logger->set_pattern(R"({"time":"%Y-%m-%dT%H:%M:%S.%eZ","level":"%l","msg":"%v"})",
                        spdlog::pattern_time_type::utc);
  } else {
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %l %v", spdlog::pattern_time_type::utc);
  }
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(config.log_level));
}

}  // namespace

struct Daemon::Parts {
  MetricsRegistry metrics;
  std::unique_ptr<state::Store> store;
  std::unique_ptr<webhook::WebhookIntake> intake;
  std::unique_ptr<api::ApiServer> api;
  std::unique_ptr<server::HttpServer> http;
  std::unique_ptr<gateway::StoreBackends> backends;
  std::unique_ptr<gateway::Gateway> gateway;
  // The engine: absent when no forge is configured or --workers is 0 (intake only).
  providers::ProviderRegistry providers;
  std::unique_ptr<controller::EnvironmentDatabases> databases;
  std::unique_ptr<forge::Forge> forge;
  // In front of `forge`: content at a commit is read once (eph.yaml, the source archive).
  std::unique_ptr<forge::CachedForge> cached_forge;
  std::unique_ptr<controller::ControllerMetrics> controller_metrics;
  std::unique_ptr<controller::EnvironmentReconciler> reconciler;
  std::unique_ptr<controller::WorkQueueRunner> runner;
  std::unique_ptr<controller::Resyncer> resync;
  std::unique_ptr<controller::ProviderChangeFeed> changes;
};

namespace {

// The forge ephd reconciles against: GitHub with a token (small setups) or as a GitHub App.
// Without either, ephd runs the intake and API only, and says so.
absl::StatusOr<std::unique_ptr<forge::Forge>> MakeForge(const DaemonConfig& config) {
  if (config.github_token.empty() && config.github_app_id.empty()) {
    return absl::NotFoundError("no GitHub token or App configured");
  }
  forge::github::GitHubForgeOptions options;
  options.api_url = config.github_api_url;
  options.user_agent = "ephd";
  if (!config.github_token.empty()) {
    options.token = config.github_token;
  } else {
    if (config.github_private_key_file.empty()) {
      return absl::InvalidArgumentError(
          "EPH_GITHUB_APP_ID is set but EPH_GITHUB_PRIVATE_KEY_FILE (the App's PEM key) is not");
    }
    std::ifstream in(config.github_private_key_file, std::ios::binary);
    if (!in) {
      return absl::InvalidArgumentError(absl::StrCat("cannot read the GitHub App private key ",
                                                     config.github_private_key_file));
    }
    options.app_id = config.github_app_id;
    options.private_key_pem.assign(std::istreambuf_iterator<char>(in), {});
  }
  auto github = forge::github::GitHubForge::Create(std::move(options));
  if (!github.ok()) return github.status();
  return std::unique_ptr<forge::Forge>(std::move(*github));
}

absl::StatusOr<std::unique_ptr<controller::EnvironmentDatabases>> MakeDatabases(
    const DaemonConfig& config, const std::string& installation) {
  controller::SharedDatabaseServer shared;
  shared.admin_url = config.database_admin_url;
  shared.clone_spares = config.database_clone_spares;
  std::string host;
  uint16_t port = 0;
  if (config.database_app_host.find(':') != std::string::npos &&
      SplitHostPort(config.database_app_host, host, port).ok()) {
    shared.app_host = host;
    shared.app_port = port;
  } else {
    shared.app_host = config.database_app_host;
  }
  absl::StatusOr<std::unique_ptr<controller::ServerDatabases>> made =
      controller::ServerDatabases::Create(shared, installation);
  if (!made.ok()) return made.status();
  return std::unique_ptr<controller::EnvironmentDatabases>(std::move(*made));
}

absl::Status EnableProviders(const DaemonConfig& config, providers::ProviderRegistry& registry,
                             std::vector<std::string>& enabled) {
  if (auto s = providers::RegisterBuiltinProviders(registry); !s.ok()) return s;
  if (auto s = providers::kubernetes::RegisterKubernetesProvider(registry); !s.ok()) return s;
  if (auto s = providers::docker::RegisterDockerProvider(registry); !s.ok()) return s;
  struct Want {
    const char* name;
    const char* setting;
    const std::string* value;
  };
  for (const Want& want : {Want{"kubernetes", "kubeconfig", &config.kubeconfig},
                           Want{"docker", "docker_host", &config.docker_host}}) {
    if (want.value->empty()) continue;
    providers::ProviderSettings settings;
    settings.values[want.setting] = *want.value;
    settings.values["base_domain"] = config.base_domain;
    if (std::string_view(want.name) == "kubernetes") {
      if (!config.kustomize_path.empty()) settings.values["kustomize_path"] = config.kustomize_path;
      if (!config.helm_path.empty()) settings.values["helm_path"] = config.helm_path;
    }
    absl::Status s = registry.Enable(want.name, settings);
    if (!s.ok()) {
      return absl::Status(s.code(), absl::StrCat("provider ", want.name, ": ", s.message()));
    }
    enabled.push_back(want.name);
  }
  return absl::OkStatus();
}

std::string Join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& i : items) out += out.empty() ? i : ", " + i;
  return out;
}

}  // namespace

Daemon::Daemon(DaemonConfig config) : config_(std::move(config)) {}
Daemon::~Daemon() { Stop(); }

absl::Status Daemon::Start() {
  RaiseOpenFilesLimit();
  ConfigureLogging(config_);
  if (config_.web_dir.empty()) config_.web_dir = DefaultWebDir();
  auto parts = std::make_unique<Parts>();
  std::string host;
  uint16_t port = 0;
  if (auto s = SplitHostPort(config_.listen, host, port); !s.ok()) return s;

  const std::string state_url = AbsoluteStateUrl(config_.state);
  auto store = state::OpenStore(state_url);
  if (!store.ok()) {
    return absl::Status(store.status().code(),
                        absl::StrCat("state store ", state::RedactStoreUrl(state_url), ": ",
                                     store.status().message()));
  }
  parts->store = std::move(*store);
  auto schema = parts->store->SchemaVersion();
  absl::StatusOr<std::string> installation = parts->store->InstallationId();
  if (!installation.ok()) {
    return absl::Status(installation.status().code(),
                        absl::StrCat("state store ", state::RedactStoreUrl(state_url),
                                     ": reading the installation id: ",
                                     installation.status().message()));
  }
  spdlog::info("ephd {}: state in {} (schema version {}, installation {})", kVersion,
               state::RedactStoreUrl(state_url), schema.ok() ? *schema : -1, *installation);
  std::vector<std::string> enabled;
  if (auto s = EnableProviders(config_, parts->providers, enabled); !s.ok()) return s;
  spdlog::info("ephd: providers: {}", enabled.empty()
                                          ? std::string("none enabled (set EPH_KUBECONFIG or "
                                                        "EPH_DOCKER_HOST)")
                                          : Join(enabled));

  auto resync_interval = config::ParseDuration(config_.resync_interval);
  if (!resync_interval.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("resync interval \"", config_.resync_interval,
                                                   "\": ", resync_interval.status().message()));
  }
  // The gateway starts before the reconciler: environments' URLs carry its port.
  std::string public_url = config_.public_url;
  if (!config_.gateway_listen.empty()) {
    gateway::GatewayOptions gateway_options;
    uint16_t gateway_port = 0;
    if (auto s = SplitHostPort(config_.gateway_listen, gateway_options.host, gateway_port);
        !s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("gateway: ", s.message()));
    }
    gateway_options.port = gateway_port;
    gateway_options.base_domain = config_.base_domain;
    gateway_options.max_connections = config_.gateway_max_connections;
    parts->backends = std::make_unique<gateway::StoreBackends>(*parts->store);
    gateway::StoreBackends* backends = parts->backends.get();
    state::Store* activity_store = parts->store.get();
    parts->gateway = std::make_unique<gateway::Gateway>(
        gateway_options,
        [backends](std::string_view environment) { return backends->Find(environment); },
        [activity_store](std::string_view environment, TimePoint at) {
          if (absl::Status s = activity_store->TouchEnvironment(std::string(environment), at);
              !s.ok()) {
            spdlog::warn("gateway: could not record activity of {}: {}", environment,
                         s.ToString());
          }
        },
        SystemClock::Instance(), &parts->metrics);
    if (auto s = parts->gateway->Start(); !s.ok()) {
      return absl::Status(s.code(), absl::StrCat("gateway: ", s.message()));
    }
    if (public_url.empty()) {
      public_url = absl::StrCat("http://{host}:", parts->gateway->port());
    }
    spdlog::info("ephd: gateway: serving *.{} on http://{}:{}", config_.base_domain,
                 gateway_options.host, parts->gateway->port());
  }
  if (public_url.empty()) public_url = "https://{host}";
  if (public_url.find("{host}") == std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat(
        "public URL \"", public_url, "\" must contain {host}, e.g. https://{host}"));
  }
  // One policy for environments made by hand (the API) and by pull requests (the reconciler).
  controller::LifecyclePolicy lifecycle;
  lifecycle.base_domain = config_.base_domain;
  lifecycle.url_template = public_url;

  auto forge = MakeForge(config_);
  if (config_.workers == 0) {
    spdlog::info("ephd: reconciler: off (--workers 0: intake and API only)");
  } else if (!forge.ok()) {
    spdlog::warn("ephd: reconciler: off ({}): webhooks are stored and queued, not acted on",
                 std::string(forge.status().message()));
  } else {
    parts->forge = std::move(*forge);
    parts->cached_forge = std::make_unique<forge::CachedForge>(*parts->forge);
    parts->controller_metrics = std::make_unique<controller::ControllerMetrics>(parts->metrics);
    controller::ReconcilerOptions options;
    options.lifecycle = lifecycle;
    // While an environment comes up it is looked at again this often, in case its provider has
    // no change stream or the stream missed a change (both Kubernetes and Docker announce
    // changes, so readiness normally shows at once).
    options.progress_poll = std::chrono::seconds(2);
    options.installation = *installation;
    auto databases = MakeDatabases(config_, *installation);
    if (!databases.ok()) return databases.status();
    parts->databases = std::move(*databases);
    options.databases = parts->databases.get();
    if (!config_.database_admin_url.empty()) {
      spdlog::info(
          "ephd: databases: one per environment on {} ({} spare clone{} per "
          "template), or on the environment's own server",
          state::RedactStoreUrl(config_.database_admin_url), config_.database_clone_spares,
          config_.database_clone_spares == 1 ? "" : "s");
    } else {
      spdlog::info("ephd: databases: on the environment's own server only (no "
                   "EPH_DATABASE_ADMIN_URL)");
    }
    parts->reconciler = std::make_unique<controller::EnvironmentReconciler>(
        *parts->store, *parts->cached_forge, parts->providers, SystemClock::Instance(),
        SecureRandom::Instance(), options);
    controller::WorkQueueOptions queue;
    queue.workers = config_.workers;
    // Leases are renewed every lease_for/3 while a reconcile runs, so a short lease costs
    // nothing and bounds how long a key stays stuck after its holder is killed (kill -9).
    queue.lease_for = std::chrono::seconds(30);
    char hostname[256] = {};
    gethostname(hostname, sizeof(hostname) - 1);
    queue.owner = absl::StrCat(hostname, ":", getpid());
    state::Store* state_store = parts->store.get();
    queue.renew_lease = [state_store](const state::Lease& lease, TimePoint now, Duration lease_for) {
      return state_store->RenewLease(lease, now, lease_for);
    };
    parts->runner = std::make_unique<controller::WorkQueueRunner>(
        *parts->store, *parts->reconciler, SystemClock::Instance(), SecureRandom::Instance(),
        *parts->controller_metrics, queue);
    controller::ResyncOptions resync;
    resync.databases = parts->databases.get();
    resync.installation = *installation;
    resync.forge = parts->cached_forge.get();
    resync.interval = std::chrono::duration_cast<Duration>(absl::ToChronoNanoseconds(*resync_interval));
    controller::WorkQueueRunner* runner = parts->runner.get();
    parts->resync = std::make_unique<controller::Resyncer>(
        *parts->store, parts->providers, SystemClock::Instance(), *parts->controller_metrics,
        resync, [runner] { runner->Notify(); });
    // Providers that watch (Kubernetes readiness, Docker events) report changes: the
    // environment's key runs at once, so "ready" is seen then, not at the next poll.
    parts->changes = std::make_unique<controller::ProviderChangeFeed>(
        *parts->store, parts->providers, SystemClock::Instance(), [runner] { runner->Notify(); });
    spdlog::info("ephd: reconciler: {} workers, resync every {}", config_.workers,
                 config_.resync_interval);
  }
  if (config_.github_webhook_secret.empty()) {
    spdlog::warn("ephd: EPH_GITHUB_WEBHOOK_SECRET is unset: GitHub webhooks will be refused");
  }

  parts->intake = std::make_unique<webhook::WebhookIntake>(
      *parts->store, SystemClock::Instance(), parts->metrics, config_.github_webhook_secret);
  api::ApiOptions api_options;
  api_options.version = kVersion;
  api_options.providers = &parts->providers;
  api_options.lifecycle = lifecycle;
  api_options.web_dir = config_.web_dir;
  if (config_.web_dir.empty()) {
    spdlog::info("ephd: dashboard: off (no --web-dir, and no built web/dist)");
  } else if (!std::filesystem::is_regular_file(config_.web_dir + "/index.html")) {
    spdlog::warn("ephd: dashboard: {} has no index.html (build it: npm run build in web/)",
                 config_.web_dir);
  } else {
    spdlog::info("ephd: dashboard: serving {} at /", config_.web_dir);
  }
  if (parts->runner) {
    controller::WorkQueueRunner* runner = parts->runner.get();
    parts->intake->SetOnEnqueued([runner] { runner->Notify(); });
    api_options.on_enqueued = [runner] { runner->Notify(); };
  }
  // Not ready while the workers are down or a listener has hit one of its limits lately
  // (connections, descriptors, streams, body memory): a load balancer then sends elsewhere.
  Parts* ready_parts = parts.get();
  api_options.ready_check = [ready_parts]() -> absl::Status {
    if (ready_parts->runner && !ready_parts->runner->running()) {
      return absl::UnavailableError("reconciler workers are not running");
    }
    if (ready_parts->http) {
      if (absl::Status s = ready_parts->http->Saturation(); !s.ok()) return s;
    }
    if (ready_parts->gateway) {
      if (absl::Status s = ready_parts->gateway->Saturation(); !s.ok()) {
        return s;
      }
    }
    return absl::OkStatus();
  };
  parts->api = std::make_unique<api::ApiServer>(*parts->store, SystemClock::Instance(),
                                                parts->metrics, *parts->intake, api_options);
  server::HttpServerOptions http_options;
  http_options.host = host;
  http_options.port = port;
  // The body limit is one byte above 25 MB: larger webhook bodies get 413.
  http_options.max_body_bytes = 25u * 1024 * 1024;
  http_options.max_connections = config_.max_connections;
  http_options.max_streams = config_.max_streams;
  api::ApiServer* api = parts->api.get();
  http_options.admit = [api](const server::HttpRequest& head, server::HttpResponse& res) {
    return api->Admit(head, res);
  };
  parts->http = std::make_unique<server::HttpServer>(
      http_options, [api](const server::HttpRequest& req, server::HttpResponse& res) {
        api->Handle(req, res);
      });
  if (auto s = parts->http->Start(); !s.ok()) return s;
  spdlog::info("ephd: listening on http://{}:{}", host.find(':') != std::string::npos ? "[" + host + "]" : host,
               parts->http->port());
  spdlog::info("ephd: limits: {} open files, {} API connections, {} streams{}", OpenFilesLimitText(),
               parts->http->max_connections(), config_.max_streams,
               parts->gateway ? absl::StrCat(", ", parts->gateway->max_connections(),
                                             " gateway connections")
                              : std::string());
  if (parts->runner) {
    parts->runner->Start();
    parts->resync->Start();
    parts->changes->Start();
  }
  parts_ = std::move(parts);
  return absl::OkStatus();
}

void Daemon::Stop() {
  if (!parts_) return;
  // Stop taking requests first (in-flight ones finish), then let workers finish their items.
  if (parts_->http) parts_->http->Stop();
  if (parts_->gateway) parts_->gateway->Stop();
  // The change feed calls into the runner: it stops first.
  if (parts_->changes) parts_->changes->Stop();
  if (parts_->resync) parts_->resync->Stop();
  if (parts_->runner) parts_->runner->Stop();
  parts_.reset();
}

}  // namespace eph::daemon
