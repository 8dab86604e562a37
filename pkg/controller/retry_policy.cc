#include "pkg/controller/retry_policy.h"

#include <algorithm>
#include <cmath>

namespace eph::controller {

bool IsTerminalError(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kOutOfRange:
    case absl::StatusCode::kUnimplemented:
      return true;
    default:
      return false;
  }
}

Duration BackoffDelay(int64_t failed_attempts, const BackoffOptions& options, Random& random) {
  const double base = std::chrono::duration<double>(options.base).count();
  const double max = std::chrono::duration<double>(options.max).count();
  // 2^62 already exceeds any sane cap; clamping the exponent keeps pow finite.
  const double exponent = static_cast<double>(std::clamp<int64_t>(failed_attempts, 0, 62));
  double delay = std::min(max, base * std::pow(2.0, exponent));
  const double jitter = std::clamp(options.jitter, 0.0, 1.0);
  // Uniform in [0, 1) with 53 bits of precision.
  const double u = static_cast<double>(random.Next() >> 11) * 0x1.0p-53;
  delay *= 1.0 - jitter + 2.0 * jitter * u;
  const auto out = std::chrono::duration_cast<Duration>(std::chrono::duration<double>(delay));
  return std::max(out, Duration(std::chrono::milliseconds(1)));
}

}  // namespace eph::controller
