#include "pkg/config/text.h"

#include <cstdio>

namespace eph::config::text {

std::vector<std::string_view> Split(std::string_view s, char separator) {
  std::vector<std::string_view> pieces;
  size_t start = 0;
  while (true) {
    size_t end = s.find(separator, start);
    if (end == std::string_view::npos) {
      pieces.push_back(s.substr(start));
      return pieces;
    }
    pieces.push_back(s.substr(start, end - start));
    start = end + 1;
  }
}

std::string Escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    unsigned char u = static_cast<unsigned char>(c);
    switch (c) {
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      default:
        // Bytes from 0x80 up are UTF-8, already checked to be valid: show them as they are.
        if (u < 0x20 || u == 0x7F) {
          char buffer[5];
          std::snprintf(buffer, sizeof(buffer), "\\x%02x", u);
          out += buffer;
        } else {
          out += c;
        }
    }
  }
  return out;
}

}  // namespace eph::config::text
