#include "pkg/config/repo_path.h"

#include <cstdint>
#include <vector>

#include "pkg/config/text.h"

namespace eph::config {
namespace {

using text::Append;
using text::Cat;
using text::Escape;
using text::Join;

std::string Quote(std::string_view text) { return Cat("\"", Escape(text), "\""); }

bool LooksLikeDriveLetter(std::string_view path) {
  return path.size() >= 2 && path[1] == ':' &&
         ((path[0] >= 'a' && path[0] <= 'z') || (path[0] >= 'A' && path[0] <= 'Z'));
}

// Token kinds of a compiled glob.
enum class Kind { kLiteral, kAnyChar, kStar, kGlobStar, kGlobStarSlash, kClass };

struct Token {
  Kind kind = Kind::kLiteral;
  char literal = 0;
  bool negated = false;
  std::vector<std::pair<unsigned char, unsigned char>> ranges;  // for kClass
};

// Compiles a glob. Returns false on an unclosed '['.
bool Compile(std::string_view pattern, std::vector<Token>& tokens) {
  for (size_t i = 0; i < pattern.size(); ++i) {
    char c = pattern[i];
    if (c == '*') {
      if (i + 1 < pattern.size() && pattern[i + 1] == '*') {
        ++i;
        while (i + 1 < pattern.size() && pattern[i + 1] == '*') ++i;  // "***" is "**"
        if (i + 1 < pattern.size() && pattern[i + 1] == '/') {
          ++i;
          tokens.push_back({Kind::kGlobStarSlash});
        } else {
          tokens.push_back({Kind::kGlobStar});
        }
      } else {
        tokens.push_back({Kind::kStar});
      }
    } else if (c == '?') {
      tokens.push_back({Kind::kAnyChar});
    } else if (c == '[') {
      Token token{Kind::kClass};
      size_t j = i + 1;
      if (j < pattern.size() && (pattern[j] == '!' || pattern[j] == '^')) {
        token.negated = true;
        ++j;
      }
      bool first = true;
      bool closed = false;
      for (; j < pattern.size(); ++j) {
        // A ']' right after the opening bracket is a member, as in shells.
        if (pattern[j] == ']' && !first) {
          closed = true;
          break;
        }
        first = false;
        unsigned char low = static_cast<unsigned char>(pattern[j]);
        unsigned char high = low;
        if (j + 2 < pattern.size() && pattern[j + 1] == '-' && pattern[j + 2] != ']') {
          high = static_cast<unsigned char>(pattern[j + 2]);
          j += 2;
        }
        token.ranges.emplace_back(low, high);
      }
      if (!closed) return false;
      tokens.push_back(std::move(token));
      i = j;
    } else {
      tokens.push_back({Kind::kLiteral, c});
    }
  }
  return true;
}

bool ClassMatches(const Token& token, char c) {
  if (c == '/') return false;
  bool in = false;
  for (auto [low, high] : token.ranges) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u >= low && u <= high) in = true;
  }
  return in != token.negated;
}

// Dynamic programming over (tokens consumed, characters consumed): no backtracking, so a
// pattern full of stars cannot take exponential time. Returns row[j] = "the pattern matches
// s[0, j)" for every j, which answers the parent-directory question in the same pass.
std::vector<uint8_t> MatchPrefixes(const std::vector<Token>& tokens, std::string_view s) {
  const size_t n = s.size();
  std::vector<uint8_t> row(n + 1, 0);  // row[j]: tokens so far match s[0, j)
  row[0] = 1;
  for (const Token& token : tokens) {
    std::vector<uint8_t> next(n + 1, 0);
    switch (token.kind) {
      case Kind::kStar:
        for (size_t j = 0; j <= n; ++j) {
          next[j] = row[j] || (j > 0 && next[j - 1] && s[j - 1] != '/');
        }
        break;
      case Kind::kGlobStar:
        for (size_t j = 0; j <= n; ++j) next[j] = row[j] || (j > 0 && next[j - 1]);
        break;
      case Kind::kGlobStarSlash: {
        // Zero directories, or any non-empty run of characters ending in '/'.
        bool reachable = false;  // row[k] is set for some k < j
        for (size_t j = 0; j <= n; ++j) {
          next[j] = row[j] || (reachable && j > 0 && s[j - 1] == '/');
          if (row[j]) reachable = true;
        }
        break;
      }
      case Kind::kAnyChar:
        for (size_t j = 1; j <= n; ++j) next[j] = row[j - 1] && s[j - 1] != '/';
        break;
      case Kind::kClass:
        for (size_t j = 1; j <= n; ++j) next[j] = row[j - 1] && ClassMatches(token, s[j - 1]);
        break;
      case Kind::kLiteral:
        for (size_t j = 1; j <= n; ++j) next[j] = row[j - 1] && s[j - 1] == token.literal;
        break;
    }
    row = std::move(next);
  }
  return row;
}

}  // namespace

