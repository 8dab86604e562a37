// Plain request/response types shared by the HTTP server, the API handlers and their tests.
// Deliberately independent of Boost.Beast so that handlers are testable without sockets.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace eph::server {

// Case-insensitive header map (HTTP header names are case-insensitive).
struct CaseInsensitiveLess {
  bool operator()(std::string_view a, std::string_view b) const;
};
using Headers = std::map<std::string, std::string, CaseInsensitiveLess>;

struct HttpRequest {
  std::string method;   // "GET", "POST", ...
  std::string target;   // raw request target, e.g. /api/v1/environments?project=x
  std::string path;     // decoded path without the query
  std::map<std::string, std::string> query;  // decoded query parameters (last one wins)
  Headers headers;
  std::string body;
  std::string remote_address;

  std::string Header(std::string_view name) const;
};

// Sink for streamed responses (server-sent events, followed logs). Write returns false once the
// client has gone or the server is shutting down; the producer must then return.
class StreamWriter {
 public:
  virtual ~StreamWriter() = default;
  virtual bool Write(std::string_view chunk) = 0;
  virtual bool Cancelled() const = 0;
};

struct HttpResponse {
  int status = 200;
  Headers headers;
  std::string body;
  // When set, the body is produced by this function after the headers are sent (chunked). It
  // runs on a thread of its own and may block; it must return once Write fails.
  std::function<void(StreamWriter&)> stream;

  void SetJson(int status_code, std::string json);
  void SetText(int status_code, std::string text, std::string content_type = "text/plain");
};

using Handler = std::function<void(const HttpRequest&, HttpResponse&)>;

// A request target split into its canonical path and its query. The server decides this once,
// and the auth check, the router and the handlers all see the same path: there is no second
// reading of the raw target anywhere.
struct RequestTarget {
  std::string path;                          // percent-decoded once, canonical
  std::map<std::string, std::string> query;  // decoded query parameters (last one wins)
};

inline constexpr size_t kMaxPathBytes = 4096;

// Only origin-form targets ("/a/b?q=1") are accepted. A path that is not canonical is refused
// with InvalidArgument, never rewritten into one that is: an empty segment ("//"; a single
// trailing "/" is allowed), a "." or ".." segment, a '\\', a NUL or other control character, a
// '%' that does not start a valid escape, an escape that decodes to '/', or a path longer than
// kMaxPathBytes.
absl::StatusOr<RequestTarget> ParseRequestTarget(std::string_view target);

// Percent-decoding for paths and query strings ('+' is a space only in queries).
std::string UrlDecode(std::string_view in, bool plus_is_space);
std::map<std::string, std::string> ParseQuery(std::string_view query);

}  // namespace eph::server
