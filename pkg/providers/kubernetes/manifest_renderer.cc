#include "pkg/providers/kubernetes/manifest_renderer.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <system_error>

#include "fmt/format.h"
#include "pkg/kube/api_errors.h"
#include "pkg/kube/process_runner.h"
#include "pkg/providers/kubernetes/yaml_documents.h"
#include "yaml-cpp/yaml.h"

namespace eph::providers::kubernetes {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr const char* kKustomizationFiles[] = {"kustomization.yaml", "kustomization.yml",
                                               "Kustomization"};
constexpr size_t kMaxStderrInMessage = 4000;
constexpr int kMaxKustomizationDepth = 32;
constexpr size_t kMaxScannedEntries = 200'000;

std::string HumanBytes(size_t n) {
  if (n >= (1u << 20) && n % (1u << 20) == 0) return fmt::format("{} MiB", n >> 20);
  if (n >= (1u << 20)) return fmt::format("{:.1f} MiB", static_cast<double>(n) / (1u << 20));
  if (n >= (1u << 10)) return fmt::format("{} KiB", n >> 10);
  return fmt::format("{} bytes", n);
}

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\r')) s.pop_back();
  size_t i = 0;
  while (i < s.size() && (s[i] == '\n' || s[i] == ' ')) ++i;
  return s.substr(i);
}

void ReplaceAll(std::string& s, const std::string& from, const std::string& to) {
  if (from.empty()) return;
  size_t pos = 0;
  while ((pos = s.find(from, pos)) != std::string::npos) {
    s.replace(pos, from.size(), to);
    pos += to.size();
  }
}

bool IsExecutableFile(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec) && ::access(p.c_str(), X_OK) == 0;
}

bool IsInside(const fs::path& path, const fs::path& root) {
  const std::string p = path.string();
  const std::string r = root.string();
  return p == r || (p.size() > r.size() && p.compare(0, r.size(), r) == 0 &&
                    (r.back() == '/' || p[r.size()] == '/'));
}

bool LooksRemote(const std::string& ref) {
  return ref.find("://") != std::string::npos || ref.rfind("git@", 0) == 0 ||
         ref.rfind("git::", 0) == 0 || ref.rfind("github.com/", 0) == 0 ||
         ref.rfind("gitlab.com/", 0) == 0 || ref.rfind("bitbucket.org/", 0) == 0 ||
         ref.find("?ref=") != std::string::npos || ref.find("?version=") != std::string::npos;
}

// A temporary directory, removed with everything in it.
class TempDir {
 public:
  static absl::StatusOr<std::unique_ptr<TempDir>> Make(const std::string& parent) {
    std::error_code ec;
    fs::path base = parent.empty() ? fs::temp_directory_path(ec) : fs::path(parent);
    if (ec) base = "/tmp";
    std::string templ = (base / "eph-render-XXXXXX").string();
    if (::mkdtemp(templ.data()) == nullptr) {
      return absl::InternalError(fmt::format("cannot create a temporary directory in {}: {}",
                                             base.string(),
                                             std::generic_category().message(errno)));
    }
    return std::unique_ptr<TempDir>(new TempDir(templ));
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  explicit TempDir(fs::path p) : path_(std::move(p)) {}
  fs::path path_;
};

absl::Status WriteText(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) return absl::InternalError("cannot write " + path.string());
  return absl::OkStatus();
}

class RenderSession {
 public:
  RenderSession(const RendererOptions& options, const RenderRequest& request)
      : options_(options), request_(request), deadline_(Clock::now() + options.timeout) {}

  absl::StatusOr<std::vector<json>> Run() {
    if (request_.source_dir.empty()) {
      return absl::FailedPreconditionError(
          "the repository's files are not available to the Kubernetes provider (no checkout)");
    }
    std::error_code ec;
    root_ = fs::canonical(request_.source_dir, ec);
    if (ec || !fs::is_directory(root_)) {
      return absl::FailedPreconditionError(
          fmt::format("the checkout {} is not a directory", request_.source_dir));
    }
    if (request_.manifests.empty() && request_.helm.empty()) {
      return absl::InvalidArgumentError(
          "eph.yaml: kubernetes: neither `manifests` nor `helm` names anything to deploy");
    }
    for (const std::string& path : request_.manifests) {
      if (absl::Status st = RenderManifestPath(path); !st.ok()) return st;
    }
    for (const HelmReleaseSpec& release : request_.helm) {
      if (absl::Status st = RenderHelmRelease(release); !st.ok()) return st;
    }
    return Finish();
  }

