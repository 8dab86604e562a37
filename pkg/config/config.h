// eph.yaml: how a repository tells Eph when to create a preview environment and what to put in
// it. The reference for users is docs/eph-yaml.md; docs_test.cc keeps it and KnownKeyPaths() in
// step.
//
// ParseConfig() turns the text of an eph.yaml into a ProjectConfig with every default filled
// in, or into diagnostics that name file, line and column and say what was expected. It checks
// everything it can without a cluster or the network, and reports all problems it finds (up to
// DiagnosticCollector::kMaxDiagnostics), sorted by position, not only the first.
//
// The text comes from pull requests, i.e. from anyone. Parsing is therefore defensive: input
// over 1 MiB, binary data, invalid UTF-8 and absurd nesting are refused before yaml-cpp runs;
// YAML aliases cannot blow up the work done; nothing throws out of this module; paths cannot
// leave the repository.
//
// Callers:
//   - `eph validate` calls ValidateFile() and prints FormatDiagnostics() or SummarizeConfig().
//   - the reconciler calls LoadConfig() on eph.yaml read at the pull request's head commit; an
//     error is InvalidArgument (terminal: shown to the user, not retried).
//
// Thread-safety: all functions are reentrant and share no state; ProjectConfig is a value.
#ifndef EPH_PKG_CONFIG_CONFIG_H_
#define EPH_PKG_CONFIG_CONFIG_H_

#include <filesystem>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "pkg/config/diagnostic.h"

namespace eph::config {

inline constexpr std::string_view kConfigVersion = "1.0";
inline constexpr std::string_view kDefaultNameTemplate = "{project}-{words}-{number}";
inline constexpr absl::Duration kDefaultTtl = absl::Hours(72);
inline constexpr std::string_view kDefaultComposeFile = "docker-compose.yml";
inline constexpr std::string_view kDefaultTriggerLabel = "preview";

enum class TriggerType {
  kPullRequestLabel,  // `type: pr_label`
};

// When a pull request gets an environment. All paths and patterns are relative to the
// repository root.
struct Trigger {
  TriggerType type = TriggerType::kPullRequestLabel;
  std::vector<std::string> labels;           // any one of them triggers; never empty
  std::vector<std::string> skip_labels;      // any one of them prevents the environment
  std::vector<std::string> wait_for_checks;  // check names that must succeed first
  bool include_drafts = false;
  // Globs, '!' excludes; empty: any change. Apply with PathFilterIncludesAny (repo_path.h).
  std::vector<std::string> paths;

  friend bool operator==(const Trigger&, const Trigger&) = default;
};

struct EnvironmentSettings {
  std::string name_template = std::string(kDefaultNameTemplate);
  absl::Duration ttl = kDefaultTtl;                    // always > 0
  absl::Duration idle_timeout = absl::ZeroDuration();  // zero: never idle out
  bool allow_forks = false;
  std::optional<std::string> base_domain;  // unset: the server's EPH_BASE_DOMAIN
  // On by default (issue 16): a name must not be guessable from the project and the PR number.
  // A policy key: only the default branch's eph.yaml can turn it off (policy.h).
  bool random_suffix = true;
  // What the app gets as environment variables besides Eph's own (the database's). `variables`:
  // name -> template (template.h), expanded for each deploy; the values are plain and may be
  // shown. `secrets`: names only, their values come from ephd's configuration, never from the
  // repository. Every name is an environment variable name, not reserved by Eph
  // (ReservedEnvNameReason) and in at most one of the two.
  std::map<std::string, std::string> variables;
  std::vector<std::string> secrets;

  bool has_idle_timeout() const { return idle_timeout > absl::ZeroDuration(); }
  friend bool operator==(const EnvironmentSettings&, const EnvironmentSettings&) = default;
};

// Replaces the tag of image `name` in the rendered manifests or compose file. `new_tag` is a
// template (template.h).
struct ImageOverride {
  std::string name;
  std::string new_tag;

  friend bool operator==(const ImageOverride&, const ImageOverride&) = default;
};

struct HelmRelease {
  std::string chart;                       // normalised repository path of the chart directory
  std::vector<std::string> values;         // normalised paths of values files, applied in order
  std::string release_name;                // given, or derived from the chart's directory name
  std::map<std::string, std::string> set;  // --set key=value; values are templates

  friend bool operator==(const HelmRelease&, const HelmRelease&) = default;
};

// The service that gets the environment's URL: `kubernetes.web` (the Service the Ingress Eph makes
// for an app without one points at) and `docker.web`.
struct WebService {
  std::string service;  // Kubernetes: a Service name (DNS-1035 label); Docker: a compose service
  int port = 0;         // Kubernetes: one of the Service's `port` numbers; 1-65535

  friend bool operator==(const WebService&, const WebService&) = default;
};
using KubernetesWebService = WebService;

inline constexpr absl::Duration kDefaultProgressDeadline = absl::Minutes(10);

struct KubernetesSettings {
  std::vector<std::string> manifests;  // normalised paths of kustomize directories or files
  std::vector<ImageOverride> images;
  std::vector<HelmRelease> helm;
  // Unset: the provider chooses (docs/provider-kubernetes.md, "Ingress").
  std::optional<KubernetesWebService> web;
  // How long an apply may take to become ready before the environment fails; always > 0.
  absl::Duration progress_deadline = kDefaultProgressDeadline;

