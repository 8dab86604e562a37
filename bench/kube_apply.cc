// kube_apply: the Kubernetes provider's apply path as a command, for bench/kube_apply_bench.sh.
//
//   kube_apply apply --kubeconfig K --namespace NS --file rendered.yaml [--concurrency 8]
//       Server-side applies every object of the file into NS exactly as the provider does
//       (KubeApplier: discovery, checks, Eph labels, fieldManager eph, parallel waves) and prints
//       "objects=N apply_ms=X total_ms=Y" (total includes loading the kubeconfig and discovery).
//
//   kube_apply ready-latency --kubeconfig K --source DIR --manifests PATH [--rounds 3]
//       Creates an environment from DIR with the full provider (watches on), and measures the
//       delay from the last pod becoming Ready (seen by an independent pod watch) to the provider
//       reporting the environment ready (its change listener, then Observe). Prints one line per
//       round and destroys the environments.
//
// Prints figures; not a test.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

#include "CLI/CLI.hpp"
#include "absl/time/time.h"
#include "fmt/format.h"
#include "pkg/base/random.h"
#include "pkg/kube/kube_client.h"
#include "pkg/kube/kube_config.h"
#include "pkg/providers/kubernetes/kube_applier.h"
#include "pkg/providers/kubernetes/kubernetes_provider.h"
#include "pkg/providers/kubernetes/workload_status.h"
#include "pkg/providers/kubernetes/yaml_documents.h"

