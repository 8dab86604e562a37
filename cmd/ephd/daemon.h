// Daemon: wires ephd's parts together (store, webhook intake, API, HTTP server, queue workers)
// from a DaemonConfig, and starts and stops them in order. Only wiring: each part's logic lives
// in its module (pkg/), ephd's settings in settings.h, `ephd token` in token_command.h.
//
// Thread-safety: Start and Stop from one thread.
#pragma once

#include <memory>

#include "absl/status/status.h"
#include "cmd/ephd/settings.h"
#include "cmd/ephd/token_command.h"

namespace eph::daemon {

// ephd's running parts, defined in daemon.cc, where each is built by its own function.
struct DaemonParts;

class Daemon {
 public:
  explicit Daemon(DaemonConfig config);
  ~Daemon();
  absl::Status Start();
  void Stop();

 private:
  DaemonConfig config_;
  std::unique_ptr<DaemonParts> parts_;
};

}  // namespace eph::daemon
