#include "pkg/providers/docker/compose_file.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <functional>
#include <map>
#include <set>

#include "absl/strings/ascii.h"
#include "fmt/format.h"
#include "pkg/config/diagnostic.h"
#include "pkg/config/duration.h"
#include "pkg/config/source_checks.h"
#include "pkg/config/source_text.h"

namespace eph::providers::docker {
namespace {

std::string StatusText(const absl::Status& status) {
  return {status.message().data(), status.message().size()};
}

// Aliases can make one node reachable from many places; a file that makes the parser look at
// more nodes than this is refused rather than walked (a real compose file has a few hundred).
constexpr size_t kMaxVisits = 200'000;

// Thrown inside the parser only and turned into InvalidArgument at its boundary: every check
// below would otherwise need its own early return.
struct ComposeError {
  std::string message;
};

class Parser {
 public:
  Parser(std::string_view file_name, const std::map<std::string, std::string>& variables)
      : file_(file_name), variables_(variables) {}

  [[noreturn]] void Fail(const YAML::Node& at, const std::string& what) const {
    const YAML::Mark mark = at.Mark();
    if (mark.is_null()) throw ComposeError{fmt::format("{}: {}", file_, what)};
    throw ComposeError{fmt::format("{}:{}:{}: {}", file_, mark.line + 1, mark.column + 1, what)};
  }

  ComposeFile Parse(const YAML::Node& root) {
    if (!root.IsDefined() || root.IsNull()) Fail(root, "the compose file is empty");
    if (!root.IsMap()) Fail(root, "the compose file must be a mapping with `services`");
    ComposeFile out;
    YAML::Node services;
    YAML::Node volumes;
    std::set<std::string> seen;
    for (const auto& kv : root) {
      Unique(seen, kv.first);
      const std::string key = Key(kv.first);
      if (key == "services") {
        services = kv.second;
      } else if (key == "volumes") {
        volumes = kv.second;
      } else if (key == "version" || key == "name" || key.rfind("x-", 0) == 0) {
        // version is obsolete in Compose v2; the project name is always Eph's.
      } else {
        Fail(kv.first, fmt::format("unsupported top-level key `{}` (Eph supports services, "
                                   "volumes, version, name and x-* extensions)",
                                   key));
      }
    }
    if (volumes.IsDefined() && !volumes.IsNull()) ReadVolumes(volumes, out);
    if (!services.IsDefined() || services.IsNull() || (services.IsMap() && services.size() == 0)) {
      Fail(root, "no services: the compose file needs a `services` mapping with at least one");
    }
    if (!services.IsMap()) Fail(services, "`services` must be a mapping of service names");
    std::set<std::string> seen_services;
    for (const auto& kv : services) {
      Unique(seen_services, kv.first);
      out.services.push_back(ReadService(kv.first, kv.second, out));
    }
    std::set<std::string> names;
    for (const ComposeService& s : out.services) names.insert(s.name);
    for (const auto& kv : services) {
      const YAML::Node deps = kv.second["depends_on"];
      if (!deps.IsDefined()) continue;
      for (const auto& d : deps) {
        const YAML::Node name = deps.IsMap() ? d.first : d;
        if (names.count(name.Scalar()) == 0) {
          Fail(name, fmt::format("services.{}.depends_on: no service named `{}`", Key(kv.first),
                                 name.Scalar()));
        }
      }
    }
    CheckCycles(out, services);
    return out;
  }

 private:
  void Visit(const YAML::Node& node) const {
    if (++visits_ > kMaxVisits) {
      Fail(node, fmt::format("the file makes Eph look at more than {} values (aliases?); "
                             "write it out plainly",
                             kMaxVisits));
    }
  }

  // yaml-cpp keeps every duplicate key of a mapping; YAML forbids them and Compose refuses them.
  void Unique(std::set<std::string>& seen, const YAML::Node& key) const {
    if (!seen.insert(Key(key)).second) Fail(key, fmt::format("`{}` appears twice", key.Scalar()));
  }

  std::string Key(const YAML::Node& node) const {
    Visit(node);
    if (!node.IsScalar()) Fail(node, "keys must be strings");
    return node.Scalar();
  }

  std::string Scalar(const YAML::Node& node, const std::string& where) const {
    Visit(node);
    if (!node.IsScalar()) Fail(node, fmt::format("{} must be a string", where));
    return Interpolate(node, node.Scalar(), where, 0);
  }

