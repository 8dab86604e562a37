// The text of an eph.yaml as the parser sees it, with a line table for turning positions into
// the 1-based line and code-point column users see.
//
// yaml-cpp reports 0-based lines and byte columns; editors count characters. SourceText converts
// between the two and is also what the pre-parse checks (source_checks.h) scan. Line breaks are
// "\n", "\r\n" or a lone "\r", the same rule yaml-cpp applies, so both sides agree on line
// numbers. A leading UTF-8 byte-order mark is dropped, as yaml-cpp does.
//
// Thread-safety: immutable after construction; const methods are safe from any thread.
#ifndef EPH_PKG_CONFIG_SOURCE_TEXT_H_
#define EPH_PKG_CONFIG_SOURCE_TEXT_H_

#include <cstddef>
#include <string_view>
#include <vector>

namespace eph::config {

struct Position {
  int line = 1;    // 1-based
  int column = 1;  // 1-based, in code points
};

class SourceText {
 public:
  // `text` must outlive this object.
  explicit SourceText(std::string_view text);

  // The text without its byte-order mark.
  std::string_view text() const { return text_; }

  int line_count() const { return static_cast<int>(line_starts_.size()); }

  // Line `line0` (0-based) without its line break; empty if out of range.
  std::string_view Line(int line0) const;

  // Byte offset into text() -> position. Offsets past the end clamp to the end.
  Position FromOffset(size_t offset) const;

  // yaml-cpp mark (0-based line, 0-based byte column) -> position. Negative marks (yaml-cpp's
  // "no position") and marks past the end map to the end of the text.
  Position FromMark(int line0, int byte_column0) const;

  // Byte offset of a yaml-cpp mark, clamped to the text.
  size_t OffsetOfMark(int line0, int byte_column0) const;

 private:
  std::string_view text_;
  std::vector<size_t> line_starts_;  // byte offset of each line's first byte
};

}  // namespace eph::config

#endif  // EPH_PKG_CONFIG_SOURCE_TEXT_H_
