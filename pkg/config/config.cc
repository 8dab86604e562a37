#include "pkg/config/config.h"

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstdint>
#include <exception>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <set>
#include <sstream>
#include <system_error>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "pkg/config/duration.h"
#include "pkg/config/repo_path.h"
#include "pkg/config/source_checks.h"
#include "pkg/config/source_text.h"
#include "pkg/config/suggest.h"
#include "pkg/config/template.h"
#include "pkg/config/text.h"

namespace eph::config {
namespace {

using text::Append;
using text::Cat;
using text::Escape;
using text::Join;

// The schema's key paths, in documentation order. ReadFields() accepts exactly the keys listed
// here for the mapping it reads, so this list is the parser's vocabulary, not a copy of it.
constexpr std::string_view kKeyPaths[] = {
    "version",
    "name",
    "triggers",
    "triggers[].type",
    "triggers[].labels",
    "triggers[].skip_labels",
    "triggers[].wait_for_checks",
    "triggers[].include_drafts",
    "triggers[].paths",
    "environment",
    "environment.name_template",
    "environment.ttl",
    "environment.idle_timeout",
    "environment.allow_forks",
    "environment.base_domain",
    "environment.random_suffix",
    "environment.variables",
    "environment.secrets",
    "kubernetes",
    "kubernetes.manifests",
    "kubernetes.images",
    "kubernetes.images[].name",
    "kubernetes.images[].newTag",
    "kubernetes.helm",
    "kubernetes.helm[].chart",
    "kubernetes.helm[].values",
    "kubernetes.helm[].release_name",
    "kubernetes.helm[].set",
    "kubernetes.web",
    "kubernetes.web.service",
    "kubernetes.web.port",
    "kubernetes.progress_deadline",
    "database",
    "database.enabled",
    "database.instances",
    "database.instances[].name",
    "database.instances[].version",
    "database.instances[].placement",
    "database.instances[].image",
    "database.instances[].template",
    "database.instances[].template.strategy",
    "database.instances[].template.seed",
    "database.instances[].template.seed.scripts",
    "database.instances[].template.seed.timeout",
    "database.instances[].template.on_seed_change",
    "database.instances[].template.sanitize",
    "docker",
    "docker.compose_file",
    "docker.images",
    "docker.images[].name",
    "docker.images[].newTag",
    "docker.web",
    "docker.web.service",
    "docker.web.port",
};

// Upper bound on mapping entries and list items visited. A real eph.yaml has dozens; with YAML
// aliases ("billion laughs") one node can be reached exponentially often from a small file, and
// this bound is what keeps validation cheap whatever the input.
constexpr size_t kMaxVisits = 200'000;

constexpr size_t kMaxDnsLabel = 63;
constexpr size_t kMaxHelmReleaseName = 53;  // Helm's own limit
constexpr size_t kMaxQuoted = 40;

// The keys allowed directly under `schema_path` ("" for the top level, "triggers[]" for a
// trigger).
std::vector<std::string_view> KeysUnder(std::string_view schema_path) {
  std::vector<std::string_view> keys;
  for (std::string_view path : kKeyPaths) {
    std::string_view rest = path;
    if (!schema_path.empty()) {
      if (!rest.starts_with(schema_path) || rest.substr(schema_path.size(), 1) != ".") continue;
      rest.remove_prefix(schema_path.size() + 1);
    }
    if (rest.find_first_of(".[") != std::string_view::npos) continue;
    keys.push_back(rest);
  }
  return keys;
}

std::string Quote(std::string_view text) {
  std::string shown = Escape(text.substr(0, kMaxQuoted));
  if (text.size() > kMaxQuoted) shown += "...";
  return Cat("\"", shown, "\"");
}

std::string Describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Scalar:
      return Quote(node.Scalar());
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a mapping";
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      break;
  }
  return "an empty value";
}

bool IsDnsLabel(std::string_view s, size_t max_length) {
  if (s.empty() || s.size() > max_length) return false;
  for (char c : s) {
    if (!absl::ascii_islower(c) && !absl::ascii_isdigit(c) && c != '-') return false;
  }
  return s.front() != '-' && s.back() != '-';
}