  // Compose's variable interpolation in values: $NAME, ${NAME}, ${NAME:-default},
  // ${NAME-default}, ${NAME:?error}, ${NAME?error}, ${NAME:+replacement}, ${NAME+replacement},
  // and $$ for a literal $. The variables are Eph's (EPH_*); an unset one without a default is
  // an error rather than the empty string Compose would put there.
  std::string Interpolate(const YAML::Node& at, std::string_view text, const std::string& where,
                          int depth) const {
    if (depth > 8) Fail(at, fmt::format("{}: variable defaults nest too deeply", where));
    auto is_name_start = [](char c) { return absl::ascii_isalpha(c) || c == '_'; };
    auto is_name = [](char c) { return absl::ascii_isalnum(c) || c == '_'; };
    auto unset = [&](const std::string& name, std::string_view message) -> std::string {
      if (!message.empty()) Fail(at, fmt::format("{}: {}", where, message));
      std::string known;
      for (const auto& [k, v] : variables_) known += (known.empty() ? "" : ", ") + k;
      Fail(at, fmt::format("{}: ${{{}}} is not set (Eph sets {}); give it a default with "
                           "${{{}:-value}}, or write $$ for a literal $",
                           where, name, known.empty() ? "none here" : known, name));
    };
    std::string out;
    for (size_t i = 0; i < text.size(); ++i) {
      const char c = text[i];
      if (c != '$' || i + 1 == text.size()) {
        out.push_back(c);
        continue;
      }
      const char next = text[i + 1];
      if (next == '$') {
        out.push_back('$');
        ++i;
        continue;
      }
      if (is_name_start(next)) {
        size_t j = i + 1;
        while (j < text.size() && is_name(text[j])) ++j;
        const std::string name(text.substr(i + 1, j - i - 1));
        auto it = variables_.find(name);
        out += it != variables_.end() ? it->second : unset(name, "");
        i = j - 1;
        continue;
      }
      if (next != '{') {
        out.push_back(c);  // a lone $ before something that is no name stays as it is
        continue;
      }
      // ${...}: find the matching brace (defaults may hold ${...} themselves).
      size_t j = i + 2;
      int open = 1;
      for (; j < text.size() && open > 0; ++j) {
        if (text[j] == '$' && j + 1 < text.size() && text[j + 1] == '{') {
          ++open;
          ++j;
        } else if (text[j] == '}') {
          --open;
        }
      }
      if (open > 0) {
        Fail(at, fmt::format("{}: `{}` has no closing brace; write $$ for a literal $", where,
                             std::string(text.substr(i))));
      }
      const std::string_view inner = text.substr(i + 2, j - i - 3);
      size_t n = 0;
      while (n < inner.size() && (n == 0 ? is_name_start(inner[n]) : is_name(inner[n]))) ++n;
      const std::string name(inner.substr(0, n));
      const std::string_view rest = inner.substr(n);
      if (name.empty()) {
        Fail(at, fmt::format("{}: `${{{}}}` is not a variable reference; write $$ for a literal $",
                             where, std::string(inner)));
      }
      auto it = variables_.find(name);
      const bool set = it != variables_.end();
      const bool nonempty = set && !it->second.empty();
      auto arg = [&](size_t skip) { return rest.substr(skip); };
      if (rest.empty()) {
        out += set ? it->second : unset(name, "");
      } else if (rest.starts_with(":-")) {
        out += nonempty ? it->second : Interpolate(at, arg(2), where, depth + 1);
      } else if (rest.starts_with(":?")) {
        out += nonempty ? it->second
                        : unset(name, arg(2).empty() ? name + " is empty or not set"
                                                     : std::string(arg(2)));
      } else if (rest.starts_with(":+")) {
        out += nonempty ? Interpolate(at, arg(2), where, depth + 1) : "";
      } else if (rest[0] == '-') {
        out += set ? it->second : Interpolate(at, arg(1), where, depth + 1);
      } else if (rest[0] == '?') {
        out += set ? it->second
                   : unset(name, arg(1).empty() ? name + " is not set" : std::string(arg(1)));
      } else if (rest[0] == '+') {
        out += set ? Interpolate(at, arg(1), where, depth + 1) : "";
      } else {
        Fail(at, fmt::format("{}: `${{{}}}` is not a variable reference Eph understands", where,
                             std::string(inner)));
      }
      i = j - 1;
    }
    return out;
  }

