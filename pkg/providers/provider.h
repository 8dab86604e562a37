// Provider: what runs an environment's app somewhere (Kubernetes, Docker, later a gRPC plugin).
//
// The reconciler is the only caller. It decides *whether* an environment should exist; the
// provider makes the infrastructure match and reports what is actually there. The interface maps
// one-to-one onto proto/eph/provider/v1/provider.proto (one RPC per method, one message per
// struct), so an out-of-process plugin and a built-in provider look the same to the reconciler.
//
// Contract:
//  - Apply and Destroy are idempotent: calling them again with the same request converges to the
//    same result and never duplicates objects. Apply may return before the app is ready; Observe
//    says when it is.
//  - Every object a provider creates carries kManagedByLabel=kManagedByValue and
//    kEnvironmentLabel=<environment>, plus every label of ApplyRequest::labels (among them
//    kInstallationLabel, which installation of Eph made it). A provider never changes or deletes
//    an object without the first two.
//  - Errors are absl::Status with canonical codes, and the code decides what the reconciler does:
//      Unavailable, DeadlineExceeded, ResourceExhausted, Aborted  transient: retried with backoff
//      InvalidArgument, FailedPrecondition                     terminal: the environment is
//                                                              `failed` with the message as
//                                                              reason, not retried until the
//                                                              pull request's head changes
//    Messages are shown to users (PR comment, dashboard): say what is wrong and what to do.
//  - Calls may block (network, kubectl); none takes longer than the provider's own timeouts, and
//    none waits for the app: Apply starts what it can and says (ApplyResult::needs_reapply) when
//    parts wait for others; readiness is Observe's, announced by WatchChanges where supported.
//
// Thread-safety: implementations must be safe to call from many threads at once. The reconciler
// never runs two calls for the same environment concurrently (the work queue guarantees one
// worker per key), but does run calls for different environments in parallel.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "pkg/base/clock.h"

