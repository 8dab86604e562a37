#include "pkg/providers/kubernetes/yaml_documents.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>

#include "fmt/format.h"
#include "yaml-cpp/yaml.h"

namespace eph::providers::kubernetes {
namespace {

using nlohmann::json;

constexpr char kTagPrefix[] = "tag:yaml.org,2002:";

bool OneOf(const std::string& s, std::initializer_list<const char*> options) {
  for (const char* o : options) {
    if (s == o) return true;
  }
  return false;
}

std::optional<json> ResolveInteger(const std::string& text) {
  std::string plain;
  plain.reserve(text.size());
  for (char c : text) {
    if (c != '_') plain.push_back(c);
  }
  if (plain.empty()) return std::nullopt;
  size_t i = (plain[0] == '+' || plain[0] == '-') ? 1 : 0;
  if (i >= plain.size()) return std::nullopt;
  const bool negative = plain[0] == '-';
  std::string digits = plain.substr(i);
  int base = 10;
  if (digits.size() > 2 && digits[0] == '0' && (digits[1] == 'x' || digits[1] == 'X')) {
    base = 16;
    digits = digits.substr(2);
  } else if (digits.size() > 2 && digits[0] == '0' && (digits[1] == 'b' || digits[1] == 'B')) {
    base = 2;
    digits = digits.substr(2);
  } else if (digits.size() > 1 && digits[0] == '0') {
    base = 8;
    digits = digits.substr(1);
  }
  for (char c : digits) {
    const bool ok = base == 16  ? std::isxdigit(static_cast<unsigned char>(c)) != 0
                    : base == 2 ? (c == '0' || c == '1')
                    : base == 8 ? (c >= '0' && c <= '7')
                                : (c >= '0' && c <= '9');
    if (!ok) return std::nullopt;
  }
  errno = 0;
  char* end = nullptr;
  const unsigned long long magnitude = std::strtoull(digits.c_str(), &end, base);
  if (errno == ERANGE || end == nullptr || *end != '\0') return std::nullopt;
  if (negative) {
    if (magnitude > static_cast<unsigned long long>(INT64_MAX) + 1ULL) return std::nullopt;
    if (magnitude == static_cast<unsigned long long>(INT64_MAX) + 1ULL) return json(INT64_MIN);
    return json(-static_cast<int64_t>(magnitude));
  }
  if (magnitude <= static_cast<unsigned long long>(INT64_MAX)) {
    return json(static_cast<int64_t>(magnitude));
  }
  return json(static_cast<uint64_t>(magnitude));
}

// [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?, matched by hand: std::regex recurses
// once per character and a long scalar exhausts the stack.
bool IsFloatText(std::string_view s) {
  size_t i = 0;
  auto digits = [&] {
    const size_t start = i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
    return i - start;
  };
  if (i < s.size() && (s[i] == '-' || s[i] == '+')) ++i;
  const size_t whole = digits();
  if (i < s.size() && s[i] == '.') {
    ++i;
    const size_t fraction = digits();
    if (whole == 0 && fraction == 0) return false;
  } else if (whole == 0) {
    return false;
  }
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '-' || s[i] == '+')) ++i;
    if (digits() == 0) return false;
  }
  return i == s.size();
}

std::optional<json> ResolveFloat(const std::string& text) {
  std::string plain;
  for (char c : text) {
    if (c != '_') plain.push_back(c);
  }
  if (!IsFloatText(plain)) return std::nullopt;
  errno = 0;
  char* end = nullptr;
  const double v = std::strtod(plain.c_str(), &end);
  if (end == nullptr || *end != '\0') return std::nullopt;
  // Only overflow makes it a string, as in go-yaml (Go's ParseFloat): an underflow such as
  // 5e-314 is a number (subnormal or zero), and strtod's ERANGE for it is no error.
  if (errno == ERANGE && std::isinf(v)) return std::nullopt;
  return json(v);
}

