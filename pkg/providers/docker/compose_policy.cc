#include "pkg/providers/docker/compose_policy.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <optional>
#include <set>

#include "absl/strings/str_split.h"
#include "fmt/format.h"
#include "pkg/config/duration.h"
#include "pkg/config/source_checks.h"
#include "pkg/config/source_text.h"

namespace eph::providers::docker {
namespace {

using nlohmann::json;
using Path = std::vector<std::string>;

std::string JoinPath(const Path& path) {
  std::string out;
  for (const std::string& p : path) out += (out.empty() ? "" : ".") + p;
  return out;
}

// Finds where a key of the normalised project was written in the original compose files, with
// yaml-cpp's marks: the deepest match over all files and documents (a later file overrides an
// earlier one, so it wins a tie). A key that came from a merge key is placed at the `<<` that
// merged it, where the user used the anchor; one that came from elsewhere (an extended file,
// a default) at the deepest key that is written, such as the service's name.
class Locator {
 public:
  explicit Locator(const std::vector<ComposeText>& sources) {
    for (const ComposeText& s : sources) {
      File f{&s, config::SourceText(s.text), {}};
      f.documents = Parse(s, f.text);
      files_.push_back(std::move(f));
    }
  }

  config::Diagnostic At(const Path& path, std::string message) const {
    config::Diagnostic d;
    d.file = files_.empty() ? "compose file" : files_.front().source->file;
    d.message = std::move(message);
    size_t best = 0;
    for (const File& f : files_) {
      for (const Document& doc : f.documents) {
        YAML::Mark mark;
        const size_t depth = Descend(doc.root, path, mark);
        if (depth == 0 || depth < best || mark.is_null()) continue;
        best = depth;
        const config::Position p = f.text.FromMark(doc.first_line + mark.line, mark.column);
        d.file = f.source->file;
        d.line = p.line;
        d.column = p.column;
      }
    }
    return d;
  }

 private:
  struct Document {
    YAML::Node root;
    int first_line;  // 0-based, in the file
  };
  // Positions are looked for in this many documents of a file at most.
  static constexpr size_t kMaxDocuments = 64;

  struct File {
    const ComposeText* source;
    config::SourceText text;
    std::vector<Document> documents;
  };

  // Only text that passes eph.yaml's own checks reaches yaml-cpp (which recurses per nesting
  // level); compose-go has already accepted the file, so a failure here only loses positions.
  static std::vector<Document> Parse(const ComposeText& s, const config::SourceText& text) {
    if (s.text.size() > config::kMaxConfigBytes) return {};
    config::DiagnosticCollector ignored(s.file, text);
    if (!config::CheckSourceText(text, ignored)) return {};
    std::vector<Document> out;
    for (const auto& [chunk, first_line] : SplitDocuments(s.text)) {
      try {
        out.push_back({YAML::Load(chunk), first_line});
      } catch (const YAML::Exception&) {
        // this document only loses its positions
      }
    }
    return out;
  }

  // The documents of a file, each with the 0-based line it starts on. A line starting with
  // `---` ends a document wherever it stands in YAML, so splitting there is exact; yaml-cpp's own
  // LoadAll is not used because it loops forever on some malformed text (",\n,\n").
  static std::vector<std::pair<std::string, int>> SplitDocuments(std::string_view text) {
    std::vector<std::pair<std::string, int>> out = {{"", 0}};
    int line = 0;
    for (size_t start = 0; start < text.size() && out.size() <= kMaxDocuments; ++line) {
      const size_t end = std::min(text.find('\n', start), text.size());
      const std::string_view l = text.substr(start, end - start);
      if (l.starts_with("---") && (l.size() == 3 || l[3] == ' ' || l[3] == '\r')) {
        out.push_back({"", line});
        // The rest of the marker line may hold content ("--- {services: ...}").
        out.back().first = std::string(3, ' ') + std::string(l.substr(3)) + "\n";
      } else {
        out.back().first.append(l).push_back('\n');
      }
      start = end + 1;
    }
    return out;
  }

