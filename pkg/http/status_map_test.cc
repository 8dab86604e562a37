#include "pkg/http/status_map.h"

#include <gtest/gtest.h>

#include <vector>

namespace eph::http {
namespace {

using Code = absl::StatusCode;

struct Row {
  Api api;
  long status;
  std::string_view reason;
  std::string_view message;
  bool rate_limited;
  Code want;
};

// Every decision of status_map.h in one table: the base, then each API's overrides.
const std::vector<Row>& Table() {
  static const std::vector<Row> rows = {
      {Api::kGeneric, 200, "", "", false, Code::kOk},
      {Api::kGeneric, 201, "", "", false, Code::kOk},
      {Api::kGeneric, 204, "", "", false, Code::kOk},
      {Api::kGeneric, 304, "", "", false, Code::kOk},
      {Api::kGeneric, 101, "", "", false, Code::kFailedPrecondition},
      {Api::kGeneric, 302, "", "", false, Code::kFailedPrecondition},
      {Api::kGeneric, 400, "", "", false, Code::kInvalidArgument},
      {Api::kGeneric, 401, "", "", false, Code::kUnauthenticated},
      {Api::kGeneric, 403, "", "", false, Code::kPermissionDenied},
      {Api::kGeneric, 404, "", "", false, Code::kNotFound},
      {Api::kGeneric, 405, "", "", false, Code::kUnimplemented},
      {Api::kGeneric, 406, "", "", false, Code::kInvalidArgument},
      {Api::kGeneric, 408, "", "", false, Code::kDeadlineExceeded},
      {Api::kGeneric, 409, "", "", false, Code::kFailedPrecondition},
      {Api::kGeneric, 410, "", "", false, Code::kNotFound},
      {Api::kGeneric, 412, "", "", false, Code::kFailedPrecondition},
      {Api::kGeneric, 413, "", "", false, Code::kInvalidArgument},
      {Api::kGeneric, 416, "", "", false, Code::kOutOfRange},
      {Api::kGeneric, 418, "", "", false, Code::kInvalidArgument},
      {Api::kGeneric, 422, "", "", false, Code::kInvalidArgument},
      {Api::kGeneric, 429, "", "", false, Code::kResourceExhausted},
      {Api::kGeneric, 500, "", "", false, Code::kUnavailable},
      {Api::kGeneric, 501, "", "", false, Code::kUnimplemented},
      {Api::kGeneric, 502, "", "", false, Code::kUnavailable},
      {Api::kGeneric, 503, "", "", false, Code::kUnavailable},
      {Api::kGeneric, 504, "", "", false, Code::kUnavailable},
      {Api::kGeneric, 599, "", "", false, Code::kUnavailable},
      {Api::kGeneric, 0, "", "", false, Code::kUnknown},
      {Api::kGeneric, 600, "", "", false, Code::kUnknown},
      // Kubernetes: a conflict is a stale read unless the object already exists; Gone relists.
      {Api::kKubernetes, 409, "AlreadyExists", "", false, Code::kAlreadyExists},
      {Api::kKubernetes, 409, "Conflict", "", false, Code::kAborted},
      {Api::kKubernetes, 409, "", "", false, Code::kAborted},
      {Api::kKubernetes, 410, "Expired", "", false, Code::kAborted},
      {Api::kKubernetes, 422, "Invalid", "", false, Code::kInvalidArgument},
      {Api::kKubernetes, 500, "InternalError", "", false, Code::kUnavailable},
      // GitHub: a rate limit is a wait, an ordinary 403 is a refusal.
      {Api::kGitHub, 403, "", "", true, Code::kUnavailable},
      {Api::kGitHub, 429, "", "", true, Code::kUnavailable},
      {Api::kGitHub, 403, "", "", false, Code::kPermissionDenied},
      {Api::kGitHub, 410, "", "Issues are disabled", false, Code::kNotFound},
      {Api::kGitHub, 422, "", "", false, Code::kInvalidArgument},
      {Api::kGitHub, 500, "", "", false, Code::kUnavailable},
      // Docker: 304 means "already started/stopped"; configuration errors are terminal.
      {Api::kDockerEngine, 304, "", "", false, Code::kOk},
      {Api::kDockerEngine, 409, "", "name in use", false, Code::kFailedPrecondition},
      {Api::kDockerEngine, 500, "", "Bind for 0.0.0.0:80 failed: port is already allocated",
       false, Code::kFailedPrecondition},
      {Api::kDockerEngine, 400, "", "exec: \"x\": executable file not found in $PATH", false,
       Code::kFailedPrecondition},
      {Api::kDockerEngine, 500, "", "driver failed", false, Code::kUnavailable},
      {Api::kDockerEngine, 403, "", "authorization denied by plugin", false,
       Code::kPermissionDenied},
      {Api::kDockerEngine, 501, "", "", false, Code::kUnimplemented},
      {Api::kDockerEngine, 200, "", "no such file or directory", false, Code::kOk},
      // ephd: its own code name wins; a 404 not in its shape is not ephd.
      {Api::kEphd, 404, "not_found", "no environment named x", false, Code::kNotFound},
      {Api::kEphd, 404, "not_found", "no such endpoint: GET /x", false, Code::kUnavailable},
      {Api::kEphd, 404, "", "<html>", false, Code::kUnavailable},
      {Api::kEphd, 409, "already_exists", "", false, Code::kAlreadyExists},
      {Api::kEphd, 409, "failed_precondition", "", false, Code::kFailedPrecondition},
      {Api::kEphd, 500, "internal", "internal error", false, Code::kInternal},
      {Api::kEphd, 500, "", "proxy error", false, Code::kUnavailable},
      {Api::kEphd, 503, "unavailable", "", false, Code::kUnavailable},
      {Api::kEphd, 413, "payload_too_large", "", false, Code::kInvalidArgument},
  };
  return rows;
}

TEST(StatusMapTest, EveryRowOfTheTable) {
  for (const Row& row : Table()) {
    const Answer answer{row.status, row.reason, row.message, row.rate_limited};
    EXPECT_EQ(CodeFor(row.api, answer), row.want)
        << "api " << static_cast<int>(row.api) << " status " << row.status << " reason '"
        << row.reason << "' message '" << row.message << "'";
  }
}

TEST(StatusMapTest, ErrorForCarriesTheMessageAndIsNeverOk) {
  EXPECT_EQ(ErrorFor(Api::kDockerEngine, {.status = 304}, "x").code(), Code::kUnknown);
  EXPECT_EQ(ErrorFor(Api::kGeneric, {.status = 200}, "x").code(), Code::kUnknown);
  const absl::Status st = ErrorFor(Api::kGeneric, {.status = 503}, "GET /x: down");
  EXPECT_EQ(st.code(), Code::kUnavailable);
  EXPECT_EQ(st.message(), "GET /x: down");
}

}  // namespace
}  // namespace eph::http
