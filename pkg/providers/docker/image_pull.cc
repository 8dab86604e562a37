#include "pkg/providers/docker/image_pull.h"

#include <chrono>

#include "fmt/format.h"
#include "nlohmann/json.hpp"

namespace eph::providers::docker {
namespace {

using nlohmann::json;

// A pull's own deadline: layers of a large image take minutes, not the default request's 60s.
constexpr std::chrono::minutes kPullTimeout{15};

bool Has(const std::string& text, std::string_view needle) {
  return text.find(needle) != std::string::npos;
}

}  // namespace

std::string PullReference(std::string_view image) {
  const std::string ref(image);
  if (ref.find('@') != std::string::npos) return ref;
  const size_t slash = ref.rfind('/');
  const size_t colon = ref.rfind(':');
  if (colon != std::string::npos && (slash == std::string::npos || colon > slash)) return ref;
  return ref + ":latest";
}

absl::Status PullFailure(const std::string& reference, const std::string& host,
                         bool sent_credentials, long http_status, const std::string& message) {
  const std::string credentials =
      sent_credentials ? "credentials rejected" : "no credentials configured";
  // Docker Hub answers a missing repository and a private one alike.
  if (Has(message, "pull access denied")) {
    return absl::FailedPreconditionError(
        fmt::format("image {} not found in registry {}, or unauthorized for it ({})", reference,
                    host, credentials));
  }
  if (http_status == 404 || Has(message, "manifest unknown") || Has(message, "name unknown") ||
      Has(message, "not found")) {
    return absl::FailedPreconditionError(
        fmt::format("image {} not found in registry {}", reference, host));
  }
  // Without credentials the engine retries a loopback (insecure) registry over plain HTTP after
  // the 401 and reports that attempt instead: read it as the 401 it follows.
  if (Has(message, "unauthorized") || Has(message, "authentication required") ||
      Has(message, "no basic auth credentials") || Has(message, "denied") ||
      (!sent_credentials && Has(message, "HTTP request to an HTTPS server"))) {
    return absl::FailedPreconditionError(
        fmt::format("unauthorized for registry {} ({})", host, credentials));
  }
  if (Has(message, "dial tcp") || Has(message, "connection refused") ||
      Has(message, "no such host") || Has(message, "timeout") || Has(message, "TLS handshake") ||
      Has(message, "x509") || Has(message, "connection reset") || Has(message, "EOF") ||
      Has(message, "server gave HTTP response")) {
    return absl::UnavailableError(fmt::format("registry {} unreachable: {}", host, message));
  }
  return absl::UnavailableError(
      fmt::format("pulling image {} from registry {} failed: {}", reference, host, message));
}

std::string PullStreamError(std::string_view stream) {
  std::string error;
  size_t start = 0;
  while (start < stream.size()) {
    size_t end = stream.find('\n', start);
    if (end == std::string_view::npos) end = stream.size();
    const json line = json::parse(stream.substr(start, end - start), nullptr, false);
    start = end + 1;
    if (!line.is_object()) continue;
    const auto detail = line.find("errorDetail");
    if (detail != line.end() && detail->is_object()) {
      const auto m = detail->find("message");
      if (m != detail->end() && m->is_string()) error = m->get<std::string>();
    } else if (const auto e = line.find("error"); e != line.end() && e->is_string()) {
      error = e->get<std::string>();
    }
  }
  return error;
}

// Longest line of the engine's pull stream kept while waiting for its end.
constexpr size_t kMaxPullLine = 64 * 1024;

absl::Status PullImage(const EngineClient& engine, const RegistryAuth& auth,
                       const std::string& image) {
  const std::string reference = PullReference(image);
  const std::string host = RegistryHostOf(reference);
  EngineRequest r;
  r.method = "POST";
  r.path = "/images/create?fromImage=" + UrlEncode(reference);
  r.timeout = kPullTimeout;
  const std::string header = auth.EngineAuthHeader(host);
  if (!header.empty()) r.headers.push_back("X-Registry-Auth: " + header);
  // Only the error matters, and it comes last: keep lines whole across chunks, drop the rest.
  std::string pending;
  std::string error;
  r.on_body = [&](std::string_view data) {
    pending.append(data);
    const size_t last = pending.rfind('\n');
    if (last != std::string::npos) {
      if (std::string e = PullStreamError(std::string_view(pending).substr(0, last)); !e.empty()) {
        error = std::move(e);
      }
      pending.erase(0, last + 1);
    } else if (pending.size() > kMaxPullLine) {
      pending.clear();  // a progress line this long is not an error line: never hold it all
    }
    return true;
  };
  absl::StatusOr<EngineResponse> resp = engine.Perform(r);
  if (!resp.ok()) return resp.status();
  if (resp->status != 200) {
    return PullFailure(reference, host, !header.empty(), resp->status, EngineMessage(*resp));
  }
  if (std::string e = PullStreamError(pending); !e.empty()) error = std::move(e);
  if (!error.empty()) return PullFailure(reference, host, !header.empty(), 200, error);
  return absl::OkStatus();
}

}  // namespace eph::providers::docker
