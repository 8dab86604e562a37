#include "pkg/api/tokens.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace eph::api {
namespace {

TEST(TokensTest, SecretsArePrefixedRandomAndHashedAsSha256Hex) {
  SeededRandom random(1);
  const std::string a = GenerateTokenSecret(random);
  const std::string b = GenerateTokenSecret(random);
  EXPECT_THAT(a, ::testing::MatchesRegex("eph_[0-9a-f]{64}"));
  EXPECT_NE(a, b);
  // SHA-256("abc"), FIPS 180-2 test vector.
  EXPECT_EQ(HashToken("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_NE(HashToken(a), HashToken(b));
}

TEST(TokensTest, BearerHeaderParsing) {
  EXPECT_EQ(BearerToken("Bearer eph_x"), "eph_x");
  EXPECT_EQ(BearerToken("bearer  eph_x "), "eph_x");
  EXPECT_EQ(BearerToken("Basic dXNlcjpwYXNz"), "");
  EXPECT_EQ(BearerToken("Bearer "), "");
  EXPECT_EQ(BearerToken(""), "");
}

}  // namespace
}  // namespace eph::api
