#include "cmd/ephd/daemon.h"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <string_view>
#include <unordered_map>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "pkg/api/api.h"
#include "pkg/api/tokens.h"
#include "pkg/base/clock.h"
#include "pkg/base/listener_limits.h"
#include "pkg/base/metrics.h"
#include "pkg/base/random.h"
#include "pkg/config/duration.h"
#include "pkg/controller/databases.h"
#include "pkg/controller/env_record.h"
#include "pkg/controller/metrics.h"
#include "pkg/controller/provider_changes.h"
#include "pkg/controller/reconciler.h"
#include "pkg/controller/resync.h"
#include "pkg/controller/work_queue_runner.h"
#include "pkg/database/database_manager.h"
#include "pkg/forge/cached_forge.h"
#include "pkg/forge/forge.h"
#include "pkg/forge/github/github_forge.h"
#include "pkg/gateway/gateway.h"
#include "pkg/providers/docker/docker_provider.h"
#include "pkg/providers/kubernetes/kubernetes_provider.h"
#include "pkg/providers/provider.h"
#include "pkg/server/http_server.h"
#include "pkg/state/store.h"
#include "pkg/webhook/intake.h"

namespace eph::daemon {

namespace {

struct Setting {
  const char* key;  // YAML key and flag name (with '_' → '-')
  const char* env;
  const char* help;
  std::string DaemonConfig::*field;
  bool secret;
};

const std::vector<Setting>& Settings() {
  static const std::vector<Setting> settings = {
      {"listen", "EPH_LISTEN", "host:port to serve HTTP on", &DaemonConfig::listen, false},
      {"state", "EPH_STATE", "state store: sqlite:PATH or postgres://...", &DaemonConfig::state,
       false},
      {"base_domain", "EPH_BASE_DOMAIN", "environments are https://<name>.<base_domain>",
       &DaemonConfig::base_domain, false},
      {"gateway_listen", "EPH_GATEWAY_LISTEN",
       "host:port to serve *.<base_domain> on, proxying to Docker environments (empty: off)",
       &DaemonConfig::gateway_listen, false},
      {"public_url", "EPH_PUBLIC_URL",
       "environments' URL, {host} = <name>.<base_domain> (default https://{host}, or "
       "http://{host}:<gateway port> with the gateway)",
       &DaemonConfig::public_url, false},
      {"github_webhook_secret", "EPH_GITHUB_WEBHOOK_SECRET", "secret GitHub signs webhooks with",
       &DaemonConfig::github_webhook_secret, true},
      {"github_api_url", "EPH_GITHUB_API_URL", "GitHub API base URL (Enterprise: https://HOST/api/v3)",
       &DaemonConfig::github_api_url, false},
      {"github_token", "EPH_GITHUB_TOKEN", "personal access token (instead of a GitHub App)",
       &DaemonConfig::github_token, true},
      {"github_app_id", "EPH_GITHUB_APP_ID", "GitHub App id", &DaemonConfig::github_app_id, false},
      {"github_private_key_file", "EPH_GITHUB_PRIVATE_KEY_FILE", "GitHub App private key (PEM)",
       &DaemonConfig::github_private_key_file, false},
      {"kubeconfig", "EPH_KUBECONFIG", "kubeconfig for the Kubernetes provider",
       &DaemonConfig::kubeconfig, false},
      {"kustomize_path", "EPH_KUSTOMIZE_PATH", "the kustomize binary (default: kustomize on PATH)",
       &DaemonConfig::kustomize_path, false},
      {"helm_path", "EPH_HELM_PATH", "the helm binary (default: helm on PATH)",
       &DaemonConfig::helm_path, false},
      {"docker_host", "EPH_DOCKER_HOST", "Docker engine for the Docker provider (unix://...)",
       &DaemonConfig::docker_host, false},
      {"database_admin_url", "EPH_DATABASE_ADMIN_URL",
       "PostgreSQL (admin role with CREATEDB and CREATEROLE) for per-environment databases",
       &DaemonConfig::database_admin_url, true},
      {"database_app_host", "EPH_DATABASE_APP_HOST",
       "host[:port] apps use to reach that server (default: the admin URL's)",
       &DaemonConfig::database_app_host, false},
      {"resync_interval", "EPH_RESYNC_INTERVAL", "how often every live environment is rechecked",
       &DaemonConfig::resync_interval, false},
      {"web_dir", "EPH_WEB_DIR", "the dashboard's built files (web/dist), served at /",
       &DaemonConfig::web_dir, false},
      {"log_format", "EPH_LOG_FORMAT", "text or json", &DaemonConfig::log_format, false},
      {"log_level", "EPH_LOG_LEVEL", "debug, info, warn or error", &DaemonConfig::log_level, false},
  };
  return settings;
}

std::string FlagName(const char* key) {
  std::string flag = absl::StrCat("--", key);
  for (char& c : flag) {
    if (c == '_') c = '-';
  }
  return flag;
}

absl::Status SplitHostPort(const std::string& listen, std::string& host, uint16_t& port) {
  const auto colon = listen.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("listen address \"", listen, "\" must be host:port, e.g. 127.0.0.1:8080"));
  }
  host = listen.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  const std::string port_text = listen.substr(colon + 1);
  char* end = nullptr;
  const long p = std::strtol(port_text.c_str(), &end, 10);
  if (port_text.empty() || *end != '\0' || p < 0 || p > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("listen port \"", port_text, "\" is not 0-65535"));
  }
  port = static_cast<uint16_t>(p);
  return absl::OkStatus();
}

