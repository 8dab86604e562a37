// ephd's settings: every flag with its EPH_* environment variable and config-file key, in one
// table (settings.cc), and the checks on them.
//
// Thread-safety: call from main's thread.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "absl/status/status.h"

namespace eph::daemon {

inline constexpr char kVersion[] = "0.1.0";

struct DaemonConfig {
  std::string listen = "127.0.0.1:8080";
  std::string state = "sqlite:./eph-data/eph.db";
  std::string base_domain = "preview.localhost";
  std::string gateway_listen;  // host:port of the preview gateway; empty: no gateway
  std::string public_url;      // URL template of environments ({host}); empty: see daemon.cc
  std::string github_webhook_secret;
  std::string github_api_url = "https://api.github.com";
  std::string github_token;
  std::string github_app_id;
  std::string github_private_key_file;
  std::string kubeconfig;
  std::string kustomize_path;  // empty: `kustomize` on PATH
  std::string compose_path;    // empty: the tools/compose/build cache, then PATH
  std::string helm_path;       // empty: `helm` on PATH
  std::string docker_host;
  std::string registry_auth_file;  // Docker config.json of pull credentials; empty: none
  std::string database_admin_url;  // shared PostgreSQL for per-environment databases; secret
  std::string database_app_host;   // how apps reach that server, if not as ephd does
  std::string secrets_dir;         // eph.yaml `environment.secrets`: one file per secret
  std::string secrets_kubernetes_secret;  // ... or keys of this Secret ([NAMESPACE/]NAME)
  int workers = 4;
  int database_clone_spares = 0;  // ready copies of each project's newest template
  int max_connections = 0;          // API port; 0: from the open-files limit
  int gateway_max_connections = 0;  // gateway port; 0: from the open-files limit
  int max_streams = 256;            // event and log streams at once
  std::string resync_interval = "5m";
  // A directory to serve the dashboard from; empty: the dashboard built into ephd.
  std::string web_dir;
  std::string log_format = "text";  // text | json
  std::string log_level = "info";
};

// Declares every setting as a flag with its EPH_* environment variable.
void AddFlags(CLI::App& app, DaemonConfig& config);

// InvalidArgument naming the valid values if log_level or log_format is not one of them.
absl::Status CheckLogSettings(const DaemonConfig& config);

// Makes `app` (and its subcommands) report a usage error as one line on stderr:
// "ephd: <what is wrong> (see ephd --help)".
void UseOneLineUsageErrors(CLI::App& app);

// Fills settings not given as flag or environment variable from a YAML file whose keys are the
// flag names without dashes (listen, state, base_domain, github_webhook_secret, ...). Unknown
// keys are errors naming the file and line.
absl::Status ApplyConfigFile(const CLI::App& app, const std::string& path, DaemonConfig& config);

// sqlite:relative/path → sqlite:/absolute/path, so messages say exactly where state lives.
std::string AbsoluteStateUrl(const std::string& url);

}  // namespace eph::daemon