 private:
  // `rel` (relative to the checkout, as written in eph.yaml) -> its canonical absolute path,
  // which must exist and lie inside the checkout.
  absl::StatusOr<fs::path> Resolve(const std::string& rel, const std::string& what,
                                   const fs::path& base) const {
    if (rel.empty()) return absl::InvalidArgumentError(what + ": an empty path");
    if (rel[0] == '/') {
      return absl::InvalidArgumentError(
          fmt::format("{}: '{}' is absolute; paths are relative to the repository", what, rel));
    }
    const fs::path joined = (base / rel).lexically_normal();
    if (!IsInside(joined, root_)) {
      return absl::InvalidArgumentError(fmt::format("{}: '{}' leaves the repository", what, rel));
    }
    std::error_code ec;
    if (!fs::exists(fs::symlink_status(joined, ec))) {
      return absl::InvalidArgumentError(fmt::format(
          "{}: '{}' does not exist in the repository at this commit", what, Display(joined)));
    }
    const fs::path canonical = fs::canonical(joined, ec);
    if (ec) {
      return absl::InvalidArgumentError(
          fmt::format("{}: '{}' cannot be resolved ({})", what, Display(joined), ec.message()));
    }
    if (!IsInside(canonical, root_)) {
      return absl::InvalidArgumentError(fmt::format(
          "{}: '{}' is a symbolic link that leads out of the repository", what, Display(joined)));
    }
    return canonical;
  }

  std::string Display(const fs::path& p) const {
    std::string s = p.string();
    const std::string r = root_.string();
    if (s == r) return ".";
    if (IsInside(p, root_)) return s.substr(r.size() + (r.back() == '/' ? 0 : 1));
    return s;
  }

  static bool HasKustomization(const fs::path& dir) {
    std::error_code ec;
    for (const char* name : kKustomizationFiles) {
      if (fs::is_regular_file(dir / name, ec)) return true;
    }
    return false;
  }

  static fs::path KustomizationFile(const fs::path& dir) {
    std::error_code ec;
    for (const char* name : kKustomizationFiles) {
      if (fs::is_regular_file(dir / name, ec)) return dir / name;
    }
    return {};
  }

  absl::Status RenderManifestPath(const std::string& rel) {
    const std::string what = "kubernetes.manifests";
    absl::StatusOr<fs::path> path = Resolve(rel, what, root_);
    if (!path.ok()) return path.status();
    std::error_code ec;
    if (fs::is_directory(*path, ec)) {
      if (HasKustomization(*path)) return Kustomize(*path);
      if (fs::is_regular_file(*path / "Chart.yaml", ec)) {
        HelmReleaseSpec release;
        release.chart = Display(*path);
        return RenderHelmRelease(release);
      }
      return ReadDirectory(*path);
    }
    if (fs::is_regular_file(*path, ec)) return ReadManifestFile(*path);
    return absl::InvalidArgumentError(
        fmt::format("{}: '{}' is neither a file nor a directory", what, rel));
  }

  absl::Status ReadDirectory(const fs::path& dir) {
    std::vector<fs::path> files;
    std::error_code ec;
    for (const fs::directory_entry& e : fs::directory_iterator(dir, ec)) {
      const std::string ext = e.path().extension().string();
      if (ext != ".yaml" && ext != ".yml" && ext != ".json") continue;
      files.push_back(e.path());
    }
    if (ec) {
      return absl::InvalidArgumentError(
          fmt::format("kubernetes.manifests: cannot list '{}': {}", Display(dir), ec.message()));
    }
    std::sort(files.begin(), files.end());
    if (files.empty()) {
      return absl::InvalidArgumentError(
          fmt::format("kubernetes.manifests: '{}' has no kustomization, Chart.yaml or *.yaml files",
                      Display(dir)));
    }
    for (const fs::path& f : files) {
      absl::StatusOr<fs::path> resolved =
          Resolve(f.lexically_relative(root_).string(), "kubernetes.manifests", root_);
      if (!resolved.ok()) return resolved.status();
      if (!fs::is_regular_file(*resolved, ec)) continue;
      if (absl::Status st = ReadManifestFile(*resolved); !st.ok()) return st;
    }
    return absl::OkStatus();
  }