  // How many components of `path` `node` has; `mark` is where the last one was written.
  static size_t Descend(YAML::Node node, const Path& path, YAML::Mark& mark) {
    size_t depth = 0;
    for (const std::string& part : path) {
      if (node.IsMap()) {
        std::optional<YAML::Node> next;
        bool merged = false;
        for (const auto& kv : node) {
          if (!kv.first.IsScalar()) continue;
          if (kv.first.Scalar() == part) {
            mark = kv.first.Mark();
            next = kv.second;
            break;
          }
          if (kv.first.Scalar() == "<<") {
            mark = kv.first.Mark();
            merged = true;
          }
        }
        if (!next) return merged ? path.size() : depth;
        node.reset(*next);  // operator= would write into the tree: Node is a reference
      } else if (node.IsSequence() && !part.empty() &&
                 std::all_of(part.begin(), part.end(), ::isdigit) && part.size() < 7 &&
                 static_cast<size_t>(std::stoi(part)) < node.size()) {
        node.reset(node[static_cast<size_t>(std::stoi(part))]);
        mark = node.Mark();
      } else {
        return depth;
      }
      ++depth;
    }
    return depth;
  }

  std::vector<File> files_;
};

std::string Str(const json& v) { return v.is_string() ? v.get<std::string>() : v.dump(); }

// Compose's memory values arrive as byte counts in strings ("536870912").
int64_t Bytes(const json& v) {
  if (v.is_number_integer()) return v.get<int64_t>();
  if (!v.is_string()) return -1;
  const std::string s = v.get<std::string>();
  if (s.empty() || s.size() > 18 || !std::all_of(s.begin(), s.end(), ::isdigit)) return -1;
  return std::stoll(s);
}

// Why a key Compose defines cannot work in a preview on a shared Docker host, by key.
const std::map<std::string, std::string>& UnsafeReasons() {
  static const auto* reasons = new std::map<std::string, std::string>{
      {"privileged", "a privileged container controls the shared Docker host"},
      {"cap_add", "extra capabilities reach beyond the container on the shared host"},
      {"devices", "host devices belong to the shared host, not to a preview"},
      {"network_mode", "a preview runs on its environment's own network only"},
      {"pid", "a preview cannot share the host's or another container's processes"},
      {"ipc", "a preview cannot share the host's or another container's IPC namespace"},
      {"uts", "a preview cannot share the host's UTS namespace"},
      {"userns_mode", "a preview cannot leave the engine's user namespace setting"},
      {"cgroup", "a preview cannot share the host's cgroup namespace"},
      {"cgroup_parent", "a preview cannot choose its place in the host's cgroups"},
      {"security_opt", "security options could switch off the container's confinement"},
      {"volumes_from", "a preview may only mount its own volumes"},
      {"external_links", "a preview cannot reach containers outside its environment"},
      {"links", "links are legacy; services reach each other by name on the network"},
      {"extra_hosts", "a preview resolves names only within its environment"},
      {"dns", "a preview uses the engine's DNS"},
      {"dns_search", "a preview uses the engine's DNS"},
      {"dns_opt", "a preview uses the engine's DNS"},
      {"sysctls", "kernel parameters are the shared host's"},
      {"runtime", "a preview runs on the engine's default runtime"},
      {"isolation", "a preview runs with the engine's default isolation"},
      {"gpus", "the shared host lends no GPUs to previews"},
      {"mac_address", "a fixed address would clash between environments"},
      {"secrets",
       "Eph does not provide Compose secrets yet: pass them as eph.yaml secrets "
       "(they reach the container's environment)"},
      {"configs", "Eph does not provide Compose configs yet: bake the file into the image"},
      {"build",
       "Eph cannot build images yet: build and push the image in CI and list it under "
       "docker.images in eph.yaml (building from the repository is a later step)"},
      {"develop", "`develop` (watch) is for a developer's machine; a preview redeploys on push"},
      {"scale", "a preview runs one container per service"},
      {"provider", "a preview runs containers only"},
      {"models", "a preview runs containers only"},
      {"pre_start", "lifecycle hooks are not supported in a preview yet"},
      {"post_start", "lifecycle hooks are not supported in a preview yet"},
      {"pre_stop", "lifecycle hooks are not supported in a preview yet"},
      {"jobs", "a preview runs services only"},
  };
  return *reasons;
}

// Keys of a service that need nothing from Eph: the loader resolved them, or they only say how
// Compose's own tooling behaves.
const std::set<std::string>& ResolvedServiceKeys() {
  static const auto* keys =
      new std::set<std::string>{"env_file", "profiles", "extends", "label_file", "attach"};
  return *keys;
}

class Mapper {
 public:
  Mapper(const Locator& locator, std::vector<config::Diagnostic>& out)
      : locator_(locator), out_(out) {}

