#include "pkg/providers/kubernetes/bounded_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <set>
#include <system_error>

#include "fmt/format.h"

extern char** environ;

namespace eph::providers::kubernetes {
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

std::string ErrorText(int error) { return std::generic_category().message(error); }

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

// Keeps the last `limit` bytes.
void AppendTail(std::string& sink, const char* data, size_t n, size_t limit) {
  sink.append(data, n);
  if (sink.size() > limit) sink.erase(0, sink.size() - limit);
}

}  // namespace

absl::StatusOr<BoundedProcessResult> RunBoundedProcess(const BoundedProcessSpec& spec) {
  if (spec.argv.empty() || spec.argv[0].empty()) {
    return absl::InvalidArgumentError("no program to run (empty command)");
  }
  int out_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0) {
    return absl::InternalError(fmt::format("pipe: {}", ErrorText(errno)));
  }
  Fd out_read(out_pipe[0]);
  Fd out_write(out_pipe[1]);
  int err_pipe[2];
  if (pipe2(err_pipe, O_CLOEXEC) != 0) {
    return absl::InternalError(fmt::format("pipe: {}", ErrorText(errno)));
  }
  Fd err_read(err_pipe[0]);
  Fd err_write(err_pipe[1]);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out_write.get(), STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, err_write.get(), STDERR_FILENO);
  if (!spec.working_dir.empty()) {
    posix_spawn_file_actions_addchdir_np(&actions, spec.working_dir.c_str());
  }
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
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
  const int rc = posix_spawn(&pid, argv[0], &actions, &attr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    if (rc == ENOENT || rc == EACCES || rc == ENOEXEC) {
      return absl::NotFoundError(fmt::format("cannot run {}: {}", spec.argv[0], ErrorText(rc)));
    }
    return absl::InternalError(fmt::format("cannot run {}: {}", spec.argv[0], ErrorText(rc)));
  }
  out_write.Close();
  err_write.Close();

  BoundedProcessResult result;
  auto deadline = std::chrono::steady_clock::now() + spec.timeout;
  bool reaped = false;
  bool killed = false;
  int status = 0;
  bool out_open = true;
  bool err_open = true;
  constexpr size_t kReadBuffer = size_t{64} << 10;
  std::string buf(kReadBuffer, '\0');
  while (out_open || err_open) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      if (!reaped) result.timed_out = true;
      break;
    }
    pollfd fds[2];
    nfds_t n = 0;
    if (out_open) fds[n++] = {out_read.get(), POLLIN, 0};
    if (err_open) fds[n++] = {err_read.get(), POLLIN, 0};
    const int ready = poll(fds, n, static_cast<int>(std::min<int64_t>(left.count(), 100)));
    if (ready < 0) {
      if (errno == EINTR) continue;
      break;
    }
    // A program that leaves a background child holding its stdout open must not make us wait
    // for the whole timeout: once it has exited, take what is there shortly after.
    if (!reaped && waitpid(pid, &status, WNOHANG) == pid) {
      reaped = true;
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
      const size_t size = static_cast<size_t>(got);
      if (!is_out) {
        AppendTail(result.err, buf.data(), size, spec.max_error_bytes);
        continue;
      }
      if (result.out.size() + size > spec.max_output_bytes) {
        result.output_exceeded = true;
        result.out.append(buf.data(), spec.max_output_bytes - result.out.size());
        out_open = false;
        err_open = false;
        break;
      }
      result.out.append(buf.data(), size);
    }
  }
  if ((result.timed_out || result.output_exceeded) && !reaped) {
    kill(-pid, SIGKILL);
    killed = true;
  }
  while (!reaped && waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status)) {
    result.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    result.term_signal = WTERMSIG(status);
  }
  if (killed && result.term_signal == 0) result.term_signal = SIGKILL;
  return result;
}

}  // namespace eph::providers::kubernetes
