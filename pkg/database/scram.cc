#include "pkg/database/scram.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include <array>
#include <cstdint>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace eph::database {
namespace {

using Digest = std::array<unsigned char, SHA256_DIGEST_LENGTH>;

Digest Hmac(const Digest& key, std::string_view data) {
  Digest out{};
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out.data(), &len);
  return out;
}

std::string Base64(std::string_view bytes) {
  return absl::Base64Escape(absl::string_view(bytes.data(), bytes.size()));
}
std::string Base64(const Digest& d) {
  return Base64(std::string_view(reinterpret_cast<const char*>(d.data()), d.size()));
}

}  // namespace

absl::StatusOr<std::string> ScramSha256Verifier(std::string_view password, std::string_view salt,
                                                int iterations) {
  for (char c : password) {
    if (static_cast<unsigned char>(c) >= 0x80) {
      return absl::InvalidArgumentError("a SCRAM password must be ASCII");
    }
  }
  if (salt.empty() || iterations < 1) {
    return absl::InvalidArgumentError("a SCRAM verifier needs a salt and iterations >= 1");
  }
  Digest salted{};
  if (PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()),
                        reinterpret_cast<const unsigned char*>(salt.data()),
                        static_cast<int>(salt.size()), iterations, EVP_sha256(),
                        static_cast<int>(salted.size()), salted.data()) != 1) {
    return absl::InternalError("PBKDF2 failed");
  }
  const Digest client_key = Hmac(salted, "Client Key");
  Digest stored_key{};
  SHA256(client_key.data(), client_key.size(), stored_key.data());
  const Digest server_key = Hmac(salted, "Server Key");
  return absl::StrCat("SCRAM-SHA-256$", iterations, ":", Base64(salt), "$", Base64(stored_key), ":",
                      Base64(server_key));
}

absl::StatusOr<std::string> ScramSha256Verifier(std::string_view password, Random& random) {
  std::string salt;
  for (int i = 0; i < 2; ++i) {
    uint64_t word = random.Next();
    for (int b = 0; b < 8; ++b, word >>= 8) salt.push_back(static_cast<char>(word & 0xff));
  }
  return ScramSha256Verifier(password, salt, kScramIterations);
}

}  // namespace eph::database