// A plain scalar, typed the way go-yaml v2 (YAML 1.1) types it.
json ResolvePlain(const std::string& s) {
  if (s.empty() || OneOf(s, {"~", "null", "Null", "NULL"})) return nullptr;
  if (OneOf(s, {"true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON", "y", "Y"})) {
    return true;
  }
  if (OneOf(s, {"false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF", "n", "N"})) {
    return false;
  }
  const char c = s[0];
  if ((c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.') {
    if (std::optional<json> i = ResolveInteger(s)) return *i;
    if (std::optional<json> f = ResolveFloat(s)) return *f;
  }
  return s;
}

json ResolveTagged(const std::string& s, const std::string& tag) {
  if (tag == "?") return ResolvePlain(s);
  if (tag.rfind(kTagPrefix, 0) == 0) {
    const std::string t = tag.substr(sizeof(kTagPrefix) - 1);
    if (t == "str") return s;
    if (t == "null") return nullptr;
    if (t == "bool" || t == "int" || t == "float") {
      json v = ResolvePlain(s);
      if ((t == "bool" && v.is_boolean()) || (t == "int" && v.is_number_integer()) ||
          (t == "float" && v.is_number())) {
        return v;
      }
    }
  }
  // "!" (quoted or block scalars) and anything else: a string.
  return s;
}

class Converter {
 public:
  Converter(const std::string& source, size_t max_nodes) : source_(source), max_nodes_(max_nodes) {}

  absl::StatusOr<json> Convert(const YAML::Node& node, int depth = 0) {
    if (++nodes_ > max_nodes_) {
      return absl::InvalidArgumentError(fmt::format(
          "{}: the document expands to more than {} values (YAML aliases?)", source_, max_nodes_));
    }
    if (depth > 256) {
      return absl::InvalidArgumentError(fmt::format("{}: nested too deeply", source_));
    }
    switch (node.Type()) {
      case YAML::NodeType::Undefined:
      case YAML::NodeType::Null:
        return json(nullptr);
      case YAML::NodeType::Scalar:
        return ResolveTagged(node.Scalar(), node.Tag());
      case YAML::NodeType::Sequence: {
        json out = json::array();
        for (const YAML::Node& item : node) {
          absl::StatusOr<json> v = Convert(item, depth + 1);
          if (!v.ok()) return v.status();
          out.push_back(*std::move(v));
        }
        return out;
      }
      case YAML::NodeType::Map: {
        json out = json::object();
        std::vector<json> merges;
        for (const auto& kv : node) {
          if (kv.first.Type() != YAML::NodeType::Scalar) {
            return absl::InvalidArgumentError(
                fmt::format("{}: line {}, column {}: a mapping key must be a scalar", source_,
                            kv.first.Mark().line + 1, kv.first.Mark().column + 1));
          }
          absl::StatusOr<json> v = Convert(kv.second, depth + 1);
          if (!v.ok()) return v.status();
          const std::string& key = kv.first.Scalar();
          if (key == "<<" && kv.first.Tag() == "?") {
            if (v->is_object()) {
              merges.push_back(*std::move(v));
              continue;
            }
            if (v->is_array()) {
              for (json& m : *v) {
                if (m.is_object()) merges.push_back(std::move(m));
              }
              continue;
            }
          }
          out[key] = *std::move(v);
        }
        // Merged mappings never override the mapping's own keys; earlier merges win.
        for (json& m : merges) {
          for (auto it = m.begin(); it != m.end(); ++it) {
            if (!out.contains(it.key())) out[it.key()] = std::move(it.value());
          }
        }
        return out;
      }
    }
    return json(nullptr);
  }

 private:
  const std::string& source_;
  const size_t max_nodes_;
  size_t nodes_ = 0;
};

bool IsListKind(const json& doc) {
  const auto kind = doc.find("kind");
  if (kind == doc.end() || !kind->is_string()) return false;
  const std::string k = kind->get<std::string>();
  return k.size() >= 4 && k.compare(k.size() - 4, 4, "List") == 0 && doc.contains("items") &&
         doc["items"].is_array();
}

}  // namespace

absl::StatusOr<std::vector<json>> ParseManifestDocuments(std::string_view text,
                                                         const std::string& source,
                                                         size_t max_nodes) {
  std::vector<YAML::Node> docs;
  try {
    docs = YAML::LoadAll(std::string(text));
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(fmt::format("{}: line {}, column {}: invalid YAML: {}",
                                                  source, e.mark.line + 1, e.mark.column + 1,
                                                  e.msg));
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(fmt::format("{}: invalid YAML: {}", source, e.what()));
  }
  std::vector<json> out;
  Converter converter(source, max_nodes);
  int index = 0;
  for (const YAML::Node& doc : docs) {
    ++index;
    absl::StatusOr<json> value;
    try {
      value = converter.Convert(doc);
    } catch (const std::exception& e) {
      return absl::InvalidArgumentError(
          fmt::format("{}: document {}: {}", source, index, e.what()));
    }
    if (!value.ok()) return value.status();
    if (value->is_null()) continue;
    if (!value->is_object()) {
      return absl::InvalidArgumentError(fmt::format(
          "{}: document {} is not a Kubernetes object (a mapping with apiVersion and kind)", source,
          index));
    }
    if (IsListKind(*value)) {
      for (json& item : (*value)["items"]) {
        if (!item.is_object()) {
          return absl::InvalidArgumentError(
              fmt::format("{}: document {}: a List item is not an object", source, index));
        }
        out.push_back(std::move(item));
      }
      continue;
    }
    out.push_back(*std::move(value));
  }
  return out;
}

std::string FormatManifestDocuments(const std::vector<json>& objects) {
  std::string out;
  for (const json& o : objects) {
    out += "---\n";
    out += o.dump(-1, ' ', false, json::error_handler_t::replace);
    out += "\n";
  }
  return out;
}

}  // namespace eph::providers::kubernetes