  int Int(const YAML::Node& node, const std::string& where, int min, int max) const {
    const std::string text = Scalar(node, where);
    int value = 0;
    bool ok = !text.empty() && text.size() <= 9;
    for (const char c : text) ok = ok && std::isdigit(static_cast<unsigned char>(c)) != 0;
    if (ok) value = std::stoi(text);
    if (!ok || value < min || value > max) {
      Fail(node,
           fmt::format("{} must be a whole number from {} to {}, got `{}`", where, min, max, text));
    }
    return value;
  }

  absl::Duration Duration(const YAML::Node& node, const std::string& where) const {
    absl::StatusOr<absl::Duration> d = config::ParseDuration(Scalar(node, where));
    if (!d.ok()) Fail(node, fmt::format("{}: {}", where, StatusText(d.status())));
    return *d;
  }

  std::vector<std::string> StringList(const YAML::Node& node, const std::string& where) const {
    if (!node.IsSequence()) Fail(node, fmt::format("{} must be a list of strings", where));
    std::vector<std::string> out;
    for (const auto& item : node) out.push_back(Scalar(item, where + "[]"));
    return out;
  }

  void ReadVolumes(const YAML::Node& volumes, ComposeFile& out) const {
    if (!volumes.IsMap()) Fail(volumes, "top-level `volumes` must be a mapping of volume names");
    std::set<std::string> seen;
    for (const auto& kv : volumes) {
      Unique(seen, kv.first);
      const std::string name = Key(kv.first);
      CheckName(kv.first, name, "volume");
      std::map<std::string, std::string>& labels = out.volume_labels[name];
      if (kv.second.IsMap()) {
        for (const auto& opt : kv.second) {
          const std::string key = Key(opt.first);
          if (key != "labels") {
            Fail(opt.first, fmt::format("volumes.{}: unsupported key `{}` (Eph creates local "
                                        "named volumes; only `labels` may be set)",
                                        name, key));
          }
          labels = Labels(opt.second, fmt::format("volumes.{}.labels", name));
        }
      } else if (!kv.second.IsNull()) {
        Fail(kv.second, fmt::format("volumes.{} must be empty or a mapping", name));
      }
      out.volumes.push_back(name);
    }
  }

  void CheckName(const YAML::Node& at, const std::string& name, const char* what) const {
    bool ok = !name.empty() && name.size() <= 63 &&
              std::isalnum(static_cast<unsigned char>(name[0])) != 0;
    for (const char c : name) {
      ok = ok &&
           (std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '_' || c == '.');
    }
    if (!ok) {
      Fail(at, fmt::format("{} name `{}`: use letters, digits, '-', '_' and '.', starting with a "
                           "letter or digit, at most 63 characters",
                           what, name));
    }
  }

  std::map<std::string, std::string> Labels(const YAML::Node& node,
                                            const std::string& where) const {
    std::map<std::string, std::string> out;
    auto add = [&](const YAML::Node& at, const std::string& key, const std::string& value) {
      if (key.rfind("eph.dev/", 0) == 0 || key.rfind("com.docker.compose.", 0) == 0) {
        Fail(at, fmt::format("{}: label `{}` is reserved: Eph sets eph.dev/* and "
                             "com.docker.compose.* itself",
                             where, key));
      }
      out[key] = value;
    };
    if (node.IsMap()) {
      std::set<std::string> seen;
      for (const auto& kv : node) {
        Unique(seen, kv.first);
        add(kv.first, Key(kv.first), kv.second.IsNull() ? "" : Scalar(kv.second, where));
      }
    } else if (node.IsSequence()) {
      for (const auto& item : node) {
        const std::string text = Scalar(item, where + "[]");
        const size_t eq = text.find('=');
        add(item, text.substr(0, eq), eq == std::string::npos ? "" : text.substr(eq + 1));
      }
    } else {
      Fail(node, fmt::format("{} must be a mapping or a list of KEY=VALUE", where));
    }
    return out;
  }

  // Compose's values; if_not_present is its alias of missing. `build` and the periodic ones
  // (daily, weekly, every_<duration>) are refused: Eph builds nothing and keeps no pull clock.
  std::string PullPolicyOf(const YAML::Node& v, const std::string& where) const {
    const std::string policy = Scalar(v, where);
    if (policy == "always" || policy == "missing" || policy == "never") return policy;
    if (policy == "if_not_present") return "missing";
    if (policy == "build") {
      Fail(v, fmt::format("{}: `build` is not supported (Eph runs images CI built and pushed; use "
                          "missing, always or never)",
                          where));
    }
    Fail(v, fmt::format("{}: `{}` is not supported (Eph supports always, missing, if_not_present "
                        "and never)",
                        where, policy));
  }