  absl::Status ReadManifestFile(const fs::path& file) {
    std::error_code ec;
    const uintmax_t size = fs::file_size(file, ec);
    if (ec) {
      return absl::InvalidArgumentError(
          fmt::format("kubernetes.manifests: cannot read '{}': {}", Display(file), ec.message()));
    }
    if (size > Room()) return TooLarge(Display(file));
    std::ifstream in(file, std::ios::binary);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (!in.good() && !in.eof()) {
      return absl::InvalidArgumentError(
          fmt::format("kubernetes.manifests: cannot read '{}'", Display(file)));
    }
    if (text.size() > Room()) return TooLarge(Display(file));
    bytes_ += text.size();
    texts_.push_back({Display(file), std::move(text)});
    return absl::OkStatus();
  }

  size_t Room() const {
    return bytes_ < options_.max_output_bytes ? options_.max_output_bytes - bytes_ : 0;
  }

  absl::Status TooLarge(const std::string& what) const {
    return absl::InvalidArgumentError(fmt::format(
        "the rendered manifests are too large: {} brings them over the {} limit (rendering stopped "
        "there); split the application or ask the Eph operator to raise render_max_bytes",
        what, HumanBytes(options_.max_output_bytes)));
  }

  // Refuses symlinks under `dir` that lead out of the checkout: a tool would follow them.
  absl::Status CheckSymlinks(const fs::path& dir) const {
    std::error_code ec;
    size_t seen = 0;
    for (auto it = fs::recursive_directory_iterator(dir, fs::directory_options::none, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      if (++seen > kMaxScannedEntries) {
        return absl::InvalidArgumentError(fmt::format("kubernetes: '{}' holds more than {} files",
                                                      Display(dir), kMaxScannedEntries));
      }
      if (!it->is_symlink(ec)) continue;
      std::error_code ec2;
      const fs::path target = fs::weakly_canonical(it->path(), ec2);
      if (ec2 || !IsInside(target, root_)) {
        return absl::InvalidArgumentError(
            fmt::format("kubernetes: '{}' is a symbolic link that leads out of the repository",
                        Display(it->path())));
      }
    }
    return absl::OkStatus();
  }

  // Checks what a kustomization refers to before kustomize runs: every local reference stays in
  // the checkout, no remote resources, and referenced kustomizations are checked the same way.
  absl::Status CheckKustomization(const fs::path& dir, int depth, std::set<fs::path>& visited) {
    if (!visited.insert(dir).second) return absl::OkStatus();
    if (depth > kMaxKustomizationDepth) {
      return absl::InvalidArgumentError(
          fmt::format("kustomization '{}': bases nested too deeply", Display(dir)));
    }
    if (absl::Status st = CheckSymlinks(dir); !st.ok()) return st;
    const fs::path file = KustomizationFile(dir);
    const std::string where = Display(file);
    YAML::Node doc;
    try {
      doc = YAML::LoadFile(file.string());
    } catch (const YAML::Exception& e) {
      return absl::InvalidArgumentError(fmt::format("{}: line {}, column {}: invalid YAML: {}",
                                                    where, e.mark.line + 1, e.mark.column + 1,
                                                    e.msg));
    }
    if (!doc.IsMap()) {
      return absl::InvalidArgumentError(fmt::format("{}: not a kustomization", where));
    }
    auto check_ref = [&](const std::string& ref, const std::string& field,
                         bool may_be_dir) -> absl::Status {
      if (ref.empty()) return absl::OkStatus();
      if (LooksRemote(ref)) {
        return absl::InvalidArgumentError(fmt::format(
            "{}: {}: remote resource '{}' is not allowed; Eph renders only what is in the "
            "repository",
            where, field, ref));
      }
      absl::StatusOr<fs::path> target = Resolve(ref, where + ": " + field, dir);
      if (!target.ok()) return target.status();
      std::error_code ec;
      if (fs::is_directory(*target, ec)) {
        if (!may_be_dir) return absl::OkStatus();
        if (HasKustomization(*target)) return CheckKustomization(*target, depth + 1, visited);
        return CheckSymlinks(*target);
      }
      return absl::OkStatus();
    };
    try {
      for (const char* field : {"resources", "bases", "components"}) {
        const YAML::Node list = doc[field];
        if (!list || !list.IsSequence()) continue;
        for (const YAML::Node& item : list) {
          if (!item.IsScalar()) continue;
          if (absl::Status st = check_ref(item.Scalar(), field, true); !st.ok()) return st;
        }
      }
      for (const char* field :
           {"crds", "configurations", "generators", "transformers", "validators"}) {
        const YAML::Node list = doc[field];
        if (!list || !list.IsSequence()) continue;
        for (const YAML::Node& item : list) {
          if (!item.IsScalar()) continue;
          const std::string ref = item.Scalar();
          // generators/transformers may also hold inline configuration.
          if (ref.find('\n') != std::string::npos) continue;
          if (absl::Status st = check_ref(ref, field, true); !st.ok()) return st;
        }
      }
      if (const YAML::Node list = doc["patchesStrategicMerge"]; list && list.IsSequence()) {
        for (const YAML::Node& item : list) {
          if (!item.IsScalar()) continue;
          const std::string ref = item.Scalar();
          if (ref.find('\n') != std::string::npos || ref.find(':') != std::string::npos) continue;
          if (absl::Status st = check_ref(ref, "patchesStrategicMerge", false); !st.ok()) {
            return st;
          }
        }
      }
      for (const char* field : {"patches", "patchesJson6902", "replacements"}) {
        const YAML::Node list = doc[field];
        if (!list || !list.IsSequence()) continue;
        for (const YAML::Node& item : list) {
          if (!item.IsMap() || !item["path"] || !item["path"].IsScalar()) continue;
          if (absl::Status st = check_ref(item["path"].Scalar(), field, false); !st.ok()) {
            return st;
          }
        }
      }
      for (const char* field : {"configMapGenerator", "secretGenerator"}) {
        const YAML::Node list = doc[field];
        if (!list || !list.IsSequence()) continue;
        for (const YAML::Node& gen : list) {
          if (!gen.IsMap()) continue;
          std::vector<std::string> refs;
          for (const char* key : {"files", "envs"}) {
            if (gen[key] && gen[key].IsSequence()) {
              for (const YAML::Node& f : gen[key]) {
                if (!f.IsScalar()) continue;
                std::string ref = f.Scalar();
                if (const auto eq = ref.find('='); eq != std::string::npos)
                  ref = ref.substr(eq + 1);
                refs.push_back(ref);
              }
            }
          }
          if (gen["env"] && gen["env"].IsScalar()) refs.push_back(gen["env"].Scalar());
          for (const std::string& ref : refs) {
            if (absl::Status st = check_ref(ref, field, false); !st.ok()) return st;
          }
        }
      }
      if (const YAML::Node openapi = doc["openapi"];
          openapi && openapi.IsMap() && openapi["path"] && openapi["path"].IsScalar()) {
        if (absl::Status st = check_ref(openapi["path"].Scalar(), "openapi", false); !st.ok()) {
          return st;
        }
      }
      if (doc["helmCharts"] || doc["helmChartInflationGenerator"]) {
        return absl::InvalidArgumentError(fmt::format(
            "{}: helmCharts is not supported inside kustomizations; list the chart under "
            "kubernetes.helm in eph.yaml instead",
            where));
      }
    } catch (const YAML::Exception& e) {
      return absl::InvalidArgumentError(fmt::format("{}: {}", where, e.msg));
    }
    return absl::OkStatus();
  }

  absl::StatusOr<std::string> Tool(const std::string& name, const std::string& configured,
                                   const std::string& setting) const {
    if (!configured.empty()) {
      if (!IsExecutableFile(configured)) {
        return absl::FailedPreconditionError(
            fmt::format("{} ({}={}) is not an executable file", name, setting, configured));
      }
      return configured;
    }
    std::string found = FindTool(name);
    if (found.empty()) {
      return absl::FailedPreconditionError(fmt::format(
          "{} is not installed where Eph can find it: put it on PATH, set the provider setting {}, "
          "or run tools/k8s/build",
          name, setting));
    }
    return found;
  }

  // Runs a renderer within the remaining time and output budget; its stdout is the result.
  // `renames`: file names in the tool's stderr to replace with what they stand for.
  absl::StatusOr<std::string> RunTool(
      std::vector<std::string> argv, const std::string& what,
      std::vector<std::pair<std::string, std::string>> env = {},
      const fs::path& temp_for_messages = {},
      const std::vector<std::pair<std::string, std::string>>& renames = {}) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline_ - Clock::now());
    if (left.count() <= 0) return Timeout(what);
    kube::ProcessSpec spec;
    spec.argv = std::move(argv);
    spec.env = std::move(env);
    spec.timeout = left;
    spec.max_output_bytes = Room();
    spec.kill_on_output_limit = true;
    spec.stderr_tail_bytes = size_t{64} << 10;
    absl::StatusOr<kube::ProcessResult> result = kube::RunProcess(spec);
    if (!result.ok()) {
      return absl::FailedPreconditionError(
          fmt::format("{}: {}", what, kube::MessageOf(result.status())));
    }
    if (result->timed_out) return Timeout(what);
    if (result->killed_for_output) return TooLarge(what);
    if (!result->succeeded()) {
      std::string err = Trim(result->err);
      ReplaceAll(err, root_.string() + "/", "");
      if (!temp_for_messages.empty()) {
        ReplaceAll(err, temp_for_messages.string() + "/", "");
        ReplaceAll(err, temp_for_messages.string(), "");
      }
      for (const auto& [from, to] : renames) ReplaceAll(err, "'" + from + "'", "'" + to + "'");
      for (const auto& [from, to] : renames) ReplaceAll(err, from, to);
      if (err.size() > kMaxStderrInMessage) {
        err = "..." + err.substr(err.size() - kMaxStderrInMessage);
      }
      const std::string how = result->term_signal != 0
                                  ? fmt::format("killed by signal {}", result->term_signal)
                                  : fmt::format("exit status {}", result->exit_code);
      return absl::InvalidArgumentError(
          fmt::format("{} failed ({}): {}", what, how, err.empty() ? "no error output" : err));
    }
    bytes_ += result->out.size();
    return std::move(result->out);
  }

  absl::Status Timeout(const std::string& what) const {
    return absl::DeadlineExceededError(
        fmt::format("{}: rendering took longer than the {} s limit", what,
                    std::chrono::duration_cast<std::chrono::seconds>(options_.timeout).count()));
  }

  absl::Status Kustomize(const fs::path& dir) {
    std::set<fs::path> visited;
    if (absl::Status st = CheckKustomization(dir, 0, visited); !st.ok()) return st;
    absl::StatusOr<std::string> kustomize =
        Tool("kustomize", options_.kustomize_path, "kustomize_path");
    if (!kustomize.ok()) return kustomize.status();
    const std::string what = "kustomize build " + Display(dir);
    absl::StatusOr<std::string> out = RunTool(
        {*kustomize, "build", "--load-restrictor=LoadRestrictionsRootOnly", dir.string()}, what);
    if (!out.ok()) return out.status();
    texts_.push_back({what, *std::move(out)});
    return absl::OkStatus();
  }

  absl::Status RenderHelmRelease(const HelmReleaseSpec& release) {
    absl::StatusOr<fs::path> chart = Resolve(release.chart, "kubernetes.helm.chart", root_);
    if (!chart.ok()) return chart.status();
    std::error_code ec;
    if (!fs::is_regular_file(*chart / "Chart.yaml", ec)) {
      return absl::InvalidArgumentError(
          fmt::format("kubernetes.helm: '{}' is not a Helm chart (no Chart.yaml)", release.chart));
    }
    if (absl::Status st = CheckSymlinks(*chart); !st.ok()) return st;
    std::string name = release.release_name;
    if (name.empty()) name = chart->filename().string();
    absl::StatusOr<std::string> helm = Tool("helm", options_.helm_path, "helm_path");
    if (!helm.ok()) return helm.status();
    std::vector<std::string> argv = {
        *helm,         "template",
        name,          chart->string(),
        "--namespace", request_.namespace_name.empty() ? "default" : request_.namespace_name,
        "--skip-tests"};
    for (const std::string& v : release.values) {
      absl::StatusOr<fs::path> values = Resolve(v, "kubernetes.helm.values", root_);
      if (!values.ok()) return values.status();
      if (!fs::is_regular_file(*values, ec)) {
        return absl::InvalidArgumentError(
            fmt::format("kubernetes.helm.values: '{}' is not a file", v));
      }
      argv.push_back("--values");
      argv.push_back(values->string());
    }
    for (const auto& [key, value] : release.set) {
      argv.push_back("--set");
      argv.push_back(fmt::format("{}={}", key, value));
    }
    // Helm keeps caches and plugin configuration under these; a throw-away place keeps renders
    // independent of whatever the host has configured.
    absl::StatusOr<std::unique_ptr<TempDir>> home = TempDir::Make(options_.temp_dir);
    if (!home.ok()) return home.status();
    const fs::path h = (*home)->path();
    const std::string what = "helm template " + name + " " + Display(*chart);
    absl::StatusOr<std::string> out = RunTool(std::move(argv), what,
                                              {{"HELM_CACHE_HOME", (h / "cache").string()},
                                               {"HELM_CONFIG_HOME", (h / "config").string()},
                                               {"HELM_DATA_HOME", (h / "data").string()}});
    if (!out.ok()) return out.status();
    texts_.push_back({what, *std::move(out)});
    return absl::OkStatus();
  }

  // Every rendered text goes through one last `kustomize build`: a temporary kustomization with
  // the texts as its resources and the image overrides as its `images:`. Besides applying the
  // tags, this means Eph's own YAML reader only ever sees kustomize's output: what a pull request
  // wrote (plain files, Helm templates) is parsed by kustomize, in a child process with the same
  // limits, never in ephd (yaml-cpp has inputs of a hundred bytes that exhaust memory).
  absl::StatusOr<std::vector<json>> Finish() {
    std::vector<json> objects;
    if (texts_.empty()) return objects;
    absl::StatusOr<std::unique_ptr<TempDir>> temp = TempDir::Make(options_.temp_dir);
    if (!temp.ok()) return temp.status();
    const fs::path dir = (*temp)->path();
    json resources = json::array();
    std::vector<std::pair<std::string, std::string>> names;  // temporary file -> source
    for (size_t i = 0; i < texts_.size(); ++i) {
      const std::string name = fmt::format("rendered-{}.yaml", i);
      if (absl::Status st = WriteText(dir / name, texts_[i].second); !st.ok()) return st;
      resources.push_back(name);
      names.emplace_back(name, texts_[i].first);
    }
    texts_.clear();
    json images = json::array();
    for (const ImageTag& image : request_.images) {
      if (image.name.empty()) continue;
      json entry = {{"name", image.name}};
      if (!image.tag.empty()) entry["newTag"] = image.tag;
      images.push_back(std::move(entry));
    }
    json kustomization = {{"apiVersion", "kustomize.config.k8s.io/v1beta1"},
                          {"kind", "Kustomization"},
                          {"resources", resources}};
    if (!images.empty()) kustomization["images"] = images;
    if (absl::Status st = WriteText(dir / "kustomization.yaml", kustomization.dump(2)); !st.ok()) {
      return st;
    }
    absl::StatusOr<std::string> kustomize =
        Tool("kustomize", options_.kustomize_path, "kustomize_path");
    if (!kustomize.ok()) return kustomize.status();
    // The texts are counted once already; their normalised copy replaces them.
    const size_t before = bytes_;
    bytes_ = 0;
    const std::string what = images.empty() ? "reading the rendered manifests (kustomize)"
                                            : "applying the image tags (kustomize images)";
    absl::StatusOr<std::string> out =
        RunTool({*kustomize, "build", dir.string()}, what, {}, dir, names);
    if (!out.ok()) return out.status();
    bytes_ = std::max(before, bytes_);
    absl::StatusOr<std::vector<json>> docs = ParseManifestDocuments(*out, what);
    if (!docs.ok()) return docs.status();
    return docs;
  }

  const RendererOptions& options_;
  const RenderRequest& request_;
  const Clock::time_point deadline_;
  fs::path root_;
  size_t bytes_ = 0;
  // What each source rendered, as text, with the source's name for messages.
  std::vector<std::pair<std::string, std::string>> texts_;
};

}  // namespace

