// Template strings in eph.yaml: `environment.name_template`, `images[].newTag` and
// `kubernetes.helm[].set` values, e.g. "pr-{pr_number}" or "{project}-{words}-{number}".
//
// A template is literal text with variables in braces. There is no escape for a literal brace:
// none of the places templates end up (DNS names, image tags, Helm values) has a use for one,
// so any stray `{` or `}` is reported as a mistake instead.
//
// Variables:
//   {project}    the project's `name`
//   {words}      random words chosen once per environment (e.g. "gentle-stream")
//   {number}     the pull request number, as in "my-app-gentle-stream-42" (pkg/names)
//   {pr_number}  the pull request number
//   {sha}        the full commit SHA of the pull request head
//   {short_sha}  its first 7 characters
//   {branch}     the pull request's head branch, as is (callers sanitise for DNS or tags)
//
// Thread-safety: pure functions.
#ifndef EPH_PKG_CONFIG_TEMPLATE_H_
#define EPH_PKG_CONFIG_TEMPLATE_H_

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace eph::config {

inline constexpr std::string_view kTemplateVariables[] = {
    "project", "words", "number", "pr_number", "sha", "short_sha", "branch",
};

// Values to substitute; a variable whose value is unset makes expansion fail rather than
// silently produce "pr-" for an unknown PR number.
struct TemplateValues {
  std::optional<std::string> project;
  std::optional<std::string> words;
  std::optional<std::string> number;
  std::optional<std::string> pr_number;
  std::optional<std::string> sha;
  std::optional<std::string> short_sha;
  std::optional<std::string> branch;
};

struct TemplateProblem {
  size_t offset = 0;  // byte offset of the offending `{` or `}` in the template
  std::string message;
};

// Every syntax error and unknown variable, in order of offset. Empty means the template is
// well-formed.
std::vector<TemplateProblem> CheckTemplate(std::string_view tmpl);

// A piece of a template: literal text, or a known variable (name without braces).
struct TemplatePart {
  bool is_variable = false;
  std::string_view text;
  size_t offset = 0;  // of the literal's first byte, or of the variable's `{`
};

// The template's literal text and known variables, in order. Lets callers check which
// characters the user wrote themselves and which variables are used where. Malformed pieces
// and unknown variables (see CheckTemplate) are left out. Views point into `tmpl`.
std::vector<TemplatePart> SplitTemplate(std::string_view tmpl);

// Where the expansion goes. Literal text was validated for its target when eph.yaml was parsed;
// variable values (a branch such as "feature/Login") are made to fit here: every character the
// target does not allow becomes '-'.
enum class TemplateTarget {
  kText,      // as is (Helm values)
  kImageTag,  // [A-Za-z0-9_.-]; the result is cut to 128 characters, Docker's limit
  kDnsLabel,  // [a-z0-9-], upper case folded; length is left to the caller, which owns naming
};

// Substitutes every variable. InvalidArgument if the template has problems (see CheckTemplate)
// or uses a variable whose value is unset in `values`.
[[nodiscard]] absl::StatusOr<std::string> ExpandTemplate(
    std::string_view tmpl, const TemplateValues& values,
    TemplateTarget target = TemplateTarget::kText);

}  // namespace eph::config

#endif  // EPH_PKG_CONFIG_TEMPLATE_H_
