// RunBoundedProcess: runs a renderer (kustomize, helm) with an argv array, never through a shell,
// within a time limit and an output-size limit, and captures what it printed.
//
// Unlike pkg/kube's RunProcess (which drops output beyond its limit and lets the program run on),
// a program that writes more than `max_output_bytes` to stdout is killed at once: a manifest
// render that produces 50 MB is an error, and reading it to the end would only waste time. Its
// stderr is kept up to `max_error_bytes` (the tail is what explains a failure).
//
// The child gets /dev/null as stdin, the environment `env` (or Eph's own when `inherit_env`),
// runs in `working_dir` if given, and in its own process group, which is killed (SIGKILL) on a
// timeout or an oversized output, so grandchildren go too.
//
// Thread-safety: safe to call from many threads at once (posix_spawn; no fork in a threaded
// program).
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace eph::providers::kubernetes {

struct BoundedProcessSpec {
  std::vector<std::string> argv;  // argv[0]: a path (no PATH lookup)
  // Added to (or replacing entries of) Eph's environment.
  std::vector<std::pair<std::string, std::string>> env;
  std::string working_dir;  // empty: Eph's
  std::chrono::milliseconds timeout{60'000};
  size_t max_output_bytes = 20u << 20;
  size_t max_error_bytes = 64u << 10;
};

struct BoundedProcessResult {
  int exit_code = -1;   // when the program exited on its own
  int term_signal = 0;  // the signal that ended it, 0 if it exited
  bool timed_out = false;
  bool output_exceeded = false;  // stdout passed max_output_bytes: the program was killed
  std::string out;               // at most max_output_bytes
  std::string err;               // the last max_error_bytes of stderr

  bool succeeded() const {
    return !timed_out && !output_exceeded && term_signal == 0 && exit_code == 0;
  }
};

// Errors: NotFound when the program does not exist or is not executable, Internal when it cannot
// be started for another reason. A program that runs and fails is not an error: see the result.
[[nodiscard]] absl::StatusOr<BoundedProcessResult> RunBoundedProcess(
    const BoundedProcessSpec& spec);

}  // namespace eph::providers::kubernetes
