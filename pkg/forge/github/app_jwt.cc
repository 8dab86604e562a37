#include "pkg/forge/github/app_jwt.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <nlohmann/json.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"

namespace eph::forge::github {

std::string Base64UrlEncode(const std::string& bytes) {
  return absl::WebSafeBase64Escape(bytes);  // unpadded, '-' and '_'
}

absl::StatusOr<std::unique_ptr<AppJwtSigner>> AppJwtSigner::Create(
    std::string app_id, const std::string& private_key_pem) {
  if (app_id.empty()) return absl::InvalidArgumentError("the GitHub App id is empty");
  BIO* bio = BIO_new_mem_buf(private_key_pem.data(), static_cast<int>(private_key_pem.size()));
  if (bio == nullptr) return absl::ResourceExhaustedError("BIO_new_mem_buf failed");
  EVP_PKEY* key = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (key == nullptr) {
    return absl::InvalidArgumentError(
        "the GitHub App private key is not a PEM private key (download it from the App's "
        "settings page: \"Generate a private key\")");
  }
  if (EVP_PKEY_base_id(key) != EVP_PKEY_RSA) {
    EVP_PKEY_free(key);
    return absl::InvalidArgumentError("the GitHub App private key is not an RSA key");
  }
  return std::unique_ptr<AppJwtSigner>(new AppJwtSigner(std::move(app_id), key));
}

AppJwtSigner::~AppJwtSigner() { EVP_PKEY_free(static_cast<EVP_PKEY*>(key_)); }

absl::StatusOr<std::string> AppJwtSigner::Sign(TimePoint now) const {
  const int64_t seconds =
      std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
  nlohmann::json claims = {{"iat", seconds - 60}, {"exp", seconds + 540}};
  const bool numeric = !app_id_.empty() && std::all_of(app_id_.begin(), app_id_.end(), [](char c) {
    return absl::ascii_isdigit(c);
  });
  if (numeric) {
    claims["iss"] = std::stoll(app_id_);
  } else {
    claims["iss"] = app_id_;  // a client id ("Iv1.…") works too
  }
  const std::string signing_input =
      Base64UrlEncode(R"({"alg":"RS256","typ":"JWT"})") + "." + Base64UrlEncode(claims.dump());
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  if (ctx == nullptr) return absl::ResourceExhaustedError("EVP_MD_CTX_new failed");
  size_t length = 0;
  std::string signature;
  bool ok =
      EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, static_cast<EVP_PKEY*>(key_)) == 1 &&
      EVP_DigestSign(ctx, nullptr, &length,
                     reinterpret_cast<const unsigned char*>(signing_input.data()),
                     signing_input.size()) == 1;
  if (ok) {
    signature.resize(length);
    ok = EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(signature.data()), &length,
                        reinterpret_cast<const unsigned char*>(signing_input.data()),
                        signing_input.size()) == 1;
    signature.resize(length);
  }
  EVP_MD_CTX_free(ctx);
  if (!ok) return absl::InternalError("signing the GitHub App JWT failed");
  return signing_input + "." + Base64UrlEncode(signature);
}

}  // namespace eph::forge::github