bool IsDnsName(std::string_view s) {
  if (s.empty() || s.size() > 253) return false;
  size_t start = 0;
  while (true) {
    size_t dot = s.find('.', start);
    std::string_view label = s.substr(start, dot == std::string_view::npos ? dot : dot - start);
    if (!IsDnsLabel(label, kMaxDnsLabel)) return false;
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}

bool IsImageTagChar(char c) { return absl::ascii_isalnum(c) || c == '_' || c == '.' || c == '-'; }

bool IsNameTemplateChar(char c) {
  return absl::ascii_islower(c) || absl::ascii_isdigit(c) || c == '-';
}

// A key and its value in the mapping being read. `path` is what messages call it, with list
// indices filled in ("triggers[0].labels").
struct Field {
  std::string path;
  YAML::Mark key_mark;
  YAML::Node value;
};

using Fields = std::map<std::string, Field, std::less<>>;

// A node inside a list or mapping together with its display path.
struct Item {
  std::string path;
  YAML::Node node;
  YAML::Mark mark;  // where to point for this item
};

class ConfigReader {
 public:
  ConfigReader(const SourceText& source, DiagnosticCollector& diagnostics)
      : source_(source), diagnostics_(diagnostics) {}

  ProjectConfig Read(const YAML::Node& root);

 private:
  bool stopped() const { return out_of_budget_ || diagnostics_.full(); }

  // Counts one visited node; false (with one diagnostic) once the budget is spent.
  bool Visit(const YAML::Mark& mark) {
    if (out_of_budget_) return false;
    if (++visits_ <= kMaxVisits) return true;
    Error(mark, Cat("the file has more than ", kMaxVisits,
                    " entries, counting every use of a YAML alias; refusing to go on"));
    out_of_budget_ = true;
    return false;
  }

  void Error(const YAML::Mark& mark, std::string message) {
    diagnostics_.AddAtMark(mark.line, mark.column, std::move(message));
  }

  // Null values report at their key: yaml-cpp marks an empty value at whatever token follows.
  static YAML::Mark MarkOf(const Field& field) {
    return field.value.IsNull() ? field.key_mark : field.value.Mark();
  }

  // Position of byte `offset` inside a scalar's value, when the source shows the value verbatim
  // on one line (plain or quoted without escapes); otherwise the scalar's start.
  YAML::Mark MarkInScalar(const YAML::Node& scalar, size_t offset) const;

  Fields ReadFields(const YAML::Node& map, std::string_view schema_path,
                    std::string_view display_path);
  void Require(const Fields& fields, std::string_view key, const YAML::Mark& mark,
               std::string_view display_path);

  // Typed readers: each reports its own errors and returns nullopt on failure.
  std::optional<std::string> ReadString(const Field& field, bool allow_empty = false);
  std::optional<bool> ReadBool(const Field& field);
  std::optional<absl::Duration> ReadDuration(const Field& field);
  std::optional<int> ReadPort(const Field& field);
  std::optional<std::string> ReadPath(const Field& field);
  // The items of a list (an empty value is an empty list). `what` describes an item for type
  // errors ("a list of strings").
  std::optional<std::vector<Item>> ReadList(const Field& field, std::string_view what);
  std::optional<std::vector<std::string>> ReadStringList(const Field& field);
  std::optional<std::vector<std::string>> ReadPathList(const Field& field);
  // Items of a list of mappings; non-mapping items are reported and skipped.
  std::vector<Item> ReadMappingList(const Field& field, std::string_view what);
  bool CheckMapping(const Field& field);
  bool CheckTemplateScalar(const YAML::Node& scalar, std::string_view path);

  void ReadTrigger(const Item& item, ProjectConfig& config);
  void ReadEnvironment(const Field& field, EnvironmentSettings& environment);
  void CheckNameTemplate(const Field& field, const EnvironmentSettings& environment);
  void ReadVariables(const Field& field, EnvironmentSettings& environment);
  void ReadSecrets(const Field& field, EnvironmentSettings& environment);
  // False (with one diagnostic at `mark`) when `name` may not be an app's variable.
  bool CheckEnvName(const std::string& name, const YAML::Mark& mark, std::string_view path);
  void ReadKubernetes(const Field& field, const std::string& project, ProjectConfig& config);
  std::vector<ImageOverride> ReadImages(const Field& field, std::string_view schema_path);
  void ReadHelmRelease(const Item& item, const std::string& project, KubernetesSettings& k8s);
  // `kubernetes.web` / `docker.web`: {service, port}. `service_names` (Kubernetes) checks the
  // service is a DNS-1035 label.
  std::optional<WebService> ReadWebService(const Field& field, std::string_view section,
                                           bool service_names);
  void ReadDatabase(const Field& field, ProjectConfig& config);
  void ReadDatabaseInstance(const Item& item, DatabaseSettings& database);
  void ReadDatabaseName(const Fields& fields, DatabaseInstance& instance);
  // `image`, or the image `version` picks for a server of the environment's own.
  void ReadDatabaseImage(const Fields& fields, DatabaseInstance& instance);
  void ReadDatabaseTemplate(const Field& field, DatabaseInstance& instance);
  // `template.seed`; false when there is none.
  bool ReadDatabaseSeed(const Fields& template_fields, DatabaseInstance& instance);

  // The value of the choice `field` names, one of `choices`; an unknown name is reported with
  // the closest known one ("`path`: unknown WHAT "x"; did you mean `y`?", or the valid ones).
  template <typename T>
  std::optional<T> ReadChoice(const Field& field, std::string_view what,
                              std::initializer_list<std::pair<std::string_view, T>> choices);
  void ReadDocker(const Field& field, ProjectConfig& config);

  const SourceText& source_;
  DiagnosticCollector& diagnostics_;
  size_t visits_ = 0;
  bool out_of_budget_ = false;
  std::set<std::string> release_names_;   // Helm release names seen so far
  std::set<std::string> database_names_;  // database instance names seen so far
  std::map<std::string, YAML::Mark> variable_marks_;  // environment.variables keys, where
};

YAML::Mark ConfigReader::MarkInScalar(const YAML::Node& scalar, size_t offset) const {
  YAML::Mark mark = scalar.Mark();
  const std::string& value = scalar.Scalar();
  std::string_view line = source_.Line(mark.line);
  if (mark.column < 0 || static_cast<size_t>(mark.column) >= line.size()) return mark;
  size_t start = static_cast<size_t>(mark.column);
  if (line[start] == '"' || line[start] == '\'') ++start;
  if (offset > value.size() || start + offset > line.size()) return mark;
  const std::string_view value_view = value;
  if (line.substr(start, offset) != value_view.substr(0, offset)) return mark;
  mark.column = static_cast<int>(start + offset);
  return mark;
}

Fields ConfigReader::ReadFields(const YAML::Node& map, std::string_view schema_path,
                                std::string_view display_path) {
  Fields fields;
  if (!map.IsMap()) return fields;
  const std::vector<std::string_view> allowed = KeysUnder(schema_path);
  const std::string where =
      display_path.empty() ? std::string("at the top level") : Cat("in `", display_path, "`");
  for (auto it = map.begin(); it != map.end() && !stopped(); ++it) {
    // Copies, not references: yaml-cpp's `it->` returns a temporary proxy, so a reference to
    // `it->first` dangles at the end of the statement.
    const YAML::Node key_node = it->first;
    const YAML::Node value_node = it->second;
    if (!Visit(key_node.Mark())) break;
    if (!key_node.IsScalar()) {
      Error(key_node.Mark(),
            Cat("keys must be plain words, got ", Describe(key_node), " as a key ", where));
      continue;
    }
    const std::string& key = key_node.Scalar();
    if (key == "<<") {
      Error(key_node.Mark(),
            "YAML merge keys (`<<`) are not supported; write the keys out instead");
      continue;
    }
    if (auto previous = fields.find(key); previous != fields.end()) {
      Position first =
          source_.FromMark(previous->second.key_mark.line, previous->second.key_mark.column);
      Error(key_node.Mark(), Cat("duplicate key `", key, "` ", where, " (first defined at line ",
                                 first.line, ", column ", first.column, ")"));
      continue;
    }
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      std::string message = Cat("unknown key `", Escape(key), "` ", where);
      if (std::optional<std::string_view> match = ClosestMatch(key, allowed)) {
        Append(message, "; did you mean `", *match, "`?");
      } else {
        Append(message, " (valid keys: ", Join(allowed, ", "), ")");
      }
      Error(key_node.Mark(), std::move(message));
      continue;
    }
    std::string path = display_path.empty() ? key : Cat(display_path, ".", key);
    fields.emplace(key, Field{std::move(path), key_node.Mark(), value_node});
  }
  return fields;
}

void ConfigReader::Require(const Fields& fields, std::string_view key, const YAML::Mark& mark,
                           std::string_view display_path) {
  if (fields.find(key) != fields.end() || stopped()) return;
  if (display_path.empty()) {
    Error(mark, Cat("missing required key `", key, "`"));
  } else {
    Error(mark, Cat("missing required key `", key, "` in `", display_path, "`"));
  }
}

std::optional<std::string> ConfigReader::ReadString(const Field& field, bool allow_empty) {
  if (!field.value.IsScalar()) {
    Error(MarkOf(field), Cat("`", field.path, "`: expected a string, got ", Describe(field.value)));
    return std::nullopt;
  }
  if (!allow_empty && field.value.Scalar().empty()) {
    Error(MarkOf(field), Cat("`", field.path, "` is empty"));
    return std::nullopt;
  }
  return field.value.Scalar();
}

std::optional<bool> ConfigReader::ReadBool(const Field& field) {
  if (field.value.IsScalar()) {
    // YAML 1.2 booleans only: `yes`/`on` are strings there, and guessing invites surprises.
    const std::string& s = field.value.Scalar();
    if (s == "true" || s == "True" || s == "TRUE") return true;
    if (s == "false" || s == "False" || s == "FALSE") return false;
  }
  Error(MarkOf(field),
        Cat("`", field.path, "`: expected true or false, got ", Describe(field.value)));
  return std::nullopt;
}

std::optional<absl::Duration> ConfigReader::ReadDuration(const Field& field) {
  if (!field.value.IsScalar()) {
    Error(MarkOf(field),
          Cat("`", field.path, "`: expected a duration such as 72h, got ", Describe(field.value)));
    return std::nullopt;
  }
  absl::StatusOr<absl::Duration> duration = ParseDuration(field.value.Scalar());
  if (!duration.ok()) {
    Error(MarkOf(field), Cat("`", field.path, "`: ", duration.status().message()));
    return std::nullopt;
  }
  return *duration;
}

std::optional<int> ConfigReader::ReadPort(const Field& field) {
  if (field.value.IsScalar()) {
    const std::string& s = field.value.Scalar();
    int port = 0;
    bool digits = !s.empty() && s.size() <= 5 &&
                  std::all_of(s.begin(), s.end(), [](char c) { return absl::ascii_isdigit(c); });
    if (digits) {
      for (char c : s) port = port * 10 + (c - '0');
      if (port >= 1 && port <= 65535) return port;
    }
  }
  Error(MarkOf(field),
        Cat("`", field.path, "`: expected a port number (1-65535), got ", Describe(field.value)));
  return std::nullopt;
}

