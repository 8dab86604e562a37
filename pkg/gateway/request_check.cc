#include "pkg/gateway/request_check.h"

#include <boost/beast/core/string.hpp>
#include <string_view>
#include <vector>

namespace eph::gateway {

namespace http = boost::beast::http;

namespace {

std::string_view View(boost::beast::string_view s) { return {s.data(), s.size()}; }

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool IsLabelChar(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'; }

char Lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

// ASCII case-insensitive equality. Not beast::iequals: Boost 1.74's reads one byte past the end
// of its arguments after a case difference (found by request_fuzz.cc), and a request target has
// no bytes after it.
bool IEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (Lower(a[i]) != Lower(b[i])) return false;
  }
  return true;
}

// uri-host [ ":" port ] (RFC 3986 reg-name, IPv4 or IP-literal): anything else (spaces, '/',
// '@' userinfo, controls) could make the backend see a different host than the gateway routed.
bool IsAuthority(std::string_view host) {
  for (const char c : host) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    std::string_view("-._~!$&'()*+,;=%:[]").find(c) != std::string_view::npos;
    if (!ok) return false;
  }
  return true;
}

// The authority without the scheme's default port ("a:80" is "a" for http).
std::string_view WithoutDefaultPort(std::string_view authority, std::string_view default_port) {
  const size_t colon = authority.rfind(':');
  if (colon != std::string_view::npos && colon + 1 + default_port.size() == authority.size() &&
      authority.substr(colon + 1) == default_port &&
      authority.find(']', colon) == std::string_view::npos) {
    authority.remove_suffix(default_port.size() + 1);
  }
  return authority;
}

absl::Status CheckFraming(const http::request_header<>& header) {
  const size_t content_lengths = header.count(http::field::content_length);
  const size_t transfer_encodings = header.count(http::field::transfer_encoding);
  if (content_lengths > 0 && transfer_encodings > 0) {
    return absl::InvalidArgumentError("both Transfer-Encoding and Content-Length");
  }
  if (content_lengths > 1) return absl::InvalidArgumentError("several Content-Length fields");
  if (content_lengths == 1) {
    const std::string_view value = View(header[http::field::content_length]);
    if (value.empty() || value.find_first_not_of("0123456789") != std::string_view::npos) {
      return absl::InvalidArgumentError("Content-Length is not one number");
    }
  }
  if (transfer_encodings == 0) return absl::OkStatus();
  if (header.version() < 11) {
    // RFC 9112 §6.1: an HTTP/1.0 recipient might not know chunked; the framing is faulty.
    return absl::InvalidArgumentError("Transfer-Encoding in an HTTP/1.0 request");
  }
  std::vector<std::string_view> codings;
  const auto [begin, end] = header.equal_range(http::field::transfer_encoding);
  for (auto field = begin; field != end; ++field) {
    std::string_view list = View(field->value());
    for (;;) {
      const size_t comma = list.find(',');
      codings.push_back(Trim(list.substr(0, comma)));
      if (comma == std::string_view::npos) break;
      list.remove_prefix(comma + 1);
    }
  }
  if (transfer_encodings == 1 && codings.size() == 1 && IEquals(codings[0], "chunked")) {
    return absl::OkStatus();
  }
  bool chunked_seen = false;
  bool unknown_seen = false;
  for (const std::string_view coding : codings) {
    if (IEquals(coding, "chunked")) {
      chunked_seen = true;
    } else if (!coding.empty()) {
      unknown_seen = true;
    }
  }
  // RFC 9112 §6.3: chunked anywhere but last leaves the body's length unknown.
  if (chunked_seen && !IEquals(codings.back(), "chunked")) {
    return absl::InvalidArgumentError("chunked is not the final transfer coding");
  }
  // RFC 9112 §6.1: a coding the gateway does not understand (it decodes none but chunked).
  if (unknown_seen) return absl::UnimplementedError("unsupported transfer coding");
  return absl::InvalidArgumentError("Transfer-Encoding is not a single `chunked`");
}

}  // namespace

