#include "pkg/webhook/signature.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

namespace eph::webhook {

std::string SignGitHub(std::string_view secret, std::string_view body) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(body.data()), body.size(), mac, &len);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "sha256=";
  for (unsigned int i = 0; i < len; ++i) {
    out.push_back(kHex[mac[i] >> 4]);
    out.push_back(kHex[mac[i] & 0xf]);
  }
  return out;
}

bool VerifyGitHub(std::string_view secret, std::string_view body, std::string_view header) {
  if (secret.empty()) return false;
  const std::string expected = SignGitHub(secret, body);
  // The length of a valid signature is public; only the content comparison must be constant time.
  if (header.size() != expected.size()) return false;
  return CRYPTO_memcmp(expected.data(), header.data(), expected.size()) == 0;
}

}  // namespace eph::webhook
