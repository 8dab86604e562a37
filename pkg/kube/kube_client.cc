#include "pkg/kube/kube_client.h"

#include <spdlog/spdlog.h>

#include <condition_variable>
#include <mutex>

#include "absl/strings/numbers.h"
#include "absl/time/time.h"
#include "fmt/format.h"
#include "pkg/http/status_map.h"
#include "pkg/kube/api_errors.h"

namespace eph::kube {
namespace {

// Percent-encodes a query value (RFC 3986 unreserved characters stay).
std::string Escape(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out += fmt::format("%{:02X}", c);
    }
  }
  return out;
}

class Query {
 public:
  Query& Add(const std::string& key, const std::string& value) {
    if (value.empty()) return *this;
    text_ += (text_.empty() ? "?" : "&") + key + "=" + Escape(value);
    return *this;
  }
  std::string With(const std::string& path) const {
    if (text_.empty()) return path;
    // A path may already carry a query.
    if (path.find('?') != std::string::npos) return path + "&" + text_.substr(1);
    return path + text_;
  }

 private:
  std::string text_;
};

absl::Status CheckPath(const std::string& path) {
  if (path.empty() || path[0] != '/') {
    return absl::InvalidArgumentError(
        fmt::format("\"{}\" is not an API path (it must start with /)", path));
  }
  return absl::OkStatus();
}

absl::StatusOr<nlohmann::json> ParseBody(const HttpResponse& response, const std::string& what) {
  nlohmann::json doc = nlohmann::json::parse(response.body, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) {
    return absl::UnavailableError(
        fmt::format("{}: the answer is not JSON: {}", what, response.body.substr(0, 200)));
  }
  return doc;
}

bool IsTerminalWatchError(const absl::Status& st) {
  switch (st.code()) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kPermissionDenied:
    case absl::StatusCode::kUnauthenticated:
    case absl::StatusCode::kNotFound:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kUnimplemented:
      return true;
    default:
      return false;
  }
}

void RealSleep(Duration d, const std::stop_token& stop) {
  std::mutex mu;
  std::condition_variable_any cv;
  std::unique_lock<std::mutex> lock(mu);
  cv.wait_for(lock, stop, d, [] { return false; });
}

}  // namespace

// ---- construction -------------------------------------------------------------------------------

KubeClient::KubeClient(KubeConfig config, KubeClientOptions options)
    : config_([&] {
        if (!config.credentials) {
          config.credentials = std::make_shared<StaticCredentialSource>(Credentials{});
        }
        return std::move(config);
      }()),
      options_(std::move(options)),
      clock_(options_.clock != nullptr ? *options_.clock : SystemClock::Instance()),
      transport_(config_, TransportOptions{.connect_timeout = options_.connect_timeout,
                                           .user_agent = options_.user_agent}),
      mapper_([this](const std::string& path) { return Get(path); }, clock_,
              options_.discovery_refresh_interval) {}

KubeClient::~KubeClient() = default;

void KubeClient::Sleep(Duration d, const std::stop_token& stop) {
  if (d <= Duration::zero() || stop.stop_requested()) return;
  if (options_.sleep) {
    options_.sleep(d, stop);
  } else {
    RealSleep(d, stop);
  }
}

// ---- one request with retries -------------------------------------------------------------------

