#include "pkg/config/source_text.h"

#include <algorithm>

namespace eph::config {
namespace {

constexpr std::string_view kByteOrderMark = "\xEF\xBB\xBF";

// Counts code points in `bytes`: every byte that is not a UTF-8 continuation byte starts one.
// Invalid UTF-8 never gets this far (source_checks rejects it), and even then the count stays
// within bounds.
int CountCodePoints(std::string_view bytes) {
  int count = 0;
  for (char c : bytes) {
    if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) ++count;
  }
  return count;
}

}  // namespace

SourceText::SourceText(std::string_view text) : text_(text) {
  if (text_.substr(0, kByteOrderMark.size()) == kByteOrderMark) {
    text_.remove_prefix(kByteOrderMark.size());
  }
  line_starts_.push_back(0);
  for (size_t i = 0; i < text_.size(); ++i) {
    const bool lone_cr = text_[i] == '\r' && (i + 1 >= text_.size() || text_[i + 1] != '\n');
    if (text_[i] == '\n' || lone_cr) line_starts_.push_back(i + 1);
  }
}

std::string_view SourceText::Line(int line0) const {
  if (line0 < 0 || line0 >= line_count()) return {};
  size_t start = line_starts_[static_cast<size_t>(line0)];
  size_t end =
      line0 + 1 < line_count() ? line_starts_[static_cast<size_t>(line0) + 1] : text_.size();
  std::string_view line = text_.substr(start, end - start);
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
  return line;
}

Position SourceText::FromOffset(size_t offset) const {
  offset = std::min(offset, text_.size());
  auto it = std::upper_bound(line_starts_.begin(), line_starts_.end(), offset);
  size_t line0 = static_cast<size_t>(it - line_starts_.begin()) - 1;
  std::string_view before = text_.substr(line_starts_[line0], offset - line_starts_[line0]);
  return Position{static_cast<int>(line0) + 1, CountCodePoints(before) + 1};
}

size_t SourceText::OffsetOfMark(int line0, int byte_column0) const {
  if (line0 < 0 || byte_column0 < 0 || line0 >= line_count()) return text_.size();
  size_t start = line_starts_[static_cast<size_t>(line0)];
  size_t line_length = Line(line0).size();
  return start + std::min(static_cast<size_t>(byte_column0), line_length);
}

Position SourceText::FromMark(int line0, int byte_column0) const {
  return FromOffset(OffsetOfMark(line0, byte_column0));
}

}  // namespace eph::config
