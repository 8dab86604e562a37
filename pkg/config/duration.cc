#include "pkg/config/duration.h"

#include <cstdint>
#include <limits>
#include <optional>

#include "absl/status/status.h"
#include "absl/strings/str_format.h"
#include "pkg/config/text.h"

namespace eph::config {
namespace {

using text::Append;
using text::Cat;
using text::Escape;
using text::Join;

constexpr uint64_t kMaxNanos = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
constexpr std::string_view kUnitList = "ns, us, ms, s, m, h, d";

struct Unit {
  std::string_view name;
  uint64_t nanos;
};

constexpr Unit kUnits[] = {
    {"ns", 1},
    {"us", 1'000},
    {"\xC2\xB5s", 1'000},  // U+00B5 MICRO SIGN
    {"\xCE\xBCs", 1'000},  // U+03BC GREEK SMALL LETTER MU
    {"ms", 1'000'000},
    {"s", 1'000'000'000},
    {"m", 60ULL * 1'000'000'000},
    {"h", 3'600ULL * 1'000'000'000},
    {"d", 86'400ULL * 1'000'000'000},
};

std::optional<uint64_t> UnitNanos(std::string_view name) {
  for (const Unit& unit : kUnits) {
    if (unit.name == name) return unit.nanos;
  }
  return std::nullopt;
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// Quotes user text for a message; control bytes are escaped so a message stays one line.
std::string Quote(std::string_view text) {
  constexpr size_t kMaxShown = 40;
  std::string shown = Escape(text.substr(0, kMaxShown));
  if (text.size() > kMaxShown) shown += "...";
  return Cat("\"", shown, "\"");
}

absl::Status Invalid(std::string_view text, std::string_view why) {
  return absl::InvalidArgumentError(Cat("invalid duration ", Quote(text), ": ", why));
}

}  // namespace

absl::StatusOr<absl::Duration> ParseDuration(std::string_view text) {
  if (text.empty()) {
    return absl::InvalidArgumentError(
        "invalid duration \"\": empty (write e.g. 90s, 30m, 4h or 7d)");
  }
  if (text[0] == '-') return Invalid(text, "durations cannot be negative");
  if (text[0] == '+') return Invalid(text, "durations take no sign");
  if (text.find_first_of(" \t\n\r") != std::string_view::npos) {
    return Invalid(text, "spaces are not allowed (write e.g. 1h30m)");
  }
  if (text == "0") return absl::ZeroDuration();

  std::string_view rest = text;
  uint64_t total = 0;
  const auto too_large = [&] {
    return Invalid(text, "too large (at most 2562047h, about 292 years)");
  };
  while (!rest.empty()) {
    // Integer part. Accumulating past kMaxNanos means overflow whatever the unit.
    uint64_t whole = 0;
    size_t i = 0;
    bool whole_overflow = false;
    for (; i < rest.size() && IsDigit(rest[i]); ++i) {
      uint64_t digit = static_cast<uint64_t>(rest[i] - '0');
      if (whole > (kMaxNanos - digit) / 10) whole_overflow = true;
      if (!whole_overflow) whole = whole * 10 + digit;
    }
    const bool has_whole = i > 0;
    // Fraction: keep as many digits as fit exactly; the rest cannot matter at ns precision.
    uint64_t fraction = 0;
    uint64_t scale = 1;
    bool has_fraction = false;
    if (i < rest.size() && rest[i] == '.') {
      ++i;
      for (; i < rest.size() && IsDigit(rest[i]); ++i) {
        has_fraction = true;
        if (scale <= std::numeric_limits<uint64_t>::max() / 100) {
          fraction = fraction * 10 + static_cast<uint64_t>(rest[i] - '0');
          scale *= 10;
        }
      }
    }
    if (!has_whole && !has_fraction) {
      if (i > 0) return Invalid(text, "a number needs digits around the '.'");
      return Invalid(text, Cat("expected a number at ", Quote(rest)));
    }
    rest.remove_prefix(i);

    size_t unit_length = 0;
    while (unit_length < rest.size() && !IsDigit(rest[unit_length]) && rest[unit_length] != '.') {
      ++unit_length;
    }
    std::string_view unit_name = rest.substr(0, unit_length);
    rest.remove_prefix(unit_length);
    if (unit_name.empty()) {
      return Invalid(text, "missing unit (write e.g. 90s, 30m, 4h or 7d)");
    }
    std::optional<uint64_t> unit = UnitNanos(unit_name);
    if (!unit) {
      return Invalid(text,
                     Cat("unknown unit ", Quote(unit_name), " (valid units: ", kUnitList, ")"));
    }
    if (whole_overflow || whole > kMaxNanos / *unit) return too_large();
    uint64_t nanos = whole * *unit;
    if (fraction > 0) {
      // long double keeps 64 bits of mantissa: exact enough for every representable fraction.
      long double part = static_cast<long double>(fraction) *
                         (static_cast<long double>(*unit) / static_cast<long double>(scale));
      uint64_t add = static_cast<uint64_t>(part);
      if (add > kMaxNanos - nanos) return too_large();
      nanos += add;
    }
    if (nanos > kMaxNanos - total) return too_large();
    total += nanos;
  }
  return absl::Nanoseconds(static_cast<int64_t>(total));
}

std::string DurationString(absl::Duration d) {
  if (d == absl::InfiniteDuration()) return "inf";
  if (d == -absl::InfiniteDuration()) return "-inf";
  if (d < absl::ZeroDuration()) return Cat("-", DurationString(-d));
  if (d == absl::ZeroDuration()) return "0s";
  struct Part {
    absl::Duration unit;
    std::string_view name;
  };
  static constexpr Part kParts[] = {
      {absl::Hours(1), "h"},         {absl::Minutes(1), "m"},       {absl::Seconds(1), "s"},
      {absl::Milliseconds(1), "ms"}, {absl::Microseconds(1), "us"}, {absl::Nanoseconds(1), "ns"},
  };
  std::string out;
  absl::Duration rest = d;
  for (const Part& part : kParts) {
    int64_t count = absl::IDivDuration(rest, part.unit, &rest);
    if (count > 0) Append(out, count, part.name);
  }
  // Below one nanosecond: nothing a user can write back, so show the closest.
  if (out.empty()) out = "0s";
  return out;
}

}  // namespace eph::config
