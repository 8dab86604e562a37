// ephd: the Eph daemon. Flags, EPH_* environment variables and an optional YAML file
// (--config) configure it, in that order of precedence. See docs/ephd.md.
#include <malloc.h>
#include <signal.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "cmd/ephd/daemon.h"

int main(int argc, char** argv) {
  // glibc gives each thread that allocates its own arena and keeps freed memory in it; with 16
  // HTTP workers and the reconciler threads that multiplies resident memory after large
  // responses. A few shared arenas keep ephd small at no measurable cost for its workload.
  mallopt(M_ARENA_MAX, 2);
  eph::daemon::DaemonConfig config;
  CLI::App app{"ephd: gives every pull request its own short-lived preview environment"};
  app.set_version_flag("--version", std::string(eph::daemon::kVersion));
  std::string config_file;
  app.add_option("--config", config_file,
                 "YAML file with settings (keys as the flags, e.g. listen)")
      ->envname("EPH_CONFIG");
  eph::daemon::AddFlags(app, config);
  eph::daemon::TokenCommand token_command;
  eph::daemon::AddTokenCommands(app, token_command);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (!config_file.empty()) {
    auto s = eph::daemon::ApplyConfigFile(app, config_file, config);
    if (!s.ok()) {
      std::fprintf(stderr, "ephd: %s\n", std::string(s.message()).c_str());
      return 2;
    }
  }

  if (int rc = eph::daemon::RunTokenCommand(token_command, config); rc >= 0) return rc;

  // Block the stop signals before any thread starts, so only sigwait below sees them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  eph::daemon::Daemon daemon(config);
  if (auto s = daemon.Start(); !s.ok()) {
    std::fprintf(stderr, "ephd: %s\n", std::string(s.message()).c_str());
    return 1;
  }
  int sig = 0;
  sigwait(&stop_signals, &sig);
  spdlog::info("ephd: signal {} received, shutting down (finishing in-flight work)", sig);
  daemon.Stop();
  spdlog::info("ephd: stopped");
  return 0;
}
