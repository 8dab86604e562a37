// Store: Eph's durable state. One interface, two implementations with one schema and one
// behaviour: SQLite (the embedded default, `sqlite:PATH`) and PostgreSQL (`postgres://...`).
//
// What it holds: projects (repositories Eph serves), environments, webhook deliveries, the work
// queue, an audit trail of every environment state change (which also feeds the SSE stream), and
// API tokens (only their SHA-256 hashes).
//
// Contract:
//  - Every method is one transaction: it either happens entirely or not at all. (Concurrent
//    RecordDelivery calls may share theirs: still all or nothing for each delivery.)
//  - Errors are canonical: Unavailable (database unreachable: retry with backoff), Aborted
//    (a concurrent writer won: re-read and retry), AlreadyExists, NotFound, InvalidArgument,
//    Internal. No method throws.
//  - Errors are safe to show to API clients: once opened, a store never puts a file path or a
//    connection string in a status; the detail goes to the log. A busy or unreachable database
//    is Unavailable with kStoreUnavailableMessage, within a few seconds (SQLite's busy timeout,
//    PostgreSQL's statement and connection timeouts), well inside a webhook sender's patience.
//    Errors from OpenStore itself go to the operator and do name the database.
//  - Time is whatever the caller passes in (from its injected Clock); the store never reads the
//    system clock, so tests control TTLs and leases.
//
// Thread-safety: implementations are safe to use from many threads at once.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "pkg/base/clock.h"
#include "pkg/base/metrics.h"

namespace eph::state {

inline constexpr char kStoreUnavailableMessage[] =
    "the state store is unavailable (busy or unreachable); try again";

// Environment lifecycle states, as PRODUCT.md names them.
enum class EnvState {
  kPending,
  kProvisioning,
  kReady,
  kUpdating,
  kDestroying,
  kDestroyed,
  kFailed,
  kSleeping,
};
std::string_view EnvStateName(EnvState s);
std::optional<EnvState> ParseEnvState(std::string_view name);
// Live = anything but destroyed: it owns (or may own) provider objects.
bool IsLive(EnvState s);

struct Environment {
  std::string name;          // primary key, a DNS-1123 label
  std::string project;       // repository, "owner/repo"
  int64_t pr_number = 0;     // 0 for environments created by hand without a pull request
  EnvState state = EnvState::kPending;
  std::string reason;        // why the environment is in its state (failed, destroyed, ...)
  std::string url;
  std::string provider;      // "kubernetes", "docker", ...
  std::string head_sha;      // the commit the environment was last applied from
  std::string spec_json;     // desired spec snapshot (config, image tags), JSON
  TimePoint created_at{};
  TimePoint updated_at{};
  std::optional<TimePoint> expires_at;        // TTL; nullopt = kept (no TTL)
  std::optional<TimePoint> last_activity_at;  // drives idle_timeout
  int64_t version = 0;       // optimistic concurrency: bumped by every update
  // Decided by the controller (pkg/controller/intents.h), read by the API, the gateway and the
  // providers' callers; nobody else parses spec_json.
  std::string namespace_name;  // provider namespace / compose project; empty until decided
  bool forced = false;         // created by hand for a pull request: kept whatever its labels say
  std::string backend_url;     // where the gateway sends its traffic (empty: provider's ingress)
};

struct EnvironmentFilter {
  bool include_destroyed = false;
  std::optional<std::string> project;
};

// One row of the audit trail. `id` increases monotonically and is the SSE event id.
struct EnvEvent {
  int64_t id = 0;
  std::string environment;
  std::string from_state;  // empty on creation
  std::string to_state;
  std::string reason;
  TimePoint at{};
};

struct Delivery {
  std::string id;       // X-GitHub-Delivery (or the forge's equivalent): the dedupe key
  std::string forge;    // "github", "gitlab"
  std::string event;    // X-GitHub-Event
  std::string action;   // payload "action", may be empty
  std::string repo;     // "owner/repo", may be empty (e.g. ping without repository)
  int64_t pr_number = 0;
  std::string body;     // the raw body, kept for audit and replay
  TimePoint received_at{};
  // What the delivery means, decoded by its forge at intake (pkg/webhook/forge_event.h), so
  // the controller never reads forge JSON: one of kDeliveryKinds ("" for deliveries stored
  // before schema 8 that are not comments). For "comment", the comment's id, its author and
  // its text.
  std::string kind;
  int64_t comment_id = 0;
  std::string author;
  std::string text;
};

// How RecordDelivery's group commit has gone in this process (delivery_commit_queue.h), for
// metrics and tests: deliveries that arrive together share one transaction.
struct DeliveryCommitStats {
  uint64_t groups = 0;         // group transactions run (committed or not), counted from 0
  uint64_t deliveries = 0;     // deliveries those groups held
  uint64_t retried_alone = 0;  // deliveries committed one by one after their group failed
  uint64_t waiting = 0;        // callers queued now, waiting for a commit slot
};

// The forge-neutral kinds of delivery.
inline constexpr char kDeliveryPullRequest[] = "pull_request";  // opened, labelled, pushed, ...
inline constexpr char kDeliveryComment[] = "comment";  // a person commented on a pull request
inline constexpr char kDeliveryChecks[] = "checks";    // a check or status changed
inline constexpr char kDeliveryInstallation[] = "installation";  // the App's installation
inline constexpr char kDeliveryPush[] = "push";
inline constexpr char kDeliveryOther[] = "other";

struct Project {
  std::string repo;  // "owner/repo"
  std::string forge = "github";
  int64_t installation_id = 0;
  bool enabled = true;
  TimePoint created_at{};
  TimePoint updated_at{};
  // The pull-request labels that ask for an environment, from the project's eph.yaml as last
  // read: the resync lists open pull requests carrying one (a labelled webhook may be lost).
  std::vector<std::string> trigger_labels;
};

// A claimed work item. The holder owns `key` until `expires_at`; another worker (in this or any
// other ephd on the same database) can claim it only after that.
struct Lease {
  std::string key;
  std::string owner;
  int64_t attempts = 0;  // failed attempts so far, for backoff
  TimePoint expires_at{};
};

enum class TokenScope { kRead, kWrite };

struct ApiToken {
  int64_t id = 0;
  std::string name;
  TokenScope scope = TokenScope::kRead;
  std::string hash;  // hex SHA-256 of the secret; the secret itself is never stored
  TimePoint created_at{};
  std::optional<TimePoint> revoked_at;
};

class Store {
 public:
  virtual ~Store() = default;

