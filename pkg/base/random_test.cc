#include "pkg/base/random.h"

#include <gtest/gtest.h>

#include <set>

namespace eph {
namespace {

TEST(RandomTest, SeededIsDeterministic) {
  SeededRandom a(42), b(42), c(43);
  const uint64_t first = a.Next();
  EXPECT_EQ(first, b.Next());
  EXPECT_NE(first, c.Next());
}

TEST(RandomTest, UniformStaysInBoundsAndCoversThem) {
  SeededRandom r(7);
  std::set<uint64_t> seen;
  for (int i = 0; i < 1000; ++i) {
    const uint64_t v = r.Uniform(10);
    ASSERT_LT(v, 10u);
    seen.insert(v);
  }
  EXPECT_EQ(seen.size(), 10u);
}

TEST(RandomTest, HexHasTwoDigitsPerByte) {
  const std::string h = SecureRandom::Instance().Hex(16);
  EXPECT_EQ(h.size(), 32u);
  EXPECT_EQ(h.find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_NE(h, SecureRandom::Instance().Hex(16));
}

}  // namespace
}  // namespace eph
