// EnvironmentNamer turns `environment.name_template` (default `{project}-{words}-{number}`)
// into an environment name such as `my-app-gentle-stream-42`.
//
// Contract: every name returned is a DNS-1123 label (lowercase a-z, 0-9 and '-', starting and
// ending with an alphanumeric) of at most kMaxNameLength characters, so that the Kubernetes
// namespace `eph-<name>` is itself a valid label of at most 63. Long project names are shortened
// first; a name is never one that `is_taken` reports as used. With `random_suffix` (the default)
// a base-32 suffix is appended, long enough that the name carries at least kMinRandomBits
// (with `{words}`, whose bits count, 10 characters; without, 13). Determinism comes from the
// injected Random: seed it in tests.
//
// Thread-safety: stateless apart from the Random passed in, which is itself thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "pkg/base/random.h"

namespace eph::names {

inline constexpr size_t kMaxNameLength = 59;  // 63 - strlen("eph-")
inline constexpr char kDefaultTemplate[] = "{project}-{words}-{number}";

struct NameInputs {
  std::string project;  // eph.yaml `name`
  int64_t pr_number = 0;
  std::string sha;      // head commit, may be empty
  std::string branch;   // head branch, may be empty
};

// Unguessable by default (issue 16): a host next to a public PR number must not be found by
// trying names.
inline constexpr double kMinRandomBits = 64;

struct NameOptions {
  std::string name_template = kDefaultTemplate;
  bool random_suffix = true;
  int max_attempts = 16;  // fresh {words} picks before falling back to a random suffix
};

// Bits of unguessability that `{words}` contributes (log2 of adjectives x nouns).
double WordsEntropyBits();

// Lowercases and maps everything outside [a-z0-9] to '-', collapsing runs and trimming the ends.
std::string ToDnsLabelPart(std::string_view in);
bool IsDnsLabel(std::string_view s, size_t max_length = 63);

// GitHub's limits on the parts of "owner/repo": what an API client may name as a project.
inline constexpr size_t kMaxOwnerLength = 39;
inline constexpr size_t kMaxRepoLength = 100;

// True for "owner/repo": one '/', each side non-empty, within GitHub's lengths, and only ASCII
// letters, digits, '_', '.' and '-'. Plain code in linear time: this sees API input, and a
// backtracking pattern on a long string runs out of stack.
bool IsRepository(std::string_view project);

// InvalidArgument if the template has an unknown variable or renders to nothing usable;
// ResourceExhausted if every attempt collided (only possible without {words} or a suffix).
absl::StatusOr<std::string> MakeName(const NameInputs& in, const NameOptions& options,
                                     Random& random,
                                     const std::function<bool(const std::string&)>& is_taken);

}  // namespace eph::names