// sqlite:relative/path → sqlite:/absolute/path, so the banner says exactly where state lives.
std::string AbsoluteStateUrl(const std::string& url) {
  if (url.rfind("sqlite:", 0) != 0) return url;
  std::filesystem::path p(url.substr(7));
  return "sqlite:" + std::filesystem::absolute(p).lexically_normal().string();
}

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

namespace {

// The numeric settings, with their ranges, for the flags and the config file alike.
struct NumericSetting {
  const char* key;  // YAML key and flag name (with '_' → '-')
  const char* env;
  const char* help;
  int DaemonConfig::*field;
  int low;
  int high;
};

const std::vector<NumericSetting>& NumericSettings() {
  static const std::vector<NumericSetting> settings = {
      {"workers", "EPH_WORKERS", "reconciler worker threads (0: intake only, no reconciling)",
       &DaemonConfig::workers, 0, 64},
      {"database_clone_spares", "EPH_DATABASE_CLONE_SPARES",
       "ready copies of each project's newest template on the shared database server, so a "
       "`clone` is a rename (each costs the template's size on disk)",
       &DaemonConfig::database_clone_spares, 0, 20},
      {"max_connections", "EPH_MAX_CONNECTIONS",
       "open connections to the API port at most (0: a quarter of the open-files limit); at the "
       "limit the connection idle the longest is closed to make room",
       &DaemonConfig::max_connections, 0, 1'000'000},
      {"gateway_max_connections", "EPH_GATEWAY_MAX_CONNECTIONS",
       "open connections to the preview gateway at most (0: half of the open-files limit)",
       &DaemonConfig::gateway_max_connections, 0, 1'000'000},
      {"max_streams", "EPH_MAX_STREAMS", "open event and log streams at most",
       &DaemonConfig::max_streams, 1, 100'000},
  };
  return settings;
}

}  // namespace

absl::Status CheckLogSettings(const DaemonConfig& config) {
  // spdlog reads any other word as "off": a typo would silence ephd completely.
  constexpr std::string_view kLevels[] = {"debug", "info", "warn", "error"};
  if (std::find(std::begin(kLevels), std::end(kLevels), config.log_level) == std::end(kLevels)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "log level \"", config.log_level,
        "\" is not one of debug, info, warn, error (--log-level, EPH_LOG_LEVEL or log_level)"));
  }
  if (config.log_format != "text" && config.log_format != "json") {
    return absl::InvalidArgumentError(
        absl::StrCat("log format \"", config.log_format,
                     "\" is not one of text, json (--log-format, EPH_LOG_FORMAT or log_format)"));
  }
  return absl::OkStatus();
}

void UseOneLineUsageErrors(CLI::App& app) {
  // Subcommands inherit the failure message only if it is set before they are added, so it is
  // set on each.
  auto one_line = [](const CLI::App*, const CLI::Error& e) {
    return absl::StrCat("ephd: ", e.what(), " (see ephd --help)\n");
  };
  app.failure_message(one_line);
  for (CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; })) {
    UseOneLineUsageErrors(*sub);
  }
}

void AddFlags(CLI::App& app, DaemonConfig& config) {
  for (const auto& s : Settings()) {
    app.add_option(FlagName(s.key), config.*(s.field), s.help)->envname(s.env);
  }
  for (const auto& s : NumericSettings()) {
    app.add_option(FlagName(s.key), config.*(s.field), s.help)
        ->envname(s.env)
        ->check(CLI::Range(s.low, s.high));
  }
}