absl::StatusOr<HttpResponse> KubeClient::Execute(HttpRequest request, const std::stop_token& stop) {
  const std::string what = fmt::format("{} {}", request.method, request.path_and_query);
  // Whether any of a streamed body reached the reader: after that, a retry would repeat data.
  bool delivered = false;
  if (request.on_body) {
    request.on_body = [inner = std::move(request.on_body), &delivered](std::string_view chunk) {
      delivered = true;
      return inner(chunk);
    };
  }
  if (request.timeout.count() == 0 && !request.on_body) request.timeout = options_.request_timeout;
  const bool is_post = request.method == "POST";
  bool reauthenticated = false;
  Duration backoff = options_.initial_backoff;
  for (int attempt = 1;; ++attempt) {
    absl::StatusOr<Credentials> credentials = config_.credentials->Get();
    if (!credentials.ok()) return credentials.status();
    absl::StatusOr<HttpResponse> response = transport_.Perform(request, *credentials, stop);
    std::optional<Duration> retry_after;
    if (!response.ok()) {
      const absl::Status& st = response.status();
      const bool transient = absl::IsUnavailable(st) || absl::IsDeadlineExceeded(st);
      if (!transient || delivered || (is_post && !http::RequestNotSent(st)) ||
          attempt >= options_.max_attempts) {
        return st;
      }
      spdlog::debug("kube: {} failed (attempt {}), retrying: {}", what, attempt, MessageOf(st));
    } else {
      const long code = response->status;
      if (code == 401 && !reauthenticated && config_.credentials->Invalidate(*credentials)) {
        reauthenticated = true;
        --attempt;
        continue;
      }
      if (const auto it = response->headers.find("retry-after"); it != response->headers.end()) {
        int64_t seconds = 0;
        if (absl::SimpleAtoi(it->second, &seconds)) {
          retry_after = std::chrono::seconds(std::max<int64_t>(seconds, 0));
        } else {
          absl::Time when;
          std::string error;
          if (absl::ParseTime("%a, %d %b %Y %H:%M:%S GMT", it->second, &when, &error)) {
            retry_after = std::max(Duration::zero(), absl::ToChronoTime(when) - clock_.Now());
          }
        }
      }
      // Worth another attempt: what the one mapping calls transient (429, 5xx but 501); a POST
      // only when the server says when, since it may have acted on the first one.
      const absl::StatusCode mapped = http::CodeFor(http::Api::kKubernetes, {.status = code});
      const bool retriable = mapped == absl::StatusCode::kResourceExhausted ||
                             (mapped == absl::StatusCode::kUnavailable &&
                              (!is_post || retry_after.has_value()));
      if (!retriable || delivered || attempt >= options_.max_attempts) return response;
      spdlog::debug("kube: {} answered {} (attempt {}), retrying", what, code, attempt);
    }
    Duration wait = backoff;
    if (retry_after) wait = std::min<Duration>(*retry_after, options_.max_retry_after);
    backoff = std::min<Duration>(backoff * 2, options_.max_backoff);
    Sleep(wait, stop);
    if (stop.stop_requested()) return absl::CancelledError(fmt::format("{}: cancelled", what));
  }
}

absl::StatusOr<nlohmann::json> KubeClient::JsonCall(const std::string& method,
                                                    const std::string& path,
                                                    const std::optional<std::string>& body,
                                                    const std::string& content_type) {
  if (absl::Status st = CheckPath(path); !st.ok()) return st;
  HttpRequest request;
  request.method = method;
  request.path_and_query = path;
  request.body = body;
  request.content_type = content_type;
  const std::string what = fmt::format("{} {}", method, path);
  absl::StatusOr<HttpResponse> response = Execute(std::move(request));
  if (!response.ok()) return response.status();
  if (response->status < 200 || response->status >= 300) {
    return StatusFromApiResponse(response->status, response->body, what);
  }
  return ParseBody(*response, what);
}

// ---- typed operations ---------------------------------------------------------------------------

absl::StatusOr<nlohmann::json> KubeClient::Get(const std::string& path,
                                               const std::stop_token& stop) {
  if (absl::Status st = CheckPath(path); !st.ok()) return st;
  HttpRequest request;
  request.path_and_query = path;
  const std::string what = "GET " + path;
  absl::StatusOr<HttpResponse> response = Execute(std::move(request), stop);
  if (!response.ok()) return response.status();
  if (response->status != 200) {
    return StatusFromApiResponse(response->status, response->body, what);
  }
  return ParseBody(*response, what);
}

