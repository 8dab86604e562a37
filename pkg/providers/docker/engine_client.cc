#include "pkg/providers/docker/engine_client.h"

#include <curl/curl.h>

#include <mutex>

#include "fmt/format.h"
#include "nlohmann/json.hpp"

namespace eph::providers::docker {
namespace {

void GlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct Transfer {
  const EngineRequest* request = nullptr;
  EngineResponse* response = nullptr;
  CURL* easy = nullptr;
  size_t max_body = 0;
  bool too_large = false;
};

size_t OnHeader(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  std::string_view line(data, size * n);
  constexpr std::string_view kContentType = "content-type:";
  if (line.size() > kContentType.size()) {
    std::string name(line.substr(0, kContentType.size()));
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (name == kContentType) {
      std::string_view value = line.substr(kContentType.size());
      while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) {
        value.remove_prefix(1);
      }
      while (!value.empty() &&
             (value.back() == '\r' || value.back() == '\n' || value.back() == ' ')) {
        value.remove_suffix(1);
      }
      t->response->content_type = std::string(value);
    }
  }
  return size * n;
}

size_t OnBody(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t len = size * n;
  long status = 0;
  curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
  if (t->request->on_body && status >= 200 && status < 300) {
    if (!t->request->on_body(std::string_view(data, len))) {
      t->response->stopped_by_reader = true;
      return 0;
    }
    return len;
  }
  if (t->response->body.size() + len > t->max_body) {
    t->too_large = true;
    return 0;
  }
  t->response->body.append(data, len);
  return len;
}

int OnProgress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto* t = static_cast<Transfer*>(user);
  if (t->request->cancelled && t->request->cancelled()) {
    t->response->stopped_by_reader = true;
    return 1;
  }
  return 0;
}

struct EasyDeleter {
  void operator()(CURL* easy) const { curl_easy_cleanup(easy); }
};

}  // namespace

EngineClient::EngineClient(EngineClientOptions options) : options_(std::move(options)) {
  GlobalInit();
}

absl::StatusOr<EngineResponse> EngineClient::Perform(const EngineRequest& request) const {
  std::unique_ptr<CURL, EasyDeleter> handle(curl_easy_init());
  if (handle == nullptr) return absl::InternalError("libcurl could not create a handle");
  CURL* easy = handle.get();
  // The host part is ignored over a unix socket; "docker" is what the Docker CLI sends.
  const std::string url = fmt::format("http://docker/{}{}", kApiVersion, request.path);
  const std::string what = fmt::format("{} {}", request.method, request.path);
  EngineResponse response;
  Transfer transfer{&request, &response, easy, options_.max_response_bytes, false};
  char errbuf[CURL_ERROR_SIZE] = {0};

  curl_slist* headers = nullptr;
  headers = curl_slist_append(headers, "Expect:");
  if (request.body) headers = curl_slist_append(headers, "Content-Type: application/json");

  curl_easy_setopt(easy, CURLOPT_UNIX_SOCKET_PATH, options_.socket_path.c_str());
  curl_easy_setopt(easy, CURLOPT_URL, url.c_str());
  curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(easy, CURLOPT_USERAGENT, "eph");
  curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(options_.connect_timeout.count()));
  std::chrono::milliseconds timeout =
      request.timeout.count() == 0 ? options_.request_timeout : request.timeout;
  if (timeout.count() < 0) timeout = std::chrono::milliseconds(0);
  curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout.count()));
  curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, OnHeader);
  curl_easy_setopt(easy, CURLOPT_HEADERDATA, &transfer);
  curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, OnBody);
  curl_easy_setopt(easy, CURLOPT_WRITEDATA, &transfer);
  if (request.cancelled) {
    curl_easy_setopt(easy, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(easy, CURLOPT_XFERINFOFUNCTION, OnProgress);
    curl_easy_setopt(easy, CURLOPT_XFERINFODATA, &transfer);
  }
  if (request.method == "GET") {
    curl_easy_setopt(easy, CURLOPT_HTTPGET, 1L);
  } else {
    curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, request.method.c_str());
  }
  const std::string empty;
  const std::string& body = request.body ? *request.body : empty;
  if (request.method != "GET" && request.method != "DELETE") {
    curl_easy_setopt(easy, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  }

  const CURLcode result = curl_easy_perform(easy);
  curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &response.status);
  curl_slist_free_all(headers);

  if (response.stopped_by_reader) return response;
  if (transfer.too_large) {
    return absl::ResourceExhaustedError(
        fmt::format("Docker engine: {}: the answer is larger than {} bytes", what,
                    options_.max_response_bytes));
  }
  if (result == CURLE_OK) return response;
  const std::string detail = errbuf[0] != '\0' ? errbuf : curl_easy_strerror(result);
  if (result == CURLE_OPERATION_TIMEDOUT) {
    return absl::DeadlineExceededError(
        fmt::format("Docker engine: {}: timed out: {}", what, detail));
  }
  return absl::UnavailableError(fmt::format("cannot reach the Docker engine at unix://{}: {}: {}",
                                            options_.socket_path, what, detail));
}

absl::StatusOr<EngineResponse> EngineClient::Get(const std::string& path) const {
  EngineRequest r;
  r.path = path;
  return Perform(r);
}

absl::StatusOr<EngineResponse> EngineClient::Post(const std::string& path,
                                                  std::optional<std::string> body) const {
  EngineRequest r;
  r.method = "POST";
  r.path = path;
  r.body = std::move(body);
  return Perform(r);
}

absl::StatusOr<EngineResponse> EngineClient::Delete(const std::string& path) const {
  EngineRequest r;
  r.method = "DELETE";
  r.path = path;
  return Perform(r);
}

std::string EngineMessage(const EngineResponse& response) {
  const nlohmann::json doc = nlohmann::json::parse(response.body, nullptr, false);
  if (doc.is_object() && doc.contains("message") && doc["message"].is_string()) {
    return doc["message"].get<std::string>();
  }
  std::string text = response.body;
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  if (text.empty()) return fmt::format("HTTP {}", response.status);
  return text;
}

absl::Status ErrorFromResponse(const EngineResponse& response, std::string_view what) {
  const std::string message = EngineMessage(response);
  const std::string text = fmt::format("{}: {}", what, message);
  switch (response.status) {
    case 400:
      return absl::InvalidArgumentError(text);
    case 404:
      return absl::NotFoundError(text);
    case 409:
      return absl::FailedPreconditionError(text);
    default:
      break;
  }
  if (message.find("port is already allocated") != std::string::npos ||
      message.find("address already in use") != std::string::npos ||
      message.find("executable file not found") != std::string::npos ||
      message.find("no such file or directory") != std::string::npos) {
    return absl::FailedPreconditionError(text);
  }
  return absl::UnavailableError(text);
}

absl::StatusOr<std::string> SocketPathFromHost(const std::string& docker_host) {
  constexpr std::string_view kScheme = "unix://";
  if (docker_host.rfind(kScheme, 0) != 0 || docker_host.size() == kScheme.size() ||
      docker_host[kScheme.size()] != '/') {
    return absl::InvalidArgumentError(
        fmt::format("docker_host '{}': only a local engine socket is supported, written "
                    "unix:///path/to/docker.sock",
                    docker_host));
  }
  return docker_host.substr(kScheme.size());
}

std::string UrlEncode(std::string_view value) {
  std::string out;
  for (const char c : value) {
    const auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) != 0 || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(c);
    } else {
      out += fmt::format("%{:02X}", u);
    }
  }
  return out;
}

}  // namespace eph::providers::docker
