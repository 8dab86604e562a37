// The model of a compose project the Docker provider deploys: what compose_loader.h makes of
// compose-go's normalised project once Eph's preview policy has accepted it (docs/
// provider-docker.md has the accepted keys and what each means in a preview).
//
// Thread-safety: plain values.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

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
  // The top-level volume's name, without the project prefix; empty for an anonymous volume
  // (a fresh one per container, removed with it).
  std::string volume;
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
  // Engine restart policy: "no" (default), "always", "unless-stopped", "on-failure".
  std::string restart = "no";
  int restart_max_retries = 0;      // on-failure:N
  std::vector<PortMapping> expose;  // exposed to the environment's network only, never published
  // Extra network aliases: `container_name` (the container itself keeps Eph's unique name) and
  // the aliases of `networks.*.aliases`, all on the environment's one network.
  std::vector<std::string> aliases;
  std::string user;         // "" : the image's
  std::string working_dir;  // "" : the image's
  // deploy.resources: 0 means no limit.
  int64_t nano_cpus = 0;
  int64_t memory_bytes = 0;
  int64_t memory_reservation_bytes = 0;
  int64_t pids_limit = 0;
  int line = 0;  // 1-based, of the service's key, for messages
};

struct ComposeFile {
  std::vector<ComposeService> services;  // in file order
  std::vector<std::string> volumes;      // top-level named volumes
  std::map<std::string, std::map<std::string, std::string>> volume_labels;
  // Top-level networks besides `default`: accepted, and all of one environment's services share
  // the environment's own network (never another environment's).
  std::vector<std::string> networks;

  const ComposeService* Find(std::string_view service) const;
  // Services ordered so that each comes after everything it depends on (file order otherwise).
  std::vector<const ComposeService*> StartOrder() const;
};

}  // namespace eph::providers::docker