absl::StatusOr<ListResult> KubeClient::List(const std::string& collection_path,
                                            const ListOptions& options,
                                            const std::stop_token& stop) {
  if (absl::Status st = CheckPath(collection_path); !st.ok()) return st;
  const int64_t limit = options.limit > 0 ? options.limit : options_.list_page_size;
  ListResult out;
  std::string next;
  int restarts = 0;
  while (true) {
    Query q;
    q.Add("limit", std::to_string(limit))
        .Add("continue", next)
        .Add("labelSelector", options.label_selector)
        .Add("fieldSelector", options.field_selector);
    HttpRequest request;
    request.path_and_query = q.With(collection_path);
    const std::string what = "GET " + request.path_and_query;
    absl::StatusOr<HttpResponse> response = Execute(std::move(request), stop);
    if (!response.ok()) return response.status();
    if (response->status == 410 && !next.empty() && restarts < 3) {
      // The continue token outlived the snapshot it points into: start over, consistently.
      ++restarts;
      out = ListResult{};
      next.clear();
      continue;
    }
    if (response->status != 200) {
      return StatusFromApiResponse(response->status, response->body, what);
    }
    absl::StatusOr<nlohmann::json> page = ParseBody(*response, what);
    if (!page.ok()) return page.status();
    if (!page->is_object()) return absl::UnavailableError(what + ": the answer is not a list");
    ++out.pages;
    const std::string list_kind = page->value("kind", "");
    const std::string api_version = page->value("apiVersion", "");
    std::string item_kind;
    if (list_kind.size() > 4 && list_kind.ends_with("List")) {
      item_kind = list_kind.substr(0, list_kind.size() - 4);
    }
    if (auto items = page->find("items"); items != page->end() && items->is_array()) {
      for (auto& item : *items) {
        if (item.is_object()) {
          if (!item.contains("apiVersion") && !api_version.empty()) {
            item["apiVersion"] = api_version;
          }
          if (!item.contains("kind") && !item_kind.empty()) item["kind"] = item_kind;
        }
        out.items.push_back(std::move(item));
      }
    }
    next.clear();
    if (auto meta = page->find("metadata"); meta != page->end() && meta->is_object()) {
      out.resource_version = meta->value("resourceVersion", "");
      next = meta->value("continue", "");
    }
    if (next.empty()) return out;
  }
}

absl::StatusOr<nlohmann::json> KubeClient::Create(const std::string& collection_path,
                                                  const nlohmann::json& object) {
  return JsonCall("POST", Query().Add("fieldManager", options_.field_manager).With(collection_path),
                  object.dump(), "application/json");
}

absl::StatusOr<nlohmann::json> KubeClient::Apply(const std::string& object_path,
                                                 const nlohmann::json& object,
                                                 const ApplyOptions& options) {
  Query q;
  q.Add("fieldManager",
        options.field_manager.empty() ? options_.field_manager : options.field_manager);
  if (options.force) q.Add("force", "true");
  if (options.dry_run) q.Add("dryRun", "All");
  // JSON is YAML: the apply content type takes either.
  return JsonCall("PATCH", q.With(object_path), object.dump(), "application/apply-patch+yaml");
}

absl::StatusOr<nlohmann::json> KubeClient::Replace(const std::string& object_path,
                                                   const nlohmann::json& object) {
  return JsonCall("PUT", Query().Add("fieldManager", options_.field_manager).With(object_path),
                  object.dump(), "application/json");
}

absl::StatusOr<nlohmann::json> KubeClient::Patch(const std::string& object_path,
                                                 const nlohmann::json& patch, PatchType type) {
  const char* content_type = "application/merge-patch+json";
  if (type == PatchType::kStrategicMerge) content_type = "application/strategic-merge-patch+json";
  if (type == PatchType::kJsonPatch) content_type = "application/json-patch+json";
  return JsonCall("PATCH", Query().Add("fieldManager", options_.field_manager).With(object_path),
                  patch.dump(), content_type);
}