  friend bool operator==(const KubernetesSettings&, const KubernetesSettings&) = default;
};

enum class DatabaseTemplateStrategy {
  kEmpty,  // no `template`: an empty database
  kSeed,   // run `seed.scripts` in order
  kClone,  // copy the provider's template database
};

// What a push whose seed scripts differ from the database's does (`template.on_seed_change`).
enum class DatabaseSeedChange {
  kKeep,    // keep the environment's data
  kReseed,  // replace it: seed (or clone) again
};

inline constexpr absl::Duration kDefaultSeedTimeout = absl::Minutes(10);

// Where an environment's database lives (`database.instances[].placement`).
enum class DatabasePlacement {
  kShared,       // a database and a role on the PostgreSQL server ephd is given
  kEnvironment,  // a PostgreSQL server of its own, run by the provider inside the environment
};

struct DatabaseInstance {
  std::string name;
  std::string version;
  DatabasePlacement placement = DatabasePlacement::kShared;
  std::string image;  // kEnvironment only: the server's image, "postgres:<version>" by default
  DatabaseTemplateStrategy strategy = DatabaseTemplateStrategy::kEmpty;
  // Normalised paths. Never empty for kSeed; for kClone the scripts that build the template
  // (empty: the provider keeps the template itself).
  std::vector<std::string> seed_scripts;
  absl::Duration seed_timeout = kDefaultSeedTimeout;  // always > 0
  DatabaseSeedChange on_seed_change = DatabaseSeedChange::kKeep;
  std::string sanitize_script;  // normalised path; kClone with seed scripts only; "" for none

  friend bool operator==(const DatabaseInstance&, const DatabaseInstance&) = default;
};

struct DatabaseSettings {
  bool enabled = false;  // true by default once a `database` section is present
  std::vector<DatabaseInstance> instances;

  friend bool operator==(const DatabaseSettings&, const DatabaseSettings&) = default;
};

using DockerWebService = WebService;

struct DockerSettings {
  std::string compose_file = std::string(kDefaultComposeFile);  // normalised path
  std::vector<ImageOverride> images;
  std::optional<DockerWebService> web;

  friend bool operator==(const DockerSettings&, const DockerSettings&) = default;
};

// A valid eph.yaml with defaults applied. At least one of `kubernetes` and `docker` is set.
struct ProjectConfig {
  std::string version = std::string(kConfigVersion);  // normalised: "1" reads as "1.0"
  std::string name;  // DNS-1123 label, the `{project}` template variable
  // Never empty: without `triggers` (or with `triggers: []`) a single pr_label trigger on
  // kDefaultTriggerLabel applies.
  std::vector<Trigger> triggers;
  EnvironmentSettings environment;
  std::optional<KubernetesSettings> kubernetes;
  DatabaseSettings database;
  std::optional<DockerSettings> docker;

  friend bool operator==(const ProjectConfig&, const ProjectConfig&) = default;
};

struct ValidationResult {
  std::optional<ProjectConfig> config;  // set exactly when `diagnostics` is empty
  std::vector<Diagnostic> diagnostics;  // sorted by position

  bool ok() const { return config.has_value(); }
};

// Parses and validates the text of an eph.yaml; `filename` is only used in diagnostics.
ValidationResult ParseConfig(std::string_view text, std::string_view filename = "eph.yaml");

// Reads `path` (refusing files over 1 MiB without reading them) and parses it. Diagnostics name
// the file as `path` was given. An unreadable file is one diagnostic without a position.
ValidationResult ValidateFile(const std::filesystem::path& path);

// ParseConfig for callers that want a Status: InvalidArgument whose message is the formatted
// diagnostics, one per line.
[[nodiscard]] absl::StatusOr<ProjectConfig> LoadConfig(std::string_view text,
                                                       std::string_view filename = "eph.yaml");

// One line for `eph validate`:
// "eph.yaml: valid (project my-app, 1 trigger, 2 manifest paths, 1 database)".
std::string SummarizeConfig(const ProjectConfig& config, std::string_view filename);

// True for a POSIX-style environment variable name: [A-Za-z_][A-Za-z0-9_]*.
bool IsEnvVarName(std::string_view name);

// Why Eph keeps `name` for itself (it sets it for the app: DATABASE_URL, <INSTANCE>_DATABASE_URL,
// the PG* settings libpq reads), or nullopt when eph.yaml may set it.
std::optional<std::string> ReservedEnvNameReason(std::string_view name);

// Every key eph.yaml accepts, as a path: "environment.ttl", "triggers[].labels". Sections are
// listed too ("environment"). Keys under `kubernetes.helm[].set` are the user's own and are
// not listed. Order is the order of docs/eph-yaml.md.
std::span<const std::string_view> KnownKeyPaths();

}  // namespace eph::config

#endif  // EPH_PKG_CONFIG_CONFIG_H_
