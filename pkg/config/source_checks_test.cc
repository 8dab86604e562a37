#include "pkg/config/source_checks.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

namespace eph::config {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;

struct Checked {
  bool ok;
  std::vector<Diagnostic> diagnostics;
};

Checked Check(std::string_view text) {
  SourceText source(text);
  DiagnosticCollector collector("t.yaml", source);
  bool ok = CheckSourceText(source, collector);
  return {ok, std::move(collector).Take()};
}

TEST(SourceTextTest, CountsLinesLikeYamlCpp) {
  SourceText source("a\nb\r\nc\rd");
  EXPECT_EQ(source.line_count(), 4);
  EXPECT_EQ(source.Line(1), "b");
  EXPECT_EQ(source.Line(3), "d");
  EXPECT_EQ(source.FromOffset(6).line, 3);  // the lone "\r" ends line 3
  EXPECT_EQ(source.FromOffset(7).line, 4);
}

TEST(SourceTextTest, DropsByteOrderMark) {
  SourceText source("\xEF\xBB\xBFname: x\n");
  EXPECT_EQ(source.Line(0), "name: x");
}

TEST(SourceTextTest, ClampsMarksPastTheEnd) {
  SourceText source("ab\n");
  EXPECT_EQ(source.FromMark(-1, -1).line, 2);
  EXPECT_EQ(source.FromMark(0, 99).column, 3);
  EXPECT_EQ(source.FromMark(99, 0).line, 2);
}

TEST(CheckSourceTextTest, OrdinaryYamlPasses) {
  Checked checked = Check(
      "version: \"1.0\"\n"
      "key: \"a # not a comment [[[[\"\n"
      "other: 'it''s [ fine'\n"
      "script: |\n"
      "  \tindented with a tab inside a block scalar\n"
      "  {{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{\n"
      "flow: [a,\n"
      "\tb]\n"
      "# [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\n"
      "key2: value\t# tab before a comment\n");
  EXPECT_TRUE(checked.ok);
  EXPECT_THAT(checked.diagnostics, IsEmpty());
}

TEST(CheckSourceTextTest, ReportsEveryTabIndentedLine) {
  Checked checked = Check("a:\n\tb: 1\nc:\n  \td: 2\n");
  EXPECT_FALSE(checked.ok);
  ASSERT_EQ(checked.diagnostics.size(), 2u);
  EXPECT_EQ(checked.diagnostics[0].line, 2);
  EXPECT_EQ(checked.diagnostics[0].column, 1);
  EXPECT_EQ(checked.diagnostics[1].line, 4);
  EXPECT_EQ(checked.diagnostics[1].column, 3);
  EXPECT_THAT(checked.diagnostics[1].message, HasSubstr("tab character in indentation"));
}

TEST(CheckSourceTextTest, RefusesOversizedText) {
  Checked checked = Check(std::string(kMaxConfigBytes + 1, '#'));
  EXPECT_FALSE(checked.ok);
  ASSERT_EQ(checked.diagnostics.size(), 1u);
  EXPECT_THAT(checked.diagnostics[0].message, HasSubstr("at most 1048576 bytes"));
}

TEST(CheckSourceTextTest, AcceptsTextExactlyAtTheLimit) {
  EXPECT_TRUE(Check(std::string(kMaxConfigBytes, '#')).ok);
}

TEST(CheckSourceTextTest, RejectsInvalidUtf8Forms) {
  const std::string bad[] = {
      "a: \xC0\xAF\n",          // overlong '/'
      "a: \xED\xA0\x80\n",      // surrogate
      "a: \xF4\x90\x80\x80\n",  // above U+10FFFF
      "a: \xE2\x82\n",          // truncated
      "a: \x80\n",              // stray continuation byte
  };
  for (const std::string& text : bad) {
    Checked checked = Check(text);
    EXPECT_FALSE(checked.ok);
    ASSERT_EQ(checked.diagnostics.size(), 1u);
    EXPECT_THAT(checked.diagnostics[0].message, HasSubstr("not valid UTF-8"));
    EXPECT_EQ(checked.diagnostics[0].column, 4);
  }
}

TEST(CheckSourceTextTest, AcceptsMultilingualText) {
  EXPECT_TRUE(Check("name: \"caf\xC3\xA9 \xE2\x98\x95 \xF0\x9F\x8C\x8A\"\n").ok);
}

TEST(CheckSourceTextTest, RejectsControlCharacters) {
  Checked checked = Check("a: b\x1b[31m\n");
  EXPECT_FALSE(checked.ok);
  ASSERT_EQ(checked.diagnostics.size(), 1u);
  EXPECT_THAT(checked.diagnostics[0].message, HasSubstr("U+001B"));
  EXPECT_EQ(checked.diagnostics[0].column, 5);
}

TEST(CheckSourceTextTest, BoundsFlowNesting) {
  std::string ok_text = "a: " + std::string(kMaxNestingDepth - 1, '[') +
                        std::string(kMaxNestingDepth - 1, ']') + "\n";
  EXPECT_TRUE(Check(ok_text).ok);
  Checked deep = Check("a: " + std::string(100000, '{'));
  EXPECT_FALSE(deep.ok);
  ASSERT_EQ(deep.diagnostics.size(), 1u);
  EXPECT_THAT(deep.diagnostics[0].message, HasSubstr("nesting is deeper than 64 levels"));
}

TEST(CheckSourceTextTest, BoundsBlockNestingByIndentation) {
  std::string text;
  for (int level = 0; level < 100; ++level) {
    text += std::string(static_cast<size_t>(level), ' ') + "k:\n";
  }
  Checked checked = Check(text);
  EXPECT_FALSE(checked.ok);
  ASSERT_EQ(checked.diagnostics.size(), 1u);
  EXPECT_EQ(checked.diagnostics[0].line, kMaxNestingDepth + 1);
}

TEST(CheckSourceTextTest, BoundsCompactSequenceNesting) {
  std::string text;
  for (int i = 0; i < 100000; ++i) text += "- ";
  Checked checked = Check(text + "x\n");
  EXPECT_FALSE(checked.ok);
  ASSERT_EQ(checked.diagnostics.size(), 1u);
}

}  // namespace
}  // namespace eph::config
