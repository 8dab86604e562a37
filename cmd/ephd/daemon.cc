#include "cmd/ephd/daemon.h"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <string_view>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "pkg/api/api.h"
#include "pkg/api/tokens.h"
#include "pkg/base/clock.h"
#include "pkg/base/host_port.h"
#include "pkg/base/listener_limits.h"
#include "pkg/base/metrics.h"
#include "pkg/base/random.h"
#include "pkg/config/duration.h"
#include "pkg/controller/databases.h"
#include "pkg/controller/environment_controller.h"
#include "pkg/controller/secret_sources.h"
#include "pkg/controller/server_databases.h"
#include "pkg/dashboard/open_dashboard.h"
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

struct DaemonParts {
  MetricsRegistry metrics;
  std::unique_ptr<state::Store> store;
  std::string installation;  // the store's InstallationId
  std::unique_ptr<webhook::WebhookIntake> intake;
  std::unique_ptr<api::ApiServer> api;
  std::unique_ptr<server::HttpServer> http;
  std::unique_ptr<gateway::StoreBackends> backends;
  std::unique_ptr<gateway::Gateway> gateway;
  providers::ProviderRegistry providers;
  // The engine: absent when no forge is configured or --workers is 0 (intake only).
  std::unique_ptr<controller::EnvironmentDatabases> databases;
  std::unique_ptr<controller::SecretSource> secrets;  // null: none configured
  std::unique_ptr<forge::Forge> forge;
  // In front of `forge`: content at a commit is read once (eph.yaml, the source archive).
  std::unique_ptr<forge::CachedForge> cached_forge;
  std::unique_ptr<controller::EnvironmentController> controller;
};

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
    options.app_id = config.github_app_id;
    options.private_key_file = config.github_private_key_file;
  }
  auto github = forge::github::GitHubForge::Create(std::move(options));
  if (!github.ok()) return github.status();
  return std::unique_ptr<forge::Forge>(std::move(*github));
}

absl::Status BuildProviders(const DaemonConfig& config, DaemonParts& parts) {
  providers::ProviderRegistry& registry = parts.providers;
  std::vector<std::string> enabled;
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
    if (!config.registry_auth_file.empty()) {
      settings.values["registry_auth_file"] = config.registry_auth_file;
    }
    if (std::string_view(want.name) == "docker" && !config.compose_path.empty()) {
      settings.values["compose_path"] = config.compose_path;
    }
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
  spdlog::info("ephd: providers: {}",
               enabled.empty() ? std::string("none enabled (set EPH_KUBECONFIG or EPH_DOCKER_HOST)")
                               : absl::StrJoin(enabled, ", "));
  return absl::OkStatus();
}

absl::StatusOr<Duration> ResyncInterval(const DaemonConfig& config) {
  auto interval = config::ParseDuration(config.resync_interval);
  if (!interval.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("resync interval \"", config.resync_interval,
                                                   "\": ", interval.status().message()));
  }
  return std::chrono::duration_cast<Duration>(absl::ToChronoNanoseconds(*interval));
}

// The store, and the installation id stamped on everything this ephd creates.
absl::Status OpenState(const DaemonConfig& config, DaemonParts& parts) {
  const std::string state_url = AbsoluteStateUrl(config.state);
  auto store = state::OpenStore(state_url);
  if (!store.ok()) {
    return absl::Status(store.status().code(),
                        absl::StrCat("state store ", state::RedactStoreUrl(state_url), ": ",
                                     store.status().message()));
  }
  parts.store = std::move(*store);
  state::ExportDeliveryCommitMetrics(*parts.store, parts.metrics);
  auto schema = parts.store->SchemaVersion();
  absl::StatusOr<std::string> installation = parts.store->InstallationId();
  if (!installation.ok()) {
    return absl::Status(installation.status().code(),
                        absl::StrCat("state store ", state::RedactStoreUrl(state_url),
                                     ": reading the installation id: ",
                                     installation.status().message()));
  }
  parts.installation = *installation;
  spdlog::info("ephd {}: state in {} (schema version {}, installation {})", kVersion,
               state::RedactStoreUrl(state_url), schema.ok() ? *schema : -1, *installation);
  return absl::OkStatus();
}

// ephd's own reverse proxy, with EPH_GATEWAY_LISTEN only.
absl::Status StartGateway(const DaemonConfig& config, DaemonParts& parts) {
  if (config.gateway_listen.empty()) return absl::OkStatus();
  gateway::GatewayOptions options;
  uint16_t port = 0;
  if (auto s = SplitHostPort(config.gateway_listen, options.host, port); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("gateway: ", s.message()));
  }
  options.port = port;
  options.base_domain = config.base_domain;
  options.max_connections = config.gateway_max_connections;
  parts.backends = std::make_unique<gateway::StoreBackends>(*parts.store);
  gateway::StoreBackends* backends = parts.backends.get();
  parts.gateway = std::make_unique<gateway::Gateway>(
      options, [backends](std::string_view environment) { return backends->Find(environment); },
      gateway::StoreActivity(*parts.store), SystemClock::Instance(), &parts.metrics);
  if (auto s = parts.gateway->Start(); !s.ok()) {
    return absl::Status(s.code(), absl::StrCat("gateway: ", s.message()));
  }
  spdlog::info("ephd: gateway: serving *.{} on http://{}:{}", config.base_domain, options.host,
               parts.gateway->port());
  return absl::OkStatus();
}

