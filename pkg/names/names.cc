#include "pkg/names/names.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "pkg/names/words.h"

namespace eph::names {
namespace {

constexpr char kBase32[] = "abcdefghijklmnopqrstuvwxyz234567";

// Base-32 characters (5 bits each) for at least kMinRandomBits with what the words carry.
int SuffixLength(double other_bits) {
  return static_cast<int>(std::ceil(std::max(0.0, kMinRandomBits - other_bits) / 5));
}

std::string RandomSuffix(Random& random, int length) {
  std::string out;
  for (int i = 0; i < length; ++i) out.push_back(kBase32[random.Uniform(32)]);
  return out;
}

std::string TrimDashes(std::string s) {
  while (!s.empty() && s.back() == '-') s.pop_back();
  size_t start = 0;
  while (start < s.size() && s[start] == '-') ++start;
  return s.substr(start);
}

// Expands the template; `project` is substituted as given (already a label part).
absl::StatusOr<std::string> Expand(std::string_view tmpl, const std::string& project,
                                   const std::string& words, const NameInputs& in) {
  std::string out;
  size_t i = 0;
  while (i < tmpl.size()) {
    if (tmpl[i] != '{') {
      out.push_back(tmpl[i++]);
      continue;
    }
    const size_t close = tmpl.find('}', i);
    if (close == std::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("name_template: unclosed '{' at offset ", i));
    }
    const std::string_view var = tmpl.substr(i + 1, close - i - 1);
    if (var == "project") {
      out += project;
    } else if (var == "words") {
      out += words;
    } else if (var == "number" || var == "pr_number") {
      out += std::to_string(in.pr_number);
    } else if (var == "sha") {
      out += in.sha;
    } else if (var == "short_sha") {
      out += in.sha.substr(0, 7);
    } else if (var == "branch") {
      out += in.branch;
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("name_template: unknown variable {", std::string(var), "}"));
    }
    i = close + 1;
  }
  return out;
}

// Renders one candidate, shortening the project (then the whole name) to fit kMaxNameLength.
absl::StatusOr<std::string> Render(const NameOptions& options, const NameInputs& in,
                                   const std::string& words, const std::string& suffix) {
  std::string project = ToDnsLabelPart(in.project);
  const size_t budget = kMaxNameLength - (suffix.empty() ? 0 : suffix.size() + 1);
  auto expanded = Expand(options.name_template, project, words, in);
  if (!expanded.ok()) return expanded.status();
  std::string name = ToDnsLabelPart(*expanded);
  if (name.size() > budget && !project.empty() &&
      options.name_template.find("{project}") != std::string::npos) {
    // Shorten the project part: it is the same for every environment of the project, while
    // the words and number are what tell environments apart.
    const size_t excess = name.size() - budget;
    const size_t keep = project.size() > excess ? project.size() - excess : 1;
    project = TrimDashes(project.substr(0, std::max<size_t>(keep, 1)));
    expanded = Expand(options.name_template, project, words, in);
    if (!expanded.ok()) return expanded.status();
    name = ToDnsLabelPart(*expanded);
  }
  if (name.size() > budget) name = TrimDashes(name.substr(0, budget));
  if (!suffix.empty()) name = name.empty() ? suffix : absl::StrCat(name, "-", suffix);
  if (name.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("name_template \"", options.name_template,
                     "\" renders to an empty name; include {project}, {words} or {number}"));
  }
  return name;
}

}  // namespace

double WordsEntropyBits() {
  return std::log2(static_cast<double>(Adjectives().size()) *
                   static_cast<double>(Nouns().size()));
}

std::string ToDnsLabelPart(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (char c : in) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    const bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    if (alnum) {
      out.push_back(c);
    } else if (!out.empty() && out.back() != '-') {
      out.push_back('-');
    }
  }
  return TrimDashes(out);
}

bool IsDnsLabel(std::string_view s, size_t max_length) {
  if (s.empty() || s.size() > max_length) return false;
  auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (!alnum(s.front()) || !alnum(s.back())) return false;
  for (char c : s) {
    if (!alnum(c) && c != '-') return false;
  }
  return true;
}

bool IsRepository(std::string_view project) {
  // Checked first, so nothing below ever walks a long string.
  if (project.size() > kMaxOwnerLength + 1 + kMaxRepoLength) return false;
  const size_t slash = project.find('/');
  if (slash == std::string_view::npos) return false;
  const std::string_view owner = project.substr(0, slash);
  const std::string_view repo = project.substr(slash + 1);
  if (owner.empty() || owner.size() > kMaxOwnerLength) return false;
  if (repo.empty() || repo.size() > kMaxRepoLength) return false;
  auto allowed = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '.' || c == '-';
  };
  for (char c : owner) {
    if (!allowed(c)) return false;
  }
  for (char c : repo) {
    if (!allowed(c)) return false;
  }
  return true;
}

absl::StatusOr<std::string> MakeName(const NameInputs& in, const NameOptions& options,
                                     Random& random,
                                     const std::function<bool(const std::string&)>& is_taken) {
  const bool has_words = options.name_template.find("{words}") != std::string::npos;
  const int attempts = has_words ? std::max(options.max_attempts, 1) : 1;
  for (int attempt = 0; attempt <= attempts; ++attempt) {
    const bool last = attempt == attempts;
    const auto& adjectives = Adjectives();
    const auto& nouns = Nouns();
    const std::string words =
        absl::StrCat(std::string(adjectives[random.Uniform(adjectives.size())]), "-",
                     std::string(nouns[random.Uniform(nouns.size())]));
    // After the word picks run out (or without {words}), a random suffix breaks the tie.
    const std::string suffix =
        options.random_suffix || last
            ? RandomSuffix(random, SuffixLength(has_words ? WordsEntropyBits() : 0))
            : "";
    auto name = Render(options, in, words, suffix);
    if (!name.ok()) return name.status();
    if (!is_taken(*name)) return name;
  }
  return absl::ResourceExhaustedError("could not find an unused environment name");
}

}  // namespace eph::names