absl::StatusOr<RequestRoute> CheckRequest(const http::request_header<>& header) {
  if (absl::Status framing = CheckFraming(header); !framing.ok()) return framing;

  const size_t hosts = header.count(http::field::host);
  if (hosts > 1) return absl::InvalidArgumentError("more than one Host field");
  if (hosts == 0 && header.version() >= 11) {
    return absl::InvalidArgumentError("no Host field in an HTTP/1.1 request");
  }
  RequestRoute route;
  route.host = std::string(View(header[http::field::host]));
  if (!IsAuthority(route.host)) return absl::InvalidArgumentError("Host is not host[:port]");

  const std::string_view target = View(header.target());
  if (target.find('#') != std::string_view::npos) {
    return absl::InvalidArgumentError("request target carries a fragment");
  }
  if (header.method() == http::verb::connect) {
    return absl::UnimplementedError("CONNECT: the gateway is not a forward proxy");
  }
  if (!target.empty() && target.front() == '/') {
    route.target = std::string(target);
    return route;
  }
  if (target == "*") {
    if (header.method() != http::verb::options) {
      return absl::InvalidArgumentError("asterisk-form target outside OPTIONS");
    }
    route.target = "*";
    return route;
  }
  std::string_view rest;
  std::string_view default_port;
  struct Scheme {
    std::string_view prefix;
    std::string_view default_port;
  };
  for (const Scheme scheme : {Scheme{"http://", "80"}, Scheme{"https://", "443"}}) {
    if (target.size() >= scheme.prefix.size() &&
        IEquals(target.substr(0, scheme.prefix.size()), scheme.prefix)) {
      rest = target.substr(scheme.prefix.size());
      default_port = scheme.default_port;
      break;
    }
  }
  if (rest.data() == nullptr) {
    // Authority-form (CONNECT only, refused above) or no form at all.
    return absl::InvalidArgumentError("request target is not origin-form or absolute-form");
  }
  const size_t path_start = rest.find_first_of("/?");
  const std::string_view authority = rest.substr(0, path_start);
  if (authority.empty() || authority.find('@') != std::string_view::npos ||
      !IsAuthority(authority)) {
    return absl::InvalidArgumentError("absolute-form target has no usable authority");
  }
  // A Host that names another authority: one hop might route by the target, another by Host.
  if (hosts == 1 && !IEquals(WithoutDefaultPort(route.host, default_port),
                             WithoutDefaultPort(authority, default_port))) {
    return absl::InvalidArgumentError("Host disagrees with the absolute-form target");
  }
  route.host = std::string(authority);
  route.host_replaced = true;
  const std::string_view path =
      path_start == std::string_view::npos ? std::string_view() : rest.substr(path_start);
  route.target = path.empty() || path.front() == '?' ? "/" + std::string(path) : std::string(path);
  return route;
}

std::optional<std::string> EnvironmentFromHost(std::string_view host,
                                               std::string_view base_domain) {
  if (host.empty() || host.front() == '[' || base_domain.empty()) return std::nullopt;
  if (const size_t colon = host.rfind(':'); colon != std::string_view::npos) {
    const std::string_view port = host.substr(colon + 1);
    if (port.empty() || port.size() > 5) return std::nullopt;
    for (char c : port) {
      if (c < '0' || c > '9') return std::nullopt;
    }
    host = host.substr(0, colon);
  }
  if (!host.empty() && host.back() == '.') host.remove_suffix(1);  // absolute form "a.b."
  if (host.size() < base_domain.size() + 2) return std::nullopt;
  const size_t dot = host.size() - base_domain.size() - 1;
  if (host[dot] != '.' || !IEquals(host.substr(dot + 1), base_domain)) return std::nullopt;
  std::string name;
  name.reserve(dot);
  for (char c : host.substr(0, dot)) {
    c = Lower(c);
    if (!IsLabelChar(c)) return std::nullopt;  // also rejects dots: one label only
    name.push_back(c);
  }
  if (name.size() > 63 || name.front() == '-' || name.back() == '-') return std::nullopt;
  return name;
}

unsigned HttpStatusFor(const absl::Status& status) {
  return status.code() == absl::StatusCode::kUnimplemented ? 501 : 400;
}

}  // namespace eph::gateway