absl::StatusOr<RenderRequest> ParseKubernetesSection(const std::string& config_json) {
  json doc = json::parse(config_json, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) {
    return absl::InvalidArgumentError(
        "the Kubernetes provider's configuration is not a JSON object");
  }
  if (doc.contains("kubernetes")) doc = doc["kubernetes"];
  if (!doc.is_object()) {
    return absl::InvalidArgumentError("eph.yaml: `kubernetes` is not a mapping");
  }
  RenderRequest out;
  auto strings = [](const json& v, const std::string& what,
                    std::vector<std::string>& into) -> absl::Status {
    if (v.is_null()) return absl::OkStatus();
    if (!v.is_array()) return absl::InvalidArgumentError(what + " is not a list");
    for (const json& s : v) {
      if (!s.is_string()) return absl::InvalidArgumentError(what + " holds a non-string");
      into.push_back(s.get<std::string>());
    }
    return absl::OkStatus();
  };
  if (absl::Status st =
          strings(doc.value("manifests", json()), "kubernetes.manifests", out.manifests);
      !st.ok()) {
    return st;
  }
  const json helm = doc.value("helm", json::array());
  if (!helm.is_array()) return absl::InvalidArgumentError("kubernetes.helm is not a list");
  for (const json& r : helm) {
    if (!r.is_object() || !r.contains("chart") || !r["chart"].is_string()) {
      return absl::InvalidArgumentError("kubernetes.helm: every release needs a `chart`");
    }
    HelmReleaseSpec release;
    release.chart = r["chart"].get<std::string>();
    if (absl::Status st =
            strings(r.value("values", json()), "kubernetes.helm.values", release.values);
        !st.ok()) {
      return st;
    }
    if (r.contains("release_name") && r["release_name"].is_string()) {
      release.release_name = r["release_name"].get<std::string>();
    }
    if (r.contains("set") && r["set"].is_object()) {
      for (auto it = r["set"].begin(); it != r["set"].end(); ++it) {
        release.set[it.key()] = it->is_string() ? it->get<std::string>() : it->dump();
      }
    }
    out.helm.push_back(std::move(release));
  }
  return out;
}