std::optional<std::string> ConfigReader::ReadPath(const Field& field) {
  std::optional<std::string> raw = ReadString(field);
  if (!raw) return std::nullopt;
  absl::StatusOr<std::string> path = NormalizeRepoPath(*raw);
  if (!path.ok()) {
    Error(MarkOf(field), Cat("`", field.path, "`: ", path.status().message()));
    return std::nullopt;
  }
  return *path;
}

std::optional<std::vector<Item>> ConfigReader::ReadList(const Field& field, std::string_view what) {
  std::vector<Item> items;
  if (field.value.IsNull()) return items;
  if (!field.value.IsSequence()) {
    std::string message =
        Cat("`", field.path, "`: expected ", what, ", got ", Describe(field.value));
    if (field.value.IsScalar()) {
      Append(message, " (write a list, e.g. [", Quote(field.value.Scalar()), "])");
    }
    Error(MarkOf(field), std::move(message));
    return std::nullopt;
  }
  size_t index = 0;
  for (auto it = field.value.begin(); it != field.value.end() && !stopped(); ++it, ++index) {
    YAML::Node node = *it;
    if (!Visit(node.Mark())) break;
    // An empty item (a bare "-") is marked at the following token; point at the list instead.
    YAML::Mark mark = node.IsNull() ? field.value.Mark() : node.Mark();
    items.push_back(Item{Cat(field.path, "[", index, "]"), node, mark});
  }
  return items;
}

std::optional<std::vector<std::string>> ConfigReader::ReadStringList(const Field& field) {
  std::optional<std::vector<Item>> items = ReadList(field, "a list of strings");
  if (!items) return std::nullopt;
  std::vector<std::string> out;
  bool ok = true;
  for (const Item& item : *items) {
    if (!item.node.IsScalar()) {
      Error(item.mark, Cat("`", item.path, "`: expected a string, got ", Describe(item.node)));
      ok = false;
    } else if (item.node.Scalar().empty()) {
      Error(item.mark, Cat("`", item.path, "` is empty"));
      ok = false;
    } else {
      out.push_back(item.node.Scalar());
    }
  }
  if (!ok) return std::nullopt;
  return out;
}

std::optional<std::vector<std::string>> ConfigReader::ReadPathList(const Field& field) {
  std::optional<std::vector<Item>> items = ReadList(field, "a list of paths");
  if (!items) return std::nullopt;
  std::vector<std::string> out;
  bool ok = true;
  for (const Item& item : *items) {
    Field item_field{item.path, item.mark, item.node};
    std::optional<std::string> path = ReadPath(item_field);
    if (path) {
      out.push_back(std::move(*path));
    } else {
      ok = false;
    }
  }
  if (!ok) return std::nullopt;
  return out;
}

bool ConfigReader::CheckMapping(const Field& field) {
  if (field.value.IsMap() || field.value.IsNull()) return true;
  Error(MarkOf(field),
        Cat("`", field.path, "`: expected a mapping of settings, got ", Describe(field.value)));
  return false;
}

std::vector<Item> ConfigReader::ReadMappingList(const Field& field, std::string_view what) {
  std::vector<Item> out;
  std::optional<std::vector<Item>> items = ReadList(field, what);
  if (!items) return out;
  for (Item& item : *items) {
    if (!item.node.IsMap()) {
      Error(item.mark,
            Cat("`", item.path, "`: expected a mapping of settings, got ", Describe(item.node)));
      continue;
    }
    out.push_back(std::move(item));
  }
  return out;
}

bool ConfigReader::CheckTemplateScalar(const YAML::Node& scalar, std::string_view path) {
  std::vector<TemplateProblem> problems = CheckTemplate(scalar.Scalar());
  for (const TemplateProblem& problem : problems) {
    Error(MarkInScalar(scalar, problem.offset), Cat("`", path, "`: ", problem.message));
  }
  return problems.empty();
}

ProjectConfig ConfigReader::Read(const YAML::Node& root) {
  ProjectConfig config;
  if (!root.IsMap()) {
    Error(root.Mark(), Cat("expected a mapping of settings (version, name, ...) at the "
                           "top level, got ",
                           Describe(root)));
    return config;
  }
  Fields fields = ReadFields(root, "", "");
  Require(fields, "version", root.Mark(), "");
  Require(fields, "name", root.Mark(), "");

  if (auto it = fields.find("version"); it != fields.end()) {
    if (std::optional<std::string> version = ReadString(it->second)) {
      if (*version == "1" || *version == kConfigVersion) {
        config.version = std::string(kConfigVersion);
      } else {
        Error(MarkOf(it->second), Cat("unsupported `version` ", Quote(*version),
                                      "; this Eph reads version \"", kConfigVersion, "\""));
      }
    }
  }
  if (auto it = fields.find("name"); it != fields.end()) {
    if (std::optional<std::string> name = ReadString(it->second)) {
      if (IsDnsLabel(*name, kMaxDnsLabel)) {
        config.name = *name;
      } else {
        Error(MarkOf(it->second),
              Cat("`name` ", Quote(*name),
                  " must be a DNS label: lowercase letters, digits and '-', starting "
                  "and ending with a letter or digit, at most 63 characters"));
      }
    }
  }
  if (auto it = fields.find("triggers"); it != fields.end()) {
    for (const Item& item : ReadMappingList(it->second, "a list of triggers")) {
      if (stopped()) break;
      ReadTrigger(item, config);
    }
  }
  if (config.triggers.empty()) {
    Trigger preview;
    preview.labels = {std::string(kDefaultTriggerLabel)};
    config.triggers.push_back(std::move(preview));
  }
  if (auto it = fields.find("environment"); it != fields.end()) {
    ReadEnvironment(it->second, config.environment);
  }
  if (auto it = fields.find("kubernetes"); it != fields.end()) {
    ReadKubernetes(it->second, config.name.empty() ? "app" : config.name, config);
  }
  if (auto it = fields.find("database"); it != fields.end()) {
    ReadDatabase(it->second, config);
  }
  if (auto it = fields.find("docker"); it != fields.end()) {
    ReadDocker(it->second, config);
  }
  if (fields.find("kubernetes") == fields.end() && fields.find("docker") == fields.end() &&
      !stopped()) {
    Error(root.Mark(), "nothing to deploy: add a `kubernetes` or `docker` section");
  }
  return config;
}

