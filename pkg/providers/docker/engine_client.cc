#include "pkg/providers/docker/engine_client.h"

#include <cctype>
#include <utility>

#include "fmt/format.h"
#include "nlohmann/json.hpp"
#include "pkg/http/http_client.h"
#include "pkg/http/status_map.h"

namespace eph::providers::docker {
namespace {

http::Request Build(const EngineRequest& request, const EngineClientOptions& options) {
  std::chrono::milliseconds timeout =
      request.timeout.count() == 0 ? options.request_timeout : request.timeout;
  if (timeout.count() < 0) timeout = std::chrono::milliseconds(0);
  // The host part is ignored over a unix socket; "docker" is what the Docker CLI sends.
  const std::string_view version =
      request.api_version.empty() ? kApiVersion : std::string_view(request.api_version);
  http::Request out{.method = request.method,
                    .url = fmt::format("http://docker/{}{}", version, request.path),
                    .timeout = timeout,
                    .max_response_bytes = options.max_response_bytes,
                    .connect_timeout = options.connect_timeout,
                    .unix_socket = options.socket_path};
  if (request.body) out.headers.push_back("Content-Type: application/json");
  for (const std::string& h : request.headers) out.headers.push_back(h);
  // The engine wants a length on every POST, also without a body.
  if (request.method != "GET" && request.method != "DELETE") {
    out.body = request.body.value_or("");
  }
  out.user_agent = "eph";
  out.what = fmt::format("{} {}", request.method, request.path);
  out.on_body = request.on_body;
  out.cancelled = request.cancelled;
  return out;
}

EngineResponse FromHttp(http::Response&& answer) {
  EngineResponse out;
  out.status = answer.status;
  out.content_type = http::HeaderOf(answer, "content-type");
  out.body = std::move(answer.body);
  out.stopped_by_reader = answer.stopped_by_reader;
  return out;
}

}  // namespace

EngineClient::EngineClient(EngineClientOptions options) : options_(std::move(options)) {}

absl::StatusOr<EngineResponse> EngineClient::Perform(const EngineRequest& request) const {
  absl::StatusOr<http::Response> answer = http::Perform(Build(request, options_));
  if (answer.ok()) return FromHttp(*std::move(answer));
  if (absl::IsUnavailable(answer.status())) {
    return http::Prefixed(answer.status(),
                          fmt::format("cannot reach the Docker engine at unix://{}",
                                      options_.socket_path));
  }
  return http::Prefixed(answer.status(), "Docker engine");
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
  return http::ErrorFor(http::Api::kDockerEngine, {.status = response.status, .message = message},
                        fmt::format("{}: {}", what, message));
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

namespace {

// "1.44" or "v1.44" -> {1, 44}; nullopt for anything else.
std::optional<std::pair<int, int>> MajorMinor(std::string_view v) {
  if (!v.empty() && v[0] == 'v') v.remove_prefix(1);
  const size_t dot = v.find('.');
  if (dot == std::string_view::npos || dot == 0 || dot + 1 == v.size()) return std::nullopt;
  int parts[2] = {0, 0};
  const std::string_view texts[2] = {v.substr(0, dot), v.substr(dot + 1)};
  for (int i = 0; i < 2; ++i) {
    if (texts[i].size() > 4) return std::nullopt;
    for (const char c : texts[i]) {
      if (std::isdigit(static_cast<unsigned char>(c)) == 0) return std::nullopt;
      parts[i] = parts[i] * 10 + (c - '0');
    }
  }
  return std::pair<int, int>{parts[0], parts[1]};
}

}  // namespace

bool ApiVersionAtLeast(std::string_view engine, std::string_view wanted) {
  const std::optional<std::pair<int, int>> have = MajorMinor(engine);
  const std::optional<std::pair<int, int>> want = MajorMinor(wanted);
  return have && want && *have >= *want;
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
