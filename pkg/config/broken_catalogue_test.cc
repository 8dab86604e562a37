// The catalogue of broken eph.yaml files under test/config/broken: each NN-name.yaml has a
// NN-name.expect listing, one per line, every diagnostic the file must produce, in order, as
// `LINE:COL message-fragment`. Lines starting with '#' are comments. Exact counts make sure
// that all problems are reported and that fixing one would not leave a misleading second one.
//
// Inputs too large to commit (a 10 MB file, 100000 nested brackets, an alias bomb) are
// generated here instead.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <charconv>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "pkg/config/config.h"
#include "pkg/config/text.h"

namespace eph::config {
namespace {

using ::testing::HasSubstr;

std::filesystem::path BrokenDir() {
  return std::filesystem::path(EPH_SOURCE_DIR) / "test/config/broken";
}

std::string ReadAll(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

struct Expectation {
  int line = 0;
  int column = 0;
  std::string fragment;
};

// Lines look like "7:12 expected a list of strings, got a mapping".
std::vector<Expectation> ReadExpectations(const std::filesystem::path& path) {
  std::vector<Expectation> expectations;
  const std::string content = ReadAll(path);
  for (std::string_view line : text::Split(content, '\n')) {
    if (line.empty() || line.starts_with("#")) continue;
    Expectation expectation;
    const char* end = line.data() + line.size();
    auto [after_line, line_error] = std::from_chars(line.data(), end, expectation.line);
    bool ok = line_error == std::errc() && after_line != end && *after_line == ':';
    if (ok) {
      auto [after_column, column_error] = std::from_chars(after_line + 1, end, expectation.column);
      ok = column_error == std::errc() && after_column != end && *after_column == ' ';
      if (ok) expectation.fragment = std::string(after_column + 1, end);
    }
    EXPECT_TRUE(ok) << path << ": malformed line \"" << line << "\"";
    expectations.push_back(std::move(expectation));
  }
  return expectations;
}

std::vector<std::string> CatalogueNames() {
  std::vector<std::string> names;
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(BrokenDir(), error)) {
    if (entry.path().extension() == ".yaml") names.push_back(entry.path().stem().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

class BrokenCatalogueTest : public ::testing::TestWithParam<std::string> {};

TEST_P(BrokenCatalogueTest, GivesExactlyTheExpectedDiagnostics) {
  const std::filesystem::path yaml = BrokenDir() / (GetParam() + ".yaml");
  const std::filesystem::path expect = BrokenDir() / (GetParam() + ".expect");
  ASSERT_TRUE(std::filesystem::exists(expect)) << "missing " << expect;
  std::vector<Expectation> expectations = ReadExpectations(expect);
  ASSERT_FALSE(expectations.empty()) << expect << " lists no diagnostics";

  ValidationResult result = ParseConfig(ReadAll(yaml), "eph.yaml");
  EXPECT_FALSE(result.ok());
  const std::string report = FormatDiagnostics(result.diagnostics);
  ASSERT_EQ(result.diagnostics.size(), expectations.size()) << report;
  for (size_t i = 0; i < expectations.size(); ++i) {
    const Diagnostic& got = result.diagnostics[i];
    const Expectation& want = expectations[i];
    EXPECT_EQ(got.file, "eph.yaml");
    EXPECT_EQ(text::Cat(got.line, ":", got.column), text::Cat(want.line, ":", want.column))
        << report;
    EXPECT_THAT(got.message, HasSubstr(want.fragment)) << report;
  }
}

INSTANTIATE_TEST_SUITE_P(Catalogue, BrokenCatalogueTest, ::testing::ValuesIn(CatalogueNames()),
                         [](const ::testing::TestParamInfo<std::string>& param_info) {
                           std::string name = "c" + param_info.param;
                           for (char& c : name) {
                             if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           }
                           return name;
                         });

TEST(BrokenCatalogueSizeTest, HasAtLeast25Cases) { EXPECT_GE(CatalogueNames().size(), 25u); }

// Generated inputs: each must give a positioned error, quickly, without crashing.

std::vector<Diagnostic> ParseExpectingFailure(const std::string& text) {
  const auto start = std::chrono::steady_clock::now();
  ValidationResult result = ParseConfig(text, "eph.yaml");
  const auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_FALSE(result.ok());
  EXPECT_FALSE(result.diagnostics.empty());
  // Generous: the point is "does not hang", not a benchmark.
  EXPECT_LT(elapsed, std::chrono::seconds(20));
  for (const Diagnostic& d : result.diagnostics) {
    EXPECT_GE(d.line, 1);
    EXPECT_GE(d.column, 1);
  }
  return result.diagnostics;
}

TEST(GeneratedBrokenConfigTest, TenMegabyteFileIsRefusedWithoutBeingRead) {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / text::Cat("eph_config_big_", ::getpid());
  std::filesystem::create_directories(dir);
  const std::filesystem::path path = dir / "eph.yaml";
  {
    std::ofstream out(path, std::ios::binary);
    std::string line = "# padding padding padding padding padding padding padding padding\n";
    for (size_t written = 0; written < size_t{10} * 1024 * 1024; written += line.size())
      out << line;
  }
  ValidationResult result = ValidateFile(path);
  std::filesystem::remove_all(dir);
  ASSERT_EQ(result.diagnostics.size(), 1u);
  EXPECT_EQ(result.diagnostics[0].line, 1);
  EXPECT_EQ(result.diagnostics[0].column, 1);
  EXPECT_THAT(result.diagnostics[0].message, HasSubstr("may be at most 1048576 bytes (1 MiB)"));
}

TEST(GeneratedBrokenConfigTest, TenMegabyteTextIsRefused) {
  std::vector<Diagnostic> diagnostics =
      ParseExpectingFailure("version: '1.0'\n" + std::string(size_t{10} * 1024 * 1024, '#'));
  ASSERT_EQ(diagnostics.size(), 1u);
  EXPECT_THAT(diagnostics[0].message, HasSubstr("1 MiB"));
}

TEST(GeneratedBrokenConfigTest, HundredThousandOpenBrackets) {
  std::vector<Diagnostic> diagnostics = ParseExpectingFailure(std::string(100000, '['));
  ASSERT_EQ(diagnostics.size(), 1u);
  EXPECT_EQ(diagnostics[0].line, 1);
  // The estimate counts the line's own node and each bracket, so the 64th bracket trips it.
  EXPECT_EQ(diagnostics[0].column, 64);
  EXPECT_THAT(diagnostics[0].message, HasSubstr("nesting is deeper than 64 levels"));
}

TEST(GeneratedBrokenConfigTest, HundredThousandBalancedBraces) {
  std::vector<Diagnostic> diagnostics = ParseExpectingFailure(
      "triggers: " + std::string(100000, '{') + std::string(100000, '}') + "\n");
  ASSERT_EQ(diagnostics.size(), 1u);
  EXPECT_THAT(diagnostics[0].message, HasSubstr("nesting is deeper"));
}

TEST(GeneratedBrokenConfigTest, DeepCompactSequences) {
  std::string text = "triggers:\n";
  for (int i = 0; i < 100000; ++i) text += "- ";
  std::vector<Diagnostic> diagnostics = ParseExpectingFailure(text + "x\n");
  ASSERT_EQ(diagnostics.size(), 1u);
  EXPECT_THAT(diagnostics[0].message, HasSubstr("nesting is deeper"));
}

TEST(GeneratedBrokenConfigTest, DeepIndentation) {
  std::string text;
  for (int level = 0; level < 1000; ++level) text += std::string(level, ' ') + "k:\n";
  std::vector<Diagnostic> diagnostics = ParseExpectingFailure(text);
  ASSERT_EQ(diagnostics.size(), 1u);
  EXPECT_THAT(diagnostics[0].message, HasSubstr("nesting is deeper"));
}

TEST(GeneratedBrokenConfigTest, AliasBombIsBounded) {
  // 1000 triggers, each an alias of one trigger whose labels are 2000 aliases: two million
  // visits if expanded, from a file of a few kilobytes.
  std::string text = "version: '1.0'\nname: app\ndocker: {}\nlabel: &l preview\ntriggers:\n";
  text += "  - &t {type: pr_label, labels: [";
  for (int i = 0; i < 2000; ++i) text += i ? ", *l" : "*l";
  text += "]}\n";
  for (int i = 0; i < 1000; ++i) text += "  - *t\n";
  std::vector<Diagnostic> diagnostics = ParseExpectingFailure(text);
  bool bounded = false;
  for (const Diagnostic& d : diagnostics) {
    bounded = bounded || d.message.find("counting every use of a YAML alias") != std::string::npos;
  }
  EXPECT_TRUE(bounded) << FormatDiagnostics(diagnostics);
}

TEST(GeneratedBrokenConfigTest, LongListsStayLinear) {
  // Cross-checks between lists (labels vs skip_labels, duplicate names) must not be quadratic.
  std::string text = "version: '1.0'\nname: app\nkubernetes:\n  manifests: [k8s]\n";
  text += "triggers:\n  - type: pr_label\n    labels: [";
  for (int i = 0; i < 30000; ++i) text += text::Cat(i ? "," : "", "a", i);
  text += "]\n    skip_labels: [";
  for (int i = 0; i < 30000; ++i) text += text::Cat(i ? "," : "", "b", i);
  text += ", a7]\ndatabase:\n  instances:\n";
  for (int i = 0; i < 5000; ++i) text += text::Cat("    - {name: d", i, ", version: '1'}\n");
  std::vector<Diagnostic> diagnostics = ParseExpectingFailure(text);
  ASSERT_EQ(diagnostics.size(), 1u) << FormatDiagnostics(diagnostics);
  EXPECT_THAT(diagnostics[0].message, HasSubstr("label \"a7\" is in both"));
}

TEST(GeneratedBrokenConfigTest, LongSingleLine) {
  std::vector<Diagnostic> diagnostics =
      ParseExpectingFailure("name: " + std::string(1024 * 1024 - 16, 'x') + ": y\n");
  EXPECT_FALSE(diagnostics.empty());
}

TEST(GeneratedBrokenConfigTest, RandomBytesNeverCrash) {
  // A fixed-seed sweep of short random inputs; the fuzz target goes much further.
  uint32_t state = 12345;
  for (int round = 0; round < 2000; ++round) {
    std::string text;
    size_t length = 1 + (state % 200);
    for (size_t i = 0; i < length; ++i) {
      state = state * 1664525u + 1013904223u;
      const char alphabet[] = "ab:- \n[]{}\"'#&*!|>?,.\t\x01\xc3\xa9";
      text.push_back(alphabet[(state >> 16) % (sizeof(alphabet) - 1)]);
    }
    ValidationResult result = ParseConfig(text);
    EXPECT_EQ(result.ok(), result.diagnostics.empty());
  }
}

}  // namespace
}  // namespace eph::config
