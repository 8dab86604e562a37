#include "pkg/base/listener_limits.h"

#include <spdlog/spdlog.h>
#include <sys/resource.h>

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace eph {

int ConnectionLimitFromOpenFiles(int share_divisor) {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY) return 4096;
  const auto share = static_cast<int64_t>(limit.rlim_cur) / std::max(share_divisor, 1);
  return static_cast<int>(std::clamp<int64_t>(share, 64, 1'000'000));
}

void RaiseOpenFilesLimit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur >= limit.rlim_max) return;
  limit.rlim_cur = limit.rlim_max;
  setrlimit(RLIMIT_NOFILE, &limit);
}

std::string OpenFilesLimitText() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY) return "unlimited";
  return std::to_string(limit.rlim_cur);
}

void LimitRecord::Note(std::string what, TimePoint now) {
  std::lock_guard<std::mutex> lock(mu_);
  hit_ = true;
  hit_at_ = now;
  what_ = std::move(what);
}

absl::Status LimitRecord::Saturation(TimePoint now) const {
  std::lock_guard<std::mutex> lock(mu_);
  if (!hit_ || now - hit_at_ > kWindow) return absl::OkStatus();
  const auto ago = std::chrono::duration_cast<std::chrono::seconds>(now - hit_at_).count();
  return absl::UnavailableError(absl::StrCat(listener_, ": ", what_, " (", ago, " s ago)"));
}

void AcceptErrorLog::Log(std::string_view error, std::chrono::steady_clock::time_point now) {
  if (logged_ && now - logged_at_ < kEvery) {
    ++unlogged_;
    return;
  }
  if (unlogged_ > 0) {
    spdlog::warn("{}: accept failed: {} ({} more failures in the last {} s)", prefix_, error,
                 unlogged_,
                 std::chrono::duration_cast<std::chrono::seconds>(now - logged_at_).count());
  } else {
    spdlog::warn("{}: accept failed: {}", prefix_, error);
  }
  logged_ = true;
  logged_at_ = now;
  unlogged_ = 0;
}

}  // namespace eph