  std::optional<ComposeFile> Map(const json& project) {
    const size_t before = out_.size();
    ComposeFile file;
    if (!project.is_object()) {
      out_.push_back(locator_.At({}, "eph-compose did not print a project"));
      return std::nullopt;
    }
    TopLevel(project, file);
    const json& services = project.value("services", json::object());
    if (!services.is_object() || services.empty()) {
      Refuse({"services"},
             "no services: the compose file needs at least one (is every service "
             "behind a profile that eph.yaml does not enable?)");
    } else {
      for (const auto& [name, s] : services.items()) file.services.push_back(Service(name, s));
    }
    for (ComposeService& s : file.services) s.line = locator_.At({"services", s.name}, "").line;
    if (out_.size() != before) return std::nullopt;
    return file;
  }

 private:
  void Refuse(const Path& path, const std::string& why) {
    out_.push_back(locator_.At(path, fmt::format("{}: {}", JoinPath(path), why)));
  }

  void Unsupported(const Path& path) {
    const auto it = UnsafeReasons().find(path.back());
    Refuse(path, it != UnsafeReasons().end()
                     ? fmt::format("not supported: {}", it->second)
                     : std::string("not supported in a preview yet (docs/provider-docker.md "
                                   "lists what is)"));
  }

  void TopLevel(const json& project, ComposeFile& file) {
    for (const auto& [key, value] : project.items()) {
      if (key == "name" || key == "services" || key.rfind("x-", 0) == 0) continue;
      if (key == "volumes") {
        Volumes(value, file);
      } else if (key == "networks") {
        Networks(value, file);
      } else {
        Unsupported({key});
      }
    }
  }

  void Volumes(const json& volumes, ComposeFile& file) {
    for (const auto& [name, v] : volumes.items()) {
      file.volumes.push_back(name);
      for (const auto& [key, value] : v.items()) {
        const Path at = {"volumes", name, key};
        if (key == "labels") {
          file.volume_labels[name] = Labels(value, at);
        } else if (key == "external" && value.is_boolean() && value.get<bool>()) {
          Refuse(at,
                 "an external volume outlives the preview and may be another "
                 "environment's; Eph creates each environment's volumes itself");
        } else if (key == "driver" && value != "local") {
          Refuse(at, "previews use the engine's local volumes only");
        } else if (key == "driver_opts") {
          Refuse(at, "driver options can mount the host's files into a preview");
        } else if (key != "name" && key != "driver" && key != "external") {
          Refuse(at, "not supported for a preview's volumes (only `labels`)");
        }
      }
    }
  }

  void Networks(const json& networks, ComposeFile& file) {
    for (const auto& [name, n] : networks.items()) {
      if (name != "default") file.networks.push_back(name);
      for (const auto& [key, value] : n.items()) {
        const Path at = {"networks", name, key};
        if (key == "external" && value.is_boolean() && value.get<bool>()) {
          Refuse(at,
                 "an external network is shared beyond the environment; a preview's "
                 "networks are its own");
        } else if (key == "driver" && value != "bridge") {
          Refuse(at, "previews use the engine's bridge networks only");
        } else if (key == "ipam" && !value.empty()) {
          Refuse(at, "fixed subnets would clash between environments");
        } else if (key != "name" && key != "driver" && key != "ipam" && key != "external" &&
                   key != "labels" && key != "internal" && key != "attachable") {
          Refuse(at, "not supported for a preview's networks");
        }
      }
    }
  }

  std::map<std::string, std::string> Labels(const json& labels, const Path& at) {
    std::map<std::string, std::string> out;
    for (const auto& [k, v] : labels.items()) {
      if (k.rfind("eph.dev/", 0) == 0 || k.rfind("com.docker.compose.", 0) == 0) {
        Path p = at;
        p.push_back(k);
        Refuse(p, fmt::format("label `{}` is reserved: Eph sets eph.dev/* and "
                              "com.docker.compose.* itself",
                              k));
      }
      out[k] = Str(v);
    }
    return out;
  }

