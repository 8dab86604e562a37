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
  eph::daemon::UseOneLineUsageErrors(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // CLI11's own codes (105 and so on) mean nothing to a caller: every usage error is 2.
    return app.exit(e) == 0 ? 0 : 2;
  }
  if (!config_file.empty()) {
    auto s = eph::daemon::ApplyConfigFile(app, config_file, config);
    if (!s.ok()) {
      std::fprintf(stderr, "ephd: %s\n", std::string(s.message()).c_str());
      return 2;
    }
  }
  // Checked here, after flags, environment and file, so a mistyped value in any of them stops
  // start-up instead of quietly changing what is logged.
  if (auto s = eph::daemon::CheckLogSettings(config); !s.ok()) {
    std::fprintf(stderr, "ephd: %s\n", std::string(s.message()).c_str());
    return 2;
  }

  if (int rc = eph::daemon::RunTokenCommand(token_command, config); rc >= 0) return rc;

  // Block the signals ephd handles before any thread starts, so only sigwait below sees them.
  // SIGHUP's default action would end ephd without a word, and service managers and terminals
  // send it routinely.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  eph::daemon::Daemon daemon(config);
  if (auto s = daemon.Start(); !s.ok()) {
    std::fprintf(stderr, "ephd: %s\n", std::string(s.message()).c_str());
    return 1;
  }
  int sig = 0;
  while (sigwait(&stop_signals, &sig) == 0 && sig == SIGHUP) {
    spdlog::info(
        "ephd: SIGHUP received; nothing is reloaded (settings are read at start-up: restart "
        "ephd to change them); still running");
  }
  spdlog::info("ephd: signal {} received, shutting down (finishing in-flight work)", sig);
  daemon.Stop();
  spdlog::info("ephd: stopped");
  return 0;
}
