// SHA-256 (OpenSSL's, which uses the CPU's SHA instructions where there are any), whole or
// incrementally, as lowercase hex.
#pragma once

#include <string>
#include <string_view>

struct evp_md_ctx_st;

namespace eph {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  Sha256& Update(std::string_view data);
  // The digest of everything passed to Update; the hasher is done after this.
  std::string HexDigest();

 private:
  evp_md_ctx_st* ctx_;
};

std::string Sha256Hex(std::string_view data);

}  // namespace eph
