// String building for this module's messages, on std::string_view.
//
// Debian's abseil is built with ABSL_OPTION_USE_STD_STRING_VIEW 0, so absl::StrCat, StrJoin and
// StrSplit take absl::string_view, which std::string_view does not convert to. The module works
// in std::string_view throughout and uses these small equivalents instead of converting at every
// call. absl::string_view (e.g. absl::Status::message()) is accepted too.
//
// Thread-safety: pure functions.
#ifndef EPH_PKG_CONFIG_TEXT_H_
#define EPH_PKG_CONFIG_TEXT_H_

#include <concepts>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/string_view.h"

namespace eph::config::text {

inline void AppendPiece(std::string& out, std::string_view piece) { out.append(piece); }
inline void AppendPiece(std::string& out, const char* piece) { out.append(piece); }
inline void AppendPiece(std::string& out, const std::string& piece) { out.append(piece); }
#if !defined(ABSL_USES_STD_STRING_VIEW)
inline void AppendPiece(std::string& out, absl::string_view piece) {
  out.append(piece.data(), piece.size());
}
#endif
template <typename T>
requires std::integral<T> &&
    (!std::same_as<T, char>)&&(!std::same_as<T, bool>)void AppendPiece(std::string& out, T number) {
  out.append(std::to_string(number));
}

// Concatenates strings and integers: Cat("line ", 3, ": ", message).
template <typename... Pieces>
std::string Cat(const Pieces&... pieces) {
  std::string out;
  (AppendPiece(out, pieces), ...);
  return out;
}

template <typename... Pieces>
void Append(std::string& out, const Pieces&... pieces) {
  (AppendPiece(out, pieces), ...);
}

// Joins the elements of any range of string-like values.
template <typename Range>
std::string Join(const Range& range, std::string_view separator) {
  std::string out;
  bool first = true;
  for (const auto& element : range) {
    if (!first) out.append(separator);
    first = false;
    AppendPiece(out, element);
  }
  return out;
}

// Splits on every `separator`, keeping empty pieces. Views point into `s`.
std::vector<std::string_view> Split(std::string_view s, char separator);

// C-style escaping of quotes, backslashes and non-printable bytes, so that user text quoted in a
// message stays on one line and shows what is really there.
std::string Escape(std::string_view s);

}  // namespace eph::config::text

#endif  // EPH_PKG_CONFIG_TEXT_H_
