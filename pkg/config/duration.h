// Durations as users write them in eph.yaml (`ttl: 72h`) and on the command line
// (`eph extend NAME --by 24h`).
//
// Syntax is Go's time.ParseDuration plus a day unit: a sequence of decimal numbers, each with
// an optional fraction and a unit, e.g. "90s", "1h30m", "1.5h", "500ms", "7d". Units: ns, us
// (also µs), ms, s, m, h, d (24h). A bare "0" is zero. Unlike Go, signs are rejected: a negative
// TTL or extension has no meaning, and "+" is more likely a typo than intent. Values must fit in
// a signed 64-bit count of nanoseconds (about 292 years), as in Go.
//
// Thread-safety: pure functions.
#ifndef EPH_PKG_CONFIG_DURATION_H_
#define EPH_PKG_CONFIG_DURATION_H_

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace eph::config {

// Returns InvalidArgument with a message that quotes `text` and says what was expected, ready
// to show to a user (e.g. `invalid duration "4hr": unknown unit "hr" (valid units: ...)`).
[[nodiscard]] absl::StatusOr<absl::Duration> ParseDuration(std::string_view text);

// Shortest form in h, m, s, ms, us, ns with zero components left out: "72h", "1h30m",
// "1s500ms", "0s". Negative values get a leading '-', infinite ones are "inf"/"-inf". Days are
// not used, so a configured "72h" reads back as written. For any non-negative finite d with
// whole nanoseconds, ParseDuration(DurationString(d)) == d. (Not named FormatDuration: with an
// absl::Duration argument, argument-dependent lookup would make every unqualified call
// ambiguous with absl::FormatDuration.)
std::string DurationString(absl::Duration d);

}  // namespace eph::config

#endif  // EPH_PKG_CONFIG_DURATION_H_