  // For /readyz: OK only if the store would take a write now (SQLite: the write lock is free,
  // or freed within a second; PostgreSQL: a round trip). Unavailable otherwise.
  virtual absl::Status Ping() = 0;
  // Applied schema version (highest migration), for diagnostics.
  virtual absl::StatusOr<int> SchemaVersion() = 0;
  // This installation's identity (16 hex digits), made with the schema and never changed. Every
  // object Eph creates in a provider or on a database server is stamped with it; the orphan
  // sweep only ever touches objects carrying it.
  virtual absl::StatusOr<std::string> InstallationId() = 0;

  // Changes to environments committed by this process, counted from 0: a waiter (the event
  // stream) wakes at once instead of polling. Other processes sharing a PostgreSQL store are not
  // seen: callers still read the store when the wait times out.
  virtual uint64_t LocalChangeCount() = 0;
  // Blocks until LocalChangeCount() differs from `seen` or `timeout` passes; returns the count.
  virtual uint64_t WaitForLocalChange(uint64_t seen, std::chrono::milliseconds timeout) = 0;

  // --- deliveries and the work queue ---

  // Stores the delivery and, if `work_key` is set, enqueues it to run at its received_at,
  // atomically, and returns once that is committed. Returns false (and changes nothing) if a
  // delivery with the same id exists. Concurrent calls share one transaction (group commit:
  // see DeliveryCommitStats); each still gets its own answer, and one call's failure is not
  // another's.
  virtual absl::StatusOr<bool> RecordDelivery(const Delivery& d,
                                              const std::optional<std::string>& work_key) = 0;
  virtual DeliveryCommitStats DeliveryCommits() = 0;
  virtual absl::StatusOr<std::optional<Delivery>> GetDelivery(const std::string& id) = 0;
  virtual absl::StatusOr<int64_t> CountDeliveries() = 0;
  // The deliveries of `event` for one pull request received at or after `since`, oldest first
  // (at most `limit`): how the reconciler finds `/eph` comment commands.
  // `kind` is one of the forge-neutral kinds above.
  virtual absl::StatusOr<std::vector<Delivery>> ListPullRequestDeliveries(
      const std::string& repo, int64_t pr_number, const std::string& kind, TimePoint since,
      int limit) = 0;