namespace eph::providers {

inline constexpr char kManagedByLabel[] = "eph.dev/managed-by";
inline constexpr char kManagedByValue[] = "eph";
inline constexpr char kEnvironmentLabel[] = "eph.dev/environment";
// The Store's InstallationId: several installations may share a cluster or an engine, and each
// sweeps only its own orphans.
inline constexpr char kInstallationLabel[] = "eph.dev/installation";

// Who the provider is; a plugin answers GetInfo with this.
struct ProviderInfo {
  std::string name;     // registry key and `Environment::provider`: "kubernetes", "docker"
  std::string version;  // free text, for `ephd` start-up lines and diagnostics
};

// One file of the rendered inputs, for providers that cannot read `source_dir` (a plugin on
// another host). `path` is relative to the repository root.
struct SourceFile {
  std::string path;
  std::string content;
};

// images[] of eph.yaml with the tag templates already expanded.
struct ImageTag {
  std::string name;  // image name as it appears in the manifests / compose file
  std::string tag;   // e.g. "pr-42"
};

struct ApplyRequest {
  std::string environment;  // the environment's name, a DNS-1123 label
  // Where the objects go: Kubernetes namespace, Docker Compose project. Chosen by the
  // reconciler (default "eph-<environment>") and passed again to Observe/Destroy/Logs.
  std::string namespace_name;
  std::string project;    // "owner/repo"
  int64_t pr_number = 0;  // 0 for environments created by hand
  std::string head_sha;   // the commit being deployed
  std::string host;       // "<environment>.<base_domain>": the Ingress / proxy host
  // The repository at head_sha: a local checkout, or the files themselves. At least one is set
  // once sources are fetched (empty until the checkout step exists).
  std::string source_dir;
  std::vector<SourceFile> sources;
  // The provider's section of eph.yaml (`kubernetes:` or `docker:`) as JSON, defaults filled in.
  std::string config_json;
  std::vector<ImageTag> images;
  // Labels every created object must carry; always includes the two eph.dev labels above.
  std::map<std::string, std::string> labels;
  // Environment variables Eph gives the app: the database's DATABASE_URL and PG* settings, and
  // eph.yaml's `environment.variables` and `environment.secrets` (docs/eph-yaml.md).
  // Secret: providers never log them or put them in messages. Kubernetes: the Secret "eph-env"
  // in the namespace, referenced by every container (envFrom); Docker: each service's
  // environment, replacing a compose value of the same name.
  std::map<std::string, std::string> secret_env;
  // The environment of a fork's pull request (docs/security.md): the provider applies its strict
  // profile. Kubernetes: the namespace enforces Pod Security Admission `restricted` and a
  // NetworkPolicy denies all egress but DNS. Docker: nothing more than no secrets (which the
  // reconciler already withholds), said in docs/provider-docker.md.
  bool restricted = false;
};

struct ApplyResult {
  std::string handle;   // provider-specific reference, e.g. "namespace/eph-my-app-42"
  std::string summary;  // one line for logs and the PR comment, e.g. "3 objects applied"
  // The components (ComponentStatus::name) Observe reports once this is applied. Later, one
  // missing from Observe (removed behind Eph's back) makes the reconciler apply again. Empty:
  // the provider tracks its objects itself.
  std::vector<std::string> components;
  // True when Apply started only part of the environment because the rest waits for it (a
  // compose depends_on condition: a dependency not healthy yet). The reconciler calls Apply again
  // (same request) on its next pass, after a change or the progress poll, instead of only
  // observing; the environment is not ready before an Apply returns false here.
  bool needs_reapply = false;
};

enum class Phase {
  kAbsent,       // nothing of the environment exists
  kProgressing,  // created, not ready yet (pulling images, rolling out)
  kReady,        // serving
  kFailed,       // will not become ready without a change (crash loop, bad image)
};
std::string_view PhaseName(Phase phase);

struct ComponentStatus {
  std::string name;  // Deployment / compose service name
  Phase phase = Phase::kAbsent;
  std::string message;
};

struct EnvironmentRef {
  std::string environment;
  std::string namespace_name;
};

struct Observation {
  Phase phase = Phase::kAbsent;
  std::string message;  // why not ready / failed; empty when ready
  std::vector<ComponentStatus> components;
  std::string url;  // if the provider knows it (e.g. a Docker port); may be empty
};

struct DestroyResult {
  bool done = false;    // false: deletion still in progress (e.g. namespace terminating)
  std::string message;  // what is left, when not done
};

struct LogsRequest {
  std::string environment;
  std::string namespace_name;
  std::string component;  // empty: all components
  bool follow = false;
  int64_t tail_lines = 0;  // 0: the provider's default
  // Requested when the reader has gone or ephd is stopping, even while no line arrives; Logs
  // then returns OK promptly. (Over the plugin protocol this is the gRPC call's cancellation,
  // so it has no field in provider.proto.)
  std::stop_token stop;
};

struct LogLine {
  std::string component;
  TimePoint at{};
  std::string text;  // one line, without its newline
};

// Receives log lines in order; returns false to stop (client gone), which ends Logs() with OK.
using LogSink = std::function<bool(const LogLine& line)>;

// Something changed in one environment's objects (a container started, became healthy or exited;
// a pod became ready): look at it again. It carries no state on purpose: the reconciler is
// level-triggered and calls Observe for the truth.
struct EnvironmentChange {
  std::string environment;  // the kEnvironmentLabel value of the changed object
};

// Receives changes as they happen, on the watching thread or, while WatchChanges runs, on a
// thread of the provider's own (Docker's start_interval emulation); must not block for long and
// must be safe to call from those threads at once.
using ChangeSink = std::function<void(const EnvironmentChange& change)>;

// A PostgreSQL server the provider runs inside the environment, for apps that need a server of
// their own (eph.yaml `database.instances[].placement: environment`). Eph then creates the app's
// database and role on it and runs the seed, as on a shared server.
struct DatabaseServerRequest {
  std::string environment;
  std::string namespace_name;
  std::map<std::string, std::string> labels;  // as ApplyRequest::labels
  std::string name;     // the instance's name: also the host name the app's containers use
  std::string version;  // PostgreSQL's major version, e.g. "15"
  std::string image;    // the server's image: "postgres:<version>" unless eph.yaml names one
};

struct DatabaseServer {
  bool ready = false;     // accepting connections; ask again later when false
  std::string message;    // what it is waiting for, when not ready
  std::string admin_url;  // how ephd connects as the server's superuser. Secret.
  std::string app_host;   // how the app's containers reach the server
  int app_port = 0;
};

// An object in the provider that carries kManagedByLabel=kManagedByValue.
struct OwnedObject {
  std::string kind;  // "Namespace", "container", "network", "volume", ...
  std::string name;
  std::string namespace_name;  // empty for cluster-scoped / Docker objects
  std::string environment;     // the kEnvironmentLabel value; empty if the label is missing
  std::string installation;    // the kInstallationLabel value; empty if the label is missing
};

class Provider {
 public:
  virtual ~Provider() = default;

