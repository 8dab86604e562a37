#include "pkg/providers/docker/compose_loader.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>

#include "absl/strings/str_split.h"
#include "fmt/format.h"
#include "pkg/kube/process_runner.h"

namespace eph::providers::docker {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using Path = std::vector<std::string>;

// eph-compose's output for a compose file of kMaxConfigBytes is far below this; more is refused.
constexpr size_t kMaxProjectJsonBytes = size_t{16} << 20;

bool IsExecutableFile(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec) && ::access(p.c_str(), X_OK) == 0;
}

std::vector<ComposeText> ReadSources(const ComposeProjectSource& source) {
  std::vector<ComposeText> out;
  for (const std::string& f : source.files) {
    std::ifstream in(fs::path(source.project_dir) / f, std::ios::binary);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    out.push_back({f, std::move(text)});
  }
  return out;
}

std::vector<std::string> Argv(const std::string& tool, const ComposeProjectSource& source) {
  std::vector<std::string> argv = {tool, "--project-directory", source.project_dir};
  for (const std::string& f : source.files) argv.insert(argv.end(), {"--file", f});
  for (const std::string& p : source.profiles) argv.insert(argv.end(), {"--profile", p});
  for (const auto& [k, v] : source.variables) argv.insert(argv.end(), {"--var", k + "=" + v});
  return argv;
}

absl::Status Refusals(std::vector<config::Diagnostic> diagnostics) {
  config::SortAndDeduplicate(diagnostics);
  std::string text = config::FormatDiagnostics(diagnostics);
  while (!text.empty() && text.back() == '\n') text.pop_back();
  return absl::InvalidArgumentError(text);
}

}  // namespace

std::string FindComposeTool() {
  fs::path cache;
  // NOLINTNEXTLINE(concurrency-mt-unsafe): read-only use of the environment
  if (const char* c = std::getenv("EPH_CACHE_DIR"); c != nullptr && *c != '\0') {
    cache = c;
  } else if (const char* home = std::getenv("HOME"); home != nullptr && *home != '\0') {  // NOLINT
    cache = fs::path(home) / ".cache" / "eph";
  }
  std::error_code ec;
  fs::path best;
  fs::file_time_type best_time{};
  for (const fs::directory_entry& e : fs::directory_iterator(cache, ec)) {
    const fs::path tool = e.path() / "bin" / "eph-compose";
    if (e.path().filename().string().rfind("compose-", 0) != 0 ||
        !fs::exists(e.path() / "complete", ec) || !IsExecutableFile(tool)) {
      continue;
    }
    const fs::file_time_type t = fs::last_write_time(e.path() / "complete", ec);
    if (best.empty() || t > best_time) {
      best = tool;
      best_time = t;
    }
  }
  if (!best.empty()) return best.string();
  // NOLINTNEXTLINE(concurrency-mt-unsafe)
  const char* path = std::getenv("PATH");
  for (const std::string& dir :
       std::vector<std::string>(absl::StrSplit(path == nullptr ? "" : path, ':'))) {
    if (!dir.empty() && IsExecutableFile(fs::path(dir) / "eph-compose")) {
      return (fs::path(dir) / "eph-compose").string();
    }
  }
  return "";
}

absl::StatusOr<ComposeFile> LoadComposeProject(const ApplyRequest& request,
                                               ComposeProjectSource source,
                                               const ComposeLoaderOptions& options) {
  if (!request.source_dir.empty()) {
    source.project_dir = request.source_dir;
    return LoadComposeProject(source, options);
  }
  std::string dir = (fs::temp_directory_path() / "eph-compose-XXXXXX").string();
  if (::mkdtemp(dir.data()) == nullptr) {
    return absl::UnavailableError(
        fmt::format("creating a directory for the compose files: {}", std::strerror(errno)));
  }
  struct Remove {
    std::string dir;
    ~Remove() {
      std::error_code ec;
      fs::remove_all(dir, ec);
    }
  } remove{dir};
  for (const SourceFile& f : request.sources) {
    const fs::path rel = fs::path(f.path).lexically_normal();
    if (rel.empty() || rel.is_absolute() || *rel.begin() == "..") continue;
    const fs::path full = fs::path(dir) / rel;
    std::error_code ec;
    fs::create_directories(full.parent_path(), ec);
    std::ofstream(full, std::ios::binary) << f.content;
  }
  source.project_dir = dir;
  return LoadComposeProject(source, options);
}

absl::StatusOr<ComposeFile> LoadComposeProject(const ComposeProjectSource& source,
                                               const ComposeLoaderOptions& options) {
  const std::string tool = options.compose_path.empty() ? FindComposeTool() : options.compose_path;
  if (tool.empty() || !IsExecutableFile(tool)) {
    return absl::FailedPreconditionError(
        tool.empty()
            ? "eph-compose is not installed where Eph can find it: run "
              "tools/compose/build, or set the Docker provider setting compose_path"
            : fmt::format("eph-compose (compose_path={}) is not an executable file", tool));
  }
  kube::ProcessSpec spec;
  spec.argv = Argv(tool, source);
  spec.timeout = options.timeout;
  spec.max_output_bytes = kMaxProjectJsonBytes;
  spec.kill_on_output_limit = true;
  spec.stderr_tail_bytes = size_t{16} << 10;
  absl::StatusOr<kube::ProcessResult> run = kube::RunProcess(spec);
  if (!run.ok()) {
    return absl::FailedPreconditionError(
        fmt::format("running eph-compose: {}", std::string(run.status().message())));
  }
  if (run->timed_out || run->killed_for_output || run->term_signal != 0) {
    return absl::FailedPreconditionError(fmt::format(
        "eph-compose {}", run->timed_out ? "timed out" : "was killed (output too large?)"));
  }
  const json out = json::parse(run->out, nullptr, false);
  const std::vector<ComposeText> sources = ReadSources(source);
  if (run->exit_code == 1 && out.is_object() && out.contains("error")) {
    return Refusals({PlaceLoadError(out["error"], sources)});
  }
  if (run->exit_code != 0 || !out.is_object()) {
    return absl::FailedPreconditionError(
        fmt::format("eph-compose failed (exit status {}): {}", run->exit_code, run->err));
  }
  std::vector<config::Diagnostic> diagnostics;
  std::optional<ComposeFile> file = MapComposeProject(out, sources, diagnostics);
  if (!file) return Refusals(std::move(diagnostics));
  return *std::move(file);
}

}  // namespace eph::providers::docker
