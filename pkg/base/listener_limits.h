// What every listening socket of ephd (the API server, the preview gateway) does the same way
// when it runs into a limit: its default connection cap from the open-files limit, the limit it
// hit last (for /readyz), and accept failures logged at most once per 10 s.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "pkg/base/clock.h"

namespace eph {

// The soft RLIMIT_NOFILE divided by `share_divisor`, within [64, 1,000,000]; 4096 when the limit
// is unknown or unlimited. A listener's default connection cap (the rest of the descriptors are
// left for backends, the store and the rest of the process).
int ConnectionLimitFromOpenFiles(int share_divisor);

// Raises the soft RLIMIT_NOFILE to the hard one (ephd at start), as Go's runtime does: the soft
// default (often 1024) is a leftover of select(), which ephd does not use. Best effort.
void RaiseOpenFilesLimit();

// The soft RLIMIT_NOFILE as text ("unlimited" if so), for ephd's start-up log.
std::string OpenFilesLimitText();

// The last limit a listener hit. Saturation() is Unavailable, naming it, for 30 s after.
// Thread-safe.
class LimitRecord {
 public:
  static constexpr std::chrono::seconds kWindow{30};

  explicit LimitRecord(std::string listener) : listener_(std::move(listener)) {}

  void Note(std::string what, TimePoint now);
  absl::Status Saturation(TimePoint now) const;

 private:
  const std::string listener_;
  mutable std::mutex mu_;
  bool hit_ = false;
  TimePoint hit_at_;
  std::string what_;
};

// Logs accept failures at most once per 10 s, with the count of those not logged in between.
// Not thread-safe: one accept loop calls it.
class AcceptErrorLog {
 public:
  static constexpr std::chrono::seconds kEvery{10};

  explicit AcceptErrorLog(std::string prefix) : prefix_(std::move(prefix)) {}

  void Log(std::string_view error, std::chrono::steady_clock::time_point now);

 private:
  const std::string prefix_;
  bool logged_ = false;
  std::chrono::steady_clock::time_point logged_at_;
  int64_t unlogged_ = 0;
};

}  // namespace eph
