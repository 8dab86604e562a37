// "Did you mean ...?" suggestions for misspelt keys, template variables and enum values.
//
// Distance is optimal-string-alignment (Levenshtein plus adjacent transpositions) computed on
// lower-cased text with '-' read as '_', so `idle-timeout`, `newtag` and `tll` all find their
// intended spelling. A candidate is only suggested when it is close relative to its length;
// suggesting `ttl` for `name` would mislead more than help. Failing that, a candidate that the
// word abbreviates (`pr` -> `pr_number`) is suggested.
//
// Thread-safety: pure functions.
#ifndef EPH_PKG_CONFIG_SUGGEST_H_
#define EPH_PKG_CONFIG_SUGGEST_H_

#include <optional>
#include <span>
#include <string_view>

namespace eph::config {

// Optimal-string-alignment distance between the normalised forms of `a` and `b`.
size_t EditDistance(std::string_view a, std::string_view b);

// The candidate closest to `word`, if one is close enough to be a plausible typo, else the first
// candidate starting with `word` (at least two characters). Ties go to the earlier candidate, so
// callers list candidates in order of likelihood.
std::optional<std::string_view> ClosestMatch(std::string_view word,
                                             std::span<const std::string_view> candidates);

}  // namespace eph::config

#endif  // EPH_PKG_CONFIG_SUGGEST_H_
