#include "pkg/config/diagnostic.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

namespace eph::config {
namespace {

using ::testing::ElementsAre;
using ::testing::Field;
using ::testing::HasSubstr;

TEST(FormatDiagnosticTest, UsesCompilerStyle) {
  EXPECT_EQ(FormatDiagnostic({"eph.yaml", 7, 3, "unknown key `tll`"}),
            "eph.yaml:7:3: error: unknown key `tll`");
  EXPECT_EQ(FormatDiagnostic({"eph.yaml", 0, 0, "cannot read file: No such file or directory"}),
            "eph.yaml: error: cannot read file: No such file or directory");
}

TEST(FormatDiagnosticsTest, OnePerLine) {
  EXPECT_EQ(FormatDiagnostics({{"a.yaml", 1, 1, "x"}, {"a.yaml", 2, 5, "y"}}),
            "a.yaml:1:1: error: x\na.yaml:2:5: error: y\n");
  EXPECT_EQ(FormatDiagnostics({}), "");
}

TEST(SortAndDeduplicateTest, SortsByPositionKeepingOrderOfEqualPositions) {
  std::vector<Diagnostic> diagnostics = {
      {"f", 3, 1, "c"}, {"f", 1, 9, "b"}, {"f", 1, 2, "a"}, {"f", 3, 1, "d"}, {"f", 1, 9, "b"},
  };
  SortAndDeduplicate(diagnostics);
  EXPECT_THAT(diagnostics,
              ElementsAre(Field(&Diagnostic::message, "a"), Field(&Diagnostic::message, "b"),
                          Field(&Diagnostic::message, "c"), Field(&Diagnostic::message, "d")));
}

TEST(DiagnosticCollectorTest, ConvertsMarksToOneBasedCodePointColumns) {
  SourceText source("a: 1\n\xC3\xA9t\xC3\xA9: [x]\n");
  DiagnosticCollector collector("f.yaml", source);
  collector.AddAtMark(1, 7, "at the [");  // byte 7 of "été: [x]" is the 6th character
  std::vector<Diagnostic> diagnostics = std::move(collector).Take();
  ASSERT_EQ(diagnostics.size(), 1u);
  EXPECT_EQ(diagnostics[0].line, 2);
  EXPECT_EQ(diagnostics[0].column, 6);
}

TEST(DiagnosticCollectorTest, StopsAfterTheLimit) {
  SourceText source("x\n");
  DiagnosticCollector collector("f.yaml", source);
  for (size_t i = 0; i < 3 * DiagnosticCollector::kMaxDiagnostics; ++i) {
    collector.AddAtOffset(0, "problem " + std::to_string(i));
  }
  EXPECT_TRUE(collector.full());
  std::vector<Diagnostic> diagnostics = std::move(collector).Take();
  ASSERT_EQ(diagnostics.size(), DiagnosticCollector::kMaxDiagnostics + 1);
  EXPECT_THAT(diagnostics.back().message, HasSubstr("too many errors"));
}

TEST(DiagnosticCollectorTest, DropsExactDuplicates) {
  SourceText source("x\n");
  DiagnosticCollector collector("f.yaml", source);
  collector.AddAtOffset(0, "same");
  collector.AddAtOffset(0, "same");
  collector.AddAtOffset(1, "same");
  EXPECT_EQ(std::move(collector).Take().size(), 2u);
}

}  // namespace
}  // namespace eph::config
