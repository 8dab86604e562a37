#include "pkg/kube/process_runner.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <set>
#include <system_error>

#include "fmt/format.h"

extern char** environ;

namespace eph::kube {
namespace {

class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() { Close(); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  void Close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

// strerror is not thread-safe; this is.
std::string ErrorText(int error) { return std::generic_category().message(error); }

// The child's environment: ours, with `extra` names replaced or added.
std::vector<std::string> BuildEnvironment(
    const std::vector<std::pair<std::string, std::string>>& extra) {
  std::set<std::string> overridden;
  for (const auto& [name, value] : extra) overridden.insert(name);
  std::vector<std::string> out;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    const std::string entry(*e);
    const auto eq = entry.find('=');
    if (eq != std::string::npos && overridden.count(entry.substr(0, eq)) > 0) continue;
    out.push_back(entry);
  }
  for (const auto& [name, value] : extra) out.push_back(fmt::format("{}={}", name, value));
  return out;
}

// Starts spec.argv in its own process group with stdin from /dev/null and stdout and stderr on
// `out_fd` and `err_fd`.
absl::StatusOr<pid_t> Spawn(const ProcessSpec& spec, int out_fd, int err_fd) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out_fd, STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, err_fd, STDERR_FILENO);
  if (!spec.working_dir.empty()) {
    posix_spawn_file_actions_addchdir_np(&actions, spec.working_dir.c_str());
  }
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  // Its own process group, so a timeout kills the plugin's children too. Default signal
  // dispositions and an empty mask, whatever this (threaded) process has blocked.
  sigset_t empty_mask;
  sigemptyset(&empty_mask);
  sigset_t default_signals;
  sigfillset(&default_signals);
  posix_spawnattr_setsigmask(&attr, &empty_mask);
  posix_spawnattr_setsigdefault(&attr, &default_signals);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

  std::vector<char*> argv;
  argv.reserve(spec.argv.size() + 1);
  for (const auto& a : spec.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::vector<std::string> env_strings = BuildEnvironment(spec.env);
  std::vector<char*> envp;
  envp.reserve(env_strings.size() + 1);
  for (auto& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);

  pid_t pid = -1;
  const bool has_slash = spec.argv[0].find('/') != std::string::npos;
  const int rc = has_slash ? posix_spawn(&pid, argv[0], &actions, &attr, argv.data(), envp.data())
                           : posix_spawnp(&pid, argv[0], &actions, &attr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    if (rc == ENOENT || rc == EACCES || rc == ENOEXEC) {
      return absl::NotFoundError(fmt::format("cannot run {}: {}", spec.argv[0], ErrorText(rc)));
    }
    return absl::InternalError(fmt::format("cannot run {}: {}", spec.argv[0], ErrorText(rc)));
  }
  return pid;
}

// Keeps `size` bytes the child wrote to stdout (`is_out`) or stderr within the spec's limits:
// stderr's last stderr_tail_bytes, or the first max_output_bytes. False when the output limit
// says to stop reading and kill the child.
bool Keep(const ProcessSpec& spec, bool is_out, const char* data, size_t size,
          ProcessResult& result) {
  std::string& sink = is_out ? result.out : result.err;
  if (!is_out && spec.stderr_tail_bytes > 0) {
    sink.append(data, size);
    if (sink.size() > spec.stderr_tail_bytes) sink.erase(0, sink.size() - spec.stderr_tail_bytes);
    return true;
  }
  const size_t room = sink.size() < spec.max_output_bytes ? spec.max_output_bytes - sink.size() : 0;
  if (size > room) result.output_truncated = true;
  sink.append(data, std::min(room, size));
  if (is_out && size > room && spec.kill_on_output_limit) {
    result.killed_for_output = true;
    return false;
  }
  return true;
}

struct Child {
  pid_t pid = -1;
  bool reaped = false;
  int status = 0;  // waitpid's, once reaped
};

// Reads the child's stdout and stderr until both close, the timeout passes (timed_out) or the
// output limit is hit (killed_for_output).
void ReadOutput(const ProcessSpec& spec, Child& child, const Fd& out_read, const Fd& err_read,
                ProcessResult& result) {
  auto deadline = std::chrono::steady_clock::now() + spec.timeout;
  bool out_open = true;
  bool err_open = true;
  std::string buf(size_t{64} << 10, '\0');
  while (out_open || err_open) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      result.timed_out = true;
      return;
    }
    pollfd fds[2];
    nfds_t n = 0;
    if (out_open) fds[n++] = {out_read.get(), POLLIN, 0};
    if (err_open) fds[n++] = {err_read.get(), POLLIN, 0};
    const int ready = poll(fds, n, static_cast<int>(std::min<int64_t>(left.count(), 100)));
    if (ready < 0) {
      if (errno == EINTR) continue;
      return;
    }
    // A plugin that leaves a background child holding its stdout open must not make us wait
    // for the whole timeout: once it has exited, take what is there shortly after.
    if (!child.reaped && waitpid(child.pid, &child.status, WNOHANG) == child.pid) {
      child.reaped = true;
      deadline =
          std::min(deadline, std::chrono::steady_clock::now() + std::chrono::milliseconds(200));
    }
    for (nfds_t i = 0; i < n; ++i) {
      if (fds[i].revents == 0) continue;
      const bool is_out = fds[i].fd == out_read.get();
      const ssize_t got = read(fds[i].fd, buf.data(), buf.size());
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) {
        (is_out ? out_open : err_open) = false;
        continue;
      }
      if (!Keep(spec, is_out, buf.data(), static_cast<size_t>(got), result)) return;
    }
  }
}

// Kills the child's process group if it overran, reaps it and records how it ended.
void Finish(Child& child, ProcessResult& result) {
  bool killed = false;
  if ((result.timed_out || result.killed_for_output) && !child.reaped) {
    kill(-child.pid, SIGKILL);
    killed = true;
  }
  if (result.timed_out && child.reaped) result.timed_out = false;  // it exited; a child held the pipe
  while (!child.reaped && waitpid(child.pid, &child.status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(child.status)) {
    result.exit_code = WEXITSTATUS(child.status);
  } else if (WIFSIGNALED(child.status)) {
    result.term_signal = WTERMSIG(child.status);
  }
  if (killed && result.term_signal == 0) result.term_signal = SIGKILL;
}

}  // namespace

absl::StatusOr<ProcessResult> RunProcess(const ProcessSpec& spec) {
  if (spec.argv.empty() || spec.argv[0].empty()) {
    return absl::InvalidArgumentError("no program to run (empty command)");
  }
  int out_pipe[2];
  int err_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0) {
    return absl::InternalError(fmt::format("pipe: {}", ErrorText(errno)));
  }
  Fd out_read(out_pipe[0]);
  Fd out_write(out_pipe[1]);
  if (pipe2(err_pipe, O_CLOEXEC) != 0) {
    return absl::InternalError(fmt::format("pipe: {}", ErrorText(errno)));
  }
  Fd err_read(err_pipe[0]);
  Fd err_write(err_pipe[1]);
  absl::StatusOr<pid_t> pid = Spawn(spec, out_write.get(), err_write.get());
  if (!pid.ok()) return pid.status();
  out_write.Close();
  err_write.Close();

  ProcessResult result;
  Child child{.pid = *pid};
  ReadOutput(spec, child, out_read, err_read, result);
  Finish(child, result);
  return result;
}

}  // namespace eph::kube
