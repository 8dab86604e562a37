// KubeClient: Eph's client for the Kubernetes REST API (JSON over HTTPS, pkg/http underneath).
//
// What it does: GET, paged LIST, CREATE, server-side APPLY, PUT, PATCH, DELETE, a WATCH that
// survives dropped connections and expired resource versions, and streamed pod logs. Paths are
// REST paths ("/api/v1/namespaces/ns/configmaps"); ResolveKind / ObjectPathFor build them from
// apiVersion + kind through cached discovery. docs/kube-client.md has the full semantics.
//
// Contract:
//  - Errors are absl::Status with the codes of api_errors.h, messages naming the request and
//    quoting the API server. TLS verification failures are FailedPrecondition naming the CA.
//  - Retries: a request answered 429 or 5xx, or failing to connect, is retried up to
//    max_attempts in all, waiting Retry-After when the server sends one (capped at
//    max_retry_after) and otherwise an exponential backoff (initial_backoff doubling up to
//    max_backoff). A POST (create) is only retried when the server cannot have acted on it: 429,
//    a 5xx that carries Retry-After, or a connection that never got the request. A 401 with
//    credentials that can be refreshed (exec plugin, token file) refreshes them and retries once.
//  - Every wait goes through options.sleep, so tests never wait on the wall clock.
//  - Calls taking a std::stop_token return promptly (well under a second) once it is requested.
//  - Callbacks (watch, logs) run on the calling thread, must not throw, and may call back into the
//    client.
//
// Thread-safety: all methods may be called from many threads at once.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "pkg/base/clock.h"
#include "pkg/kube/api_transport.h"
#include "pkg/kube/kube_config.h"
#include "pkg/kube/resource_mapper.h"
#include "pkg/kube/watch_stream.h"