void ConfigReader::ReadTrigger(const Item& item, ProjectConfig& config) {
  Fields fields = ReadFields(item.node, "triggers[]", item.path);
  Require(fields, "type", item.mark, item.path);
  Trigger trigger;
  if (auto it = fields.find("type"); it != fields.end()) {
    if (std::optional<std::string> type = ReadString(it->second)) {
      static constexpr std::string_view kTypes[] = {"pr_label"};
      if (*type != "pr_label") {
        std::string message =
            Cat("`", it->second.path, "`: unsupported trigger type ", Quote(*type));
        if (std::optional<std::string_view> match = ClosestMatch(*type, kTypes)) {
          Append(message, "; did you mean `", *match, "`?");
        } else {
          Append(message, " (supported: pr_label)");
        }
        Error(MarkOf(it->second), std::move(message));
      }
    }
  }
  // A label trigger without labels would never fire; say so instead of silently idling.
  Require(fields, "labels", item.mark, item.path);
  if (auto it = fields.find("labels"); it != fields.end()) {
    if (auto labels = ReadStringList(it->second)) {
      if (labels->empty()) {
        Error(MarkOf(it->second), Cat("`", it->second.path, "` is empty; list at least one label"));
      }
      trigger.labels = std::move(*labels);
    }
  }
  if (auto it = fields.find("skip_labels"); it != fields.end()) {
    if (auto skip = ReadStringList(it->second)) {
      // Sets, not nested loops: list lengths are only bounded by the file size.
      const std::set<std::string> labels(trigger.labels.begin(), trigger.labels.end());
      for (const std::string& label : *skip) {
        if (labels.count(label) > 0) {
          Error(MarkOf(it->second),
                Cat("label ", Quote(label), " is in both `", item.path, ".labels` and `",
                    it->second.path, "`, so it could never trigger"));
        }
      }
      trigger.skip_labels = std::move(*skip);
    }
  }
  if (auto it = fields.find("wait_for_checks"); it != fields.end()) {
    if (auto checks = ReadStringList(it->second)) trigger.wait_for_checks = std::move(*checks);
  }
  if (auto it = fields.find("include_drafts"); it != fields.end()) {
    if (auto drafts = ReadBool(it->second)) trigger.include_drafts = *drafts;
  }
  if (auto it = fields.find("paths"); it != fields.end()) {
    if (auto items = ReadList(it->second, "a list of path patterns")) {
      bool any_positive = false;
      for (const Item& pattern_item : *items) {
        Field pattern_field{pattern_item.path, pattern_item.mark, pattern_item.node};
        std::optional<std::string> raw = ReadString(pattern_field);
        if (!raw) continue;
        absl::StatusOr<std::string> pattern = NormalizePathPattern(*raw);
        if (!pattern.ok()) {
          Error(pattern_item.mark, Cat("`", pattern_item.path, "`: ", pattern.status().message()));
          continue;
        }
        if ((*pattern)[0] != '!') any_positive = true;
        trigger.paths.push_back(std::move(*pattern));
      }
      if (!trigger.paths.empty() && !any_positive) {
        Error(MarkOf(it->second),
              Cat("`", it->second.path,
                  "` only excludes ('!' patterns), so no change would match; add a "
                  "pattern that includes files, e.g. \"**\""));
      }
    }
  }
  config.triggers.push_back(std::move(trigger));
}

void ConfigReader::ReadEnvironment(const Field& field, EnvironmentSettings& environment) {
  if (!CheckMapping(field)) return;
  Fields fields = ReadFields(field.value, "environment", field.path);
  if (auto it = fields.find("ttl"); it != fields.end()) {
    if (auto ttl = ReadDuration(it->second)) {
      if (*ttl == absl::ZeroDuration()) {
        Error(MarkOf(it->second), Cat("`", it->second.path, "` must be longer than 0 (e.g. 72h)"));
      } else {
        environment.ttl = *ttl;
      }
    }
  }
  if (auto it = fields.find("idle_timeout"); it != fields.end()) {
    if (auto idle = ReadDuration(it->second)) environment.idle_timeout = *idle;
  }
  if (auto it = fields.find("allow_forks"); it != fields.end()) {
    if (auto allow = ReadBool(it->second)) environment.allow_forks = *allow;
  }
  if (auto it = fields.find("random_suffix"); it != fields.end()) {
    if (auto suffix = ReadBool(it->second)) environment.random_suffix = *suffix;
  }
  if (auto it = fields.find("base_domain"); it != fields.end()) {
    if (auto domain = ReadString(it->second)) {
      if (IsDnsName(*domain)) {
        environment.base_domain = *domain;
      } else {
        Error(MarkOf(it->second),
              Cat("`", it->second.path, "` ", Quote(*domain),
                  " is not a DNS name: dot-separated labels of lowercase letters, "
                  "digits and '-' (e.g. preview.example.com)"));
      }
    }
  }
  if (auto it = fields.find("name_template"); it != fields.end()) {
    CheckNameTemplate(it->second, environment);
    if (auto name_template = ReadString(it->second, /*allow_empty=*/true)) {
      environment.name_template = *name_template;
    }
  }
  // Variables first: a secret's name is checked against them.
  if (auto it = fields.find("variables"); it != fields.end()) {
    ReadVariables(it->second, environment);
  }
  if (auto it = fields.find("secrets"); it != fields.end()) {
    ReadSecrets(it->second, environment);
  }
}

bool ConfigReader::CheckEnvName(const std::string& name, const YAML::Mark& mark,
                                std::string_view path) {
  if (!IsEnvVarName(name)) {
    Error(mark, Cat("`", path, "`: ", Quote(name),
                    " is not an environment variable name: letters, digits and '_', not "
                    "starting with a digit"));
    return false;
  }
  if (std::optional<std::string> reason = ReservedEnvNameReason(name)) {
    Error(mark, Cat("`", path, "`: ", name, " is reserved: ", *reason, "; choose another name"));
    return false;
  }
  return true;
}

void ConfigReader::ReadVariables(const Field& field, EnvironmentSettings& environment) {
  if (!CheckMapping(field)) return;
  for (auto entry = field.value.begin(); entry != field.value.end() && !stopped(); ++entry) {
    const YAML::Node key = entry->first;  // copies: `entry->` is a temporary proxy
    const YAML::Node value = entry->second;
    if (!Visit(key.Mark())) break;
    if (!key.IsScalar()) {
      Error(key.Mark(), Cat("`", field.path, "`: keys must be variable names such as API_URL, got ",
                            Describe(key)));
      continue;
    }
    const std::string& name = key.Scalar();
    const std::string path = Cat(field.path, ".", name);
    if (auto previous = variable_marks_.find(name); previous != variable_marks_.end()) {
      Position first = source_.FromMark(previous->second.line, previous->second.column);
      Error(key.Mark(), Cat("duplicate key `", name, "` in `", field.path,
                            "` (first defined at line ", first.line, ", column ", first.column,
                            ")"));
      continue;
    }
    variable_marks_.emplace(name, key.Mark());
    if (!CheckEnvName(name, key.Mark(), field.path)) continue;
    if (!value.IsScalar()) {
      Error(value.IsNull() ? key.Mark() : value.Mark(),
            Cat("`", path, "`: expected a string, got ", Describe(value),
                value.IsNull() ? " (write \"\" for an empty value)" : ""));
      continue;
    }
    if (!CheckTemplateScalar(value, path)) continue;
    // {words} and {number} are picked for the name; a deploy has no value for them.
    bool usable = true;
    for (const TemplatePart& part : SplitTemplate(value.Scalar())) {
      if (part.is_variable && (part.text == "words" || part.text == "number")) {
        Error(MarkInScalar(value, part.offset),
              Cat("`", path, "`: `{", part.text,
                  "}` only exists in `environment.name_template`; use {pr_number} instead"));
        usable = false;
        break;
      }
    }
    if (usable) environment.variables.emplace(name, value.Scalar());
  }
}

void ConfigReader::ReadSecrets(const Field& field, EnvironmentSettings& environment) {
  std::optional<std::vector<Item>> items = ReadList(field, "a list of secret names");
  if (!items) return;
  std::map<std::string, YAML::Mark> seen;
  for (const Item& item : *items) {
    if (!item.node.IsScalar()) {
      Error(item.mark, Cat("`", item.path, "`: expected a secret's name, got ",
                           Describe(item.node), " (values are set in ephd, not here)"));
      continue;
    }
    const std::string& name = item.node.Scalar();
    if (!CheckEnvName(name, item.mark, item.path)) continue;
    if (auto variable = variable_marks_.find(name); variable != variable_marks_.end()) {
      Position at = source_.FromMark(variable->second.line, variable->second.column);
      Error(item.mark, Cat("`", item.path, "`: ", name,
                           " is also in `environment.variables` (line ", at.line,
                           "); a name is a variable or a secret, not both"));
      continue;
    }
    if (auto [previous, inserted] = seen.emplace(name, item.mark); !inserted) {
      Position first = source_.FromMark(previous->second.line, previous->second.column);
      Error(item.mark, Cat("`", item.path, "`: secret ", name, " is listed twice (first at line ", first.line,
                           ", column ", first.column, ")"));
      continue;
    }
    environment.secrets.push_back(name);
  }
}