absl::Status ApplyConfigFile(const CLI::App& app, const std::string& path, DaemonConfig& config) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::BadFile&) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": cannot read the config file"));
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(path, ":", e.mark.line + 1, ":",
                                                   e.mark.column + 1, ": ", e.msg));
  }
  if (root.IsNull()) return absl::OkStatus();
  if (!root.IsMap()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": expected a mapping of settings"));
  }
  for (const auto& kv : root) {
    const std::string key = kv.first.as<std::string>("");
    const auto mark = kv.first.Mark();
    const auto where = absl::StrCat(path, ":", mark.line + 1, ":", mark.column + 1);
    if (!kv.second.IsScalar()) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": ", key, " must be a scalar"));
    }
    const std::string value = kv.second.as<std::string>();
    // The numeric settings.
    if (const auto numeric =
            std::find_if(NumericSettings().begin(), NumericSettings().end(),
                         [&key](const NumericSetting& s) { return key == s.key; });
        numeric != NumericSettings().end()) {
      if (app.get_option(FlagName(numeric->key))->count() == 0) {
        int n = -1;
        if (!absl::SimpleAtoi(value, &n) || n < numeric->low || n > numeric->high) {
          return absl::InvalidArgumentError(absl::StrCat(where, ": ", key, " must be a number from ",
                                                         numeric->low, " to ", numeric->high));
        }
        config.*(numeric->field) = n;
      }
      continue;
    }
    const Setting* found = nullptr;
    for (const auto& s : Settings()) {
      if (key == s.key) found = &s;
    }
    if (found == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": unknown setting \"", key, "\""));
    }
    // Flags and environment variables win over the file.
    if (app.get_option(FlagName(found->key))->count() == 0) config.*(found->field) = value;
  }
  return absl::OkStatus();
}

namespace {

// The gateway's view of the store: an environment's backend (the provider's 127.0.0.1 port), kept
// for a second so the proxy's hot path rarely reads the database.
class BackendLookup {
 public:
  explicit BackendLookup(state::Store& store) : store_(store) {}

  std::optional<gateway::Backend> Find(std::string_view name) {
    const auto now = std::chrono::steady_clock::now();
    const std::string key(name);
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = cache_.find(key);
      if (it != cache_.end() && now - it->second.fetched < kFresh) return it->second.backend;
    }
    std::optional<gateway::Backend> backend = Read(key);
    std::lock_guard<std::mutex> lock(mu_);
    if (cache_.size() > kMaxEntries) cache_.clear();  // unknown names must not grow it forever
    cache_[key] = {backend, now};
    return backend;
  }

 private:
  static constexpr auto kFresh = std::chrono::seconds(1);
  static constexpr size_t kMaxEntries = 10000;
  struct Entry {
    std::optional<gateway::Backend> backend;
    std::chrono::steady_clock::time_point fetched;
  };

  std::optional<gateway::Backend> Read(const std::string& name) {
    absl::StatusOr<std::optional<state::Environment>> env = store_.GetEnvironment(name);
    if (!env.ok() || !env->has_value()) return std::nullopt;
    const state::EnvState st = (*env)->state;
    if (st != state::EnvState::kReady && st != state::EnvState::kUpdating) return std::nullopt;
    // "http://127.0.0.1:PORT" as the Docker provider reports it.
    const std::string url = controller::ParseEnvRecord((*env)->spec_json).backend_url;
    constexpr std::string_view kPrefix = "http://";
    if (url.rfind(kPrefix, 0) != 0) return std::nullopt;
    std::string host;
    uint16_t port = 0;
    std::string authority = url.substr(kPrefix.size());
    authority = authority.substr(0, authority.find('/'));
    if (!SplitHostPort(authority, host, port).ok() || port == 0) return std::nullopt;
    return gateway::Backend{host, port};
  }

  state::Store& store_;
  std::mutex mu_;
  std::unordered_map<std::string, Entry> cache_;
};

}  // namespace

struct Daemon::Parts {
  MetricsRegistry metrics;
  std::unique_ptr<state::Store> store;
  std::unique_ptr<webhook::WebhookIntake> intake;
  std::unique_ptr<api::ApiServer> api;
  std::unique_ptr<server::HttpServer> http;
  std::unique_ptr<BackendLookup> backends;
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

// The controller's view of pkg/database: one database per environment, on the shared server
// ephd is given (EPH_DATABASE_ADMIN_URL, optional) or on the environment's own server.
class EnvironmentDatabasesOnServers final : public controller::EnvironmentDatabases {
 public:
  // `shared` may be null: then only servers of the environments' own are served.
  EnvironmentDatabasesOnServers(std::unique_ptr<database::DatabaseManager> shared,
                                std::string installation)
      : shared_(std::move(shared)), installation_(std::move(installation)) {}