  ComposeService Service(const std::string& name, const json& s) {
    ComposeService out;
    out.name = name;
    for (const auto& [key, value] : s.items()) {
      const Path at = {"services", name, key};
      if (!ServiceKey(key, value, at, out) && ResolvedServiceKeys().count(key) == 0 &&
          key.rfind("x-", 0) != 0) {
        Unsupported(at);
      }
    }
    if (out.image.empty() && !s.contains("build")) {
      Refuse({"services", name}, "`image` is required (Eph runs prebuilt images)");
    }
    return out;
  }

  // Handles the keys Eph gives a meaning; false for the others.
  bool ServiceKey(const std::string& key, const json& v, const Path& at, ComposeService& s) {
    if (key == "image") {
      s.image = Str(v);
    } else if (key == "command" || key == "entrypoint") {
      if (v.is_array()) {
        (key == "command" ? s.command : s.entrypoint) = v.get<std::vector<std::string>>();
      }
    } else if (key == "environment") {
      Environment(v, at, s);
    } else if (key == "ports") {
      for (size_t i = 0; i < v.size(); ++i) Port(v[i], Child(at, i), s);
    } else if (key == "expose") {
      for (size_t i = 0; i < v.size(); ++i) Expose(v[i], Child(at, i), s);
    } else if (key == "healthcheck") {
      s.healthcheck = Health(v, at);
    } else if (key == "depends_on") {
      DependsOn(v, at, s);
    } else if (key == "volumes") {
      for (size_t i = 0; i < v.size(); ++i) Volume(v[i], Child(at, i), s);
    } else if (key == "labels") {
      s.labels = Labels(v, at);
    } else if (key == "pull_policy") {
      PullPolicy(Str(v), at, s);
    } else if (key == "restart") {
      Restart(Str(v), at, s);
    } else if (key == "container_name") {
      ContainerName(Str(v), at, s);
    } else if (key == "networks") {
      ServiceNetworks(v, at, s);
    } else if (key == "deploy") {
      Deploy(v, at, s);
    } else if (key == "user") {
      s.user = Str(v);
    } else if (key == "working_dir") {
      s.working_dir = Str(v);
    } else {
      return false;
    }
    return true;
  }

  static Path Child(const Path& at, size_t i) {
    Path p = at;
    p.push_back(std::to_string(i));
    return p;
  }
  static Path Child(const Path& at, const std::string& key) {
    Path p = at;
    p.push_back(key);
    return p;
  }

  // Docker Compose refuses two containers of one name; as aliases they would silently share it.
  void ContainerName(const std::string& name, const Path& at, ComposeService& s) {
    const auto [it, fresh] = container_names_.emplace(name, s.name);
    if (!fresh) {
      Refuse(at, fmt::format("`{}` is also the container_name of service `{}`", name, it->second));
    }
    s.aliases.push_back(name);
  }

  void Environment(const json& env, const Path& at, ComposeService& s) {
    for (const auto& [k, v] : env.items()) {
      if (v.is_null()) {
        Refuse(Child(at, k), fmt::format("`{}` has no value; Eph never passes its own "
                                         "environment to a preview, so write the value",
                                         k));
        continue;
      }
      s.environment.push_back(k + "=" + Str(v));
    }
  }

  void Port(const json& p, const Path& at, ComposeService& s) {
    const std::string ip = p.value("host_ip", "");
    if (!ip.empty() && ip != "127.0.0.1" && ip != "localhost") {
      Refuse(at, fmt::format("host address `{}`: Eph publishes ports on 127.0.0.1 only (the "
                             "gateway is the way in)",
                             ip));
    }
    if (p.value("mode", "ingress") == "host") {
      Refuse(at, "mode `host` is Swarm's; a preview publishes on 127.0.0.1");
    }
    PortMapping m;
    m.container_port = p.value("target", 0);
    m.protocol = p.value("protocol", "tcp");
    const std::string published = p.value("published", "");
    if (!published.empty()) {
      const int64_t port = Bytes(json(published));
      if (port < 0 || port > 65535) {
        Refuse(at, fmt::format("published port `{}` is not a port number", published));
      }
      m.host_port = static_cast<int>(std::max<int64_t>(port, 0));
    }
    if (m.protocol != "tcp" && m.protocol != "udp") {
      Refuse(at, fmt::format("protocol `{}` is not tcp or udp", m.protocol));
    }
    s.ports.push_back(m);
  }

