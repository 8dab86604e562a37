#include "pkg/config/source_checks.h"

#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "pkg/config/text.h"

namespace eph::config {
namespace {

using text::Append;
using text::Cat;
using text::Escape;
using text::Join;

// Length of the well-formed UTF-8 sequence starting at text[i] (storing its code point), or 0.
// Rejects overlong forms, surrogates and values above U+10FFFF, like a strict decoder must.
size_t DecodeUtf8(std::string_view text, size_t i, char32_t& code_point) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
  unsigned char lead = byte(i);
  if (lead < 0x80) {
    code_point = lead;
    return 1;
  }
  size_t length;
  char32_t min;
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
    min = 0x80;
    code_point = lead & 0x1F;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
    min = 0x800;
    code_point = lead & 0x0F;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
    min = 0x10000;
    code_point = lead & 0x07;
  } else {
    return 0;
  }
  if (i + length > text.size()) return 0;
  for (size_t k = 1; k < length; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
    code_point = (code_point << 6) | (byte(i + k) & 0x3F);
  }
  if (code_point < min || code_point > 0x10FFFF) return 0;
  if (code_point >= 0xD800 && code_point <= 0xDFFF) return 0;
  return length;
}

// YAML's printable set, minus what this checker handles elsewhere: tab, LF and CR are allowed.
bool IsForbiddenCodePoint(char32_t c) {
  if (c < 0x20) return c != '\t' && c != '\n' && c != '\r';
  if (c == 0x7F) return true;
  if (c >= 0x80 && c <= 0x9F) return c != 0x85;
  return c == 0xFFFE || c == 0xFFFF;
}

bool LooksLikeUtf16(std::string_view text) {
  if (text.size() >= 2) {
    unsigned char a = static_cast<unsigned char>(text[0]);
    unsigned char b = static_cast<unsigned char>(text[1]);
    if ((a == 0xFF && b == 0xFE) || (a == 0xFE && b == 0xFF)) return true;
    // ASCII text in UTF-16 puts a NUL next to every character.
    if ((a == 0 && b != 0) || (a != 0 && b == 0)) return true;
  }
  return false;
}

// Stops at the first encoding problem: after one bad byte the rest of a binary file is noise.
bool CheckEncoding(const SourceText& source, DiagnosticCollector& diagnostics) {
  std::string_view text = source.text();
  for (size_t i = 0; i < text.size();) {
    char32_t code_point = 0;
    size_t length = DecodeUtf8(text, i, code_point);
    if (length == 0) {
      if (i == 0 && LooksLikeUtf16(text)) {
        diagnostics.AddAtOffset(i, "file looks like UTF-16; eph.yaml must be saved as UTF-8");
      } else {
        diagnostics.AddAtOffset(
            i, absl::StrFormat("file is not valid UTF-8 (byte 0x%02X); eph.yaml must be UTF-8 "
                               "text, is this a binary file?",
                               static_cast<unsigned char>(text[i])));
      }
      return false;
    }
    if (IsForbiddenCodePoint(code_point)) {
      if (i <= 1 && LooksLikeUtf16(text)) {
        diagnostics.AddAtOffset(0, "file looks like UTF-16; eph.yaml must be saved as UTF-8");
      } else if (code_point == 0) {
        diagnostics.AddAtOffset(i, "file contains a NUL byte; is this a binary file?");
      } else {
        diagnostics.AddAtOffset(i,
                                absl::StrFormat("control character U+%04X is not allowed in YAML",
                                                static_cast<uint32_t>(code_point)));
      }
      return false;
    }
    i += length;
  }
  return true;
}

bool IsBlank(char c) { return c == ' ' || c == '\t'; }

// True when what follows position `i` on the line is only blanks or a comment.
bool RestIsEmpty(std::string_view line, size_t i) {
  while (i < line.size() && IsBlank(line[i])) ++i;
  return i == line.size() || line[i] == '#';
}

// Walks the text line by line with just enough of YAML's lexical structure (quotes, comments,
// flow brackets, block scalars, block indicators) to find tabs used as indentation and to bound
// the nesting depth.
class StructureScanner {
 public:
  StructureScanner(const SourceText& source, DiagnosticCollector& diagnostics)
      : source_(source), diagnostics_(diagnostics) {}

  // Returns false if a problem was found.
  bool Run() {
    for (int line0 = 0; line0 < source_.line_count() && !too_deep_; ++line0) {
      ScanLine(line0);
    }
    return ok_;
  }

 private:
  struct Level {
    size_t column;
    int depth;
  };

  size_t OffsetOf(int line0, size_t column) const {
    return source_.OffsetOfMark(line0, 0) + column;
  }

  void TooDeep(int line0, size_t column) {
    diagnostics_.AddAtOffset(
        OffsetOf(line0, column),
        Cat("nesting is deeper than ", kMaxNestingDepth,
            " levels; an eph.yaml needs only a few (is this file generated?)"));
    too_deep_ = true;
    ok_ = false;
  }