absl::Status KubeClient::Delete(const std::string& object_path, const DeleteOptions& options) {
  nlohmann::json body = {{"apiVersion", "v1"}, {"kind", "DeleteOptions"}};
  if (!options.propagation_policy.empty()) body["propagationPolicy"] = options.propagation_policy;
  if (options.grace_period_seconds) body["gracePeriodSeconds"] = *options.grace_period_seconds;
  if (!options.precondition_uid.empty()) {
    body["preconditions"] = {{"uid", options.precondition_uid}};
  }
  return JsonCall("DELETE", object_path, body.dump(), "application/json").status();
}

// ---- discovery ----------------------------------------------------------------------------------

absl::StatusOr<ResourceInfo> KubeClient::ResolveKind(const std::string& api_version,
                                                     const std::string& kind) {
  return mapper_.Resolve(api_version, kind);
}

absl::StatusOr<std::string> KubeClient::ObjectPathFor(const nlohmann::json& object,
                                                      const std::string& default_namespace) {
  if (!object.is_object()) return absl::InvalidArgumentError("the object is not a JSON object");
  auto str = [](const nlohmann::json& o, const char* key) -> std::string {
    const auto it = o.find(key);
    return it != o.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  const std::string api_version = str(object, "apiVersion");
  const std::string kind = str(object, "kind");
  if (api_version.empty() || kind.empty()) {
    return absl::InvalidArgumentError("the object has no apiVersion or kind");
  }
  const nlohmann::json meta = object.value("metadata", nlohmann::json::object());
  const std::string name = meta.is_object() ? str(meta, "name") : "";
  if (absl::Status st = ValidatePathSegment(name, fmt::format("{} name", kind)); !st.ok()) {
    return st;
  }
  absl::StatusOr<ResourceInfo> info = mapper_.Resolve(api_version, kind);
  if (!info.ok()) return info.status();
  std::string ns;
  if (info->namespaced) {
    ns = meta.is_object() ? str(meta, "namespace") : "";
    if (ns.empty()) ns = default_namespace.empty() ? config_.default_namespace : default_namespace;
    if (absl::Status st = ValidatePathSegment(ns, "namespace"); !st.ok()) return st;
  }
  return info->ObjectPath(ns, name);
}

absl::StatusOr<nlohmann::json> KubeClient::ApplyObject(const nlohmann::json& object,
                                                       const ApplyOptions& options) {
  absl::StatusOr<std::string> path = ObjectPathFor(object);
  if (!path.ok()) return path.status();
  return Apply(*path, object, options);
}

// ---- watch --------------------------------------------------------------------------------------

struct KubeClient::WatchPass {
  absl::Status status;  // OK: the stream ended cleanly
  bool gone = false;    // 410, as HTTP status or ERROR event
  int events = 0;
  std::optional<Duration> retry_after;
};

KubeClient::WatchPass KubeClient::WatchOnce(const std::string& path, const WatchOptions& options,
                                            std::string& rv, const WatchCallbacks& callbacks,
                                            const std::stop_token& stop) {
  WatchPass pass;
  Query q;
  q.Add("watch", "1")
      .Add("allowWatchBookmarks", "true")
      .Add("resourceVersion", rv)
      .Add("timeoutSeconds", std::to_string(options_.watch_timeout.count()))
      .Add("labelSelector", options.label_selector)
      .Add("fieldSelector", options.field_selector);
  HttpRequest request;
  request.path_and_query = q.With(path);
  const std::string what = "WATCH " + request.path_and_query;
  // The server ends the stream after timeoutSeconds; this only guards against a silent peer.
  request.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(options_.watch_timeout +
                                                                          std::chrono::seconds(60));
  WatchStreamParser parser;
  absl::Status stream_error;
  bool finished = false;  // an ERROR event ended this pass
  request.on_body = [&](std::string_view chunk) {
    absl::Status st = parser.Feed(chunk, [&](WatchEvent&& event) {
      if (finished) return;
      if (event.type == WatchEventType::kError) {
        const absl::Status error = StatusFromApiStatus(event.object, what);
        if (callbacks.on_event) callbacks.on_event(event);
        finished = true;
        if (IsGone(error)) {
          pass.gone = true;
        } else {
          // An error inside a 200 stream is the server's trouble, not the request's: reopen.
          stream_error = absl::UnavailableError(error.message());
        }
        return;
      }
      if (std::string v = ResourceVersionOf(event.object); !v.empty()) rv = std::move(v);
      ++pass.events;
      if (callbacks.on_event) callbacks.on_event(event);
    });
    if (!st.ok()) {
      stream_error = absl::UnavailableError(fmt::format("{}: {}", what, MessageOf(st)));
      return false;
    }
    return !finished;
  };
  absl::StatusOr<HttpResponse> response = Execute(std::move(request), stop);
  if (pass.gone) return pass;
  if (!stream_error.ok()) {
    pass.status = stream_error;
    return pass;
  }
  if (!response.ok()) {
    pass.status = response.status();
    return pass;
  }
  if (response->status == 410) {
    pass.gone = true;
    return pass;
  }
  if (response->status != 200) {
    pass.status = StatusFromApiResponse(response->status, response->body, what);
    if (const auto it = response->headers.find("retry-after"); it != response->headers.end()) {
      int64_t seconds = 0;
      if (absl::SimpleAtoi(it->second, &seconds) && seconds >= 0) {
        pass.retry_after = std::chrono::seconds(seconds);
      }
    }
    return pass;
  }
  if (parser.HasPartialEvent()) {
    pass.status = absl::UnavailableError(what + ": the stream ended in the middle of an event");
  }
  return pass;
}

absl::Status KubeClient::Watch(const std::string& collection_path, const WatchOptions& options,
                               const WatchCallbacks& callbacks, const std::stop_token& stop) {
  if (absl::Status st = CheckPath(collection_path); !st.ok()) return st;
  std::string rv = options.resource_version;
  Duration backoff = options_.initial_backoff;
  auto grow = [&] { backoff = std::min<Duration>(backoff * 2, options_.max_backoff); };

  // Lists until it works, is stopped (OK, nothing listed) or fails for good.
  auto relist = [&](RelistReason reason) -> absl::Status {
    while (!stop.stop_requested()) {
      absl::StatusOr<ListResult> list = List(collection_path,
                                             ListOptions{.label_selector = options.label_selector,
                                                         .field_selector = options.field_selector},
                                             stop);
      if (list.ok()) {
        rv = list->resource_version;
        if (callbacks.on_relist) callbacks.on_relist(*list, reason);
        backoff = options_.initial_backoff;
        return absl::OkStatus();
      }
      if (stop.stop_requested()) break;
      if (IsTerminalWatchError(list.status())) return list.status();
      if (callbacks.on_reconnect) callbacks.on_reconnect(list.status());
      Sleep(backoff, stop);
      grow();
    }
    return absl::OkStatus();
  };

  if (rv.empty()) {
    if (absl::Status st = relist(RelistReason::kInitial); !st.ok()) return st;
  }
  while (!stop.stop_requested()) {
    const TimePoint started = clock_.Now();
    WatchPass pass = WatchOnce(collection_path, options, rv, callbacks, stop);
    if (stop.stop_requested()) break;
    if (pass.gone) {
      spdlog::debug("kube: watch {} at resourceVersion {} expired; relisting", collection_path, rv);
      if (callbacks.on_reconnect) {
        callbacks.on_reconnect(absl::AbortedError(fmt::format(
            "watch {}: resourceVersion {} is too old; relisting", collection_path, rv)));
      }
      if (absl::Status st = relist(RelistReason::kExpired); !st.ok()) return st;
      continue;
    }
    if (pass.status.ok()) {
      // The server's timeoutSeconds, typically: reopen at once. A stream that ends at once with
      // nothing in it is a server in trouble: back off instead of spinning.
      if (pass.events > 0 || clock_.Now() - started >= std::chrono::seconds(1)) {
        backoff = options_.initial_backoff;
        continue;
      }
      pass.status = absl::UnavailableError(
          fmt::format("watch {}: the stream ended without events", collection_path));
    }
    if (IsTerminalWatchError(pass.status)) return pass.status;
    if (pass.events > 0) backoff = options_.initial_backoff;
    spdlog::debug("kube: watch {} broke, reopening from {}: {}", collection_path, rv,
                  MessageOf(pass.status));
    if (callbacks.on_reconnect) callbacks.on_reconnect(pass.status);
    Sleep(pass.retry_after ? std::min<Duration>(*pass.retry_after, options_.max_retry_after)
                           : backoff,
          stop);
    grow();
  }
  return absl::OkStatus();
}

std::unique_ptr<WatchHandle> KubeClient::StartWatch(std::string collection_path,
                                                    WatchOptions options,
                                                    WatchCallbacks callbacks) {
  return std::make_unique<WatchHandle>(*this, std::move(collection_path), std::move(options),
                                       std::move(callbacks));
}

WatchHandle::WatchHandle(KubeClient& client, std::string path, WatchOptions options,
                         WatchCallbacks callbacks)
    : thread_([this, &client, path = std::move(path), options = std::move(options),
               callbacks = std::move(callbacks)](const std::stop_token& stop) {
        absl::Status st = client.Watch(path, options, callbacks, stop);
        std::lock_guard<std::mutex> lock(mu_);
        status_ = std::move(st);
        done_ = true;
      }) {}

WatchHandle::~WatchHandle() { Stop(); }

void WatchHandle::Stop() {
  thread_.request_stop();
  // From one of the watch's own callbacks: it ends when the callback returns.
  if (thread_.get_id() == std::this_thread::get_id()) return;
  if (thread_.joinable()) thread_.join();
}

bool WatchHandle::done() const {
  std::lock_guard<std::mutex> lock(mu_);
  return done_;
}

absl::Status WatchHandle::status() const {
  std::lock_guard<std::mutex> lock(mu_);
  return status_;
}

// ---- logs ---------------------------------------------------------------------------------------

absl::Status KubeClient::StreamPodLogs(const std::string& ns, const std::string& pod,
                                       const PodLogOptions& options,
                                       const std::function<void(std::string_view)>& on_chunk,
                                       const std::stop_token& stop) {
  if (absl::Status st = ValidatePathSegment(ns, "namespace"); !st.ok()) return st;
  if (absl::Status st = ValidatePathSegment(pod, "pod"); !st.ok()) return st;
  Query q;
  if (options.follow) q.Add("follow", "true");
  q.Add("container", options.container);
  if (options.tail_lines) q.Add("tailLines", std::to_string(*options.tail_lines));
  if (options.since_seconds) q.Add("sinceSeconds", std::to_string(*options.since_seconds));
  if (options.timestamps) q.Add("timestamps", "true");
  HttpRequest request;
  request.path_and_query = q.With(fmt::format("/api/v1/namespaces/{}/pods/{}/log", ns, pod));
  request.accept = "text/plain, */*";
  if (!options.follow) request.timeout = options_.request_timeout;
  request.on_body = [&](std::string_view chunk) {
    on_chunk(chunk);
    return true;
  };
  const std::string what = "GET " + request.path_and_query;
  absl::StatusOr<HttpResponse> response = Execute(std::move(request), stop);
  if (!response.ok()) {
    if (absl::IsCancelled(response.status()) && stop.stop_requested()) return absl::OkStatus();
    return response.status();
  }
  if (response->status < 200 || response->status >= 300) {
    return StatusFromApiResponse(response->status, response->body, what);
  }
  return absl::OkStatus();
}

}  // namespace eph::kube