// One policy for environments made by hand (the API) and by pull requests (the reconciler).
// Environments' URLs carry the gateway's port when ephd serves them itself.
absl::StatusOr<controller::LifecyclePolicy> MakeLifecycle(const DaemonConfig& config,
                                                          const DaemonParts& parts) {
  std::string public_url = config.public_url;
  if (public_url.empty() && parts.gateway) {
    public_url = absl::StrCat("http://{host}:", parts.gateway->port());
  }
  if (public_url.empty()) public_url = "https://{host}";
  if (public_url.find("{host}") == std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat(
        "public URL \"", public_url, "\" must contain {host}, e.g. https://{host}"));
  }
  controller::LifecyclePolicy lifecycle;
  lifecycle.base_domain = config.base_domain;
  lifecycle.url_template = public_url;
  return lifecycle;
}

absl::Status BuildDatabases(const DaemonConfig& config, DaemonParts& parts) {
  controller::SharedDatabaseServer shared;
  shared.admin_url = config.database_admin_url;
  shared.clone_spares = config.database_clone_spares;
  if (absl::Status s = controller::SetAppAddress(shared, config.database_app_host); !s.ok()) {
    return s;
  }
  auto databases = controller::ServerDatabases::Create(shared, parts.installation);
  if (!databases.ok()) return databases.status();
  parts.databases = std::move(*databases);
  if (!config.database_admin_url.empty()) {
    spdlog::info(
        "ephd: databases: one per environment on {} ({} spare clone{} per "
        "template), or on the environment's own server",
        state::RedactStoreUrl(config.database_admin_url), config.database_clone_spares,
        config.database_clone_spares == 1 ? "" : "s");
  } else {
    spdlog::info("ephd: databases: on the environment's own server only (no "
                 "EPH_DATABASE_ADMIN_URL)");
  }
  return absl::OkStatus();
}

// The values of eph.yaml's `environment.secrets`, read at each apply (a changed value reaches an
// environment with its next deploy). The start-up line says where, never what.
absl::Status BuildSecrets(const DaemonConfig& config, DaemonParts& parts) {
  auto secrets = controller::OpenSecretSources(
      config.secrets_dir, config.secrets_kubernetes_secret, config.kubeconfig);
  if (!secrets.ok()) return secrets.status();
  parts.secrets = std::move(*secrets);
  if (!parts.secrets) {
    spdlog::info("ephd: secrets: none (no EPH_SECRETS_DIR or EPH_SECRETS_KUBERNETES_SECRET): "
                 "environments naming a secret fail");
  } else {
    spdlog::info("ephd: secrets: from {}", parts.secrets->Describe());
  }
  return absl::OkStatus();
}

// The engine: forge, databases and the controller. Off (intake and API only) with --workers 0
// or without a forge.
absl::Status BuildController(const DaemonConfig& config,
                             const controller::LifecyclePolicy& lifecycle, Duration resync_interval,
                             DaemonParts& parts) {
  auto forge = MakeForge(config);
  if (config.workers == 0) {
    spdlog::info("ephd: reconciler: off (--workers 0: intake and API only)");
    return absl::OkStatus();
  }
  if (!forge.ok()) {
    spdlog::warn("ephd: reconciler: off ({}): webhooks are stored and queued, not acted on",
                 std::string(forge.status().message()));
    return absl::OkStatus();
  }
  parts.forge = std::move(*forge);
  parts.cached_forge = std::make_unique<forge::CachedForge>(*parts.forge);
  if (auto s = BuildDatabases(config, parts); !s.ok()) return s;
  if (auto s = BuildSecrets(config, parts); !s.ok()) return s;
  controller::EnvironmentControllerOptions options;
  options.reconciler.lifecycle = lifecycle;
  // While an environment comes up it is looked at again this often, in case its provider has
  // no change stream or the stream missed a change (both Kubernetes and Docker announce
  // changes, so readiness normally shows at once).
  options.reconciler.progress_poll = std::chrono::seconds(2);
  options.reconciler.installation = parts.installation;
  options.reconciler.databases = parts.databases.get();
  options.reconciler.secrets = parts.secrets.get();
  options.queue.workers = config.workers;
  // Leases are renewed every lease_for/3 while a reconcile runs, so a short lease costs
  // nothing and bounds how long a key stays stuck after its holder is killed (kill -9).
  options.queue.lease_for = std::chrono::seconds(30);
  options.queue.owner = controller::ProcessOwner();
  options.resync.databases = parts.databases.get();
  options.resync.installation = parts.installation;
  options.resync.interval = resync_interval;
  parts.controller = std::make_unique<controller::EnvironmentController>(
      *parts.store, *parts.cached_forge, parts.providers, parts.metrics, SystemClock::Instance(),
      SecureRandom::Instance(), std::move(options));
  spdlog::info("ephd: reconciler: {} workers, resync every {}", config.workers,
               config.resync_interval);
  return absl::OkStatus();
}

