#include "pkg/providers/docker/image_pull.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace eph::providers::docker {
namespace {

using ::testing::HasSubstr;

TEST(ImagePullTest, ReferenceGetsLatestOnlyWithoutTagOrDigest) {
  EXPECT_EQ(PullReference("nginx"), "nginx:latest");
  EXPECT_EQ(PullReference("nginx:1.27"), "nginx:1.27");
  EXPECT_EQ(PullReference("127.0.0.1:5000/app"), "127.0.0.1:5000/app:latest");
  EXPECT_EQ(PullReference("127.0.0.1:5000/app:pr-7"), "127.0.0.1:5000/app:pr-7");
  EXPECT_EQ(PullReference("ghcr.io/a/b@sha256:0123"), "ghcr.io/a/b@sha256:0123");
}

// The engine's own messages (dockerd 20.10 against the distribution registry of the test bed).
TEST(ImagePullTest, FailuresSayWhatIsWrong) {
  struct Case {
    bool sent_credentials;
    long http_status;
    std::string message;
    absl::StatusCode code;
    std::string says;
  };
  const std::string ref = "127.0.0.1:5000/app:v9";
  const std::string host = "127.0.0.1:5000";
  for (const Case& c : std::vector<Case>{
           {true, 404,
            "manifest for 127.0.0.1:5000/app:v9 not found: manifest unknown: manifest unknown",
            absl::StatusCode::kFailedPrecondition,
            "image 127.0.0.1:5000/app:v9 not found in registry 127.0.0.1:5000"},
           {false, 500,
            "error parsing HTTP 400 response body: invalid character 'C' looking for beginning of "
            "value: \"Client sent an HTTP request to an HTTPS server.\\n\"",
            absl::StatusCode::kFailedPrecondition,
            "unauthorized for registry 127.0.0.1:5000 (no credentials configured)"},
           {true, 500, "unauthorized: authentication required",
            absl::StatusCode::kFailedPrecondition,
            "unauthorized for registry 127.0.0.1:5000 (credentials rejected)"},
           {false, 500, "Head \"https://r/v2/app/manifests/v9\": no basic auth credentials",
            absl::StatusCode::kFailedPrecondition,
            "unauthorized for registry 127.0.0.1:5000 (no credentials configured)"},
           {false, 500,
            "Get \"http://127.0.0.1:5000/v2/\": dial tcp 127.0.0.1:5000: connect: connection "
            "refused",
            absl::StatusCode::kUnavailable,
            "registry 127.0.0.1:5000 unreachable: Get \"http://127.0.0.1:5000/v2/\": dial tcp"},
           {false, 404,
            "pull access denied for app, repository does not exist or may require 'docker login'",
            absl::StatusCode::kFailedPrecondition,
            "not found in registry 127.0.0.1:5000, or unauthorized"},
           {true, 500, "something else", absl::StatusCode::kUnavailable,
            "pulling image 127.0.0.1:5000/app:v9 from registry 127.0.0.1:5000 failed: something "
            "else"},
       }) {
    const absl::Status s = PullFailure(ref, host, c.sent_credentials, c.http_status, c.message);
    EXPECT_EQ(s.code(), c.code) << c.message;
    EXPECT_THAT(std::string(s.message()), HasSubstr(c.says)) << c.message;
  }
}

TEST(ImagePullTest, StreamErrorsAreFoundAmongProgressLines) {
  EXPECT_EQ(PullStreamError("{\"status\":\"Pulling from app\",\"id\":\"v1\"}\n"
                            "{\"status\":\"Status: Downloaded newer image\"}\n"),
            "");
  EXPECT_EQ(PullStreamError("{\"status\":\"Pulling from app\"}\n"
                            "{\"errorDetail\":{\"message\":\"unauthorized: authentication "
                            "required\"},\"error\":\"unauthorized: authentication required\"}\n"),
            "unauthorized: authentication required");
  EXPECT_EQ(PullStreamError("{\"error\":\"short form\"}"), "short form");
  EXPECT_EQ(PullStreamError("not json\n\n{\"status\":1}"), "");
}

}  // namespace
}  // namespace eph::providers::docker
