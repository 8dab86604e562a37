// Random: the one source of randomness. Names, tokens, passwords and backoff jitter take a
// Random& so tests can seed it and get the same names every run.
//
// Thread-safety: both implementations are safe to call from any thread.
#pragma once

#include <cstdint>
#include <mutex>
#include <random>
#include <string>

namespace eph {

class Random {
 public:
  virtual ~Random() = default;
  virtual uint64_t Next() = 0;
  // Uniform in [0, bound); bound must be > 0.
  uint64_t Uniform(uint64_t bound);
  // n random bytes rendered as lowercase hex (2n characters).
  std::string Hex(size_t n_bytes);
};

// Cryptographically secure (OpenSSL RAND_bytes): for tokens, passwords, unguessable names.
class SecureRandom final : public Random {
 public:
  uint64_t Next() override;
  static SecureRandom& Instance();
};

// Deterministic for a given seed: for tests.
class SeededRandom final : public Random {
 public:
  explicit SeededRandom(uint64_t seed) : engine_(seed) {}
  uint64_t Next() override;

 private:
  std::mutex mu_;
  std::mt19937_64 engine_;
};

}  // namespace eph