std::string FindTool(const std::string& name) {
  // NOLINTNEXTLINE(concurrency-mt-unsafe): read-only use of the environment
  if (const char* path = std::getenv("PATH"); path != nullptr) {
    std::string p(path);
    size_t start = 0;
    while (start <= p.size()) {
      const size_t end = std::min(p.find(':', start), p.size());
      const std::string dir = p.substr(start, end - start);
      if (!dir.empty() && IsExecutableFile(fs::path(dir) / name)) {
        return (fs::path(dir) / name).string();
      }
      start = end + 1;
    }
  }
  fs::path cache;
  // NOLINTNEXTLINE(concurrency-mt-unsafe)
  if (const char* c = std::getenv("EPH_CACHE_DIR"); c != nullptr && *c != '\0') {
    cache = c;
  } else if (const char* home = std::getenv("HOME"); home != nullptr && *home != '\0') {  // NOLINT
    cache = fs::path(home) / ".cache" / "eph";
  } else {
    return "";
  }
  std::error_code ec;
  fs::path best;
  fs::file_time_type best_time{};
  for (const fs::directory_entry& e : fs::directory_iterator(cache, ec)) {
    if (e.path().filename().string().rfind("k8s-", 0) != 0) continue;
    if (!fs::exists(e.path() / "complete", ec)) continue;
    const fs::path tool = e.path() / "bin" / name;
    if (!IsExecutableFile(tool)) continue;
    fs::path stamp = e.path() / "last-used";
    if (!fs::exists(stamp, ec)) stamp = e.path() / "complete";
    const fs::file_time_type t = fs::last_write_time(stamp, ec);
    if (best.empty() || t > best_time) {
      best = tool;
      best_time = t;
    }
  }
  return best.string();
}

ManifestRenderer::ManifestRenderer(RendererOptions options) : options_(std::move(options)) {}

absl::StatusOr<std::vector<json>> ManifestRenderer::Render(const RenderRequest& request) const {
  RenderSession session(options_, request);
  return session.Run();
}

}  // namespace eph::providers::kubernetes