  void Expose(const json& e, const Path& at, ComposeService& s) {
    const std::string text = Str(e);
    const std::vector<std::string> parts = absl::StrSplit(text, '/');
    PortMapping m;
    m.protocol = parts.size() > 1 ? parts[1] : "tcp";
    const int64_t port = Bytes(json(parts[0]));
    if (parts.size() > 2 || port <= 0 || port > 65535 ||
        (m.protocol != "tcp" && m.protocol != "udp")) {
      Refuse(at, fmt::format("`{}` is not PORT or PORT/tcp|udp (ranges are not supported)", text));
      return;
    }
    m.container_port = static_cast<int>(port);
    s.expose.push_back(m);
  }

  absl::Duration Duration(const json& v, const Path& at) {
    absl::StatusOr<absl::Duration> d = config::ParseDuration(Str(v));
    if (!d.ok()) {
      Refuse(at, std::string(d.status().message()));
      return absl::ZeroDuration();
    }
    return *d;
  }

  HealthCheck Health(const json& h, const Path& at) {
    HealthCheck out;
    for (const auto& [key, v] : h.items()) {
      const Path p = Child(at, key);
      if (key == "test") {
        out.test = v.get<std::vector<std::string>>();
      } else if (key == "interval") {
        out.interval = Duration(v, p);
      } else if (key == "timeout") {
        out.timeout = Duration(v, p);
      } else if (key == "start_period") {
        out.start_period = Duration(v, p);
      } else if (key == "start_interval") {
        out.start_interval = Duration(v, p);
      } else if (key == "retries") {
        out.retries = v.is_number_integer() ? v.get<int>() : 0;
      } else if (key == "disable") {
        if (v == true) out.test = {"NONE"};
      } else {
        Refuse(p, "not supported in a preview's healthcheck yet");
      }
    }
    if (out.test.empty()) Refuse(at, "`test` is required (or `disable: true`)");
    // The engine uses start_interval only during start_period: alone it would silently do
    // nothing.
    if (out.start_interval != absl::ZeroDuration() && out.start_period == absl::ZeroDuration()) {
      Refuse(Child(at, "start_interval"),
             "applies only during start_period; set start_period as well");
    }
    return out;
  }

  void DependsOn(const json& deps, const Path& at, ComposeService& s) {
    for (const auto& [dep, d] : deps.items()) {
      s.depends_on.push_back(dep);
      const std::string condition = d.value("condition", "service_started");
      if (condition != "service_started") s.depends_on_condition[dep] = condition;
      if (d.value("restart", false)) {
        Refuse(Child(Child(at, dep), "restart"),
               "not supported: Eph does not restart a service when its dependency restarts");
      }
    }
  }

  void Volume(const json& v, const Path& at, ComposeService& s) {
    const std::string type = v.value("type", "");
    const std::string source = v.value("source", "");
    if (type == "bind") {
      Refuse(at, fmt::format("bind mount of `{}`: a preview must not see the Docker host's files; "
                             "files from the repository checkout cannot be mounted yet either "
                             "(the checkout is gone after each deploy): bake them into the "
                             "image or use a named volume",
                             source));
      return;
    }
    if (type != "volume") {
      Refuse(at, fmt::format("`{}` mounts are not supported in a preview yet (named and "
                             "anonymous volumes are)",
                             type));
      return;
    }
    // Held: items() of a temporary would walk a destroyed object (ASan found it).
    const json options = v.value("volume", json::object());
    for (const auto& [key, value] : options.items()) {
      Refuse(Child(at, "volume"), fmt::format("volume option `{}` is not supported", key));
    }
    s.volumes.push_back({source, v.value("target", ""), v.value("read_only", false)});
  }

  void PullPolicy(const std::string& policy, const Path& at, ComposeService& s) {
    if (policy == "always" || policy == "missing" || policy == "never") {
      s.pull_policy = policy;
    } else if (policy == "if_not_present") {
      s.pull_policy = "missing";
    } else if (policy == "build") {
      Refuse(at, "`build`: Eph cannot build images yet; use missing, always or never");
    } else {
      Refuse(at, fmt::format("`{}` is not supported (Eph supports always, missing, "
                             "if_not_present and never)",
                             policy));
    }
  }