  ComposeService ReadService(const YAML::Node& key, const YAML::Node& node,
                             const ComposeFile& file) const {
    ComposeService s;
    s.name = Key(key);
    s.line = static_cast<int>(key.Mark().line) + 1;
    CheckName(key, s.name, "service");
    const std::string at = "services." + s.name;
    if (!node.IsMap()) Fail(node, at + " must be a mapping");
    bool has_image = false;
    std::set<std::string> seen;
    for (const auto& kv : node) {
      Unique(seen, kv.first);
      const std::string field = Key(kv.first);
      const std::string where = fmt::format("{}.{}", at, field);
      const YAML::Node& v = kv.second;
      if (field == "image") {
        s.image = Scalar(v, where);
        has_image = !s.image.empty();
      } else if (field == "command" || field == "entrypoint") {
        std::vector<std::string> words;
        if (v.IsSequence()) {
          words = StringList(v, where);
        } else {
          absl::StatusOr<std::vector<std::string>> split = SplitCommand(Scalar(v, where));
          if (!split.ok()) {
            Fail(v, fmt::format("{}: {}", where, StatusText(split.status())));
          }
          words = *std::move(split);
        }
        (field == "command" ? s.command : s.entrypoint) = std::move(words);
      } else if (field == "environment") {
        s.environment = Environment(v, where);
      } else if (field == "ports") {
        if (!v.IsSequence()) Fail(v, where + " must be a list");
        for (const auto& p : v) s.ports.push_back(Port(p, where));
      } else if (field == "healthcheck") {
        s.healthcheck = Health(v, where);
      } else if (field == "depends_on") {
        if (v.IsSequence()) {
          s.depends_on = StringList(v, where);
        } else if (v.IsMap()) {
          for (const auto& d : v) {
            const std::string dep = Key(d.first);
            s.depends_on.push_back(dep);
            const std::string condition =
                DependsOnCondition(d.second, fmt::format("{}.{}", where, dep));
            if (condition != "service_started") s.depends_on_condition[dep] = condition;
          }
        } else {
          Fail(v, where + " must be a list of services or a mapping");
        }
      } else if (field == "volumes") {
        if (!v.IsSequence()) Fail(v, where + " must be a list");
        for (const auto& m : v) s.volumes.push_back(Volume(m, where, file));
      } else if (field == "labels") {
        s.labels = Labels(v, where);
      } else if (field == "pull_policy") {
        s.pull_policy = PullPolicyOf(v, where);
      } else if (field.rfind("x-", 0) == 0) {
        // extension field
      } else {
        Fail(kv.first,
             fmt::format("{}: unsupported key `{}` (Eph supports image, command, "
                         "entrypoint, environment, ports, healthcheck, depends_on, volumes, "
                         "labels, pull_policy; see docs/provider-docker.md)",
                         at, field));
      }
    }
    if (!has_image) {
      Fail(key, fmt::format("{}: `image` is required (Eph runs prebuilt images; `build` is not "
                            "supported)",
                            at));
    }
    return s;
  }

  // The entry's `condition`, "service_started" when it has none.
  std::string DependsOnCondition(const YAML::Node& node, const std::string& where) const {
    std::string condition = "service_started";
    if (node.IsNull()) return condition;
    if (!node.IsMap()) Fail(node, where + " must be a mapping");
    std::set<std::string> seen;
    for (const auto& kv : node) {
      Unique(seen, kv.first);
      const std::string key = Key(kv.first);
      if (key == "condition") {
        const std::string c = Scalar(kv.second, where + ".condition");
        if (c != "service_started" && c != "service_healthy" &&
            c != "service_completed_successfully") {
          Fail(kv.second, fmt::format("{}.condition: unknown condition `{}`", where, c));
        }
        condition = c;
      } else if (key != "required" && key != "restart") {
        Fail(kv.first, fmt::format("{}: unsupported key `{}`", where, key));
      }
    }
    return condition;
  }