  void ScanLine(int line0) {
    std::string_view line = source_.Line(line0);
    size_t i = 0;
    if (quote_ != 0) {
      // Continuation of a multi-line quoted scalar: content, whatever its leading whitespace.
      i = SkipQuoted(line, 0);
      if (quote_ != 0) return;
    } else if (block_scalar_parent_ >= 0) {
      size_t spaces = 0;
      while (spaces < line.size() && line[spaces] == ' ') ++spaces;
      bool blank = RestIsEmpty(line, 0) && line.find('#') == std::string_view::npos;
      if (blank || static_cast<long>(spaces) > block_scalar_parent_) return;  // scalar content
      block_scalar_parent_ = -1;
    }

    if (i == 0) {
      size_t content = 0;
      while (content < line.size() && IsBlank(line[content])) ++content;
      if (content == line.size() || line[content] == '#') return;  // blank or comment line
      if (flow_depth_ == 0) {
        size_t tab = line.substr(0, content).find('\t');
        if (tab != std::string_view::npos) {
          diagnostics_.AddAtOffset(
              OffsetOf(line0, tab),
              "tab character in indentation; YAML indentation must use spaces");
          ok_ = false;
          return;  // the line's structure is unknowable; keep looking for more tabs
        }
        i = StartBlockLine(line0, line, content);
        if (too_deep_) return;
      } else {
        i = content;
      }
    }
    ScanRest(line0, line, i);
  }

  // Tracks block nesting for a line whose content starts at `content`: indentation opens or
  // closes levels, and each compact indicator ("- ", "? ", ": ") opens one more on the same line.
  size_t StartBlockLine(int line0, std::string_view line, size_t content) {
    while (!levels_.empty() && levels_.back().column >= content) levels_.pop_back();
    int depth = (levels_.empty() ? 0 : levels_.back().depth) + 1;
    levels_.push_back({content, depth});
    size_t i = content;
    while (i < line.size() && (line[i] == '-' || line[i] == '?' || line[i] == ':') &&
           (i + 1 == line.size() || IsBlank(line[i + 1]))) {
      ++i;
      while (i < line.size() && IsBlank(line[i])) ++i;
      ++depth;
      if (depth > kMaxNestingDepth) {
        TooDeep(line0, i == line.size() ? i - 1 : i);
        return i;
      }
      levels_.push_back({i, depth});
    }
    if (depth > kMaxNestingDepth) TooDeep(line0, content);
    line_depth_ = depth;
    return i;
  }

  // Skips a quoted scalar from `i` (just past the opening quote, or the line start when
  // continuing one). Returns the index after the closing quote, or line.size() if still open.
  size_t SkipQuoted(std::string_view line, size_t i) {
    for (; i < line.size(); ++i) {
      if (quote_ == '"' && line[i] == '\\') {
        ++i;
        continue;
      }
      if (line[i] == quote_) {
        if (quote_ == '\'' && i + 1 < line.size() && line[i + 1] == '\'') {
          ++i;  // '' is an escaped quote inside single quotes
          continue;
        }
        quote_ = 0;
        return i + 1;
      }
    }
    return line.size();
  }

  void ScanRest(int line0, std::string_view line, size_t i) {
    for (; i < line.size() && quote_ == 0; ++i) {
      char c = line[i];
      bool token_start = i == 0 || IsBlank(line[i - 1]) || line[i - 1] == '[' ||
                         line[i - 1] == '{' || line[i - 1] == ',';
      if (c == '#' && (i == 0 || IsBlank(line[i - 1]))) return;
      if ((c == '"' || c == '\'') && token_start) {
        quote_ = c;
        i = SkipQuoted(line, i + 1) - 1;
        continue;
      }
      if (c == '[' || c == '{') {
        ++flow_depth_;
        if (line_depth_ + flow_depth_ > kMaxNestingDepth) {
          TooDeep(line0, i);
          return;
        }
      } else if (c == ']' || c == '}') {
        if (flow_depth_ > 0) --flow_depth_;
      } else if ((c == '|' || c == '>') && flow_depth_ == 0 && token_start) {
        size_t j = i + 1;
        while (j < line.size() &&
               (line[j] == '+' || line[j] == '-' || (line[j] >= '0' && line[j] <= '9'))) {
          ++j;
        }
        if (RestIsEmpty(line, j)) {
          size_t indent = 0;
          while (indent < line.size() && line[indent] == ' ') ++indent;
          block_scalar_parent_ = static_cast<long>(indent);
          return;
        }
      }
    }
  }

  const SourceText& source_;
  DiagnosticCollector& diagnostics_;
  std::vector<Level> levels_;
  int line_depth_ = 0;             // block depth of the last line that started in block context
  int flow_depth_ = 0;             // open '[' and '{'
  char quote_ = 0;                 // open quote character, if inside a quoted scalar
  long block_scalar_parent_ = -1;  // indentation of the line that opened a block scalar
  bool too_deep_ = false;
  bool ok_ = true;
};

}  // namespace

bool CheckSourceText(const SourceText& source, DiagnosticCollector& diagnostics) {
  if (source.text().size() > kMaxConfigBytes) {
    diagnostics.AddAtOffset(
        0, Cat("file is ", source.text().size(), " bytes; eph.yaml may be at most ",
               kMaxConfigBytes, " bytes (1 MiB)"));
    return false;
  }
  if (!CheckEncoding(source, diagnostics)) return false;
  return StructureScanner(source, diagnostics).Run();
}

}  // namespace eph::config