void ConfigReader::CheckNameTemplate(const Field& field, const EnvironmentSettings& environment) {
  if (!field.value.IsScalar()) return;  // ReadString reports the type
  const YAML::Node& scalar = field.value;
  std::string_view tmpl = scalar.Scalar();
  if (tmpl.empty()) {
    Error(MarkOf(field), Cat("`", field.path, "` is empty"));
    return;
  }
  if (!CheckTemplateScalar(scalar, field.path)) return;
  bool distinct = environment.random_suffix;
  for (const TemplatePart& part : SplitTemplate(tmpl)) {
    if (!part.is_variable) {
      auto bad = std::find_if_not(part.text.begin(), part.text.end(), IsNameTemplateChar);
      if (bad != part.text.end()) {
        size_t offset = part.offset + static_cast<size_t>(bad - part.text.begin());
        Error(MarkInScalar(scalar, offset),
              Cat("`", field.path, "`: ", Quote(std::string_view(&*bad, 1)),
                  " is not allowed in environment names; use lowercase letters, digits "
                  "and '-' around the variables"));
        return;
      }
      continue;
    }
    if (part.text == "sha" || part.text == "short_sha") {
      Error(MarkInScalar(scalar, part.offset),
            Cat("`", field.path, "`: `{", part.text,
                "}` would rename the environment on every push; use it in `newTag` "
                "instead"));
      return;
    }
    if (part.text != "project") distinct = true;
  }
  if (!distinct) {
    Error(MarkOf(field),
          Cat("`", field.path, "` ", Quote(tmpl),
              " gives every pull request the same name; include {pr_number}, {words}, "
              "{number} or {branch}, or set `random_suffix: true`"));
  }
}

std::vector<ImageOverride> ConfigReader::ReadImages(const Field& field,
                                                    std::string_view schema_path) {
  std::vector<ImageOverride> images;
  std::map<std::string, YAML::Mark> seen;
  for (const Item& item : ReadMappingList(field, "a list of images")) {
    if (stopped()) break;
    Fields fields = ReadFields(item.node, schema_path, item.path);
    Require(fields, "name", item.mark, item.path);
    Require(fields, "newTag", item.mark, item.path);
    ImageOverride image;
    if (auto it = fields.find("name"); it != fields.end()) {
      if (auto name = ReadString(it->second)) {
        if (std::any_of(name->begin(), name->end(),
                        [](char c) { return absl::ascii_isspace(c); })) {
          Error(MarkOf(it->second),
                Cat("`", it->second.path, "` ", Quote(*name), " contains whitespace"));
        } else if (auto [previous, inserted] = seen.emplace(*name, MarkOf(it->second)); !inserted) {
          Position first = source_.FromMark(previous->second.line, previous->second.column);
          Error(MarkOf(it->second), Cat("image ", Quote(*name), " is listed twice (first at line ",
                                        first.line, ", column ", first.column, ")"));
        }
        image.name = *name;
      }
    }
    if (auto it = fields.find("newTag"); it != fields.end()) {
      if (auto tag = ReadString(it->second)) {
        if (CheckTemplateScalar(it->second.value, it->second.path)) {
          for (const TemplatePart& part : SplitTemplate(*tag)) {
            if (part.is_variable) continue;
            auto bad = std::find_if_not(part.text.begin(), part.text.end(), IsImageTagChar);
            if (bad != part.text.end()) {
              size_t offset = part.offset + static_cast<size_t>(bad - part.text.begin());
              Error(MarkInScalar(it->second.value, offset),
                    Cat("`", it->second.path, "`: ", Quote(std::string_view(&*bad, 1)),
                        " is not allowed in an image tag; use letters, digits, '_', "
                        "'.' and '-'"));
              break;
            }
          }
        }
        image.new_tag = *tag;
      }
    }
    images.push_back(std::move(image));
  }
  return images;
}

// Helm release names are DNS labels of at most 53 characters; derive one from the chart's
// directory name the way a user would write it by hand.
std::string DeriveReleaseName(std::string_view chart, std::string_view project) {
  std::string_view base = chart;
  if (size_t slash = base.rfind('/'); slash != std::string_view::npos) {
    base = base.substr(slash + 1);
  }
  if (base == ".") base = project;
  std::string name;
  for (char c : base) {
    char lower = absl::ascii_tolower(static_cast<unsigned char>(c));
    name.push_back(absl::ascii_isalnum(lower) ? lower : '-');
  }
  if (name.size() > kMaxHelmReleaseName) name.resize(kMaxHelmReleaseName);
  while (!name.empty() && name.front() == '-') name.erase(name.begin());
  while (!name.empty() && name.back() == '-') name.pop_back();
  return name.empty() ? std::string(project) : name;
}

void ConfigReader::ReadHelmRelease(const Item& item, const std::string& project,
                                   KubernetesSettings& k8s) {
  Fields fields = ReadFields(item.node, "kubernetes.helm[]", item.path);
  Require(fields, "chart", item.mark, item.path);
  HelmRelease release;
  if (auto it = fields.find("chart"); it != fields.end()) {
    if (auto chart = ReadPath(it->second)) release.chart = *chart;
  }
  if (auto it = fields.find("values"); it != fields.end()) {
    if (auto values = ReadPathList(it->second)) release.values = std::move(*values);
  }
  YAML::Mark name_mark = item.mark;
  if (auto it = fields.find("release_name"); it != fields.end()) {
    name_mark = MarkOf(it->second);
    if (auto name = ReadString(it->second)) {
      if (IsDnsLabel(*name, kMaxHelmReleaseName)) {
        release.release_name = *name;
      } else {
        Error(name_mark, Cat("`", it->second.path, "` ", Quote(*name),
                             " must be a DNS label of at most 53 characters: lowercase "
                             "letters, digits and '-'"));
      }
    }
  } else if (!release.chart.empty()) {
    release.release_name = DeriveReleaseName(release.chart, project);
  }
  if (auto it = fields.find("set"); it != fields.end() && CheckMapping(it->second)) {
    const Field& set_field = it->second;
    std::map<std::string, YAML::Mark> keys;
    for (auto entry = set_field.value.begin(); entry != set_field.value.end() && !stopped();
         ++entry) {
      const YAML::Node key = entry->first;  // copies: `entry->` is a temporary proxy
      const YAML::Node value = entry->second;
      if (!Visit(key.Mark())) break;
      if (!key.IsScalar() || key.Scalar().empty()) {
        Error(key.Mark(), Cat("`", set_field.path,
                              "`: keys must be Helm value paths "
                              "such as image.tag, got ",
                              Describe(key)));
        continue;
      }
      std::string path = Cat(set_field.path, ".", key.Scalar());
      if (auto [previous, inserted] = keys.emplace(key.Scalar(), key.Mark()); !inserted) {
        Position first = source_.FromMark(previous->second.line, previous->second.column);
        Error(key.Mark(),
              Cat("duplicate key `", key.Scalar(), "` in `", set_field.path,
                  "` (first defined at line ", first.line, ", column ", first.column, ")"));
        continue;
      }
      if (!value.IsScalar()) {
        Error(value.IsNull() ? key.Mark() : value.Mark(),
              Cat("`", path, "`: expected a string, got ", Describe(value),
                  " (nested values belong in a values file)"));
        continue;
      }
      if (CheckTemplateScalar(value, path)) release.set.emplace(key.Scalar(), value.Scalar());
    }
  }
  if (!release.release_name.empty()) {
    if (!release_names_.insert(release.release_name).second) {
      Error(name_mark, Cat("two Helm releases are named ", Quote(release.release_name),
                           "; set `release_name`"));
    }
  }
  k8s.helm.push_back(std::move(release));
}

