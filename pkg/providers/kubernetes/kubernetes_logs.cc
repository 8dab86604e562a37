// KubernetesProvider::Logs: the pods of a component, streamed through the API server's pod log
// endpoint (one stream per pod and container, in parallel), split into lines.
#include <atomic>
#include <mutex>
#include <stop_token>
#include <thread>

#include "absl/time/time.h"
#include "fmt/format.h"
#include "pkg/kube/api_errors.h"
#include "pkg/providers/kubernetes/kubernetes_provider.h"
#include "pkg/providers/kubernetes/workload_status.h"

namespace eph::providers::kubernetes {
namespace {

using nlohmann::json;

constexpr size_t kMaxStreams = 32;

std::string Str(const json& o, const char* key) {
  if (!o.is_object()) return "";
  const auto it = o.find(key);
  return it != o.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// A LabelSelector object as the string form the API's labelSelector parameter takes.
std::string SelectorString(const json& selector) {
  std::string out;
  auto add = [&](const std::string& term) { out += (out.empty() ? "" : ",") + term; };
  if (selector.contains("matchLabels") && selector["matchLabels"].is_object()) {
    for (auto it = selector["matchLabels"].begin(); it != selector["matchLabels"].end(); ++it) {
      if (it->is_string()) add(it.key() + "=" + it->get<std::string>());
    }
  }
  if (selector.contains("matchExpressions") && selector["matchExpressions"].is_array()) {
    for (const json& e : selector["matchExpressions"]) {
      const std::string key = Str(e, "key");
      const std::string op = Str(e, "operator");
      std::string values;
      if (e.contains("values") && e["values"].is_array()) {
        for (const json& v : e["values"]) {
          if (v.is_string()) values += (values.empty() ? "" : ",") + v.get<std::string>();
        }
      }
      if (op == "In") add(fmt::format("{} in ({})", key, values));
      if (op == "NotIn") add(fmt::format("{} notin ({})", key, values));
      if (op == "Exists") add(key);
      if (op == "DoesNotExist") add("!" + key);
    }
  }
  return out;
}

struct LogTarget {
  std::string component;
  std::string pod;
  std::string container;
};

// Splits one stream's chunks into lines; the API prefixes each with an RFC 3339 timestamp
// (timestamps=true).
class LineAssembler {
 public:
  LineAssembler(std::string component, std::function<bool(LogLine&&)> emit)
      : component_(std::move(component)), emit_(std::move(emit)) {}

  bool Feed(std::string_view chunk) {
    buffer_.append(chunk.data(), chunk.size());
    size_t start = 0;
    size_t nl;
    while ((nl = buffer_.find('\n', start)) != std::string::npos) {
      if (!EmitLine(buffer_.substr(start, nl - start))) return false;
      start = nl + 1;
    }
    buffer_.erase(0, start);
    return true;
  }
  bool Finish() {
    if (buffer_.empty()) return true;
    std::string rest;
    rest.swap(buffer_);
    return EmitLine(rest);
  }

 private:
  bool EmitLine(std::string line) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    LogLine out;
    out.component = component_;
    const size_t space = line.find(' ');
    absl::Time t;
    std::string err;
    if (space != std::string::npos &&
        absl::ParseTime(absl::RFC3339_full, line.substr(0, space), &t, &err)) {
      out.at = absl::ToChronoTime(t);
      out.text = line.substr(space + 1);
    } else {
      out.text = std::move(line);
    }
    return emit_(std::move(out));
  }

  std::string component_;
  std::function<bool(LogLine&&)> emit_;
  std::string buffer_;
};

struct WorkloadKind {
  const char* kind;
  const char* collection;  // with %s for the namespace
};

constexpr WorkloadKind kLogWorkloads[] = {
    {"Deployment", "/apis/apps/v1/namespaces/{}/deployments"},
    {"StatefulSet", "/apis/apps/v1/namespaces/{}/statefulsets"},
    {"DaemonSet", "/apis/apps/v1/namespaces/{}/daemonsets"},
    {"Job", "/apis/batch/v1/namespaces/{}/jobs"},
};

std::vector<std::string> ContainersOf(const json& pod) {
  std::vector<std::string> out;
  const json spec = pod.value("spec", json::object());
  if (spec.is_object() && spec.contains("containers") && spec["containers"].is_array()) {
    for (const json& c : spec["containers"]) {
      if (!Str(c, "name").empty()) out.push_back(Str(c, "name"));
    }
  }
  return out;
}

}  // namespace

absl::Status KubernetesProvider::Logs(const LogsRequest& request, const LogSink& sink) {
  const std::string ns =
      request.namespace_name.empty() ? "eph-" + request.environment : request.namespace_name;
  if (absl::Status st = kube::ValidatePathSegment(ns, "namespace"); !st.ok()) return st;
  const std::string pods_path = fmt::format("/api/v1/namespaces/{}/pods", ns);
  std::vector<LogTarget> targets;
  auto add_pods = [&](const std::vector<json>& pods, const std::string& fixed_component) {
    for (const json& pod : pods) {
      const json meta = pod.value("metadata", json::object());
      if (meta.contains("deletionTimestamp")) continue;
      const std::string component = fixed_component.empty() ? PodComponent(pod) : fixed_component;
      for (const std::string& c : ContainersOf(pod)) {
        targets.push_back({component, Str(meta, "name"), c});
      }
    }
  };
  if (!request.component.empty()) {
    if (absl::Status st = kube::ValidatePathSegment(request.component, "component"); !st.ok()) {
      return st;
    }
    std::optional<std::string> selector;
    for (const WorkloadKind& w : kLogWorkloads) {
      absl::StatusOr<json> workload =
          client_->Get(fmt::format(fmt::runtime(w.collection), ns) + "/" + request.component);
      if (absl::IsNotFound(workload.status())) continue;
      if (!workload.ok()) return workload.status();
      const json spec = workload->value("spec", json::object());
      selector = SelectorString(spec.value("selector", json::object()));
      break;
    }
    if (selector) {
      if (selector->empty()) {
        return absl::FailedPreconditionError(
            fmt::format("component {} has no pod selector", request.component));
      }
      absl::StatusOr<kube::ListResult> pods =
          client_->List(pods_path, {.label_selector = *selector});
      if (!pods.ok()) return pods.status();
      add_pods(pods->items, request.component);
    } else {
      absl::StatusOr<json> pod = client_->Get(pods_path + "/" + request.component);
      if (absl::IsNotFound(pod.status())) {
        return absl::NotFoundError(fmt::format(
            "environment {} has no component '{}' (a Deployment, StatefulSet, DaemonSet, Job or "
            "Pod of that name in namespace {})",
            request.environment, request.component, ns));
      }
      if (!pod.ok()) return pod.status();
      add_pods({*pod}, request.component);
    }
  } else {
    absl::StatusOr<kube::ListResult> pods =
        client_->List(pods_path, {.label_selector = LabelSelectorFor(request.environment)});
    if (!pods.ok()) return pods.status();
    add_pods(pods->items, "");
  }
  if (targets.size() > kMaxStreams) targets.resize(kMaxStreams);
  if (targets.empty()) return absl::OkStatus();

  kube::PodLogOptions log_options;
  log_options.follow = request.follow;
  log_options.tail_lines = request.tail_lines > 0 ? request.tail_lines : options_.log_tail_lines;
  log_options.timestamps = true;

  std::stop_source stop;
  std::stop_callback reader_gone(request.stop, [&stop] { stop.request_stop(); });
  std::mutex sink_mu;
  std::mutex error_mu;
  absl::Status first_error;
  auto stream = [&](const LogTarget& target) {
    LineAssembler lines(target.component, [&](LogLine&& line) {
      if (stop.stop_requested()) return false;
      std::lock_guard<std::mutex> lock(sink_mu);
      if (!sink(line)) {
        stop.request_stop();
        return false;
      }
      return true;
    });
    kube::PodLogOptions o = log_options;
    o.container = target.container;
    bool open = true;
    absl::Status st = client_->StreamPodLogs(
        ns, target.pod, o,
        [&](std::string_view chunk) {
          if (open && !lines.Feed(chunk)) open = false;
        },
        stop.get_token());
    if (open && !stop.stop_requested()) lines.Finish();
    if (!st.ok() && !stop.stop_requested()) {
      std::lock_guard<std::mutex> lock(error_mu);
      if (first_error.ok()) {
        first_error =
            absl::Status(st.code(), fmt::format("logs of pod {} container {}: {}", target.pod,
                                                target.container, kube::MessageOf(st)));
      }
    }
  };
  if (targets.size() == 1) {
    stream(targets[0]);
  } else {
    std::vector<std::jthread> threads;
    threads.reserve(targets.size());
    for (const LogTarget& t : targets) threads.emplace_back([&stream, &t] { stream(t); });
  }
  return first_error;
}

}  // namespace eph::providers::kubernetes
