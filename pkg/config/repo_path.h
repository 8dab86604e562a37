// Paths and path patterns in eph.yaml, which are always relative to the repository root.
//
// Eph reads eph.yaml and the files it names from a pull request's head commit, i.e. from code
// anyone who can open a pull request controls. A path that is absolute or climbs out with ".."
// could make Eph read files outside the checkout (host secrets, another project), so such paths
// are refused outright. Normalisation is purely lexical: "./k8s/../k8s/base" is "k8s/base", and
// symlinks are the checkout code's concern.
//
// Patterns (`triggers[].paths`) follow GitHub Actions' path filters:
//   *    any run of characters except '/'
//   **   any run of characters including '/'; "**/" also matches no directory at all
//   ?    one character except '/'
//   [..] one character from a set or range ("[a-z]"); "[!..]" or "[^..]" negates
// A pattern that matches a directory also matches everything below it ("services/api" matches
// "services/api/main.go"). A leading '!' excludes: a changed file counts when the last pattern
// that matches it is not negated. Matching runs in time proportional to pattern x path length.
//
// Thread-safety: pure functions.
#ifndef EPH_PKG_CONFIG_REPO_PATH_H_
#define EPH_PKG_CONFIG_REPO_PATH_H_

#include <span>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace eph::config {

// "./k8s//base/" -> "k8s/base"; "." for the repository root. InvalidArgument for an empty,
// absolute (also "C:\..." style) or escaping path, or one using '\' separators.
[[nodiscard]] absl::StatusOr<std::string> NormalizeRepoPath(std::string_view path);

// Checks one `triggers[].paths` entry (optionally '!'-prefixed) and returns it without leading
// "./" (changed-file paths never have one): balanced "[...]", relative, no ".." component.
[[nodiscard]] absl::StatusOr<std::string> NormalizePathPattern(std::string_view pattern);

// Whether a (non-negated) glob matches `path` or one of its parent directories.
bool PathPatternMatches(std::string_view pattern, std::string_view path);

// Applies a whole filter to one changed file: true when the last pattern matching it is not
// negated. An empty filter matches everything.
bool PathFilterIncludes(std::span<const std::string> patterns, std::string_view path);

// True when any of `changed_files` passes the filter; the question a trigger with `paths` asks.
bool PathFilterIncludesAny(std::span<const std::string> patterns,
                           std::span<const std::string> changed_files);

}  // namespace eph::config

#endif  // EPH_PKG_CONFIG_REPO_PATH_H_