void ConfigReader::ReadKubernetes(const Field& field, const std::string& project,
                                  ProjectConfig& config) {
  KubernetesSettings& k8s = config.kubernetes.emplace();
  if (!CheckMapping(field)) return;
  Fields fields = ReadFields(field.value, "kubernetes", field.path);
  if (auto it = fields.find("manifests"); it != fields.end()) {
    if (auto manifests = ReadPathList(it->second)) k8s.manifests = std::move(*manifests);
  }
  if (auto it = fields.find("images"); it != fields.end()) {
    k8s.images = ReadImages(it->second, "kubernetes.images[]");
  }
  if (auto it = fields.find("helm"); it != fields.end()) {
    for (const Item& item : ReadMappingList(it->second, "a list of Helm charts")) {
      if (stopped()) break;
      ReadHelmRelease(item, project, k8s);
    }
  }
  if (auto it = fields.find("web"); it != fields.end()) {
    k8s.web = ReadWebService(it->second, "kubernetes.web", /*service_names=*/true);
  }
  if (auto it = fields.find("progress_deadline"); it != fields.end()) {
    if (auto deadline = ReadDuration(it->second)) {
      if (*deadline <= absl::ZeroDuration()) {
        Error(MarkOf(it->second), Cat("`", it->second.path, "` must be more than 0"));
      } else {
        k8s.progress_deadline = *deadline;
      }
    }
  }
  bool has_manifests =
      fields.count("manifests") > 0 && !fields.at("manifests").value.IsNull() &&
      !(fields.at("manifests").value.IsSequence() && fields.at("manifests").value.size() == 0);
  bool has_helm = fields.count("helm") > 0 && !fields.at("helm").value.IsNull() &&
                  !(fields.at("helm").value.IsSequence() && fields.at("helm").value.size() == 0);
  if (!has_manifests && !has_helm && !stopped()) {
    Error(field.key_mark, Cat("`", field.path,
                              "` has nothing to deploy; list `manifests` or `helm` "
                              "charts"));
  }
}

std::optional<WebService> ConfigReader::ReadWebService(const Field& field,
                                                      std::string_view section,
                                                      bool service_names) {
  if (!CheckMapping(field)) return std::nullopt;
  Fields fields = ReadFields(field.value, section, field.path);
  Require(fields, "service", MarkOf(field), field.path);
  Require(fields, "port", MarkOf(field), field.path);
  WebService web;
  if (auto it = fields.find("service"); it != fields.end()) {
    if (auto service = ReadString(it->second)) {
      // Service names are DNS-1035 labels: a lowercase letter first.
      if (service_names &&
          (!IsDnsLabel(*service, kMaxDnsLabel) || !absl::ascii_islower(service->front()))) {
        Error(MarkOf(it->second),
              Cat("`", it->second.path, "` ", Quote(*service),
                  " is not a Service name: lowercase letters, digits and '-', starting with a "
                  "letter"));
      }
      web.service = *service;
    }
  }
  if (auto it = fields.find("port"); it != fields.end()) {
    if (auto port = ReadPort(it->second)) web.port = *port;
  }
  if (web.service.empty() || web.port == 0) return std::nullopt;
  return web;
}

template <typename T>
std::optional<T> ConfigReader::ReadChoice(
    const Field& field, std::string_view what,
    std::initializer_list<std::pair<std::string_view, T>> choices) {
  std::optional<std::string> name = ReadString(field);
  if (!name) return std::nullopt;
  std::vector<std::string_view> names;
  for (const auto& [choice, value] : choices) {
    if (*name == choice) return value;
    names.push_back(choice);
  }
  std::string message = Cat("`", field.path, "`: unknown ", what, " ", Quote(*name));
  if (auto match = ClosestMatch(*name, names)) {
    Append(message, "; did you mean `", *match, "`?");
  } else {
    Append(message, " (valid: ", Join(names, ", "), ")");
  }
  Error(MarkOf(field), std::move(message));
  return std::nullopt;
}

void ConfigReader::ReadDatabaseInstance(const Item& item, DatabaseSettings& database) {
  Fields fields = ReadFields(item.node, "database.instances[]", item.path);
  Require(fields, "name", item.mark, item.path);
  Require(fields, "version", item.mark, item.path);
  DatabaseInstance instance;
  ReadDatabaseName(fields, instance);
  if (auto it = fields.find("version"); it != fields.end()) {
    if (auto version = ReadString(it->second)) instance.version = *version;
  }
  if (auto it = fields.find("placement"); it != fields.end()) {
    if (auto placement = ReadChoice<DatabasePlacement>(
            it->second, "placement",
            {{"shared", DatabasePlacement::kShared},
             {"environment", DatabasePlacement::kEnvironment}})) {
      instance.placement = *placement;
    }
  }
  ReadDatabaseImage(fields, instance);
  if (auto it = fields.find("template"); it != fields.end() && CheckMapping(it->second)) {
    ReadDatabaseTemplate(it->second, instance);
  }
  database.instances.push_back(std::move(instance));
}

void ConfigReader::ReadDatabaseName(const Fields& fields, DatabaseInstance& instance) {
  auto it = fields.find("name");
  if (it == fields.end()) return;
  std::optional<std::string> name = ReadString(it->second);
  if (!name) return;
  if (!IsDnsLabel(*name, kMaxDnsLabel)) {
    Error(MarkOf(it->second), Cat("`", it->second.path, "` ", Quote(*name),
                                  " must be a DNS label: lowercase letters, digits and '-'"));
  } else if (!database_names_.insert(*name).second) {
    Error(MarkOf(it->second), Cat("database ", Quote(*name), " is listed twice"));
  }
  instance.name = *name;
}

void ConfigReader::ReadDatabaseImage(const Fields& fields, DatabaseInstance& instance) {
  if (auto it = fields.find("image"); it != fields.end()) {
    if (auto image = ReadString(it->second)) {
      if (image->empty() || image->find_first_of(" \t\n\r") != std::string::npos) {
        Error(MarkOf(it->second),
              Cat("`", it->second.path, "` ", Quote(*image), " is not an image reference"));
      } else if (instance.placement != DatabasePlacement::kEnvironment) {
        Error(MarkOf(it->second), Cat("`", it->second.path,
                                      "` only applies to `placement: environment`"));
      } else {
        instance.image = *image;
      }
    }
  }
  if (instance.placement != DatabasePlacement::kEnvironment || !instance.image.empty() ||
      instance.version.empty()) {
    return;
  }
  // The server's image follows `version` unless eph.yaml names one.
  const bool plain = std::all_of(instance.version.begin(), instance.version.end(),
                                 [](char c) { return absl::ascii_isdigit(c) || c == '.'; });
  if (!plain) {
    const Field& version = fields.find("version")->second;
    Error(MarkOf(version),
          Cat("`", version.path, "` ", Quote(instance.version),
              " must be a PostgreSQL version such as \"15\" (it picks the image postgres:",
              "<version>) or name the server's image in `image`"));
  } else {
    instance.image = "postgres:" + instance.version;
  }
}

