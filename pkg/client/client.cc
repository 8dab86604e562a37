#include "pkg/client/client.h"

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "pkg/http/http_client.h"
#include "pkg/http/status_map.h"

namespace eph::client {
namespace {

// The error a server answered with: {"error":{"code","message"}} as ephd sends it.
struct ServerError {
  bool from_ephd = false;  // the body has ephd's error shape
  std::string code;
  std::string message;
};

ServerError ParseServerError(long status, const std::string& body) {
  ServerError out;
  out.message = body;
  auto j = nlohmann::json::parse(body, nullptr, false);
  if (!j.is_discarded() && j.is_object() && j.contains("error") && j["error"].is_object()) {
    const nlohmann::json& e = j["error"];
    if (e.contains("code") && e["code"].is_string() && e.contains("message") &&
        e["message"].is_string()) {
      out.from_ephd = true;
      out.code = e["code"].get<std::string>();
      out.message = e["message"].get<std::string>();
    }
  }
  if (out.message.empty()) out.message = absl::StrCat("HTTP ", status);
  // An HTML error page or the like: one short line is enough to recognise it.
  if (!out.from_ephd && out.message.size() > 80) out.message = out.message.substr(0, 80) + "...";
  for (char& c : out.message) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return out;
}

// An error answer, by the one mapping with ephd's overrides: ephd's own error code wins; a 404
// that is not ephd's "no such thing" means the address leads somewhere else (a wrong path in
// EPH_SERVER, or another server on that port).
absl::Status FromHttp(const std::string& server, long status, const std::string& body) {
  const ServerError error = ParseServerError(status, body);
  const std::string& message = error.message;
  const absl::Status st = http::ErrorFor(
      http::Api::kEphd, {.status = status, .reason = error.code, .message = message}, message);
  if (status == 404 && absl::IsUnavailable(st)) {
    return absl::UnavailableError(
        absl::StrCat(server, " does not point at an ephd API (it answered 404: ", message,
                     "); set --server or EPH_SERVER to ephd's address, e.g. "
                     "http://127.0.0.1:8080"));
  }
  if (absl::IsUnauthenticated(st)) {
    return absl::UnauthenticatedError(
        absl::StrCat(message, " (set EPH_TOKEN to a valid API token)"));
  }
  const std::string plain = absl::StrCat("HTTP ", status);
  if (error.from_ephd || message == plain) return st;
  return absl::Status(st.code(), absl::StrCat(plain, ": ", message));
}

absl::Status Unreachable(const std::string& server, const absl::Status& transport) {
  return absl::UnavailableError(absl::StrCat("cannot reach ephd at ", server, ": ",
                                             transport.message(),
                                             " (is it running? set --server or EPH_SERVER)"));
}

std::string UrlOf(const std::string& server, const std::string& path) {
  std::string url = server;
  while (!url.empty() && url.back() == '/') url.pop_back();
  return url + path;
}

}  // namespace

std::string EscapePathSegment(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      static constexpr char kHex[] = "0123456789ABCDEF";
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    }
  }
  return out;
}

absl::StatusOr<std::string> ApiClient::Call(const std::string& method, const std::string& path,
                                            const std::string* body) {
  http::Request request{.method = method,
                        .url = UrlOf(options_.server, path),
                        .headers = {"Accept: application/json"},
                        .timeout = std::chrono::milliseconds(options_.timeout_ms)};
  if (body != nullptr) {
    request.body = *body;
    request.headers.push_back("Content-Type: application/json");
  }
  if (!options_.token.empty()) request.headers.push_back("Authorization: Bearer " + options_.token);
  absl::StatusOr<http::Response> answer = http::Perform(request);
  if (!answer.ok()) return Unreachable(options_.server, answer.status());
  if (answer->status < 200 || answer->status >= 300) {
    return FromHttp(options_.server, answer->status, answer->body);
  }
  return std::move(answer->body);
}

absl::StatusOr<std::string> ApiClient::Get(const std::string& path) {
  return Call("GET", path, nullptr);
}
absl::StatusOr<std::string> ApiClient::Post(const std::string& path, const std::string& body) {
  return Call("POST", path, &body);
}
absl::StatusOr<std::string> ApiClient::Delete(const std::string& path) {
  return Call("DELETE", path, nullptr);
}

absl::Status ApiClient::Stream(const std::string& path,
                               const std::function<bool(std::string_view)>& on_chunk) {
  http::Request request{.url = UrlOf(options_.server, path),
                        .timeout = std::chrono::milliseconds(0),
                        .max_response_bytes = 64 * 1024};  // of an error body
  if (!options_.token.empty()) request.headers.push_back("Authorization: Bearer " + options_.token);
  request.on_body = on_chunk;
  absl::StatusOr<http::Response> answer = http::Perform(request);
  if (!answer.ok()) return Unreachable(options_.server, answer.status());
  if (answer->stopped_by_reader) return absl::OkStatus();
  if (answer->status < 200 || answer->status >= 300) {
    return FromHttp(options_.server, answer->status, answer->body);
  }
  return absl::OkStatus();
}

}  // namespace eph::client
