// The JSON Web Token a GitHub App presents to the App endpoints (to find an installation and
// mint its access tokens): RS256 over the App's private key, `iat` 60 seconds in the past to
// allow for clock drift, `exp` nine minutes ahead (GitHub allows ten), `iss` the App id.
//
// Thread-safety: AppJwtSigner is immutable after Create and safe to share.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "pkg/base/clock.h"

namespace eph::forge::github {

class AppJwtSigner {
 public:
  // InvalidArgument when `private_key_pem` is not an RSA private key in PEM form.
  static absl::StatusOr<std::unique_ptr<AppJwtSigner>> Create(std::string app_id,
                                                              const std::string& private_key_pem);
  ~AppJwtSigner();
  AppJwtSigner(const AppJwtSigner&) = delete;
  AppJwtSigner& operator=(const AppJwtSigner&) = delete;

  absl::StatusOr<std::string> Sign(TimePoint now) const;

 private:
  AppJwtSigner(std::string app_id, void* key) : app_id_(std::move(app_id)), key_(key) {}
  const std::string app_id_;
  void* const key_;  // EVP_PKEY*
};

std::string Base64UrlEncode(const std::string& bytes);

}  // namespace eph::forge::github