  absl::StatusOr<std::map<std::string, std::string>> Ensure(
      const std::string& environment, const std::string& key, const std::string& project,
      const std::string& source_dir, const config::DatabaseInstance& instance,
      const controller::DatabaseServerAccess* server) override {
    database::EnsureRequest request;
    request.environment = environment;
    request.instance = key;
    request.project = project;
    request.source_dir = source_dir;
    request.database = database::SpecFromConfig(instance);
    std::unique_ptr<database::DatabaseManager> own;
    database::DatabaseManager* manager = shared_.get();
    if (server != nullptr) {
      // One manager per call: the server is the environment's, reached at the address the
      // provider reports now (a Docker port can change when the container is replaced).
      database::DatabaseManagerOptions options;
      options.admin_url = server->admin_url;
      options.app_host = server->app_host;
      options.app_port = server->app_port;
      options.installation = installation_;
      absl::StatusOr<std::unique_ptr<database::DatabaseManager>> made =
          database::DatabaseManager::Create(std::move(options));
      if (!made.ok()) return made.status();
      own = std::move(*made);
      manager = own.get();
    } else if (manager == nullptr) {
      return absl::FailedPreconditionError(
          "eph.yaml asks for a database on the shared server, but this ephd has none (set "
          "EPH_DATABASE_ADMIN_URL), or give the environment a server of its own with "
          "`placement: environment`");
    }
    absl::StatusOr<database::EnsureResult> ensured = manager->Ensure(request);
    if (!ensured.ok()) return ensured.status();
    return ensured->credentials.env;
  }
  absl::Status Drop(const std::string& environment) override {
    if (shared_ == nullptr) return absl::OkStatus();  // nothing of it can be on a shared server
    return shared_->Drop(environment);
  }
  absl::StatusOr<std::set<std::string>> EnvironmentsWithDatabases() override {
    std::set<std::string> out;
    if (shared_ == nullptr) return out;
    absl::StatusOr<std::vector<database::OwnedObject>> owned = shared_->ListOwned();
    if (!owned.ok()) return owned.status();
    for (const database::OwnedObject& o : *owned) {
      if (!o.environment.empty()) out.insert(o.environment);
    }
    return out;
  }

