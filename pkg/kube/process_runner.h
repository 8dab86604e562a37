// RunProcess: runs a program with an argv array, never through a shell, and captures its output.
// Used for exec credential plugins, whose arguments come from a kubeconfig and must reach the
// program verbatim ("$(touch x)" is an argument, not a command), and for the Kubernetes
// provider's renderers (kustomize, helm).
//
// The child gets /dev/null as stdin, Eph's environment plus `env`, runs in `working_dir` if given,
// and in its own process group, which is killed (SIGKILL) if it outlives `timeout`. Output beyond
// `max_output_bytes` per stream is dropped (the result says so); with `kill_on_output_limit`, a
// program whose stdout passes the limit is killed at once instead (a 50 MB render is an error,
// and reading it to the end would only waste time). With `stderr_tail_bytes`, stderr keeps its
// last bytes rather than its first (the tail is what explains a failure).
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
  std::string working_dir;  // empty: Eph's
  std::chrono::milliseconds timeout{60'000};
  size_t max_output_bytes = 4 << 20;
  bool kill_on_output_limit = false;  // stdout past max_output_bytes kills the program
  size_t stderr_tail_bytes = 0;       // nonzero: keep the last this many bytes of stderr
};

struct ProcessResult {
  int exit_code = -1;   // valid when !killed_by_signal
  int term_signal = 0;  // the signal that ended the child, 0 if it exited
  bool timed_out = false;
  bool output_truncated = false;   // a stream passed its limit
  bool killed_for_output = false;  // kill_on_output_limit took effect: stdout passed its limit
  std::string out;
  std::string err;

  bool succeeded() const {
    return !timed_out && !killed_for_output && term_signal == 0 && exit_code == 0;
  }
};

// Errors: NotFound when the program does not exist or is not executable, Internal for other
// failures to start it. A program that starts and then fails is not an error: see the result.
[[nodiscard]] absl::StatusOr<ProcessResult> RunProcess(const ProcessSpec& spec);

}  // namespace eph::kube