absl::StatusOr<std::string> NormalizeRepoPath(std::string_view path) {
  if (path.empty()) return absl::InvalidArgumentError("empty path");
  if (path.find('\\') != std::string_view::npos) {
    return absl::InvalidArgumentError(
        Cat("path ", Quote(path), " uses '\\'; separate directories with '/'"));
  }
  if (path[0] == '/' || LooksLikeDriveLetter(path)) {
    return absl::InvalidArgumentError(
        Cat("path ", Quote(path), " is absolute; paths are relative to the repository root"));
  }
  std::vector<std::string_view> parts;
  for (std::string_view part : text::Split(path, '/')) {
    if (part.empty() || part == ".") continue;
    if (part == "..") {
      if (parts.empty()) {
        return absl::InvalidArgumentError(Cat("path ", Quote(path), " leaves the repository"));
      }
      parts.pop_back();
      continue;
    }
    parts.push_back(part);
  }
  if (parts.empty()) return std::string(".");
  return Join(parts, "/");
}

absl::StatusOr<std::string> NormalizePathPattern(std::string_view pattern) {
  std::string_view glob = pattern;
  const bool negated = !glob.empty() && glob[0] == '!';
  if (negated) glob.remove_prefix(1);
  while (glob.size() > 2 && glob.substr(0, 2) == "./") glob.remove_prefix(2);
  if (glob.empty()) return absl::InvalidArgumentError("empty path pattern");
  if (glob[0] == '/' || LooksLikeDriveLetter(glob)) {
    return absl::InvalidArgumentError(Cat(
        "pattern ", Quote(pattern), " is absolute; patterns are relative to the repository root"));
  }
  for (std::string_view part : text::Split(glob, '/')) {
    if (part == "..") {
      return absl::InvalidArgumentError(Cat(
          "pattern ", Quote(pattern), " uses \"..\"; patterns match paths inside the repository"));
    }
  }
  std::vector<Token> tokens;
  if (!Compile(glob, tokens)) {
    return absl::InvalidArgumentError(Cat("pattern ", Quote(pattern), " has an unclosed '['"));
  }
  return Cat(negated ? "!" : "", glob);
}

bool PathPatternMatches(std::string_view pattern, std::string_view path) {
  std::vector<Token> tokens;
  if (!Compile(pattern, tokens)) return false;
  std::vector<uint8_t> matched = MatchPrefixes(tokens, path);
  if (matched[path.size()]) return true;
  for (size_t j = 0; j < path.size(); ++j) {
    if (path[j] == '/' && matched[j]) return true;
  }
  return false;
}

bool PathFilterIncludes(std::span<const std::string> patterns, std::string_view path) {
  if (patterns.empty()) return true;
  bool included = false;
  for (const std::string& pattern : patterns) {
    std::string_view glob = pattern;
    bool negated = !glob.empty() && glob[0] == '!';
    if (negated) glob.remove_prefix(1);
    if (PathPatternMatches(glob, path)) included = !negated;
  }
  return included;
}

bool PathFilterIncludesAny(std::span<const std::string> patterns,
                           std::span<const std::string> changed_files) {
  if (patterns.empty()) return true;
  for (const std::string& file : changed_files) {
    if (PathFilterIncludes(patterns, file)) return true;
  }
  return false;
}

}  // namespace eph::config