void ConfigReader::ReadDatabaseTemplate(const Field& template_field, DatabaseInstance& instance) {
  Fields template_fields =
      ReadFields(template_field.value, "database.instances[].template", template_field.path);
  Require(template_fields, "strategy", MarkOf(template_field), template_field.path);
  if (auto it = template_fields.find("strategy"); it != template_fields.end()) {
    if (auto strategy = ReadChoice<DatabaseTemplateStrategy>(
            it->second, "strategy",
            {{"seed", DatabaseTemplateStrategy::kSeed},
             {"clone", DatabaseTemplateStrategy::kClone}})) {
      instance.strategy = *strategy;
    }
  }
  const bool has_seed = ReadDatabaseSeed(template_fields, instance);
  if (!has_seed && template_fields.find("seed") == template_fields.end() &&
      instance.strategy == DatabaseTemplateStrategy::kSeed) {
    Error(MarkOf(template_field),
          Cat("`", template_field.path, "`: `strategy: seed` needs `seed.scripts`"));
  }
  if (auto it = template_fields.find("on_seed_change"); it != template_fields.end()) {
    if (auto change = ReadChoice<DatabaseSeedChange>(
            it->second, "choice",
            {{"keep", DatabaseSeedChange::kKeep}, {"reseed", DatabaseSeedChange::kReseed}})) {
      instance.on_seed_change = *change;
    }
  }
  if (auto it = template_fields.find("sanitize"); it != template_fields.end()) {
    if (auto sanitize = ReadPath(it->second)) {
      if (instance.strategy != DatabaseTemplateStrategy::kClone) {
        Error(it->second.key_mark,
              Cat("`", it->second.path, "` only applies to `strategy: clone`"));
      } else if (template_fields.find("seed") == template_fields.end()) {
        Error(it->second.key_mark, Cat("`", it->second.path,
                                       "` needs `seed.scripts`: it cleans the data they load"));
      }
      instance.sanitize_script = *sanitize;
    }
  }
}

bool ConfigReader::ReadDatabaseSeed(const Fields& template_fields, DatabaseInstance& instance) {
  auto seed_it = template_fields.find("seed");
  if (seed_it == template_fields.end() || !CheckMapping(seed_it->second)) return false;
  const Field& seed_field = seed_it->second;
  Fields seed_fields =
      ReadFields(seed_field.value, "database.instances[].template.seed", seed_field.path);
  Require(seed_fields, "scripts", MarkOf(seed_field), seed_field.path);
  if (auto it = seed_fields.find("scripts"); it != seed_fields.end()) {
    if (auto scripts = ReadPathList(it->second)) {
      if (scripts->empty()) {
        Error(MarkOf(it->second),
              Cat("`", it->second.path, "` is empty; list the SQL files to run"));
      }
      instance.seed_scripts = std::move(*scripts);
    }
  }
  if (auto it = seed_fields.find("timeout"); it != seed_fields.end()) {
    if (auto timeout = ReadDuration(it->second)) {
      if (*timeout <= absl::ZeroDuration()) {
        Error(MarkOf(it->second), Cat("`", it->second.path, "` must be longer than zero"));
      } else {
        instance.seed_timeout = *timeout;
      }
    }
  }
  return true;
}

void ConfigReader::ReadDatabase(const Field& field, ProjectConfig& config) {
  DatabaseSettings& database = config.database;
  // Writing a `database` section is the request for databases; `enabled: false` switches them
  // off without deleting the section.
  database.enabled = true;
  if (!CheckMapping(field)) return;
  Fields fields = ReadFields(field.value, "database", field.path);
  YAML::Mark enabled_mark = field.key_mark;
  if (auto it = fields.find("enabled"); it != fields.end()) {
    enabled_mark = MarkOf(it->second);
    if (auto enabled = ReadBool(it->second)) database.enabled = *enabled;
  }
  if (auto it = fields.find("instances"); it != fields.end()) {
    for (const Item& item : ReadMappingList(it->second, "a list of databases")) {
      if (stopped()) break;
      ReadDatabaseInstance(item, database);
    }
  }
  if (database.enabled && database.instances.empty() && !stopped()) {
    auto it = fields.find("instances");
    bool instances_given =
        it != fields.end() && it->second.value.IsSequence() && it->second.value.size() > 0;
    if (!instances_given) {
      Error(enabled_mark, Cat("`", field.path, "` is enabled but `", field.path,
                              ".instances` lists no databases"));
    }
  }
}

void ConfigReader::ReadDocker(const Field& field, ProjectConfig& config) {
  DockerSettings& docker = config.docker.emplace();
  if (!CheckMapping(field)) return;
  Fields fields = ReadFields(field.value, "docker", field.path);
  if (auto it = fields.find("compose_file"); it != fields.end()) {
    if (auto compose = ReadPath(it->second)) docker.compose_file = *compose;
  }
  if (auto it = fields.find("images"); it != fields.end()) {
    docker.images = ReadImages(it->second, "docker.images[]");
  }
  if (auto it = fields.find("web"); it != fields.end()) {
    docker.web = ReadWebService(it->second, "docker.web", /*service_names=*/false);
  }
}

// yaml-cpp's messages are terse; say what usually causes each in an eph.yaml.
std::string ExplainParserError(const std::string& message) {
  struct Hint {
    std::string_view yaml_cpp;
    std::string_view explanation;
  };
  static constexpr Hint kHints[] = {
      {"illegal map value",
       "unexpected ':' (is the indentation off, or does a value need quotes?)"},
      {"end of map flow not found", "'{' is not closed with '}'"},
      {"end of sequence flow not found", "'[' is not closed with ']'"},
      {"end of map not found", "a mapping ends unexpectedly (check the indentation)"},
      {"end of sequence not found", "a list ends unexpectedly (check the indentation)"},
      {"bad file",  // what yaml-cpp's depth guard throws
       "nesting is too deep; an eph.yaml needs only a few levels"},
  };
  for (const Hint& hint : kHints) {
    if (message == hint.yaml_cpp) return Cat("invalid YAML: ", hint.explanation);
  }
  return Cat("invalid YAML: ", message);
}

// Where the documents of a YAML stream start, found from parser events without building nodes.
struct DocumentLayout {
  std::vector<YAML::Mark> content_documents;  // start of each document that is not empty
  size_t first_content_index = 0;             // its index among all documents
  std::optional<YAML::Mark> stuck_at;         // a token yaml-cpp cannot consume, if any
};

// Records what a document consists of: only a null (empty document) or real content.
class DocumentProbe : public YAML::EventHandler {
 public:
  void Reset() {
    events_ = 0;
    lone_null_ = false;
  }
  bool empty() const { return events_ == 0 || (events_ == 1 && lone_null_); }
  const YAML::Mark& mark() const { return mark_; }

  void OnDocumentStart(const YAML::Mark&) override {}
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& mark, YAML::anchor_t) override {
    if (events_++ == 0) {
      lone_null_ = true;
      mark_ = mark;
    }
  }
  void OnAlias(const YAML::Mark& mark, YAML::anchor_t) override { Event(mark); }
  void OnScalar(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                const std::string&) override {
    Event(mark);
  }
  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {
    Event(mark);
  }
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {
    Event(mark);
  }
  void OnMapEnd() override {}

 private:
  void Event(const YAML::Mark& mark) {
    if (events_++ == 0) mark_ = mark;
  }

  size_t events_ = 0;
  bool lone_null_ = false;
  YAML::Mark mark_;
};

