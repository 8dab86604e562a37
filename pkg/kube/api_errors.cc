#include "pkg/kube/api_errors.h"

#include <optional>

#include "absl/strings/ascii.h"
#include "absl/strings/cord.h"
#include "absl/strings/numbers.h"
#include "fmt/format.h"
#include "pkg/http/status_map.h"

namespace eph::kube {
namespace {

constexpr char kHttpStatusPayload[] = "eph.dev/kube/http-status";
constexpr char kReasonPayload[] = "eph.dev/kube/reason";

absl::Status Make(long http_status, const std::string& reason, const std::string& message,
                  const std::string& what) {
  absl::Status st = http::ErrorFor(http::Api::kKubernetes,
                                   {.status = http_status, .reason = reason, .message = message},
                                   fmt::format("{}: {}", what, message));
  st.SetPayload(kHttpStatusPayload, absl::Cord(std::to_string(http_status)));
  if (!reason.empty()) st.SetPayload(kReasonPayload, absl::Cord(reason));
  return st;
}

std::string StringField(const nlohmann::json& obj, const char* key) {
  const auto it = obj.find(key);
  return it != obj.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace

absl::Status StatusFromApiStatus(const nlohmann::json& status, const std::string& what) {
  long code = 500;
  std::string reason;
  std::string message;
  if (status.is_object()) {
    if (const auto it = status.find("code"); it != status.end() && it->is_number_integer()) {
      code = it->get<long>();
    }
    reason = StringField(status, "reason");
    message = StringField(status, "message");
  }
  if (message.empty()) message = reason.empty() ? "unknown error" : reason;
  return Make(code, reason, message, what);
}

absl::Status StatusFromApiResponse(long http_status, const std::string& body,
                                   const std::string& what) {
  if (http_status >= 200 && http_status < 300) return absl::OkStatus();
  nlohmann::json doc = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  std::string reason;
  std::string message;
  if (!doc.is_discarded() && doc.is_object() && StringField(doc, "kind") == "Status") {
    reason = StringField(doc, "reason");
    message = StringField(doc, "message");
  }
  if (message.empty()) {
    std::string text = body.substr(0, 300);
    absl::StripAsciiWhitespace(&text);
    message = text.empty() ? fmt::format("HTTP {}", http_status)
                           : fmt::format("HTTP {}: {}", http_status, text);
  }
  return Make(http_status, reason, message, what);
}

std::string MessageOf(const absl::Status& status) {
  const absl::string_view m = status.message();
  return {m.data(), m.size()};
}

namespace {

std::string PayloadOf(const absl::Status& status, const char* url) {
  auto p = status.GetPayload(url);
  if (!p) return "";
  const absl::string_view flat = p->Flatten();
  return {flat.data(), flat.size()};
}

}  // namespace

int ApiHttpStatus(const absl::Status& status) {
  int code = 0;
  return absl::SimpleAtoi(PayloadOf(status, kHttpStatusPayload), &code) ? code : 0;
}

std::string ApiReason(const absl::Status& status) { return PayloadOf(status, kReasonPayload); }

bool IsGone(const absl::Status& status) { return ApiHttpStatus(status) == 410; }

}  // namespace eph::kube