// Not ready while the workers are down or a listener has hit one of its limits lately
// (connections, descriptors, streams, body memory): a load balancer then sends elsewhere.
std::function<absl::Status()> ReadyCheck(const DaemonParts& parts) {
  return [&parts]() -> absl::Status {
    if (parts.controller && !parts.controller->running()) {
      return absl::UnavailableError("reconciler workers are not running");
    }
    if (parts.http) {
      if (absl::Status s = parts.http->Saturation(); !s.ok()) return s;
    }
    if (parts.gateway) {
      if (absl::Status s = parts.gateway->Saturation(); !s.ok()) return s;
    }
    return absl::OkStatus();
  };
}

// The webhook intake and the API behind the HTTP server.
void BuildApi(const DaemonConfig& config, const controller::LifecyclePolicy& lifecycle,
              DaemonParts& parts) {
  if (config.github_webhook_secret.empty()) {
    spdlog::warn("ephd: EPH_GITHUB_WEBHOOK_SECRET is unset: GitHub webhooks will be refused");
  }
  parts.intake = std::make_unique<webhook::WebhookIntake>(
      *parts.store, SystemClock::Instance(), parts.metrics, config.github_webhook_secret);
  api::ApiOptions options;
  options.version = kVersion;
  options.providers = &parts.providers;
  options.lifecycle = lifecycle;
  options.dashboard = dashboard::OpenDashboard(config.web_dir);
  if (parts.controller) {
    controller::EnvironmentController* controller = parts.controller.get();
    parts.intake->SetOnEnqueued([controller] { controller->Notify(); });
    options.on_enqueued = [controller] { controller->Notify(); };
  }
  options.ready_check = ReadyCheck(parts);
  parts.api = std::make_unique<api::ApiServer>(*parts.store, SystemClock::Instance(),
                                               parts.metrics, *parts.intake, options);
}

absl::Status StartHttp(const DaemonConfig& config, const std::string& host, uint16_t port,
                       DaemonParts& parts) {
  server::HttpServerOptions options;
  options.host = host;
  options.port = port;
  // The body limit is one byte above 25 MB: larger webhook bodies get 413.
  options.max_body_bytes = 25u * 1024 * 1024;
  options.max_connections = config.max_connections;
  options.max_streams = config.max_streams;
  api::ApiServer* api = parts.api.get();
  options.admit = [api](const server::HttpRequest& head, server::HttpResponse& res) {
    return api->Admit(head, res);
  };
  parts.http = std::make_unique<server::HttpServer>(
      options, [api](const server::HttpRequest& req, server::HttpResponse& res) {
        api->Handle(req, res);
      });
  if (auto s = parts.http->Start(); !s.ok()) return s;
  spdlog::info("ephd: listening on http://{}:{}",
               host.find(':') != std::string::npos ? "[" + host + "]" : host, parts.http->port());
  spdlog::info("ephd: limits: {} open files, {} API connections, {} streams{}",
               OpenFilesLimitText(), parts.http->max_connections(), config.max_streams,
               parts.gateway ? absl::StrCat(", ", parts.gateway->max_connections(),
                                            " gateway connections")
                             : std::string());
  return absl::OkStatus();
}

}  // namespace

Daemon::Daemon(DaemonConfig config) : config_(std::move(config)) {}
Daemon::~Daemon() { Stop(); }

absl::Status Daemon::Start() {
  RaiseOpenFilesLimit();
  ConfigureLogging(config_);
  auto parts = std::make_unique<DaemonParts>();
  std::string host;
  uint16_t port = 0;
  if (auto s = SplitHostPort(config_.listen, host, port); !s.ok()) return s;
  if (auto s = OpenState(config_, *parts); !s.ok()) return s;
  if (auto s = BuildProviders(config_, *parts); !s.ok()) return s;
  absl::StatusOr<Duration> resync_interval = ResyncInterval(config_);
  if (!resync_interval.ok()) return resync_interval.status();
  // The gateway starts before the reconciler: environments' URLs carry its port.
  if (auto s = StartGateway(config_, *parts); !s.ok()) return s;
  absl::StatusOr<controller::LifecyclePolicy> lifecycle = MakeLifecycle(config_, *parts);
  if (!lifecycle.ok()) return lifecycle.status();
  if (auto s = BuildController(config_, *lifecycle, *resync_interval, *parts); !s.ok()) return s;
  BuildApi(config_, *lifecycle, *parts);
  if (auto s = StartHttp(config_, host, port, *parts); !s.ok()) return s;
  if (parts->controller) parts->controller->Start();
  parts_ = std::move(parts);
  return absl::OkStatus();
}

void Daemon::Stop() {
  if (!parts_) return;
  // Stop taking requests first (in-flight ones finish), then let workers finish their items.
  if (parts_->http) parts_->http->Stop();
  if (parts_->gateway) parts_->gateway->Stop();
  if (parts_->controller) parts_->controller->Stop();
  parts_.reset();
}

}  // namespace eph::daemon
