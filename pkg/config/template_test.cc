#include "pkg/config/template.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace eph::config {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

TemplateValues AllValues() {
  TemplateValues values;
  values.project = "my-app";
  values.words = "gentle-stream";
  values.number = "42";
  values.pr_number = "1234";
  values.sha = "0123456789abcdef0123456789abcdef01234567";
  values.short_sha = "0123456";
  values.branch = "feature/login";
  return values;
}

TEST(ExpandTemplateTest, SubstitutesEveryVariable) {
  EXPECT_EQ(*ExpandTemplate("{project}-{words}-{number}", AllValues()), "my-app-gentle-stream-42");
  EXPECT_EQ(*ExpandTemplate("pr-{pr_number}", AllValues()), "pr-1234");
  EXPECT_EQ(*ExpandTemplate("{short_sha}/{sha}", AllValues()),
            "0123456/0123456789abcdef0123456789abcdef01234567");
  EXPECT_EQ(*ExpandTemplate("{branch}{branch}", AllValues()), "feature/loginfeature/login");
  EXPECT_EQ(*ExpandTemplate("latest", AllValues()), "latest");
  EXPECT_EQ(*ExpandTemplate("", AllValues()), "");
}

TEST(ExpandTemplateTest, FitsVariableValuesToTheTarget) {
  TemplateValues values = AllValues();
  values.branch = "Feature/Login_page";
  EXPECT_EQ(*ExpandTemplate("pr-{branch}", values, TemplateTarget::kText), "pr-Feature/Login_page");
  EXPECT_EQ(*ExpandTemplate("pr-{branch}", values, TemplateTarget::kImageTag),
            "pr-Feature-Login_page");
  EXPECT_EQ(*ExpandTemplate("{project}-{branch}", values, TemplateTarget::kDnsLabel),
            "my-app-feature-login-page");
  values.branch = std::string(300, 'b');
  EXPECT_EQ(ExpandTemplate("{branch}", values, TemplateTarget::kImageTag)->size(), 128u);
}

TEST(ExpandTemplateTest, MissingValueIsAnErrorNotAnEmptyString) {
  TemplateValues values;
  values.project = "my-app";
  absl::StatusOr<std::string> expanded = ExpandTemplate("pr-{pr_number}", values);
  ASSERT_FALSE(expanded.ok());
  EXPECT_THAT(expanded.status().message(), HasSubstr("no value for `{pr_number}`"));
}

TEST(ExpandTemplateTest, MalformedTemplateIsAnError) {
  absl::StatusOr<std::string> expanded = ExpandTemplate("pr-{pr", AllValues());
  ASSERT_FALSE(expanded.ok());
  EXPECT_EQ(expanded.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(CheckTemplateTest, WellFormedTemplatesHaveNoProblems) {
  EXPECT_THAT(CheckTemplate("{project}-{words}-{number}"), IsEmpty());
  EXPECT_THAT(CheckTemplate("plain"), IsEmpty());
  EXPECT_THAT(CheckTemplate(""), IsEmpty());
}

TEST(CheckTemplateTest, ReportsEveryProblemWithItsOffset) {
  std::vector<TemplateProblem> problems = CheckTemplate("a{pr}b}c{}d{sha");
  ASSERT_EQ(problems.size(), 4u);
  EXPECT_EQ(problems[0].offset, 1u);
  EXPECT_THAT(problems[0].message, HasSubstr("did you mean `{pr_number}`?"));
  EXPECT_EQ(problems[1].offset, 6u);
  EXPECT_THAT(problems[1].message, HasSubstr("unexpected `}`"));
  EXPECT_EQ(problems[2].offset, 8u);
  EXPECT_THAT(problems[2].message, HasSubstr("empty template variable"));
  EXPECT_EQ(problems[3].offset, 11u);
  EXPECT_THAT(problems[3].message, HasSubstr("not closed"));
}

TEST(CheckTemplateTest, UnknownVariableWithoutCloseMatchListsTheValidOnes) {
  std::vector<TemplateProblem> problems = CheckTemplate("{user}");
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_THAT(problems[0].message,
              HasSubstr("(valid: {project}, {words}, {number}, {pr_number}, {sha}, {short_sha}, "
                        "{branch})"));
}

TEST(CheckTemplateTest, NestedBraceReportsTheOuterOneAndChecksTheInner) {
  std::vector<TemplateProblem> problems = CheckTemplate("{a{prnumber}");
  ASSERT_EQ(problems.size(), 2u);
  EXPECT_EQ(problems[0].offset, 0u);
  EXPECT_EQ(problems[1].offset, 2u);
  EXPECT_THAT(problems[1].message, HasSubstr("did you mean `{pr_number}`?"));
}

TEST(SplitTemplateTest, GivesLiteralsAndVariablesWithOffsets) {
  std::vector<TemplatePart> parts = SplitTemplate("pr-{pr_number}-x");
  ASSERT_EQ(parts.size(), 3u);
  EXPECT_FALSE(parts[0].is_variable);
  EXPECT_EQ(parts[0].text, "pr-");
  EXPECT_TRUE(parts[1].is_variable);
  EXPECT_EQ(parts[1].text, "pr_number");
  EXPECT_EQ(parts[1].offset, 3u);
  EXPECT_EQ(parts[2].text, "-x");
  EXPECT_EQ(parts[2].offset, 14u);
}

TEST(TemplateVariablesTest, AreTheDocumentedSeven) {
  EXPECT_THAT(kTemplateVariables,
              ElementsAre("project", "words", "number", "pr_number", "sha", "short_sha", "branch"));
}

}  // namespace
}  // namespace eph::config
