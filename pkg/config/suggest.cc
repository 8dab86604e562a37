#include "pkg/config/suggest.h"

#include <algorithm>
#include <string>
#include <vector>

namespace eph::config {
namespace {

// Keys are short; anything longer is not a typo of a key and would only cost quadratic time.
constexpr size_t kMaxComparedLength = 64;

std::string Normalise(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c == '-') c = '_';
    out.push_back(c);
  }
  return out;
}

}  // namespace

size_t EditDistance(std::string_view a_raw, std::string_view b_raw) {
  const std::string a = Normalise(a_raw);
  const std::string b = Normalise(b_raw);
  const size_t n = a.size();
  const size_t m = b.size();
  // Three rows suffice: transpositions look two rows back.
  std::vector<size_t> two_back(m + 1), prev(m + 1), cur(m + 1);
  for (size_t j = 0; j <= m; ++j) prev[j] = j;
  for (size_t i = 1; i <= n; ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= m; ++j) {
      size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        cur[j] = std::min(cur[j], two_back[j - 2] + 1);
      }
    }
    std::swap(two_back, prev);
    std::swap(prev, cur);
  }
  return prev[m];
}

std::optional<std::string_view> ClosestMatch(std::string_view word,
                                             std::span<const std::string_view> candidates) {
  if (word.empty() || word.size() > kMaxComparedLength) return std::nullopt;
  std::optional<std::string_view> best;
  size_t best_distance = 0;
  for (std::string_view candidate : candidates) {
    size_t distance = EditDistance(word, candidate);
    // One edit per three characters, at least one and at most three: `tll`->`ttl` and
    // `idle_timout`->`idle_timeout` qualify, `name`->`ttl` does not.
    size_t allowed = std::clamp<size_t>(candidate.size() / 3, 1, 3);
    if (distance > allowed) continue;
    if (!best || distance < best_distance) {
      best = candidate;
      best_distance = distance;
    }
  }
  if (best) return best;
  // An abbreviation is far from its full form by edit distance but obvious to a reader:
  // `{pr}` for `{pr_number}`, `wait` for `wait_for_checks`.
  // A whole leading component (`pr` of `pr_number`) beats a mere prefix (`pr` of `project`).
  const std::string prefix = Normalise(word);
  if (prefix.size() < 2) return std::nullopt;
  for (std::string_view candidate : candidates) {
    if (Normalise(candidate).starts_with(prefix + "_")) return candidate;
  }
  for (std::string_view candidate : candidates) {
    if (Normalise(candidate).starts_with(prefix)) return candidate;
  }
  return std::nullopt;
}

}  // namespace eph::config