 private:
  std::unique_ptr<database::DatabaseManager> shared_;
  const std::string installation_;
};

absl::StatusOr<std::unique_ptr<controller::EnvironmentDatabases>> MakeDatabases(
    const DaemonConfig& config, const std::string& installation) {
  std::unique_ptr<database::DatabaseManager> shared;
  if (!config.database_admin_url.empty()) {
    database::DatabaseManagerOptions options;
    options.admin_url = config.database_admin_url;
    options.installation = installation;
    options.clone_spares = config.database_clone_spares;
    if (!config.database_app_host.empty()) {
      std::string host;
      uint16_t port = 0;
      if (config.database_app_host.find(':') != std::string::npos &&
          SplitHostPort(config.database_app_host, host, port).ok()) {
        options.app_host = host;
        options.app_port = port;
      } else {
        options.app_host = config.database_app_host;
      }
    }
    absl::StatusOr<std::unique_ptr<database::DatabaseManager>> manager =
        database::DatabaseManager::Create(std::move(options));
    if (!manager.ok()) {
      return absl::Status(manager.status().code(),
                          absl::StrCat("database server: ", manager.status().message()));
    }
    shared = std::move(*manager);
  }
  return std::unique_ptr<controller::EnvironmentDatabases>(
      std::make_unique<EnvironmentDatabasesOnServers>(std::move(shared), installation));
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
    parts->backends = std::make_unique<BackendLookup>(*parts->store);
    BackendLookup* backends = parts->backends.get();
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
    options.base_domain = config_.base_domain;
    options.url_template = public_url;
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
  api_options.base_domain = config_.base_domain;
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

std::string DefaultWebDir() {
#ifdef EPH_DEFAULT_WEB_DIR
  std::error_code ec;
  if (std::filesystem::is_regular_file(std::string(EPH_DEFAULT_WEB_DIR) + "/index.html", ec)) {
    return EPH_DEFAULT_WEB_DIR;
  }
#endif
  return "";
}

void AddTokenCommands(CLI::App& app, TokenCommand& command) {
  command.token = app.add_subcommand("token", "manage API tokens (in the state store)");
  command.token->require_subcommand(1);
  // --state, --config and the other settings may follow the subcommand.
  command.token->fallthrough();
  command.create = command.token->add_subcommand(
      "create", "create a token and print its secret (shown only this once)");
  command.create->add_option("--name", command.name, "a name for the token, e.g. who uses it")
      ->required();
  command.create->add_option("--scope", command.scope, "read (GET only) or write")
      ->check(CLI::IsMember({"read", "write"}));
  command.create->fallthrough();
  command.list = command.token->add_subcommand("list", "list tokens (never their secrets)");
  command.list->add_option("-o,--output", command.output, "table or json")
      ->check(CLI::IsMember({"table", "json"}));
  command.list->fallthrough();
  command.revoke = command.token->add_subcommand("revoke", "revoke a token by name");
  command.revoke->add_option("--name", command.name, "the token's name")->required();
  command.revoke->fallthrough();
}

int RunTokenCommand(const TokenCommand& command, const DaemonConfig& config) {
  if (command.token == nullptr || !command.token->parsed()) return -1;
  // Keep the store's own logging off stdout: `token create` prints the secret there.
  spdlog::set_default_logger(spdlog::stderr_color_mt("ephd-token"));
  spdlog::set_level(spdlog::level::warn);
  const std::string state_url = AbsoluteStateUrl(config.state);
  auto store = state::OpenStore(state_url);
  if (!store.ok()) {
    std::fprintf(stderr, "ephd: state store %s: %s\n", state::RedactStoreUrl(state_url).c_str(),
                 std::string(store.status().message()).c_str());
    return 1;
  }
  const TimePoint now = SystemClock::Instance().Now();
  if (command.create->parsed()) {
    state::ApiToken token;
    token.name = command.name;
    token.scope = command.scope == "write" ? state::TokenScope::kWrite : state::TokenScope::kRead;
    const std::string secret = api::GenerateTokenSecret(SecureRandom::Instance());
    token.hash = api::HashToken(secret);
    token.created_at = now;
    auto created = (*store)->CreateToken(token);
    if (!created.ok()) {
      std::fprintf(stderr, "ephd: token %s: %s\n", command.name.c_str(),
                   std::string(created.status().message()).c_str());
      return created.status().code() == absl::StatusCode::kAlreadyExists ? 2 : 1;
    }
    std::printf("Created %s token \"%s\". Its secret is shown only now; use it as EPH_TOKEN:\n",
                command.scope.c_str(), command.name.c_str());
    std::printf("%s\n", secret.c_str());
    return 0;
  }
  if (command.list->parsed()) {
    auto tokens = (*store)->ListTokens();
    if (!tokens.ok()) {
      std::fprintf(stderr, "ephd: %s\n", std::string(tokens.status().message()).c_str());
      return 1;
    }
    if (command.output == "json") {
      std::string out = "[";
      for (size_t i = 0; i < tokens->size(); ++i) {
        const auto& t = (*tokens)[i];
        out += absl::StrCat(i ? "," : "", "{\"name\":\"", t.name, "\",\"scope\":\"",
                            t.scope == state::TokenScope::kWrite ? "write" : "read",
                            "\",\"created_at\":\"", FormatRfc3339(t.created_at),
                            "\",\"revoked_at\":",
                            t.revoked_at ? "\"" + FormatRfc3339(*t.revoked_at) + "\"" : "null",
                            "}");
      }
      std::printf("%s]\n", out.c_str());
      return 0;
    }
    if (tokens->empty()) {
      std::printf("No tokens. Create one: ephd token create --name NAME --scope read|write\n");
      return 0;
    }
    size_t width = 4;
    for (const auto& t : *tokens) width = std::max(width, t.name.size());
    std::printf("%-*s  %-5s  %-24s  %s\n", static_cast<int>(width), "NAME", "SCOPE", "CREATED",
                "REVOKED");
    for (const auto& t : *tokens) {
      std::printf("%-*s  %-5s  %-24s  %s\n", static_cast<int>(width), t.name.c_str(),
                  t.scope == state::TokenScope::kWrite ? "write" : "read",
                  FormatRfc3339(t.created_at).c_str(),
                  t.revoked_at ? FormatRfc3339(*t.revoked_at).c_str() : "-");
    }
    return 0;
  }
  if (command.revoke->parsed()) {
    absl::Status s = (*store)->RevokeToken(command.name, now);
    if (!s.ok()) {
      std::fprintf(stderr, "ephd: token %s: %s\n", command.name.c_str(),
                   std::string(s.message()).c_str());
      return s.code() == absl::StatusCode::kNotFound ? 5 : 1;
    }
    std::printf("Revoked token \"%s\".\n", command.name.c_str());
    return 0;
  }
  return 2;
}

}  // namespace eph::daemon
