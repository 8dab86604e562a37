// Replays the compose policy fuzz target's seed corpus as an ordinary test, so the corpus and
// the target's invariants are checked in every build.
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

TEST(ComposePolicyFuzzCorpusTest, EverySeedRunsWithoutBreakingTheInvariants) {
  const std::filesystem::path dir = std::filesystem::path(EPH_SOURCE_DIR) /
                                    "pkg/providers/docker/testdata/compose-policy-fuzz-corpus";
  size_t inputs = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    std::ifstream in(entry.path(), std::ios::binary);
    const std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    // Aborts (failing the test) if an invariant breaks.
    LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(data.data()), data.size());
    ++inputs;
  }
  EXPECT_GE(inputs, 6u) << "seed corpus missing under " << dir;
}

}  // namespace
