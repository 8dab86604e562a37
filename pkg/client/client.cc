#include "pkg/client/client.h"

#include <curl/curl.h>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"

namespace eph::client {
namespace {

size_t Append(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

struct StreamState {
  CURL* curl = nullptr;
  const std::function<bool(std::string_view)>* on_chunk;
  bool stopped = false;
  long status = 0;
  std::string error_body;  // the body of a non-2xx answer, for its JSON error message
};

size_t StreamChunk(char* data, size_t size, size_t n, void* p) {
  auto* state = static_cast<StreamState*>(p);
  if (state->status == 0) curl_easy_getinfo(state->curl, CURLINFO_RESPONSE_CODE, &state->status);
  if (state->status < 200 || state->status >= 300) {
    if (state->error_body.size() < 64 * 1024) state->error_body.append(data, size * n);
    return size * n;
  }
  if (!(*state->on_chunk)(std::string_view(data, size * n))) {
    state->stopped = true;
    return 0;  // makes curl abort the transfer
  }
  return size * n;
}

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

absl::Status FromHttp(const std::string& server, long status, const std::string& body) {
  const ServerError error = ParseServerError(status, body);
  const std::string& message = error.message;
  // Only ephd's own "no such thing" means the environment is missing. Its router's 404 (no
  // such endpoint), or any 404 not in ephd's shape, means the address leads somewhere else: a
  // wrong path in EPH_SERVER, or another server on that port.
  if (status == 404 && (!error.from_ephd || error.code != "not_found" ||
                        message.rfind("no such endpoint", 0) == 0)) {
    return absl::UnavailableError(
        absl::StrCat(server, " does not point at an ephd API (it answered 404: ", message,
                     "); set --server or EPH_SERVER to ephd's address, e.g. "
                     "http://127.0.0.1:8080"));
  }
  switch (status) {
    case 400:
      return absl::InvalidArgumentError(message);
    case 401:
      return absl::UnauthenticatedError(
          absl::StrCat(message, " (set EPH_TOKEN to a valid API token)"));
    case 403:
      return absl::PermissionDeniedError(message);
    case 404:
      return absl::NotFoundError(message);
    case 409:
      return absl::FailedPreconditionError(message);
    case 501:
      return absl::UnimplementedError(message);
    case 429:
      return absl::ResourceExhaustedError(message);
    case 503:
      return absl::UnavailableError(message);
    default:
      return absl::InternalError(absl::StrCat("HTTP ", status, ": ", message));
  }
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
  CURL* curl = curl_easy_init();
  if (curl == nullptr) return absl::InternalError("curl_easy_init failed");
  std::string url = options_.server;
  while (!url.empty() && url.back() == '/') url.pop_back();
  url += path;
  std::string out;
  curl_slist* headers = nullptr;
  headers = curl_slist_append(headers, "Accept: application/json");
  if (body != nullptr) headers = curl_slist_append(headers, "Content-Type: application/json");
  const std::string auth = "Authorization: Bearer " + options_.token;
  if (!options_.token.empty()) headers = curl_slist_append(headers, auth.c_str());
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, Append);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &out);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, options_.timeout_ms);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  if (body != nullptr) {
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body->data());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body->size()));
  }
  const CURLcode rc = curl_easy_perform(curl);
  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  if (rc != CURLE_OK) {
    return absl::UnavailableError(absl::StrCat("cannot reach ephd at ", options_.server, ": ",
                                               curl_easy_strerror(rc),
                                               " (is it running? set --server or EPH_SERVER)"));
  }
  if (status < 200 || status >= 300) return FromHttp(options_.server, status, out);
  return out;
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
  CURL* curl = curl_easy_init();
  if (curl == nullptr) return absl::InternalError("curl_easy_init failed");
  std::string url = options_.server;
  while (!url.empty() && url.back() == '/') url.pop_back();
  url += path;
  curl_slist* headers = nullptr;
  const std::string auth = "Authorization: Bearer " + options_.token;
  if (!options_.token.empty()) headers = curl_slist_append(headers, auth.c_str());
  StreamState state{curl, &on_chunk};
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, StreamChunk);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &state);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
  const CURLcode rc = curl_easy_perform(curl);
  long status = state.status;
  if (status == 0) curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  if (state.stopped) return absl::OkStatus();
  if (status != 0 && (status < 200 || status >= 300))
    return FromHttp(options_.server, status, state.error_body);
  if (rc != CURLE_OK) {
    return absl::UnavailableError(absl::StrCat("cannot reach ephd at ", options_.server, ": ",
                                               curl_easy_strerror(rc),
                                               " (is it running? set --server or EPH_SERVER)"));
  }
  return absl::OkStatus();
}

}  // namespace eph::client
