// Replays the HTTP request fuzz target's seed corpus as an ordinary test, so every seed and the
// target's invariants (401 without a token, no change without credentials, no 500, JSON answers
// that parse) are checked in every build, gcc included.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

TEST(ApiRequestFuzzCorpusTest, EverySeedRunsWithoutBreakingAnInvariant) {
  const std::filesystem::path dir =
      std::filesystem::path(EPH_SOURCE_DIR) / "pkg/api/testdata/fuzz-corpus";
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.is_regular_file()) files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());  // the store carries state from one seed to the next
  for (const auto& file : files) {
    SCOPED_TRACE(file.string());
    std::ifstream in(file, std::ios::binary);
    const std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    // Aborts (failing the test) if an invariant breaks.
    LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(data.data()), data.size());
  }
  // A moved corpus must not turn this into a test that checks nothing.
  EXPECT_GE(files.size(), 12u) << "seed corpus missing under " << dir;
}

}  // namespace