  virtual ProviderInfo Info() const = 0;

  // Creates or updates everything the environment needs. Idempotent.
  virtual absl::StatusOr<ApplyResult> Apply(const ApplyRequest& request) = 0;

  // What is actually there. kAbsent (not NotFound) when nothing exists.
  virtual absl::StatusOr<Observation> Observe(const EnvironmentRef& ref) = 0;

  // Deletes every object labelled with the environment. Idempotent: destroying an absent
  // environment is done=true.
  virtual absl::StatusOr<DestroyResult> Destroy(const EnvironmentRef& ref) = 0;

  // Streams log lines to `sink` until the logs end (follow=false), the sink returns false, or
  // an error occurs. NotFound for an unknown component.
  virtual absl::Status Logs(const LogsRequest& request, const LogSink& sink) = 0;

  // Every object carrying kManagedByLabel=kManagedByValue, for the orphan sweep.
  virtual absl::StatusOr<std::vector<OwnedObject>> ListOwned() = 0;

  // Starts (or finds) the environment's own PostgreSQL server, before Apply, and says how to
  // reach it. Idempotent: the same server (and password) every call; Destroy removes it with the
  // environment, data included. Providers that cannot run one answer FailedPrecondition (the
  // default) and the environment fails with that message.
  virtual absl::StatusOr<DatabaseServer> EnsureDatabaseServer(const DatabaseServerRequest& request);

  // Streams changes of Eph's objects to `sink` until `stop` is requested, then returns OK
  // promptly (within about a second). Optional: providers that cannot watch answer Unimplemented
  // (the default), and the reconciler polls Observe while an environment is progressing. Any
  // other error ends the stream; the caller starts it again after a pause. Changes may repeat
  // or be merged, and a restarted stream may miss some: callers still poll, just rarely. Several
  // callers may watch at once; each gets every change. (Over the plugin protocol, `stop` is the
  // streaming call's cancellation.)
  virtual absl::Status WatchChanges(const ChangeSink& sink, std::stop_token stop);
};

// Settings a provider factory gets from ephd's configuration ("kubeconfig", "docker_host", ...).
struct ProviderSettings {
  std::map<std::string, std::string> values;
};

using ProviderFactory =
    std::function<absl::StatusOr<std::unique_ptr<Provider>>(const ProviderSettings& settings)>;

// ProviderRegistry: the factories compiled into ephd and the providers enabled from them.
//
// ephd calls RegisterBuiltinProviders(registry) once, then Enable() for each provider its
// configuration turns on (or Add() for a ready instance: a plugin client, a test double). The
// reconciler looks providers up by name with Find().
//
// Thread-safety: all methods are safe to call concurrently; providers returned by Find() live as
// long as the registry.
class ProviderRegistry {
 public:
  ProviderRegistry();
  ~ProviderRegistry();
  ProviderRegistry(const ProviderRegistry&) = delete;
  ProviderRegistry& operator=(const ProviderRegistry&) = delete;

  // AlreadyExists if a factory with this name is registered.
  absl::Status RegisterFactory(const std::string& name, ProviderFactory factory);
  // Creates the provider from its factory and enables it. NotFound for an unknown name,
  // AlreadyExists if already enabled, or the factory's error.
  absl::Status Enable(const std::string& name, const ProviderSettings& settings);
  // Enables a ready instance under provider->Info().name. AlreadyExists if the name is taken.
  absl::Status Add(std::unique_ptr<Provider> provider);

  // The enabled provider called `name`, or nullptr.
  Provider* Find(std::string_view name) const;
  // Enabled providers, sorted by name.
  std::vector<Provider*> Enabled() const;
  std::vector<std::string> EnabledNames() const;
  // Registered factories, sorted by name.
  std::vector<std::string> AvailableNames() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// Registers the factories of the providers built into this binary. Explicit (no static
// initialisers), so what ephd contains is visible in one place. The Kubernetes and Docker
// providers add themselves here when they land; until then it registers nothing.
absl::Status RegisterBuiltinProviders(ProviderRegistry& registry);

}  // namespace eph::providers