  std::vector<std::string> Environment(const YAML::Node& node, const std::string& where) const {
    std::vector<std::string> out;
    auto no_value = [&](const YAML::Node& at, const std::string& key) {
      Fail(at, fmt::format("{}: `{}` has no value; Eph never passes its own environment to a "
                           "preview, so write the value",
                           where, key));
    };
    if (node.IsMap()) {
      std::set<std::string> seen;
      for (const auto& kv : node) {
        Unique(seen, kv.first);
        const std::string key = Key(kv.first);
        if (kv.second.IsNull()) no_value(kv.first, key);
        out.push_back(
            fmt::format("{}={}", key, Scalar(kv.second, fmt::format("{}.{}", where, key))));
      }
    } else if (node.IsSequence()) {
      for (const auto& item : node) {
        const std::string text = Scalar(item, where + "[]");
        if (text.find('=') == std::string::npos) no_value(item, text);
        if (text.front() == '=') Fail(item, where + ": a variable needs a name");
        out.push_back(text);
      }
    } else {
      Fail(node, where + " must be a mapping or a list of KEY=VALUE");
    }
    return out;
  }

  PortMapping Port(const YAML::Node& node, const std::string& where) const {
    if (node.IsMap()) {
      Fail(node, where +
                     ": only the short syntax is supported, e.g. \"8080\" or "
                     "\"127.0.0.1::8080\"");
    }
    std::string text = Scalar(node, where + "[]");
    PortMapping p;
    if (const size_t slash = text.find('/'); slash != std::string::npos) {
      p.protocol = text.substr(slash + 1);
      text = text.substr(0, slash);
      if (p.protocol != "tcp" && p.protocol != "udp") {
        Fail(node, fmt::format("{}: protocol `{}` is not tcp or udp", where, p.protocol));
      }
    }
    std::vector<std::string> parts;
    size_t start = 0;
    while (true) {
      const size_t colon = text.find(':', start);
      parts.push_back(text.substr(start, colon == std::string::npos ? colon : colon - start));
      if (colon == std::string::npos) break;
      start = colon + 1;
    }
    std::string host_ip;
    std::string host_port;
    std::string container_port;
    if (parts.size() == 1) {
      container_port = parts[0];
    } else if (parts.size() == 2) {
      host_port = parts[0];
      container_port = parts[1];
    } else if (parts.size() == 3) {
      host_ip = parts[0];
      host_port = parts[1];
      container_port = parts[2];
    } else {
      Fail(node, fmt::format("{}: `{}` is not HOST_IP:HOST_PORT:PORT (IPv6 addresses are not "
                             "supported)",
                             where, Scalar(node, where)));
    }
    if (!host_ip.empty() && host_ip != "127.0.0.1" && host_ip != "localhost") {
      Fail(node, fmt::format("{}: `{}`: Eph publishes ports on 127.0.0.1 only (the gateway is "
                             "the way in); write \"{}\" or \"127.0.0.1::{}\"",
                             where, Scalar(node, where), container_port, container_port));
    }
    auto number = [&](const std::string& s, const char* what) {
      int value = 0;
      bool ok = !s.empty() && s.size() <= 5;
      for (const char c : s) ok = ok && std::isdigit(static_cast<unsigned char>(c)) != 0;
      if (ok) value = std::stoi(s);
      if (!ok || value > 65535) {
        Fail(node, fmt::format("{}: {} `{}` is not a port number (ranges are not supported)", where,
                               what, s));
      }
      return value;
    };
    p.container_port = number(container_port, "container port");
    if (p.container_port == 0) Fail(node, where + ": the container port cannot be 0");
    if (!host_port.empty()) p.host_port = number(host_port, "host port");
    return p;
  }

