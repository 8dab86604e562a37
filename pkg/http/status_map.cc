#include "pkg/http/status_map.h"

#include <optional>

#include "absl/strings/ascii.h"

namespace eph::http {
namespace {

absl::StatusCode ClientErrorCode(long http_status) {
  switch (http_status) {
    case 401:
      return absl::StatusCode::kUnauthenticated;
    case 403:
      return absl::StatusCode::kPermissionDenied;
    case 404:
    case 410:
      return absl::StatusCode::kNotFound;
    case 405:
      return absl::StatusCode::kUnimplemented;
    case 408:
      return absl::StatusCode::kDeadlineExceeded;
    case 409:
    case 412:
      return absl::StatusCode::kFailedPrecondition;
    case 416:
      return absl::StatusCode::kOutOfRange;
    case 429:
      return absl::StatusCode::kResourceExhausted;
    default:
      return absl::StatusCode::kInvalidArgument;
  }
}

std::optional<absl::StatusCode> KubernetesOverride(const Answer& answer) {
  if (answer.status == 409) {
    return answer.reason == "AlreadyExists" ? absl::StatusCode::kAlreadyExists
                                            : absl::StatusCode::kAborted;
  }
  if (answer.status == 410) return absl::StatusCode::kAborted;
  return std::nullopt;
}

std::optional<absl::StatusCode> GitHubOverride(const Answer& answer) {
  if ((answer.status == 403 || answer.status == 429) && answer.rate_limited) {
    return absl::StatusCode::kUnavailable;
  }
  return std::nullopt;
}

std::optional<absl::StatusCode> DockerOverride(const Answer& answer) {
  if (answer.status >= 200 && answer.status < 300) return std::nullopt;
  for (const char* needle : {"port is already allocated", "address already in use",
                             "executable file not found", "no such file or directory"}) {
    if (answer.message.find(needle) != std::string_view::npos) return absl::StatusCode::kFailedPrecondition;
  }
  return std::nullopt;
}

// ephd's error.code names are the snake_case of the canonical code names.
std::optional<absl::StatusCode> CodeNamed(std::string_view name) {
  for (int c = 1; c <= 16; ++c) {
    const auto code = static_cast<absl::StatusCode>(c);
    if (absl::AsciiStrToLower(absl::StatusCodeToString(code)) == name) return code;
  }
  return std::nullopt;
}

std::optional<absl::StatusCode> EphdOverride(const Answer& answer) {
  if (answer.status == 404 &&
      (answer.reason != "not_found" || answer.message.starts_with("no such endpoint"))) {
    return absl::StatusCode::kUnavailable;
  }
  if (answer.status >= 200 && answer.status < 300) return std::nullopt;
  return CodeNamed(answer.reason);
}

std::optional<absl::StatusCode> Override(Api api, const Answer& answer) {
  switch (api) {
    case Api::kKubernetes:
      return KubernetesOverride(answer);
    case Api::kGitHub:
      return GitHubOverride(answer);
    case Api::kDockerEngine:
      return DockerOverride(answer);
    case Api::kEphd:
      return EphdOverride(answer);
    case Api::kGeneric:
      break;
  }
  return std::nullopt;
}

}  // namespace

absl::StatusCode BaseCode(long http_status) {
  if ((http_status >= 200 && http_status < 300) || http_status == 304) {
    return absl::StatusCode::kOk;
  }
  if (http_status >= 100 && http_status < 400) return absl::StatusCode::kFailedPrecondition;
  if (http_status >= 400 && http_status < 500) return ClientErrorCode(http_status);
  if (http_status == 501) return absl::StatusCode::kUnimplemented;
  if (http_status >= 500 && http_status < 600) return absl::StatusCode::kUnavailable;
  return absl::StatusCode::kUnknown;
}

absl::StatusCode CodeFor(Api api, const Answer& answer) {
  if (const std::optional<absl::StatusCode> code = Override(api, answer)) return *code;
  return BaseCode(answer.status);
}

absl::Status ErrorFor(Api api, const Answer& answer, std::string message) {
  const absl::StatusCode code = CodeFor(api, answer);
  return {code == absl::StatusCode::kOk ? absl::StatusCode::kUnknown : code, message};
}

}  // namespace eph::http