namespace eph::kube {

// Waits `d` or until `stop` is requested, whichever comes first.
using SleepFunction = std::function<void(Duration d, const std::stop_token& stop)>;

struct KubeClientOptions {
  std::chrono::milliseconds connect_timeout{10'000};
  std::chrono::milliseconds request_timeout{60'000};  // per attempt, except streams
  int max_attempts = 5;
  Duration initial_backoff = std::chrono::milliseconds(200);
  Duration max_backoff = std::chrono::seconds(10);
  Duration max_retry_after = std::chrono::seconds(60);
  // timeoutSeconds of each watch request: the server ends the stream after it, and the client
  // reopens it from the last resourceVersion.
  std::chrono::seconds watch_timeout{300};
  int64_t list_page_size = 500;
  std::string field_manager = "eph";
  std::string user_agent = "eph";
  const Clock* clock = nullptr;  // null: SystemClock
  SleepFunction sleep;           // null: really wait (interruptibly)
  Duration discovery_refresh_interval = std::chrono::seconds(5);
};

struct ListOptions {
  std::string label_selector;
  std::string field_selector;
  int64_t limit = 0;  // page size; 0: options.list_page_size
};

struct ListResult {
  // Every item of every page, each with apiVersion and kind filled in.
  std::vector<nlohmann::json> items;
  std::string resource_version;  // of the list: where a watch continues from
  int pages = 0;
};

struct ApplyOptions {
  bool force = true;          // take over fields other managers own
  std::string field_manager;  // empty: options.field_manager
  bool dry_run = false;
};

enum class PatchType { kMerge, kStrategicMerge, kJsonPatch };

struct DeleteOptions {
  std::string propagation_policy = "Background";  // Background, Foreground or Orphan
  std::optional<int64_t> grace_period_seconds;
  std::string precondition_uid;  // delete only this incarnation of the object
};

struct WatchOptions {
  // Where to start. Empty: LIST first (on_relist with kInitial), then watch from the list.
  std::string resource_version;
  std::string label_selector;
  std::string field_selector;
};

enum class RelistReason {
  kInitial,  // no resource_version was given
  kExpired,  // 410 Gone (HTTP status or ERROR event): the watch's resourceVersion is too old
};

struct WatchCallbacks {
  // Every event in order: ADDED, MODIFIED, DELETED, BOOKMARK and ERROR. ERROR events are also
  // acted on by the watch itself (410: relist; otherwise: reconnect), the caller need not.
  std::function<void(const WatchEvent&)> on_event;
  // The complete current set, after a LIST. Events resume after it; anything the caller held that
  // is not in `list` was deleted meanwhile.
  std::function<void(const ListResult& list, RelistReason reason)> on_relist;
  // Informational: the stream broke (or ended) and is being reopened.
  std::function<void(const absl::Status& why)> on_reconnect;
};

struct PodLogOptions {
  std::string container;  // empty: the pod's only container
  bool follow = true;
  std::optional<int64_t> tail_lines;
  std::optional<int64_t> since_seconds;
  bool timestamps = false;
};

class WatchHandle;

class KubeClient {
 public:
  explicit KubeClient(KubeConfig config, KubeClientOptions options = {});
  ~KubeClient();
  KubeClient(const KubeClient&) = delete;
  KubeClient& operator=(const KubeClient&) = delete;

  const KubeConfig& config() const { return config_; }

  [[nodiscard]] absl::StatusOr<nlohmann::json> Get(const std::string& path,
                                                   const std::stop_token& stop = {});
  // All pages, following `continue`; restarts from the first page if a continue token expires.
  [[nodiscard]] absl::StatusOr<ListResult> List(const std::string& collection_path,
                                                const ListOptions& options = {},
                                                const std::stop_token& stop = {});
  // POST to a collection (or a subresource such as serviceaccounts/NAME/token).
  [[nodiscard]] absl::StatusOr<nlohmann::json> Create(const std::string& collection_path,
                                                      const nlohmann::json& object);
  // Server-side apply: PATCH application/apply-patch+yaml with fieldManager (and force).
  [[nodiscard]] absl::StatusOr<nlohmann::json> Apply(const std::string& object_path,
                                                     const nlohmann::json& object,
                                                     const ApplyOptions& options = {});
  [[nodiscard]] absl::StatusOr<nlohmann::json> Replace(const std::string& object_path,
                                                       const nlohmann::json& object);
  [[nodiscard]] absl::StatusOr<nlohmann::json> Patch(const std::string& object_path,
                                                     const nlohmann::json& patch, PatchType type);
  // NotFound if the object does not exist.
  [[nodiscard]] absl::Status Delete(const std::string& object_path,
                                    const DeleteOptions& options = {});

  // Watches a collection until `stop` is requested (then OK) or a terminal error (InvalidArgument,
  // PermissionDenied, Unauthenticated, NotFound, FailedPrecondition) which it returns. Transient
  // failures reconnect from the last resourceVersion seen (bookmarks included) with backoff; 410
  // relists and resumes from the list's resourceVersion.
  [[nodiscard]] absl::Status Watch(const std::string& collection_path, const WatchOptions& options,
                                   const WatchCallbacks& callbacks, const std::stop_token& stop);
  // Watch() on its own thread; stopped (and joined) by the handle.
  [[nodiscard]] std::unique_ptr<WatchHandle> StartWatch(std::string collection_path,
                                                        WatchOptions options,
                                                        WatchCallbacks callbacks);

  // GET .../pods/POD/log, handing each chunk to `on_chunk` as it arrives. OK when the stream ends
  // (the container exited, or follow is false) or `stop` is requested.
  [[nodiscard]] absl::Status StreamPodLogs(const std::string& ns, const std::string& pod,
                                           const PodLogOptions& options,
                                           const std::function<void(std::string_view)>& on_chunk,
                                           const std::stop_token& stop = {});

  // apiVersion + kind -> resource, through cached discovery (see ResourceMapper).
  [[nodiscard]] absl::StatusOr<ResourceInfo> ResolveKind(const std::string& api_version,
                                                         const std::string& kind);
  // The REST path of `object` (apiVersion, kind, metadata.name, metadata.namespace). A namespaced
  // object without a namespace goes to `default_namespace`, or the config's when that is empty.
  [[nodiscard]] absl::StatusOr<std::string> ObjectPathFor(
      const nlohmann::json& object, const std::string& default_namespace = "");
  // ObjectPathFor + Apply.
  [[nodiscard]] absl::StatusOr<nlohmann::json> ApplyObject(const nlohmann::json& object,
                                                           const ApplyOptions& options = {});
  ResourceMapper& mapper() { return mapper_; }

  // One request with authentication and the retry policy above; any final HTTP status is
  // returned as a response (map it with StatusFromApiResponse). For requests the typed methods
  // do not cover.
  [[nodiscard]] absl::StatusOr<HttpResponse> Execute(HttpRequest request,
                                                     const std::stop_token& stop = {});

 private:
  struct WatchPass;
  absl::StatusOr<nlohmann::json> JsonCall(const std::string& method, const std::string& path,
                                          const std::optional<std::string>& body,
                                          const std::string& content_type);
  WatchPass WatchOnce(const std::string& path, const WatchOptions& options, std::string& rv,
                      const WatchCallbacks& callbacks, const std::stop_token& stop);
  void Sleep(Duration d, const std::stop_token& stop);

  const KubeConfig config_;
  const KubeClientOptions options_;
  const Clock& clock_;
  ApiTransport transport_;
  ResourceMapper mapper_;
};

// A watch running on its own thread. Destroying the handle stops it; the KubeClient must outlive
// its handles.
class WatchHandle {
 public:
  WatchHandle(KubeClient& client, std::string path, WatchOptions options, WatchCallbacks callbacks);
  ~WatchHandle();
  WatchHandle(const WatchHandle&) = delete;
  WatchHandle& operator=(const WatchHandle&) = delete;

  // Asks the watch to stop and waits for its thread; prompt even mid-stream. Idempotent. From
  // inside one of the watch's callbacks it only asks (the watch ends after the callback).
  void Stop();
  // True once the watch has ended (stopped, or a terminal error).
  bool done() const;
  // How it ended: OK after Stop(), else the terminal error. Meaningful once done().
  absl::Status status() const;

 private:
  mutable std::mutex mu_;
  absl::Status status_;
  bool done_ = false;
  std::jthread thread_;
};

}  // namespace eph::kube
