#include "pkg/providers/docker/engine_client.h"

#include <gtest/gtest.h>

namespace eph::providers::docker {
namespace {

EngineResponse Answer(long status, std::string body) {
  EngineResponse r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

// Behaviours that changed when the engine's table became the shared one (pkg/http): before,
// every status but 400/404/409 was Unavailable and so retried as if the engine were down.
TEST(EngineClientMappingTest, RefusalsAreNamedNotRetriedAsOutages) {
  const absl::Status denied =
      ErrorFromResponse(Answer(403, R"({"message":"authorization denied by plugin"})"), "x");
  EXPECT_EQ(denied.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(denied.message(), "x: authorization denied by plugin");
  EXPECT_EQ(ErrorFromResponse(Answer(413, ""), "x").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ErrorFromResponse(Answer(501, ""), "x").code(), absl::StatusCode::kUnimplemented);
}

TEST(EngineClientMappingTest, AnUnexpectedSuccessIsNeverOk) {
  // A 304 ("already started") where an inspect wanted content: an error, though not a retryable
  // outage.
  EXPECT_EQ(ErrorFromResponse(Answer(304, ""), "inspecting x").code(), absl::StatusCode::kUnknown);
}

TEST(EngineClientVersionTest, ComparesTheEnginesApiVersionNumerically) {
  EXPECT_TRUE(ApiVersionAtLeast("1.44", kStartIntervalApiVersion));
  EXPECT_TRUE(ApiVersionAtLeast("1.47", kStartIntervalApiVersion));
  EXPECT_TRUE(ApiVersionAtLeast("2.0", kStartIntervalApiVersion));
  EXPECT_FALSE(ApiVersionAtLeast("1.41", kStartIntervalApiVersion)) << "Docker 20.10";
  EXPECT_FALSE(ApiVersionAtLeast("1.5", kStartIntervalApiVersion)) << "not a decimal fraction";
  for (const char* unreadable : {"", "1", "1.", ".44", "x.44", "1.44beta", "99999.1"}) {
    EXPECT_FALSE(ApiVersionAtLeast(unreadable, kStartIntervalApiVersion)) << unreadable;
  }
}

}  // namespace
}  // namespace eph::providers::docker
