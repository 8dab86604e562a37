#include "pkg/config/repo_path.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace eph::config {
namespace {

using ::testing::HasSubstr;

TEST(NormalizeRepoPathTest, NormalizesLexically) {
  EXPECT_EQ(*NormalizeRepoPath("./k8s/base"), "k8s/base");
  EXPECT_EQ(*NormalizeRepoPath("./k8s/../k8s/base"), "k8s/base");
  EXPECT_EQ(*NormalizeRepoPath("k8s//overlays/preview/"), "k8s/overlays/preview");
  EXPECT_EQ(*NormalizeRepoPath("."), ".");
  EXPECT_EQ(*NormalizeRepoPath("./"), ".");
  EXPECT_EQ(*NormalizeRepoPath("a/.."), ".");
  EXPECT_EQ(*NormalizeRepoPath("a/b/../../c"), "c");
  EXPECT_EQ(*NormalizeRepoPath("..foo/bar"), "..foo/bar");  // a name, not a parent reference
}

TEST(NormalizeRepoPathTest, RefusesPathsOutsideTheRepository) {
  struct Case {
    std::string path;
    std::string fragment;
  };
  const Case cases[] = {
      {"", "empty"},
      {"/etc/passwd", "absolute"},
      {"C:/Users/x", "absolute"},
      {"..", "leaves the repository"},
      {"../x", "leaves the repository"},
      {"./../x", "leaves the repository"},
      {"a/../../x", "leaves the repository"},
      {"k8s\\base", "'\\'"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<std::string> normalized = NormalizeRepoPath(c.path);
    ASSERT_FALSE(normalized.ok()) << c.path;
    EXPECT_THAT(normalized.status().message(), HasSubstr(c.fragment)) << c.path;
  }
}

TEST(NormalizePathPatternTest, StripsDotSlashAndKeepsNegation) {
  EXPECT_EQ(*NormalizePathPattern("./services/**"), "services/**");
  EXPECT_EQ(*NormalizePathPattern("!./docs/**"), "!docs/**");
  EXPECT_EQ(*NormalizePathPattern("**/*.go"), "**/*.go");
  EXPECT_FALSE(NormalizePathPattern("").ok());
  EXPECT_FALSE(NormalizePathPattern("!").ok());
  EXPECT_FALSE(NormalizePathPattern("/abs").ok());
  EXPECT_FALSE(NormalizePathPattern("a/../b").ok());
  EXPECT_FALSE(NormalizePathPattern("src/[ab").ok());
  EXPECT_TRUE(NormalizePathPattern("src/[]ab]").ok());
}

TEST(PathPatternMatchesTest, FollowsGitHubActionsGlobs) {
  EXPECT_TRUE(PathPatternMatches("*.md", "README.md"));
  EXPECT_FALSE(PathPatternMatches("*.md", "docs/README.md"));  // '*' stops at '/'
  EXPECT_TRUE(PathPatternMatches("**.md", "docs/README.md"));
  EXPECT_TRUE(PathPatternMatches("**/*.md", "README.md"));  // "**/" may match nothing
  EXPECT_TRUE(PathPatternMatches("**/*.md", "a/b/c.md"));
  EXPECT_TRUE(PathPatternMatches("services/api/**", "services/api/main.go"));
  EXPECT_TRUE(PathPatternMatches("services/*/main.go", "services/api/main.go"));
  EXPECT_FALSE(PathPatternMatches("services/*/main.go", "services/api/v2/main.go"));
  EXPECT_TRUE(PathPatternMatches("services/**/main.go", "services/api/v2/main.go"));
  EXPECT_TRUE(PathPatternMatches("src/?.c", "src/a.c"));
  EXPECT_FALSE(PathPatternMatches("src/?.c", "src/ab.c"));
  EXPECT_TRUE(PathPatternMatches("v[0-9].txt", "v7.txt"));
  EXPECT_FALSE(PathPatternMatches("v[!0-9].txt", "v7.txt"));
  EXPECT_TRUE(PathPatternMatches("v[^0-9].txt", "vx.txt"));
  EXPECT_FALSE(PathPatternMatches("a[/]b", "a/b"));  // classes never match '/'
}

TEST(PathPatternMatchesTest, DirectoryPatternCoversEverythingBelow) {
  EXPECT_TRUE(PathPatternMatches("docs", "docs/guide/intro.md"));
  EXPECT_TRUE(PathPatternMatches("services/api", "services/api/main.go"));
  EXPECT_FALSE(PathPatternMatches("services/api", "services/api-gateway/main.go"));
}

TEST(PathPatternMatchesTest, ManyStarsStayFast) {
  // A backtracking matcher takes exponential time here; the table-driven one does not.
  std::string pattern;
  for (int i = 0; i < 40; ++i) pattern += "*a";
  pattern += "b";
  std::string path(4000, 'a');
  EXPECT_FALSE(PathPatternMatches(pattern, path));
}

TEST(PathFilterTest, LastMatchingPatternDecides) {
  const std::vector<std::string> filter = {"services/shop/**", "!**/*.md",
                                           "services/shop/CHANGELOG.md"};
  EXPECT_TRUE(PathFilterIncludes(filter, "services/shop/main.go"));
  EXPECT_FALSE(PathFilterIncludes(filter, "services/shop/README.md"));
  EXPECT_TRUE(PathFilterIncludes(filter, "services/shop/CHANGELOG.md"));
  EXPECT_FALSE(PathFilterIncludes(filter, "services/cart/main.go"));
  EXPECT_TRUE(PathFilterIncludes({}, "anything"));
}

TEST(PathFilterTest, AnyChangedFileTriggers) {
  const std::vector<std::string> filter = {"services/shop/**", "!**/*.md"};
  EXPECT_TRUE(
      PathFilterIncludesAny(filter, std::vector<std::string>{"README.md", "services/shop/a.go"}));
  EXPECT_FALSE(
      PathFilterIncludesAny(filter, std::vector<std::string>{"README.md", "services/shop/b.md"}));
  EXPECT_FALSE(PathFilterIncludesAny(filter, std::vector<std::string>{}));
  EXPECT_TRUE(PathFilterIncludesAny({}, std::vector<std::string>{}));
}

}  // namespace
}  // namespace eph::config