namespace {

using Clock = std::chrono::steady_clock;
using eph::providers::kubernetes::KubeApplier;
using nlohmann::json;
namespace k8s = eph::providers::kubernetes;

double MsSince(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

int Apply(const std::string& kubeconfig, const std::string& ns, const std::string& file,
          int concurrency) {
  const auto start = Clock::now();
  absl::StatusOr<eph::kube::KubeConfig> config = eph::kube::LoadKubeconfig(kubeconfig);
  if (!config.ok()) {
    std::cerr << config.status() << "\n";
    return 1;
  }
  eph::kube::KubeClient client(*std::move(config));
  std::ifstream in(file, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  absl::StatusOr<std::vector<json>> objects = k8s::ParseManifestDocuments(text.str(), file);
  if (!objects.ok()) {
    std::cerr << objects.status() << "\n";
    return 1;
  }
  KubeApplier applier(client, {.concurrency = concurrency});
  const auto apply_start = Clock::now();
  absl::StatusOr<std::vector<k8s::PreparedObject>> prepared =
      applier.Prepare(*std::move(objects), ns,
                      {{eph::providers::kManagedByLabel, eph::providers::kManagedByValue},
                       {eph::providers::kEnvironmentLabel, ns}});
  if (!prepared.ok()) {
    std::cerr << prepared.status() << "\n";
    return 1;
  }
  absl::StatusOr<std::vector<json>> applied = applier.ApplyAll(*prepared);
  if (!applied.ok()) {
    std::cerr << applied.status() << "\n";
    return 1;
  }
  std::cout << fmt::format("objects={} apply_ms={:.1f} total_ms={:.1f}\n", applied->size(),
                           MsSince(apply_start), MsSince(start));
  return 0;
}

// Times at which an independent watch first saw each pod Ready.
class PodReadyTimes {
 public:
  bool debug = false;
  void OnPod(const json& pod) {
    const json status = pod.value("status", json::object());
    bool ready = false;
    for (const json& c : status.value("conditions", json::array())) {
      if (c.value("type", "") == "Ready" && c.value("status", "") == "True") ready = true;
    }
    if (!ready) return;
    const std::string name = pod["metadata"].value("name", "");
    std::lock_guard<std::mutex> lock(mu_);
    if (debug && !seen_.contains(name)) {
      std::cerr << fmt::format("{} ready {}\n",
                               eph::FormatRfc3339(std::chrono::system_clock::now()), name);
    }
    seen_.emplace(name, std::chrono::system_clock::now());
  }
  std::chrono::system_clock::time_point Last(size_t* count) {
    std::lock_guard<std::mutex> lock(mu_);
    std::chrono::system_clock::time_point last{};
    for (const auto& [name, t] : seen_) last = std::max(last, t);
    *count = seen_.size();
    return last;
  }

 private:
  std::mutex mu_;
  std::map<std::string, std::chrono::system_clock::time_point> seen_;
};

// The newest Ready lastTransitionTime of the namespace's pods (the API's own record; whole
// seconds).
std::optional<absl::Time> LastReadyTransition(eph::kube::KubeClient& client,
                                              const std::string& ns) {
  absl::StatusOr<eph::kube::ListResult> pods = client.List("/api/v1/namespaces/" + ns + "/pods");
  if (!pods.ok()) return std::nullopt;
  std::optional<absl::Time> last;
  for (const json& p : pods->items) {
    for (const json& c : p.value("status", json::object()).value("conditions", json::array())) {
      if (c.value("type", "") != "Ready" || c.value("status", "") != "True") continue;
      absl::Time t;
      std::string err;
      if (absl::ParseTime(absl::RFC3339_full, c.value("lastTransitionTime", ""), &t, &err)) {
        if (!last || t > *last) last = t;
      }
    }
  }
  return last;
}

int ReadyLatency(const std::string& kubeconfig, const std::string& source,
                 const std::string& manifests, const std::string& kustomize, int rounds) {
  eph::providers::ProviderSettings settings;
  settings.values["kubeconfig"] = kubeconfig;
  if (!kustomize.empty()) settings.values["kustomize_path"] = kustomize;
  std::mutex mu;
  std::condition_variable cv;
  std::map<std::string, int> changes;
  absl::StatusOr<std::unique_ptr<k8s::KubernetesProvider>> provider =
      k8s::NewKubernetesProvider(settings);
  if (!provider.ok()) {
    std::cerr << provider.status() << "\n";
    return 1;
  }
  const bool debug = std::getenv("EPH_BENCH_DEBUG") != nullptr;  // NOLINT(concurrency-mt-unsafe)
  k8s::KubernetesProvider* const watched = provider->get();
  const eph::providers::ChangeSink sink = [&, watched,
                                           debug](const eph::providers::EnvironmentChange& change) {
    const std::string& env = change.environment;
    if (debug) {
      std::optional<eph::providers::Observation> w =
          watched->ObserveFromWatches({env, "eph-" + env});
      std::cerr << fmt::format("{} change {}: {} {}\n",
                               eph::FormatRfc3339(std::chrono::system_clock::now()), env,
                               w ? eph::providers::PhaseName(w->phase) : "-", w ? w->message : "");
    }
    {
      std::lock_guard<std::mutex> lock(mu);
      ++changes[env];
    }
    cv.notify_all();
  };
  std::jthread watcher([&](std::stop_token stop) { (void)watched->WatchChanges(sink, stop); });
  for (int i = 0; i < 200 && !(*provider)->WatchesSynced(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  std::vector<double> delays;
  for (int round = 1; round <= rounds; ++round) {
    const std::string env = "bench-ready-" + eph::SecureRandom::Instance().Hex(3);
    const std::string ns = "eph-" + env;
    PodReadyTimes pods;
    pods.debug = debug;
    eph::kube::WatchCallbacks cb;
    cb.on_event = [&](const eph::kube::WatchEvent& e) { pods.OnPod(e.object); };
    cb.on_relist = [&](const eph::kube::ListResult& l, eph::kube::RelistReason) {
      for (const json& p : l.items) pods.OnPod(p);
    };
    // When each Deployment's own status first said "rolled out": what the controllers add
    // between the last pod and the provider.
    PodReadyTimes deployments;
    eph::kube::WatchCallbacks dcb;
    auto on_deployment = [&](const json& d) {
      if (k8s::EvaluateWorkload(d).phase != eph::providers::Phase::kReady) return;
      json marked = d;
      marked["status"]["conditions"] = json::array({{{"type", "Ready"}, {"status", "True"}}});
      deployments.OnPod(marked);
    };
    dcb.on_event = [&](const eph::kube::WatchEvent& e) { on_deployment(e.object); };
    dcb.on_relist = [&](const eph::kube::ListResult& l, eph::kube::RelistReason) {
      for (const json& d : l.items) on_deployment(d);
    };
    auto deployment_watch = (*provider)->client().StartWatch(
        "/apis/apps/v1/deployments",
        {.label_selector = std::string(eph::providers::kEnvironmentLabel) + "=" + env}, dcb);
    auto pod_watch = (*provider)->client().StartWatch(
        "/api/v1/pods",
        {.label_selector = std::string(eph::providers::kEnvironmentLabel) + "=" + env}, cb);
    eph::providers::ApplyRequest request;
    request.environment = env;
    request.namespace_name = ns;
    request.head_sha = "bench";
    request.host = env + ".bench.test";
    request.source_dir = source;
    request.config_json = json{{"kubernetes", {{"manifests", {manifests}}}}}.dump();
    request.labels = {{eph::providers::kManagedByLabel, eph::providers::kManagedByValue},
                      {eph::providers::kEnvironmentLabel, env}};
    const auto start = Clock::now();
    absl::StatusOr<eph::providers::ApplyResult> applied = (*provider)->Apply(request);
    if (!applied.ok()) {
      std::cerr << applied.status() << "\n";
      return 1;
    }
    const double apply_ms = MsSince(start);
    // Wait as the reconciler would: woken by the listener, then Observe.
    std::chrono::system_clock::time_point reported{};
    while (MsSince(start) < 300'000) {
      int seen;
      {
        std::lock_guard<std::mutex> lock(mu);
        seen = changes[env];
      }
      absl::StatusOr<eph::providers::Observation> o = (*provider)->Observe({env, ns});
      if (o.ok() && o->phase == eph::providers::Phase::kReady) {
        reported = std::chrono::system_clock::now();
        break;
      }
      std::unique_lock<std::mutex> lock(mu);
      cv.wait_for(lock, std::chrono::seconds(2), [&] { return changes[env] > seen; });
    }
    // The independent watch may deliver the last pod a little after the provider's own watch
    // did: wait until it has seen every pod that the API says is Ready.
    size_t api_ready = 0;
    if (absl::StatusOr<eph::kube::ListResult> list =
            (*provider)->client().List("/api/v1/namespaces/" + ns + "/pods");
        list.ok()) {
      for (const json& pod : list->items) {
        for (const json& c :
             pod.value("status", json::object()).value("conditions", json::array())) {
          if (c.value("type", "") == "Ready" && c.value("status", "") == "True") ++api_ready;
        }
      }
    }
    size_t ready_pods = 0;
    auto last_pod = pods.Last(&ready_pods);
    for (int i = 0; i < 100 && ready_pods < api_ready; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      last_pod = pods.Last(&ready_pods);
    }
    const double delay = std::chrono::duration<double, std::milli>(reported - last_pod).count();
    // For comparison: when the Deployments' own status caught up (the deployment controller).
    size_t rolled_out = 0;
    std::chrono::system_clock::time_point last_deployment{};
    for (int i = 0; i < 200; ++i) {
      last_deployment = deployments.Last(&rolled_out);
      if (rolled_out >= ready_pods) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    const double controllers =
        std::chrono::duration<double, std::milli>(last_deployment - last_pod).count();
    std::optional<absl::Time> api_last = LastReadyTransition((*provider)->client(), ns);
    const double api_delay =
        api_last ? absl::ToDoubleMilliseconds(absl::FromChrono(reported) - *api_last) : -1;
    delays.push_back(delay);
    std::cout << fmt::format(
        "round {}: apply {:.0f} ms, ready {:.0f} ms after apply, {} pods; last pod Ready (watch "
        "event) -> provider reports ready: {:.1f} ms; [for comparison: Deployments' status "
        "rolled out {:.0f} ms after the last pod; newest Ready lastTransitionTime (whole "
        "seconds) -> reported: {:.0f} ms]\n",
        round, apply_ms, MsSince(start) - apply_ms, ready_pods, delay, controllers, api_delay);
    pod_watch->Stop();
    deployment_watch->Stop();
    (void)(*provider)->Destroy({env, ns});
  }
  watcher.request_stop();
  watcher.join();
  std::sort(delays.begin(), delays.end());
  std::cout << fmt::format(
      "ready_delay_ms (last pod Ready -> provider reports ready) median={:.1f} max={:.1f} "
      "(goal < 500)\n",
      delays[delays.size() / 2], delays.back());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"kube_apply: the Kubernetes provider's apply path, for benchmarks"};
  app.require_subcommand(1);
  std::string kubeconfig;
  std::string ns;
  std::string file;
  int concurrency = 8;
  CLI::App* apply = app.add_subcommand("apply", "server-side apply a rendered file into NS");
  apply->add_option("--kubeconfig", kubeconfig)->required();
  apply->add_option("--namespace", ns)->required();
  apply->add_option("--file", file)->required();
  apply->add_option("--concurrency", concurrency);
  std::string source;
  std::string manifests;
  std::string kustomize;
  int rounds = 3;
  CLI::App* ready = app.add_subcommand("ready-latency", "last pod Ready -> provider reports ready");
  ready->add_option("--kubeconfig", kubeconfig)->required();
  ready->add_option("--source", source)->required();
  ready->add_option("--manifests", manifests)->required();
  ready->add_option("--kustomize", kustomize);
  ready->add_option("--rounds", rounds);
  CLI11_PARSE(app, argc, argv);
  if (*apply) return Apply(kubeconfig, ns, file, concurrency);
  return ReadyLatency(kubeconfig, source, manifests, kustomize, rounds);
}
