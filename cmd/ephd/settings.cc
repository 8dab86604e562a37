#include "cmd/ephd/settings.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <filesystem>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

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
      {"github_api_url", "EPH_GITHUB_API_URL",
       "GitHub API base URL (Enterprise: https://HOST/api/v3)", &DaemonConfig::github_api_url,
       false},
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
      {"compose_path", "EPH_COMPOSE_PATH",
       "eph-compose, the Docker provider's compose loader (default: the tools/compose/build "
       "cache, then PATH)",
       &DaemonConfig::compose_path, false},
      {"registry_auth_file", "EPH_REGISTRY_AUTH_FILE",
       "credentials for pulling images, per registry, in Docker's config.json format (both "
       "providers; read at start-up)",
       &DaemonConfig::registry_auth_file, false},
      {"database_admin_url", "EPH_DATABASE_ADMIN_URL",
       "PostgreSQL (admin role with CREATEDB and CREATEROLE) for per-environment databases",
       &DaemonConfig::database_admin_url, true},
      {"database_app_host", "EPH_DATABASE_APP_HOST",
       "host[:port] apps use to reach that server (default: the admin URL's)",
       &DaemonConfig::database_app_host, false},
      {"secrets_dir", "EPH_SECRETS_DIR",
       "directory of the secrets eph.yaml may name (environment.secrets): one file per secret, "
       "named as it, holding its value",
       &DaemonConfig::secrets_dir, false},
      {"secrets_kubernetes_secret", "EPH_SECRETS_KUBERNETES_SECRET",
       "NAMESPACE/NAME (or NAME in ephd's own namespace, in a pod) of a Kubernetes Secret whose "
       "keys are secrets eph.yaml may name; read through the kubeconfig (after secrets_dir)",
       &DaemonConfig::secrets_kubernetes_secret, false},
      {"resync_interval", "EPH_RESYNC_INTERVAL", "how often every live environment is rechecked",
       &DaemonConfig::resync_interval, false},
      {"web_dir", "EPH_WEB_DIR",
       "serve the dashboard from this directory (web/dist) instead of the built-in one",
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


// sqlite:relative/path → sqlite:/absolute/path, so the banner says exactly where state lives.
std::string AbsoluteStateUrl(const std::string& url) {
  if (url.rfind("sqlite:", 0) != 0) return url;
  std::filesystem::path p(url.substr(7));
  return "sqlite:" + std::filesystem::absolute(p).lexically_normal().string();
}

}  // namespace eph::daemon
