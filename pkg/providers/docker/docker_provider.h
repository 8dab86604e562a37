// DockerProvider: an environment is its own compose-like project on one Docker engine, driven
// through the Engine API over its unix socket (engine_client.h); the compose file is loaded by
// compose-go through eph-compose and checked against Eph's preview policy (compose_loader.h).
// docs/provider-docker.md has the user's view.
//
//   Apply     the `docker:` section of eph.yaml (config_json) names the compose file (read from
//             source_dir, or from sources) and the web service -> every image is pulled per its
//             service's pull_policy (image_pull.h: missing by default, always, never) with the
//             configured registry credentials, and must then be on the engine (a failed pull or
//             a missing image is an error before anything is created) -> network
//             <project>_default, volumes <project>_<name> -> containers <project>-<service>-1 in
//             dependency order, waiting (up to health_timeout) for depends_on conditions
//             service_healthy / service_completed_successfully. A container whose
//             eph.dev/config-hash still matches and which runs is left alone; any other is
//             replaced; containers of services dropped from the compose file are removed. A create
//             or start error (port taken, bad command) is FailedPrecondition with the engine's
//             message, and what this Apply created is removed again (all of the project when
//             nothing of it existed before).
//   Observe   per service: running without healthcheck or healthy -> ready; health starting ->
//             progressing, or failed once it has been starting longer than health_timeout;
//             unhealthy, restarting, exited (non-zero, or any exit of the web service) -> failed
//             with the reason and the container's last log lines. url is
//             http://127.0.0.1:<published port> of the web service.
//   Destroy   force-removes the containers, then the network and the volumes; done when nothing
//             labelled with the environment is left.
//   Logs      per service (/containers/{id}/logs, demultiplexed); NotFound for an unknown one.
//   ListOwned containers, networks and volumes labelled eph.dev/managed-by=eph.
//
// Every object carries the request's labels (eph.dev/managed-by, eph.dev/environment) plus
// com.docker.compose.project/service; objects are found by those labels only. An existing
// network, volume or container with Eph's name but without the environment's labels is
// FailedPrecondition: Eph never touches what it does not own.
//
// Settings (ProviderSettings::values):
//   docker_host       unix:///path (default unix:///var/run/docker.sock)
//   request_timeout   one Engine API call (default 60s)
//   connect_timeout   connecting to the socket (default 5s)
//   health_timeout    how long a service may stay unhealthy-but-starting, and how long Apply
//                     waits for a depends_on condition (default 5m)
//   log_tail_lines    LogsRequest::tail_lines == 0 (default 200)
//   fixed_host_ports  true: a host port written in the compose file is used (on 127.0.0.1);
//                     false (default): every port gets an ephemeral host port, so environments
//                     never clash
//   registry_auth_file  Docker config.json with per-registry credentials for pulls
//                     (registry_auth.h); read once, when the provider is made: a malformed file
//                     stops ephd at start-up
//   compose_path      the eph-compose binary (tools/compose/build); default: the newest build in
//                     the tools cache, else eph-compose on PATH
//   base_domain       accepted and unused (ephd passes it to every provider)
//
// healthcheck.start_interval goes to the engine when it speaks API 1.44 (read once from
// /version); on older engines Eph emulates it (start_probe.h): Observe counts a `starting`
// container ready once Eph's own check of it passed, and WatchChanges announces that pass.
//
// Thread-safety: every method may be called from many threads at once; the provider keeps no
// state between calls (everything is read back from the engine) but the emulation's record of
// checks that passed and the engine's API version.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <stop_token>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "pkg/base/clock.h"
#include "pkg/providers/docker/compose_loader.h"
#include "pkg/providers/docker/container_spec.h"
#include "pkg/providers/docker/engine_client.h"
#include "pkg/providers/docker/start_probe.h"
#include "pkg/providers/provider.h"
#include "pkg/providers/registry_auth.h"