// yaml-cpp 0.7's LoadAll() loops forever, allocating, on a token no rule consumes (a stray ","
// is enough: jbeder/yaml-cpp#1040, fixed upstream in #1319). Each such round yields an empty
// document at the same position, so two in a row at one position mean "stuck here". The loop
// is bounded besides: every other document consumes at least one byte.
DocumentLayout ScanDocuments(std::string_view text) {
  DocumentLayout layout;
  std::istringstream in{std::string(text)};
  YAML::Parser parser(in);
  DocumentProbe probe;
  std::optional<int> previous_empty_pos;
  for (size_t index = 0; index <= text.size() + 1; ++index) {
    probe.Reset();
    if (!parser.HandleNextDocument(probe)) break;
    if (probe.empty()) {
      if (previous_empty_pos && *previous_empty_pos == probe.mark().pos) {
        layout.stuck_at = probe.mark();
        break;
      }
      previous_empty_pos = probe.mark().pos;
      continue;
    }
    previous_empty_pos.reset();
    if (layout.content_documents.empty()) layout.first_content_index = index;
    layout.content_documents.push_back(probe.mark());
    if (layout.content_documents.size() > 1) break;  // one more is all an error needs
  }
  return layout;
}

std::string Plural(size_t n, std::string_view one, std::string_view many) {
  return Cat(n, " ", n == 1 ? one : many);
}

}  // namespace

std::span<const std::string_view> KnownKeyPaths() { return kKeyPaths; }

bool IsEnvVarName(std::string_view name) {
  if (name.empty() || absl::ascii_isdigit(static_cast<unsigned char>(name.front()))) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_';
  });
}

std::optional<std::string> ReservedEnvNameReason(std::string_view name) {
  if (name == "DATABASE_URL") return "Eph sets it to the database's URL";
  if (name.ends_with("_DATABASE_URL")) {
    return "Eph sets <INSTANCE>_DATABASE_URL to each database instance's URL";
  }
  if (name.starts_with("PG")) {
    return "Eph sets PG* (PGHOST, PGUSER, PGPASSWORD, ...) to the database's settings";
  }
  return std::nullopt;
}

ValidationResult ParseConfig(std::string_view text, std::string_view filename) {
  SourceText source(text);
  DiagnosticCollector diagnostics{std::string(filename), source};
  ValidationResult result;
  if (!CheckSourceText(source, diagnostics)) {
    result.diagnostics = std::move(diagnostics).Take();
    return result;
  }
  // yaml-cpp reports problems by throwing; nothing may escape this module, so every exception
  // becomes a diagnostic.
  try {
    DocumentLayout layout = ScanDocuments(source.text());
    if (layout.stuck_at) {
      size_t offset = source.OffsetOfMark(layout.stuck_at->line, layout.stuck_at->column);
      std::string_view rest = source.text().substr(offset);
      diagnostics.AddAtOffset(
          offset, rest.empty()
                      ? std::string("invalid YAML: unexpected end of file")
                      : Cat("invalid YAML: unexpected \"", Escape(rest.substr(0, 1)), "\" here"));
    } else if (layout.content_documents.empty()) {
      diagnostics.AddAtOffset(0,
                              "file has no settings; an eph.yaml needs at least `version` "
                              "and `name`");
    } else if (layout.content_documents.size() > 1 || layout.first_content_index != 0) {
      const YAML::Mark& mark = layout.content_documents.size() > 1 ? layout.content_documents[1]
                                                                   : layout.content_documents[0];
      diagnostics.AddAtMark(mark.line, mark.column,
                            "a second YAML document; eph.yaml must contain exactly one");
    } else {
      // Only now build the node tree, of the first and only document.
      YAML::Node root = YAML::Load(std::string(source.text()));
      ConfigReader reader(source, diagnostics);
      ProjectConfig config = reader.Read(root);
      if (diagnostics.empty()) result.config = std::move(config);
    }
  } catch (const YAML::ParserException& e) {
    diagnostics.AddAtMark(e.mark.line, e.mark.column, ExplainParserError(e.msg));
  } catch (const YAML::Exception& e) {
    diagnostics.AddAtMark(e.mark.line, e.mark.column, Cat("invalid YAML: ", e.msg));
  } catch (const std::exception& e) {
    diagnostics.AddAtOffset(0, Cat("cannot read the file as YAML: ", e.what()));
  }
  result.diagnostics = std::move(diagnostics).Take();
  if (!result.diagnostics.empty()) result.config.reset();
  return result;
}

ValidationResult ValidateFile(const std::filesystem::path& path) {
  const std::string name = path.string();
  ValidationResult result;
  const auto fail = [&](std::string message) {
    result.diagnostics.push_back(Diagnostic{name, 0, 0, std::move(message)});
    return result;
  };
  std::error_code error;
  if (std::filesystem::is_directory(path, error)) return fail("is a directory, not a file");
  // Refuse a huge file before reading it: the size check must not cost the memory it protects.
  uintmax_t size = std::filesystem::file_size(path, error);
  if (!error && size > kMaxConfigBytes) {
    result.diagnostics.push_back(
        Diagnostic{name, 1, 1,
                   Cat("file is ", size, " bytes; eph.yaml may be at most ", kMaxConfigBytes,
                       " bytes (1 MiB)")});
    return result;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::error_code open_error(errno, std::generic_category());
    return fail(Cat("cannot read file: ", open_error.message()));
  }
  // Read at most one byte past the limit, so a file that grows (or a pipe) is still bounded.
  std::string text(kMaxConfigBytes + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  if (in.bad()) return fail("cannot read file: I/O error");
  text.resize(static_cast<size_t>(in.gcount()));
  return ParseConfig(text, name);
}

absl::StatusOr<ProjectConfig> LoadConfig(std::string_view text, std::string_view filename) {
  ValidationResult result = ParseConfig(text, filename);
  if (result.ok()) return std::move(*result.config);
  std::string message = FormatDiagnostics(result.diagnostics);
  if (!message.empty() && message.back() == '\n') message.pop_back();
  return absl::InvalidArgumentError(message);
}

std::string SummarizeConfig(const ProjectConfig& config, std::string_view filename) {
  std::vector<std::string> parts;
  parts.push_back(Cat("project ", config.name));
  parts.push_back(Plural(config.triggers.size(), "trigger", "triggers"));
  if (config.kubernetes) {
    if (!config.kubernetes->manifests.empty()) {
      parts.push_back(
          Plural(config.kubernetes->manifests.size(), "manifest path", "manifest paths"));
    }
    if (!config.kubernetes->helm.empty()) {
      parts.push_back(Plural(config.kubernetes->helm.size(), "Helm chart", "Helm charts"));
    }
    // The manifests are not rendered here, so only a chosen entry service can be named.
    if (config.kubernetes->web) {
      parts.push_back(Cat("entry service ", config.kubernetes->web->service, ":",
                          config.kubernetes->web->port));
    } else {
      parts.push_back(Cat("entry service ", config.name,
                          ", web or frontend (else the first Service with an HTTP port)"));
    }
  }
  if (config.docker) parts.push_back(Cat("compose file ", config.docker->compose_file));
  if (config.database.enabled && !config.database.instances.empty()) {
    parts.push_back(Plural(config.database.instances.size(), "database", "databases"));
  }
  if (!config.environment.variables.empty()) {
    parts.push_back(Plural(config.environment.variables.size(), "variable", "variables"));
  }
  if (!config.environment.secrets.empty()) {
    parts.push_back(Plural(config.environment.secrets.size(), "secret", "secrets"));
  }
  return Cat(filename, ": valid (", Join(parts, ", "), ")");
}

}  // namespace eph::config