  HealthCheck Health(const YAML::Node& node, const std::string& where) const {
    if (!node.IsMap()) Fail(node, where + " must be a mapping");
    HealthCheck h;
    bool has_test = false;
    bool disabled = false;
    std::set<std::string> seen;
    for (const auto& kv : node) {
      Unique(seen, kv.first);
      const std::string key = Key(kv.first);
      const std::string at = fmt::format("{}.{}", where, key);
      const YAML::Node& v = kv.second;
      if (key == "test") {
        has_test = true;
        if (v.IsSequence()) {
          h.test = StringList(v, at);
          if (h.test.empty() ||
              (h.test[0] != "CMD" && h.test[0] != "CMD-SHELL" && h.test[0] != "NONE")) {
            Fail(v, at + ": a list must start with CMD, CMD-SHELL or NONE");
          }
          if (h.test[0] != "NONE" && h.test.size() < 2)
            Fail(v, at + ": no command after " + h.test[0]);
        } else {
          h.test = {"CMD-SHELL", Scalar(v, at)};
        }
      } else if (key == "interval") {
        h.interval = Duration(v, at);
      } else if (key == "timeout") {
        h.timeout = Duration(v, at);
      } else if (key == "start_period") {
        h.start_period = Duration(v, at);
      } else if (key == "start_interval") {
        h.start_interval = Duration(v, at);
      } else if (key == "retries") {
        h.retries = Int(v, at, 1, 1'000'000);
      } else if (key == "disable") {
        disabled = Scalar(v, at) == "true";
      } else {
        Fail(kv.first, fmt::format("{}: unsupported key `{}` (supported: test, interval, "
                                   "timeout, retries, start_period, start_interval, disable)",
                                   where, key));
      }
    }
    for (absl::Duration* d : {&h.interval, &h.timeout, &h.start_period, &h.start_interval}) {
      if (*d != absl::ZeroDuration() && *d < absl::Milliseconds(1)) {
        Fail(node, where + ": durations must be at least 1ms");
      }
    }
    // The engine uses start_interval only during start_period: alone it would silently do
    // nothing.
    if (h.start_interval != absl::ZeroDuration() && h.start_period == absl::ZeroDuration()) {
      Fail(node, where + ": start_interval applies only during start_period; set start_period");
    }
    if (disabled) {
      h.test = {"NONE"};
    } else if (!has_test) {
      Fail(node, where + ": `test` is required (or `disable: true`)");
    }
    return h;
  }

  VolumeMount Volume(const YAML::Node& node, const std::string& where,
                     const ComposeFile& file) const {
    if (node.IsMap()) {
      Fail(node, where + ": only the short syntax VOLUME:/path[:ro] is supported");
    }
    const std::string text = Scalar(node, where + "[]");
    std::vector<std::string> parts;
    size_t start = 0;
    while (true) {
      const size_t colon = text.find(':', start);
      parts.push_back(text.substr(start, colon == std::string::npos ? colon : colon - start));
      if (colon == std::string::npos) break;
      start = colon + 1;
    }
    if (parts.size() == 1) {
      Fail(node, fmt::format("{}: `{}`: anonymous volumes are not supported; name it "
                             "(NAME:{}) and declare it under the top-level `volumes`",
                             where, text, text));
    }
    VolumeMount m;
    m.volume = parts[0];
    if (m.volume.empty() || m.volume[0] == '/' || m.volume[0] == '.' || m.volume[0] == '~' ||
        m.volume[0] == '$') {
      Fail(node, fmt::format("{}: `{}`: bind mounts are not supported (a preview must not see "
                             "the host's files); use a named volume",
                             where, text));
    }
    m.target = parts[1];
    if (m.target.empty() || m.target[0] != '/') {
      Fail(node, fmt::format("{}: `{}`: the container path must be absolute", where, text));
    }
    if (parts.size() == 3) {
      if (parts[2] == "ro") {
        m.read_only = true;
      } else if (parts[2] != "rw") {
        Fail(node, fmt::format("{}: `{}`: mode must be ro or rw", where, text));
      }
    } else if (parts.size() > 3) {
      Fail(node, fmt::format("{}: `{}` is not VOLUME:/path[:ro|rw]", where, text));
    }
    if (std::find(file.volumes.begin(), file.volumes.end(), m.volume) == file.volumes.end()) {
      Fail(node, fmt::format("{}: volume `{}` is not declared under the top-level `volumes`", where,
                             m.volume));
    }
    return m;
  }

  void CheckCycles(const ComposeFile& file, const YAML::Node& services) const {
    std::map<std::string, int> state;  // 0 new, 1 visiting, 2 done
    std::function<void(const ComposeService&, std::vector<std::string>&)> visit =
        [&](const ComposeService& s, std::vector<std::string>& path) {
          state[s.name] = 1;
          path.push_back(s.name);
          for (const std::string& d : s.depends_on) {
            if (state[d] == 1) {
              std::string cycle;
              bool in = false;
              for (const std::string& p : path) {
                in = in || p == d;
                if (in) cycle += p + " -> ";
              }
              Fail(services[s.name], fmt::format("depends_on cycle: {}{}", cycle, d));
            }
            if (state[d] == 0) visit(*file.Find(d), path);
          }
          path.pop_back();
          state[s.name] = 2;
        };
    for (const ComposeService& s : file.services) {
      std::vector<std::string> path;
      if (state[s.name] == 0) visit(s, path);
    }
  }