namespace eph::providers::docker {

inline constexpr char kProviderName[] = "docker";
inline constexpr char kDefaultDockerHost[] = "unix:///var/run/docker.sock";

struct DockerProviderOptions {
  EngineClientOptions engine;
  absl::Duration health_timeout = absl::Minutes(5);
  int64_t log_tail_lines = 200;
  bool fixed_host_ports = false;
  RegistryAuth registry_auth;    // credentials for pulls, from registry_auth_file
  const Clock* clock = nullptr;  // health_timeout; null: the system clock
  ComposeLoaderOptions compose;  // eph-compose: compose_path
  // Whether the start_interval emulation (start_probe.h) runs its checks on a thread of its
  // own; tests that drive it with a FakeClock turn it off and call start_prober().RunDue().
  bool start_probe_thread = true;
};

// Settings -> options. InvalidArgument naming the setting.
[[nodiscard]] absl::StatusOr<DockerProviderOptions> ParseDockerSettings(
    const ProviderSettings& settings);

// The `docker:` section of config_json (pkg/controller/render.cc writes it):
//   {"docker": {"compose_file": "...", "images": [...], "web": {"service": "web", "port": 8080}}}
struct DockerSection {
  std::string compose_file = "docker-compose.yml";
  std::string web_service;  // empty: the first service publishing a port
  int web_port = 0;         // 0: the web service's first published tcp port
};
[[nodiscard]] absl::StatusOr<DockerSection> ParseDockerSection(const std::string& config_json);

class DockerProvider final : public Provider {
 public:
  explicit DockerProvider(DockerProviderOptions options);

  ProviderInfo Info() const override;
  absl::StatusOr<ApplyResult> Apply(const ApplyRequest& request) override;
  absl::StatusOr<Observation> Observe(const EnvironmentRef& ref) override;
  absl::StatusOr<DestroyResult> Destroy(const EnvironmentRef& ref) override;
  absl::Status Logs(const LogsRequest& request, const LogSink& sink) override;
  absl::StatusOr<std::vector<OwnedObject>> ListOwned() override;
  // A container `<project>-<name>-1` of `request.image` (which must be on the engine) on the
  // environment's network under the alias `name`, its data in volume `<project>_<name>-data`,
  // 5432 published on 127.0.0.1, ready when its `pg_isready` healthcheck passes. The image
  // follows the official postgres image's contract (POSTGRES_PASSWORD, POSTGRES_USER,
  // POSTGRES_DB, PGDATA at /var/lib/postgresql/data).
  absl::StatusOr<DatabaseServer> EnsureDatabaseServer(
      const DatabaseServerRequest& request) override;

  // Container events (/events) of Eph's containers: health changes, exits, removals.
  absl::Status WatchChanges(const ChangeSink& sink, std::stop_token stop) override;

  const EngineClient& engine() const { return engine_; }
  StartProber& start_prober() { return *start_prober_; }

