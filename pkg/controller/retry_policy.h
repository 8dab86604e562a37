// Which errors are worth retrying, and how long to wait before the next attempt.
//
// The status code decides (STYLE.md "Errors"):
//   Unavailable, DeadlineExceeded, ResourceExhausted   transient: back off and retry
//   Aborted                                           a concurrent writer won: re-read, retry
//   InvalidArgument, FailedPrecondition, OutOfRange,  terminal: recorded on the environment as
//   Unimplemented                                     `failed` with the message; never a loop
//   anything else (Internal, Unknown, NotFound, ...)  retried with backoff, because giving up on
//                                                     an environment is worse than a slow retry
//
// Thread-safety: pure functions (the Random passed in is itself thread-safe).
#pragma once

#include <cstdint>

#include "absl/status/status.h"
#include "pkg/base/clock.h"
#include "pkg/base/random.h"

namespace eph::controller {

bool IsTerminalError(const absl::Status& status);

struct BackoffOptions {
  Duration base = std::chrono::seconds(1);
  Duration max = std::chrono::minutes(5);
  // Each delay is multiplied by a factor drawn uniformly from [1 - jitter, 1 + jitter], so keys
  // that failed together (an outage) do not retry together.
  double jitter = 0.2;
};

// Delay before the attempt after `failed_attempts` failures (0 for the first failure):
// base * 2^failed_attempts, capped at max, then jittered (so at most max * (1 + jitter)).
// Always > 0.
Duration BackoffDelay(int64_t failed_attempts, const BackoffOptions& options, Random& random);

}  // namespace eph::controller
