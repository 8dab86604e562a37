// The subset of the Compose file format the Docker provider runs (docs/provider-docker.md has the
// table). Eph reads the compose file itself instead of running `docker compose`, so anything
// outside the subset is rejected with its file:line:column rather than silently ignored: a
// preview that quietly drops a `networks:` or a bind mount would behave differently from what
// the author wrote.
//
// Supported:
//   top level   services (required), volumes (named, no options but `labels`), version and
//               name (both ignored: the project name is Eph's), x-* extension fields (ignored)
//   service     image (required), command and entrypoint (string or list), environment (map or
//   KEY=VALUE
//               list), ports (short syntax "8080", "3000:8080", "127.0.0.1::8080",
//               "127.0.0.1:0:8080", optional /tcp or /udp), healthcheck{test, interval, timeout,
//               retries, start_period, start_interval, disable}, depends_on (list, or map with
//               `condition`: start order, and Apply waits for service_healthy /
//               _completed_successfully), volumes ("name:/path[:ro|rw]", the name declared at top
//               level), labels (map or list), pull_policy (always, missing, if_not_present, never)
//
// Thread-safety: pure functions.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace eph::providers::docker {

struct HealthCheck {
  // Engine form: {"CMD", args...}, {"CMD-SHELL", command} or {"NONE"} (disabled).
  std::vector<std::string> test;
  // Zero: the engine's default.
  absl::Duration interval = absl::ZeroDuration();
  absl::Duration timeout = absl::ZeroDuration();
  absl::Duration start_period = absl::ZeroDuration();
  // Between checks during start_period (Compose's start_interval; the engine's from API 1.44,
  // emulated by Eph on older engines: docs/provider-docker.md). Zero: `interval` throughout.
  absl::Duration start_interval = absl::ZeroDuration();
  int retries = 0;

  friend bool operator==(const HealthCheck&, const HealthCheck&) = default;
};

struct PortMapping {
  int container_port = 0;
  std::string protocol = "tcp";
  int host_port = 0;  // 0: ephemeral (the only choice unless the provider honours fixed ports)

  friend bool operator==(const PortMapping&, const PortMapping&) = default;
};

struct VolumeMount {
  std::string volume;  // the top-level volume's name, without the project prefix
  std::string target;  // absolute path in the container
  bool read_only = false;

  friend bool operator==(const VolumeMount&, const VolumeMount&) = default;
};

struct ComposeService {
  std::string name;
  std::string image;
  std::optional<std::vector<std::string>> command;     // the image's CMD when unset
  std::optional<std::vector<std::string>> entrypoint;  // the image's ENTRYPOINT when unset
  std::vector<std::string> environment;                // "KEY=VALUE", in file order
  std::vector<PortMapping> ports;
  std::optional<HealthCheck> healthcheck;
  std::vector<std::string> depends_on;
  // depends_on entries whose condition is service_healthy or service_completed_successfully:
  // Apply waits for that state of the dependency before creating this service.
  std::map<std::string, std::string> depends_on_condition;
  std::vector<VolumeMount> volumes;
  std::map<std::string, std::string> labels;
  // When the provider pulls `image`: "missing" (default; Compose's if_not_present is read as
  // it), "always" (on every Apply, so a tag CI pushed again is picked up) or "never".
  std::string pull_policy = "missing";
  int line = 0;  // 1-based, of the service's key, for messages
};

struct ComposeFile {
  std::vector<ComposeService> services;  // in file order
  std::vector<std::string> volumes;      // top-level named volumes
  std::map<std::string, std::map<std::string, std::string>> volume_labels;

  const ComposeService* Find(std::string_view service) const;
  // Services ordered so that each comes after everything it depends on (file order otherwise).
  std::vector<const ComposeService*> StartOrder() const;
};

// Parses `yaml`; `file_name` (relative to the repository) prefixes every message as
// "file:line:column: ...". InvalidArgument for malformed YAML, unknown or unsupported keys,
// bad values, unknown depends_on targets, undeclared volumes and dependency cycles.
[[nodiscard]] absl::StatusOr<ComposeFile> ParseComposeFile(std::string_view yaml,
                                                           std::string_view file_name);
// The same with Compose's variable interpolation in values ($NAME, ${NAME:-default}, ...) from
// `variables`; an unset variable without a default is InvalidArgument naming it.
[[nodiscard]] absl::StatusOr<ComposeFile> ParseComposeFile(
    std::string_view yaml, std::string_view file_name,
    const std::map<std::string, std::string>& variables);

// Splits a command string into words as a POSIX shell would for quoting ('...', "...", \),
// without expansions. InvalidArgument for an unterminated quote.
[[nodiscard]] absl::StatusOr<std::vector<std::string>> SplitCommand(std::string_view command);

}  // namespace eph::providers::docker