  // Adds `key` to the queue to run no later than `not_before`. Keys merge: a key already queued
  // keeps one row and runs at the earlier time; a key being worked on is marked dirty so it runs
  // again after the current attempt finishes.
  virtual absl::Status Enqueue(const std::string& key, TimePoint not_before) = 0;
  // Enqueue for many keys in one transaction (the resync pass): the same merging rules.
  virtual absl::Status EnqueueMany(const std::vector<std::string>& keys, TimePoint not_before) = 0;
  // Claims the due key (not_before <= now) that has waited longest and is not leased (or whose
  // lease expired). nullopt when nothing is due.
  virtual absl::StatusOr<std::optional<Lease>> ClaimWork(const std::string& owner, TimePoint now,
                                                          Duration lease_for) = 0;
  // The attempt succeeded: the key leaves the queue unless it was enqueued again meanwhile
  // (then it is due at once). Resets attempts. Aborted if the lease was lost.
  virtual absl::Status CompleteWork(const Lease& lease, TimePoint now) = 0;
  // Extends a held lease to now + lease_for, for reconciles that run long. Aborted if the lease
  // was lost (expired and claimed by another worker).
  virtual absl::StatusOr<Lease> RenewLease(const Lease& lease, TimePoint now,
                                           Duration lease_for) = 0;
  // The attempt failed transiently: the key runs again at `retry_at`, attempts + 1.
  virtual absl::Status RetryWork(const Lease& lease, TimePoint retry_at,
                                 const std::string& error) = 0;
  // Keys in the queue (leased or not), for tests and metrics.
  virtual absl::StatusOr<int64_t> QueueDepth() = 0;
  // The earliest not_before among unleased keys, for the worker's wait.
  virtual absl::StatusOr<std::optional<TimePoint>> NextDue() = 0;

  // --- environments ---

  // Inserts a new environment (version 1) and its creation event. AlreadyExists if the name is
  // taken or the (project, pr_number) pair already has a live environment (pr_number > 0).
  virtual absl::StatusOr<Environment> CreateEnvironment(const Environment& env) = 0;
  virtual absl::StatusOr<std::optional<Environment>> GetEnvironment(const std::string& name) = 0;
  virtual absl::StatusOr<std::optional<Environment>> FindLiveEnvironment(
      const std::string& project, int64_t pr_number) = 0;
  virtual absl::StatusOr<std::vector<Environment>> ListEnvironments(
      const EnvironmentFilter& filter) = 0;
  // Writes `env` if the stored version equals env.version (compare-and-swap), bumping the
  // version; Aborted otherwise. A state change also appends an EnvEvent in the same
  // transaction. Returns the stored row.
  virtual absl::StatusOr<Environment> UpdateEnvironment(const Environment& env) = 0;
  // Sets last_activity_at (monotonically: an older time never overwrites a newer one), without
  // bumping the version: activity is written often and must not conflict with reconciles.
  virtual absl::Status TouchEnvironment(const std::string& name, TimePoint at) = 0;
  // True if any environment, live or destroyed, has this name (names are never reused).
  virtual absl::StatusOr<bool> NameTaken(const std::string& name) = 0;

  // Audit trail, oldest first: events with id > after_id, at most `limit`.
  virtual absl::StatusOr<std::vector<EnvEvent>> ListEvents(int64_t after_id, int limit) = 0;
  virtual absl::StatusOr<std::vector<EnvEvent>> EventsFor(const std::string& environment) = 0;

  // --- projects ---
  virtual absl::Status UpsertProject(const Project& p) = 0;
  virtual absl::StatusOr<std::optional<Project>> GetProject(const std::string& repo) = 0;
  virtual absl::StatusOr<std::vector<Project>> ListProjects() = 0;

  // --- API tokens ---
  virtual absl::StatusOr<ApiToken> CreateToken(const ApiToken& t) = 0;
  // Only tokens that are not revoked.
  virtual absl::StatusOr<std::optional<ApiToken>> FindTokenByHash(const std::string& hash) = 0;
  virtual absl::StatusOr<std::vector<ApiToken>> ListTokens() = 0;
  virtual absl::Status RevokeToken(const std::string& name, TimePoint at) = 0;
};

// Opens (creating if needed) the store named by `url` and applies pending migrations under a
// lock, so two ephd starting together never race:
//   sqlite:PATH            (directories are created; PATH may be relative)
//   postgres://... or postgresql://...   (libpq connection URI)
// InvalidArgument for an unknown scheme; Unavailable if the database cannot be reached.
absl::StatusOr<std::unique_ptr<Store>> OpenStore(const std::string& url);

// The URL with any password replaced by "***", for logs.
std::string RedactStoreUrl(const std::string& url);

// Puts the store's delivery group commits on /metrics (read at each scrape): how many group
// transactions ran, how many deliveries they held, how many were committed alone after their
// group failed, and how many callers wait for a commit slot now. `store` must outlive every
// render of `metrics`.
void ExportDeliveryCommitMetrics(Store& store, MetricsRegistry& metrics);

}  // namespace eph::state
