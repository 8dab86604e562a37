#include "pkg/config/policy.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace eph::config {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;

ProjectConfig Parse(const std::string& text) {
  ValidationResult parsed = ParseConfig(text);
  EXPECT_TRUE(parsed.ok()) << FormatDiagnostics(parsed.diagnostics);
  return parsed.config.value_or(ProjectConfig{});
}

constexpr char kHead[] =
    "version: \"1.0\"\nname: shop\n"
    "triggers: [{type: pr_label, labels: [go]}]\n"
    "environment:\n  allow_forks: true\n  secrets: [STRIPE_KEY]\n"
    "  variables: {MODE: demo}\n"
    "docker: {compose_file: head.yaml}\n";

constexpr char kBase[] =
    "version: \"1.0\"\nname: shop\n"
    "triggers: [{type: pr_label, labels: [preview], wait_for_checks: [ci]}]\n"
    "environment:\n  secrets: [MODE]\n"
    "docker: {compose_file: base.yaml}\n";

TEST(ProjectPolicyTest, TheDefaultBranchDecidesTheGatesAndTheHeadWhatToDeploy) {
  const ProjectConfig head = Parse(kHead);
  const ProjectConfig base = Parse(kBase);
  PolicyOutcome out = ApplyProjectPolicy(head, &base, /*from_fork=*/false);
  EXPECT_EQ(out.config.triggers, base.triggers);
  EXPECT_FALSE(out.config.environment.allow_forks);
  EXPECT_EQ(out.config.environment.secrets, std::vector<std::string>{"MODE"});
  // The policy's secret replaces the head's variable of the same name.
  EXPECT_EQ(out.config.environment.variables.count("MODE"), 0u);
  ASSERT_TRUE(out.config.docker.has_value());
  EXPECT_EQ(out.config.docker->compose_file, "head.yaml");
  EXPECT_FALSE(out.restricted);
  EXPECT_THAT(out.refusal, IsEmpty());
  EXPECT_EQ(out.notes.size(), 3u);
}

TEST(ProjectPolicyTest, AForkCannotAllowItselfWithoutADefaultBranchConfig) {
  PolicyOutcome out = ApplyProjectPolicy(Parse(kHead), nullptr, /*from_fork=*/true);
  EXPECT_FALSE(out.config.environment.allow_forks);
  ASSERT_EQ(out.config.triggers.size(), 1u);
  EXPECT_EQ(out.config.triggers[0].labels, std::vector<std::string>{"preview"});
  EXPECT_TRUE(out.restricted);
  EXPECT_THAT(out.config.environment.secrets, IsEmpty());
}

TEST(ProjectPolicyTest, WithoutADefaultBranchConfigTheRepositorysOwnPullRequestKeepsItsPolicy) {
  const ProjectConfig head = Parse(kHead);
  PolicyOutcome out = ApplyProjectPolicy(head, nullptr, /*from_fork=*/false);
  EXPECT_EQ(out.config, head);
  EXPECT_THAT(out.notes, IsEmpty());
}

TEST(ProjectPolicyTest, AForkAllowedByTheDefaultBranchGetsTheStrictProfile) {
  const ProjectConfig base = Parse(
      "version: \"1.0\"\nname: shop\nenvironment:\n  allow_forks: true\n  secrets: [TOKEN]\n"
      "docker: {}\n");
  PolicyOutcome out = ApplyProjectPolicy(Parse(kHead), &base, /*from_fork=*/true);
  EXPECT_TRUE(out.config.environment.allow_forks);
  EXPECT_TRUE(out.restricted);
  EXPECT_THAT(out.config.environment.secrets, IsEmpty());
  EXPECT_THAT(out.notes.back(), HasSubstr("no secrets"));
}

TEST(ProjectPolicyTest, CloningTheTemplateDatabaseNeedsTheDefaultBranchsConsent) {
  const std::string clone =
      "version: \"1.0\"\nname: shop\ndocker: {}\n"
      "database:\n  instances:\n    - name: main\n      version: \"15\"\n"
      "      template: {strategy: clone}\n";
  const std::string empty =
      "version: \"1.0\"\nname: shop\ndocker: {}\n"
      "database:\n  instances:\n    - name: main\n      version: \"15\"\n";
  const ProjectConfig base_without = Parse(empty);
  const ProjectConfig base_with = Parse(clone);
  EXPECT_THAT(ApplyProjectPolicy(Parse(clone), &base_without, false).refusal,
              HasSubstr("database `main` clones the template database"));
  EXPECT_THAT(ApplyProjectPolicy(Parse(clone), &base_with, false).refusal, IsEmpty());
  EXPECT_THAT(ApplyProjectPolicy(Parse(empty), &base_without, false).refusal, IsEmpty());
}

}  // namespace
}  // namespace eph::config