  void Restart(const std::string& policy, const Path& at, ComposeService& s) {
    const size_t colon = policy.find(':');
    const std::string name = policy.substr(0, colon);
    if (name == "on-failure" && colon != std::string::npos) {
      const int64_t n = Bytes(json(policy.substr(colon + 1)));
      if (n < 0 || n > 1000) {
        Refuse(at, fmt::format("`{}`: the retry count must be 0 to 1000", policy));
      }
      s.restart_max_retries = static_cast<int>(std::max<int64_t>(n, 0));
    } else if (colon != std::string::npos || (name != "no" && name != "always" &&
                                              name != "unless-stopped" && name != "on-failure")) {
      Refuse(at, fmt::format("`{}` is not no, always, on-failure[:N] or unless-stopped", policy));
    }
    s.restart = name;
  }

  void ServiceNetworks(const json& networks, const Path& at, ComposeService& s) {
    for (const auto& [name, n] : networks.items()) {
      if (n.is_null()) continue;
      for (const auto& [key, value] : n.items()) {
        if (key == "aliases") {
          for (const json& a : value) s.aliases.push_back(Str(a));
        } else {
          Refuse(Child(Child(at, name), key),
                 "not supported: a preview's addresses are the engine's to choose");
        }
      }
    }
  }

  void Deploy(const json& deploy, const Path& at, ComposeService& s) {
    for (const auto& [key, value] : deploy.items()) {
      const Path p = Child(at, key);
      if (key == "resources") {
        Resources(value, p, s);
      } else if (key == "replicas" && value == 1) {
      } else if (key != "placement" || !value.empty()) {
        Refuse(p,
               "not supported: Swarm's deploy settings do not apply to a preview (only "
               "deploy.resources)");
      }
    }
  }

  void Resources(const json& resources, const Path& at, ComposeService& s) {
    for (const auto& [kind, r] : resources.items()) {
      const bool limits = kind == "limits";
      for (const auto& [key, value] : r.items()) {
        const Path p = Child(Child(at, kind), key);
        if (key == "cpus" && value.is_number()) {
          if (limits) s.nano_cpus = static_cast<int64_t>(value.get<double>() * 1e9);
        } else if (key == "memory" && Bytes(value) >= 0) {
          (limits ? s.memory_bytes : s.memory_reservation_bytes) = Bytes(value);
        } else if (key == "pids" && limits && value.is_number_integer()) {
          s.pids_limit = value.get<int64_t>();
        } else {
          Refuse(p, "not supported: a preview may limit cpus, memory and pids");
        }
      }
    }
  }

  const Locator& locator_;
  std::vector<config::Diagnostic>& out_;
  std::map<std::string, std::string> container_names_;  // container_name -> service
};

}  // namespace

config::Diagnostic PlaceLoadError(const json& error, const std::vector<ComposeText>& sources) {
  const Locator locator(sources);
  const std::string message = error.value("message", "eph-compose failed");
  const std::string path = error.value("path", "");
  Path parts;
  for (const std::string& p :
       std::vector<std::string>(absl::StrSplit(path, '.', absl::SkipEmpty()))) {
    if (p == "[]") break;
    parts.push_back(p);
  }
  config::Diagnostic d = locator.At(parts, message);
  if (const int line = error.value("line", 0); line > 0 && parts.empty()) {
    d.line = line;
    d.column = std::max(error.value("column", 1), 1);
    d.file = sources.empty() ? d.file : sources.front().file;
    for (const ComposeText& s : sources) {
      if (message.find(s.file) != std::string::npos) d.file = s.file;
    }
  }
  return d;
}

std::optional<ComposeFile> MapComposeProject(const json& project,
                                             const std::vector<ComposeText>& sources,
                                             std::vector<config::Diagnostic>& diagnostics) {
  const Locator locator(sources);
  try {
    return Mapper(locator, diagnostics).Map(project);
  } catch (const json::exception& e) {
    // compose-go validated the project against the schema, so this is eph-compose's fault (or
    // a version of it that prints another shape), not the user's.
    diagnostics.push_back(locator.At(
        {}, fmt::format("eph-compose printed a project Eph cannot read ({}); is it the build "
                        "of tools/compose in this version?",
                        e.what())));
    return std::nullopt;
  }
}

}  // namespace eph::providers::docker
