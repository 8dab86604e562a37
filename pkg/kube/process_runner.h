// RunProcess: runs a program with an argv array, never through a shell, and captures its output.
// Used for exec credential plugins, whose arguments come from a kubeconfig and must reach the
// program verbatim ("$(touch x)" is an argument, not a command).
//
// The child gets /dev/null as stdin, Eph's environment plus `env`, and its own process group, which
// is killed (SIGKILL) if it outlives `timeout`. Output beyond `max_output_bytes` per stream is
// dropped (the result says so).
//
// Thread-safety: safe to call from many threads at once (posix_spawn, no fork in a threaded
// program).
#pragma once

#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace eph::kube {

struct ProcessSpec {
  std::vector<std::string> argv;  // argv[0]: a path, or a bare name looked up on PATH
  std::vector<std::pair<std::string, std::string>> env;  // set (or overridden) for the child
  std::chrono::milliseconds timeout{60'000};
  size_t max_output_bytes = 4 << 20;
};

struct ProcessResult {
  int exit_code = -1;   // valid when !killed_by_signal
  int term_signal = 0;  // the signal that ended the child, 0 if it exited
  bool timed_out = false;
  bool output_truncated = false;
  std::string out;
  std::string err;
};

// Errors: NotFound when the program does not exist or is not executable, Internal for other
// failures to start it. A program that starts and then fails is not an error: see the result.
[[nodiscard]] absl::StatusOr<ProcessResult> RunProcess(const ProcessSpec& spec);

}  // namespace eph::kube
