#include "pkg/config/template.h"

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "pkg/config/suggest.h"
#include "pkg/config/text.h"

namespace eph::config {
namespace {

using text::Append;
using text::Cat;
using text::Escape;
using text::Join;

struct Parsed {
  std::vector<TemplatePart> segments;
  std::vector<TemplateProblem> problems;
};

bool IsKnownVariable(std::string_view name) {
  for (std::string_view known : kTemplateVariables) {
    if (known == name) return true;
  }
  return false;
}

std::string ValidVariableList() {
  std::string out;
  for (std::string_view name : kTemplateVariables) {
    Append(out, out.empty() ? "" : ", ", "{", name, "}");
  }
  return out;
}

Parsed Parse(std::string_view tmpl) {
  Parsed parsed;
  size_t literal_start = 0;
  const auto flush_literal = [&](size_t end) {
    if (end > literal_start) {
      parsed.segments.push_back(
          TemplatePart{false, tmpl.substr(literal_start, end - literal_start), literal_start});
    }
  };
  size_t i = 0;
  while (i < tmpl.size()) {
    if (tmpl[i] == '}') {
      parsed.problems.push_back({i, "unexpected `}`; template variables are written `{name}`"});
      ++i;
      continue;
    }
    if (tmpl[i] != '{') {
      ++i;
      continue;
    }
    flush_literal(i);
    size_t close = tmpl.find_first_of("{}", i + 1);
    if (close == std::string_view::npos || tmpl[close] == '{') {
      parsed.problems.push_back({i, "`{` is not closed; template variables are written `{name}`"});
      // Resume at the next `{` (or the end) so that later variables are still checked.
      i = close == std::string_view::npos ? tmpl.size() : close;
      literal_start = i;
      continue;
    }
    std::string_view name = tmpl.substr(i + 1, close - i - 1);
    if (name.empty()) {
      parsed.problems.push_back(
          {i, Cat("empty template variable `{}` (valid: ", ValidVariableList(), ")")});
    } else if (!IsKnownVariable(name)) {
      std::string message = Cat("unknown template variable `{", name, "}`");
      if (std::optional<std::string_view> close_match = ClosestMatch(name, kTemplateVariables)) {
        Append(message, "; did you mean `{", *close_match, "}`?");
      } else {
        Append(message, " (valid: ", ValidVariableList(), ")");
      }
      parsed.problems.push_back({i, std::move(message)});
    } else {
      parsed.segments.push_back(TemplatePart{true, name, i});
    }
    i = close + 1;
    literal_start = i;
  }
  flush_literal(tmpl.size());
  return parsed;
}

const std::optional<std::string>& ValueOf(std::string_view name, const TemplateValues& values) {
  if (name == "project") return values.project;
  if (name == "words") return values.words;
  if (name == "number") return values.number;
  if (name == "pr_number") return values.pr_number;
  if (name == "sha") return values.sha;
  if (name == "short_sha") return values.short_sha;
  return values.branch;  // Parse() admits only known names, and this is the last one.
}

constexpr size_t kMaxImageTag = 128;

std::string FitValue(std::string_view value, TemplateTarget target) {
  std::string out(value);
  for (char& c : out) {
    switch (target) {
      case TemplateTarget::kText:
        break;
      case TemplateTarget::kImageTag:
        if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '.' &&
            c != '-') {
          c = '-';
        }
        break;
      case TemplateTarget::kDnsLabel:
        c = absl::ascii_tolower(static_cast<unsigned char>(c));
        if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-') c = '-';
        break;
    }
  }
  return out;
}

}  // namespace

std::vector<TemplateProblem> CheckTemplate(std::string_view tmpl) { return Parse(tmpl).problems; }

std::vector<TemplatePart> SplitTemplate(std::string_view tmpl) { return Parse(tmpl).segments; }

absl::StatusOr<std::string> ExpandTemplate(std::string_view tmpl, const TemplateValues& values,
                                           TemplateTarget target) {
  Parsed parsed = Parse(tmpl);
  if (!parsed.problems.empty()) {
    return absl::InvalidArgumentError(
        Cat("template \"", Escape(tmpl), "\": ", parsed.problems.front().message));
  }
  std::string out;
  for (const TemplatePart& segment : parsed.segments) {
    if (!segment.is_variable) {
      out.append(segment.text);
      continue;
    }
    const std::optional<std::string>& value = ValueOf(segment.text, values);
    if (!value) {
      return absl::InvalidArgumentError(
          Cat("template \"", Escape(tmpl), "\": no value for `{", segment.text, "}`"));
    }
    out.append(FitValue(*value, target));
  }
  if (target == TemplateTarget::kImageTag && out.size() > kMaxImageTag) out.resize(kMaxImageTag);
  return out;
}

}  // namespace eph::config