  const std::string file_;
  const std::map<std::string, std::string>& variables_;
  mutable size_t visits_ = 0;
};

}  // namespace

const ComposeService* ComposeFile::Find(std::string_view service) const {
  for (const ComposeService& s : services) {
    if (s.name == service) return &s;
  }
  return nullptr;
}

std::vector<const ComposeService*> ComposeFile::StartOrder() const {
  std::vector<const ComposeService*> out;
  std::set<std::string> placed;
  std::function<void(const ComposeService&)> place = [&](const ComposeService& s) {
    if (!placed.insert(s.name).second) return;
    for (const std::string& d : s.depends_on) {
      if (const ComposeService* dep = Find(d); dep != nullptr) place(*dep);
    }
    out.push_back(&s);
  };
  for (const ComposeService& s : services) place(s);
  return out;
}

absl::StatusOr<ComposeFile> ParseComposeFile(std::string_view yaml, std::string_view file_name) {
  static const std::map<std::string, std::string> kNone;
  return ParseComposeFile(yaml, file_name, kNone);
}

absl::StatusOr<ComposeFile> ParseComposeFile(std::string_view yaml, std::string_view file_name,
                                             const std::map<std::string, std::string>& variables) {
  // The checks eph.yaml gets before yaml-cpp sees it (size, encoding, tabs, nesting depth):
  // yaml-cpp parses anything however large and recurses once per nesting level.
  if (yaml.size() > config::kMaxConfigBytes) {
    return absl::InvalidArgumentError(
        fmt::format("{}: the file is {} bytes; a compose file may be at most {} bytes", file_name,
                    yaml.size(), config::kMaxConfigBytes));
  }
  const config::SourceText source(yaml);
  config::DiagnosticCollector diagnostics{std::string(file_name), source};
  if (!config::CheckSourceText(source, diagnostics)) {
    std::vector<config::Diagnostic> found = std::move(diagnostics).Take();
    if (!found.empty()) {
      const config::Diagnostic& d = found.front();
      if (d.line == 0) return absl::InvalidArgumentError(fmt::format("{}: {}", d.file, d.message));
      return absl::InvalidArgumentError(
          fmt::format("{}:{}:{}: {}", d.file, d.line, d.column, d.message));
    }
    return absl::InvalidArgumentError(fmt::format("{}: the file cannot be parsed", file_name));
  }
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml));
  } catch (const YAML::Exception& e) {
    if (e.mark.is_null()) {
      return absl::InvalidArgumentError(fmt::format("{}: not valid YAML: {}", file_name, e.msg));
    }
    return absl::InvalidArgumentError(fmt::format("{}:{}:{}: not valid YAML: {}", file_name,
                                                  e.mark.line + 1, e.mark.column + 1, e.msg));
  }
  try {
    return Parser(file_name, variables).Parse(root);
  } catch (const ComposeError& e) {
    return absl::InvalidArgumentError(e.message);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(fmt::format("{}: {}", file_name, e.what()));
  }
}

absl::StatusOr<std::vector<std::string>> SplitCommand(std::string_view command) {
  std::vector<std::string> words;
  std::string word;
  bool in_word = false;
  for (size_t i = 0; i < command.size(); ++i) {
    const char c = command[i];
    if (c == '\'' || c == '"') {
      in_word = true;
      size_t j = i + 1;
      for (; j < command.size() && command[j] != c; ++j) {
        if (c == '"' && command[j] == '\\' && j + 1 < command.size() &&
            (command[j + 1] == '"' || command[j + 1] == '\\')) {
          ++j;
        }
        word.push_back(command[j]);
      }
      if (j >= command.size()) {
        return absl::InvalidArgumentError(fmt::format("unterminated {} quote", c));
      }
      i = j;
    } else if (c == '\\' && i + 1 < command.size()) {
      in_word = true;
      word.push_back(command[++i]);
    } else if (c == ' ' || c == '\t' || c == '\n') {
      if (in_word) words.push_back(std::move(word));
      word.clear();
      in_word = false;
    } else {
      in_word = true;
      word.push_back(c);
    }
  }
  if (in_word) words.push_back(std::move(word));
  return words;
}

}  // namespace eph::providers::docker
