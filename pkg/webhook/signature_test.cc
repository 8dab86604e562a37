#include "pkg/webhook/signature.h"

#include <gtest/gtest.h>

namespace eph::webhook {
namespace {

TEST(SignatureTest, MatchesGitHubsDocumentedExample) {
  // From GitHub's "Validating webhook deliveries" documentation.
  EXPECT_EQ(SignGitHub("It's a Secret to Everybody", "Hello, World!"),
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17");
}

TEST(SignatureTest, VerifiesOnlyTheExactSignature) {
  const std::string sig = SignGitHub("s3cret", R"({"a":1})");
  EXPECT_TRUE(VerifyGitHub("s3cret", R"({"a":1})", sig));
  EXPECT_FALSE(VerifyGitHub("s3cret", R"({"a":2})", sig));
  EXPECT_FALSE(VerifyGitHub("other", R"({"a":1})", sig));
  EXPECT_FALSE(VerifyGitHub("s3cret", R"({"a":1})", sig.substr(0, sig.size() - 1)));
  EXPECT_FALSE(VerifyGitHub("s3cret", R"({"a":1})", ""));
  std::string upper = sig;
  upper[10] = static_cast<char>(std::toupper(upper[10]));
  if (upper != sig) {
    EXPECT_FALSE(VerifyGitHub("s3cret", R"({"a":1})", upper));
  }
  EXPECT_FALSE(VerifyGitHub("", R"({"a":1})", SignGitHub("", R"({"a":1})")));
}

}  // namespace
}  // namespace eph::webhook
