// ChildProcess: runs a built binary (ephd, eph) as a user would, for end-to-end tests. Output goes
// to files so a test can wait for a line with a deadline instead of sleeping.
//
// Thread-safety: one owner thread.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <map>
#include <optional>
#include <regex>
#include <string>
#include <vector>

namespace eph::testing {

class ChildProcess {
 public:
  // Starts `argv[0]` with `argv`, the current environment plus `env`, stdout and stderr captured
  // into files under `log_dir`.
  ChildProcess(std::vector<std::string> argv, std::map<std::string, std::string> env,
               const std::string& log_dir);
  ~ChildProcess();  // SIGKILL if still running
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  bool started() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }

  // Waits until stdout+stderr contain a match of `pattern`; returns the first capture group (or
  // the whole match). nullopt on timeout or if the process exited first.
  std::optional<std::string> WaitForOutput(const std::regex& pattern,
                                           std::chrono::milliseconds timeout);
  std::string Output() const;

  void Signal(int sig);
  // Waits for exit; returns the exit code, 128+signal if killed, nullopt on timeout.
  std::optional<int> Wait(std::chrono::milliseconds timeout);

 private:
  pid_t pid_ = -1;
  std::string out_path_;
  std::optional<int> exit_code_;
};

struct CommandResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Runs a command to completion (bounded by `timeout`), capturing output.
CommandResult RunCommand(std::vector<std::string> argv, std::map<std::string, std::string> env = {},
                         std::chrono::milliseconds timeout = std::chrono::seconds(60));

}  // namespace eph::testing
