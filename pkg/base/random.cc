#include "pkg/base/random.h"

#include <openssl/rand.h>

#include <cstdlib>

namespace eph {

uint64_t Random::Uniform(uint64_t bound) {
  // Rejection sampling keeps the distribution uniform for bounds that are not powers of two.
  const uint64_t limit = UINT64_MAX - (UINT64_MAX % bound);
  uint64_t v;
  do {
    v = Next();
  } while (v >= limit);
  return v % bound;
}

std::string Random::Hex(size_t n_bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(n_bytes * 2);
  uint64_t word = 0;
  for (size_t i = 0; i < n_bytes; ++i) {
    if (i % 8 == 0) word = Next();
    const auto byte = static_cast<unsigned>(word & 0xff);
    word >>= 8;
    out.push_back(kDigits[byte >> 4]);
    out.push_back(kDigits[byte & 0xf]);
  }
  return out;
}

uint64_t SecureRandom::Next() {
  uint64_t v = 0;
  if (RAND_bytes(reinterpret_cast<unsigned char*>(&v), sizeof(v)) != 1) {
    // Without entropy Eph cannot make unguessable names or tokens; continuing would be unsafe.
    std::abort();
  }
  return v;
}

SecureRandom& SecureRandom::Instance() {
  static SecureRandom random;
  return random;
}

uint64_t SeededRandom::Next() {
  std::lock_guard<std::mutex> lock(mu_);
  return engine_();
}

}  // namespace eph
