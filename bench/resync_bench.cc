// resync_bench: the engine issue's scale figure. Fills a store with N live environments (if it
// has fewer), then times full resync passes (list every environment, enqueue every live key in
// one transaction) and prints wall and CPU time per pass.
//
//   resync_bench --state sqlite:/tmp/x/eph.db [--environments 10000] [--passes 5]
#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>

#include "pkg/base/clock.h"
#include "pkg/controller/metrics.h"
#include "pkg/controller/resync.h"
#include "pkg/providers/provider.h"
#include "pkg/state/store.h"

namespace {

double CpuSeconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"resync_bench"};
  std::string url;
  int environments = 10000;
  int passes = 5;
  app.add_option("--state", url)->required();
  app.add_option("--environments", environments)->check(CLI::Range(1, 100000));
  app.add_option("--passes", passes)->check(CLI::Range(1, 100));
  CLI11_PARSE(app, argc, argv);

  auto store = eph::state::OpenStore(url);
  if (!store.ok()) {
    std::fprintf(stderr, "resync_bench: %s\n", std::string(store.status().message()).c_str());
    return 1;
  }
  eph::SystemClock& clock = eph::SystemClock::Instance();
  auto existing = (*store)->ListEnvironments({});
  if (!existing.ok()) return 1;
  const auto seed_start = std::chrono::steady_clock::now();
  for (int i = static_cast<int>(existing->size()); i < environments; ++i) {
    eph::state::Environment env;
    env.name = "bench-env-" + std::to_string(i);
    env.project = "bench/app" + std::to_string(i % 100);
    env.pr_number = 1 + i / 100;
    env.state = eph::state::EnvState::kReady;
    env.url = "https://" + env.name + ".preview.localhost";
    env.provider = "kubernetes";
    env.head_sha = "0123456789abcdef0123456789abcdef01234567";
    env.spec_json = R"({"kubernetes":{"manifests":["./k8s/base","./k8s/overlays/preview"]}})";
    env.created_at = env.updated_at = clock.Now();
    env.expires_at = clock.Now() + std::chrono::hours(72);
    auto created = (*store)->CreateEnvironment(env);
    if (!created.ok()) {
      std::fprintf(stderr, "seed: %s\n", std::string(created.status().message()).c_str());
      return 1;
    }
  }
  std::printf("environments=%d seeded_in_s=%.1f\n", environments,
              std::chrono::duration<double>(std::chrono::steady_clock::now() - seed_start).count());

  eph::providers::ProviderRegistry providers;
  eph::controller::ControllerMetrics metrics;
  eph::controller::ResyncOptions options;
  options.sweep_orphans = false;  // no provider here: the pass is the store work
  eph::controller::Resyncer resync(**store, providers, clock, metrics, options, [] {});
  double best_cpu = 1e9, worst_cpu = 0, total_cpu = 0;
  for (int p = 0; p < passes; ++p) {
    const double cpu0 = CpuSeconds();
    const auto wall0 = std::chrono::steady_clock::now();
    auto report = resync.RunOnce();
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall0).count();
    const double cpu = CpuSeconds() - cpu0;
    if (!report.ok()) {
      std::fprintf(stderr, "resync: %s\n", std::string(report.status().message()).c_str());
      return 1;
    }
    std::printf("pass=%d enqueued=%lld wall_s=%.3f cpu_s=%.3f\n", p + 1,
                static_cast<long long>(report->enqueued), wall, cpu);
    best_cpu = std::min(best_cpu, cpu);
    worst_cpu = std::max(worst_cpu, cpu);
    total_cpu += cpu;
  }
  std::printf("resync cpu_s: best=%.3f mean=%.3f worst=%.3f (goal < 2 s)\n", best_cpu,
              total_cpu / passes, worst_cpu);
  return 0;
}
