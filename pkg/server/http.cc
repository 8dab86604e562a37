#include "pkg/server/http.h"

#include <strings.h>

#include "absl/strings/str_cat.h"

namespace eph::server {

bool CaseInsensitiveLess::operator()(std::string_view a, std::string_view b) const {
  const size_t n = std::min(a.size(), b.size());
  const int c = strncasecmp(a.data(), b.data(), n);
  return c != 0 ? c < 0 : a.size() < b.size();
}

std::string HttpRequest::Header(std::string_view name) const {
  auto it = headers.find(std::string(name));
  return it == headers.end() ? "" : it->second;
}

void HttpResponse::SetJson(int status_code, std::string json) {
  status = status_code;
  headers["Content-Type"] = "application/json";
  body = std::move(json);
}

void HttpResponse::SetText(int status_code, std::string text, std::string content_type) {
  status = status_code;
  headers["Content-Type"] = std::move(content_type);
  body = std::move(text);
}

namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

absl::StatusOr<RequestTarget> ParseRequestTarget(std::string_view target) {
  const size_t q = target.find('?');
  const std::string_view raw = target.substr(0, q);
  if (raw.empty() || raw.front() != '/') {
    return absl::InvalidArgumentError("the request target must be a path starting with '/'");
  }
  if (raw.size() > kMaxPathBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("the request path is longer than ", kMaxPathBytes, " bytes"));
  }
  RequestTarget out;
  out.path.reserve(raw.size());
  for (size_t i = 0; i < raw.size(); ++i) {
    char c = raw[i];
    if (c == '%') {
      const int hi = i + 2 < raw.size() ? HexValue(raw[i + 1]) : -1;
      const int lo = hi >= 0 ? HexValue(raw[i + 2]) : -1;
      if (lo < 0) return absl::InvalidArgumentError("the request path has a malformed %-escape");
      c = static_cast<char>(hi * 16 + lo);
      if (c == '/') {
        return absl::InvalidArgumentError("the request path has an escaped '/' (%2F)");
      }
      i += 2;
    }
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f || c == '\\') {
      return absl::InvalidArgumentError("the request path has a control character or '\\'");
    }
    out.path.push_back(c);
  }
  // Segments: none empty but a trailing one, none "." or "..".
  for (size_t start = 1; start <= out.path.size();) {
    size_t end = out.path.find('/', start);
    if (end == std::string::npos) end = out.path.size();
    const std::string_view segment = std::string_view(out.path).substr(start, end - start);
    if (segment.empty() && end != out.path.size()) {
      return absl::InvalidArgumentError("the request path has an empty segment (\"//\")");
    }
    if (segment == "." || segment == "..") {
      return absl::InvalidArgumentError("the request path has a \".\" or \"..\" segment");
    }
    start = end + 1;
  }
  if (q != std::string_view::npos) out.query = ParseQuery(target.substr(q + 1));
  return out;
}

std::string UrlDecode(std::string_view in, bool plus_is_space) {
  std::string out;
  out.reserve(in.size());
  const auto hex = HexValue;
  for (size_t i = 0; i < in.size(); ++i) {
    const char c = in[i];
    if (c == '%' && i + 2 < in.size() && hex(in[i + 1]) >= 0 && hex(in[i + 2]) >= 0) {
      out.push_back(static_cast<char>(hex(in[i + 1]) * 16 + hex(in[i + 2])));
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out.push_back(' ');
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::map<std::string, std::string> ParseQuery(std::string_view query) {
  std::map<std::string, std::string> out;
  while (!query.empty()) {
    const size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    if (!pair.empty()) {
      const size_t eq = pair.find('=');
      if (eq == std::string_view::npos) {
        out[UrlDecode(pair, true)] = "";
      } else {
        out[UrlDecode(pair.substr(0, eq), true)] = UrlDecode(pair.substr(eq + 1), true);
      }
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return out;
}

}  // namespace eph::server
