#include "pkg/database/scram.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_split.h"

namespace eph::database {
namespace {

std::string Unbase64(const std::string& s) {
  std::string out;
  EXPECT_TRUE(absl::Base64Unescape(s, &out)) << s;
  return out;
}

std::string HmacSha256(const std::string& key, const std::string& data) {
  unsigned char out[SHA256_DIGEST_LENGTH];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &len);
  return std::string(reinterpret_cast<const char*>(out), len);
}

std::string Sha256(const std::string& data) {
  unsigned char out[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), out);
  return std::string(reinterpret_cast<const char*>(out), sizeof out);
}

// RFC 7677 section 3: user "user", password "pencil". A server holding the verifier must accept
// the client's proof and answer with the server signature of the example exchange.
TEST(ScramTest, VerifierAuthenticatesTheExchangeOfRfc7677) {
  const std::string salt = Unbase64("W22ZaJ0SNY7soEsUEjb6gQ==");
  absl::StatusOr<std::string> verifier = ScramSha256Verifier("pencil", salt, 4096);
  ASSERT_TRUE(verifier.ok()) << verifier.status();
  // SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>
  const std::vector<std::string> parts = absl::StrSplit(*verifier, absl::ByAnyChar("$:"));
  ASSERT_EQ(parts.size(), 5u) << *verifier;
  EXPECT_EQ(parts[0], "SCRAM-SHA-256");
  EXPECT_EQ(parts[1], "4096");
  EXPECT_EQ(parts[2], "W22ZaJ0SNY7soEsUEjb6gQ==");
  const std::string stored_key = Unbase64(parts[3]);
  const std::string server_key = Unbase64(parts[4]);

  const std::string nonce = "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
  const std::string auth_message = "n=user,r=rOprNGfwEbeRWgbNEkqO,r=" + nonce +
                                   ",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,c=biws,r=" + nonce;
  EXPECT_EQ(absl::Base64Escape(HmacSha256(server_key, auth_message)),
            "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
  const std::string proof = Unbase64("dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=");
  const std::string client_signature = HmacSha256(stored_key, auth_message);
  std::string client_key(proof.size(), '\0');
  for (size_t i = 0; i < proof.size(); ++i) client_key[i] = static_cast<char>(proof[i] ^ client_signature[i]);
  EXPECT_EQ(Sha256(client_key), stored_key);
}

TEST(ScramTest, FreshVerifiersHaveTheirOwnSaltAndPostgresIterations) {
  SeededRandom random(7);
  absl::StatusOr<std::string> a = ScramSha256Verifier("0123abcd", random);
  absl::StatusOr<std::string> b = ScramSha256Verifier("0123abcd", random);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(*a, *b);
  EXPECT_THAT(*a, ::testing::StartsWith("SCRAM-SHA-256$4096:"));
  const std::vector<std::string> parts = absl::StrSplit(*a, absl::ByAnyChar("$:"));
  ASSERT_EQ(parts.size(), 5u);
  EXPECT_EQ(Unbase64(parts[2]).size(), 16u);
}

TEST(ScramTest, RefusesWhatItCannotHashLikePostgres) {
  EXPECT_EQ(ScramSha256Verifier("p\xc3\xa4ssword", "salt").status().code(),
            absl::StatusCode::kInvalidArgument);  // SASLprep would normalise it
  EXPECT_EQ(ScramSha256Verifier("pw", "").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ScramSha256Verifier("pw", "salt", 0).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace eph::database