 private:
  struct ApplyState;  // one Apply's plan and progress (docker_provider.cc)
  // The steps of Apply, each on the same state.
  absl::Status Plan(ApplyState& st);
  // The services in start order, every image present; `web` gets `web_port` published.
  absl::Status PlanServices(ApplyState& st, const ComposeService* web, int web_port);
  absl::Status FindExisting(ApplyState& st);
  absl::Status ProvisionAndStart(ApplyState& st);
  // One service: kept if its container matches and runs (or completed, for a one-shot task),
  // else (re)created, and started unless a dependency is not ready yet (then left created, for
  // the next Apply: ApplyResult::needs_reapply).
  absl::Status ApplyService(ApplyState& st, const ServicePlan& plan);
  // The service's existing container if it can stay (`done`: nothing to do) or be started (a
  // created one); "" after removing one that cannot.
  absl::StatusOr<std::string> ReusableContainer(ApplyState& st, const ServicePlan& plan,
                                                const std::string& hash, bool& done);
  // FailedPrecondition if a container called `name` exists and is not the environment's.
  absl::Status ClaimName(ApplyState& st, const std::string& name);
  // "" when the service may start; otherwise what it waits for. FailedPrecondition when a
  // depends_on condition can no longer hold.
  absl::StatusOr<std::string> WaitingFor(const ApplyState& st, const ServicePlan& plan);
  // The API version to create `plan`'s container with: kStartIntervalApiVersion when the service
  // sets start_interval and the engine speaks it, else "" (kApiVersion).
  absl::StatusOr<std::string> CreateApiVersion(const ServicePlan& plan);
  // Whether an engine event (/events) is news for the controller: health changes, exits,
  // removals, but not the engine's own `healthy` for a container Eph's start_interval check
  // already passed. Keeps the emulation's record in step.
  bool Announces(const nlohmann::json& event);
  // Observe's word on one container (its inspect), and on one that runs.
  ComponentStatus ComponentOf(const nlohmann::json& c, const std::string& environment,
                              TimePoint now);
  ComponentStatus RunningComponentOf(const nlohmann::json& c, const std::string& environment,
                                     TimePoint now);
  // Observe's word on a running container whose engine health is `starting`: true once the
  // start_interval emulation's check passed; otherwise it makes sure the check runs.
  bool PassedStartProbe(const nlohmann::json& container, const std::string& environment);
  absl::Status RemoveDroppedServices(ApplyState& st);
  // Removes what this Apply created (all of the project when nothing existed before); returns
  // `error`.
  absl::Status Rollback(const ApplyState& st, absl::Status error);

  // The environment's network, created if missing. `created` says whether this call made it.
  absl::Status EnsureNetwork(const std::string& project, const std::string& environment,
                             const std::map<std::string, std::string>& labels, bool& created);
  // Volume `<project>_<volume>`, created with `labels` and `volume_labels` if missing; one that
  // exists must be this installation's environment's. `created` says whether this call made it.
  absl::Status EnsureVolume(const std::string& project, const std::string& volume,
                            const std::map<std::string, std::string>& volume_labels,
                            const std::string& environment,
                            const std::map<std::string, std::string>& labels, bool& created);

  // The environment's database container `name`, if any; FailedPrecondition when a container
  // of that name is not this installation's database of the environment.
  absl::StatusOr<std::optional<nlohmann::json>> InspectDatabaseContainer(
      const std::string& name, const DatabaseServerRequest& request,
      const std::string& installation);
  // A new database container from `body` on the environment's network and data volume (made if
  // missing), in place of `current`; started, as the engine inspects it.
  absl::StatusOr<nlohmann::json> RecreateDatabaseContainer(
      const std::string& project, const DatabaseServerRequest& request,
      const std::map<std::string, std::string>& labels, const std::string& name,
      const nlohmann::json& body, const std::optional<nlohmann::json>& current);
  // What the database container `current` says: starting, waiting, failed (with its last
  // output) or ready with the admin URL on its published port.
  absl::StatusOr<DatabaseServer> DatabaseServerState(const DatabaseServerRequest& request,
                                                     const nlohmann::json& current,
                                                     const std::string& password);

  const DockerProviderOptions options_;
  const EngineClient engine_;
  const Clock& clock_;
  // 0: not read yet; 1: the engine keeps start_interval; -1: it does not.
  std::atomic<int> engine_start_interval_{0};
  // Last: its thread uses engine_ and must stop first.
  std::unique_ptr<StartProber> start_prober_;
};

[[nodiscard]] absl::StatusOr<std::unique_ptr<DockerProvider>> NewDockerProvider(
    const ProviderSettings& settings);

// Registers NewDockerProvider as factory "docker" (ephd calls it beside
// RegisterBuiltinProviders, as for Kubernetes).
[[nodiscard]] absl::Status RegisterDockerProvider(ProviderRegistry& registry);

}  // namespace eph::providers::docker
