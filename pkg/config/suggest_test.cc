#include "pkg/config/suggest.h"

#include <gtest/gtest.h>

#include <string>

namespace eph::config {
namespace {

constexpr std::string_view kEnvironmentKeys[] = {
    "name_template", "ttl", "idle_timeout", "allow_forks", "base_domain", "random_suffix",
};

TEST(EditDistanceTest, CountsEditsIgnoringCaseAndDashes) {
  EXPECT_EQ(EditDistance("ttl", "ttl"), 0u);
  EXPECT_EQ(EditDistance("tll", "ttl"), 1u);
  EXPECT_EQ(EditDistance("tlt", "ttl"), 1u);  // a transposition is one edit
  EXPECT_EQ(EditDistance("newtag", "newTag"), 0u);
  EXPECT_EQ(EditDistance("idle-timeout", "idle_timeout"), 0u);
  EXPECT_EQ(EditDistance("", "abc"), 3u);
  EXPECT_EQ(EditDistance("kitten", "sitting"), 3u);
}

TEST(ClosestMatchTest, SuggestsPlausibleTypos) {
  EXPECT_EQ(ClosestMatch("tll", kEnvironmentKeys), "ttl");
  EXPECT_EQ(ClosestMatch("idle_timout", kEnvironmentKeys), "idle_timeout");
  EXPECT_EQ(ClosestMatch("nametemplate", kEnvironmentKeys), "name_template");
  EXPECT_EQ(ClosestMatch("allow_fork", kEnvironmentKeys), "allow_forks");
}

TEST(ClosestMatchTest, ExpandsAbbreviations) {
  constexpr std::string_view kVariables[] = {"project", "words", "number", "pr_number"};
  EXPECT_EQ(ClosestMatch("pr", kVariables), "pr_number");  // a whole word, not "pr" of project
  EXPECT_EQ(ClosestMatch("name", kEnvironmentKeys), "name_template");
  EXPECT_EQ(ClosestMatch("proj", kVariables), "project");
  EXPECT_EQ(ClosestMatch("p", kVariables), std::nullopt);  // too short to mean anything
}

TEST(ClosestMatchTest, StaysQuietWhenNothingIsClose) {
  EXPECT_EQ(ClosestMatch("replicas", kEnvironmentKeys), std::nullopt);
  EXPECT_EQ(ClosestMatch("domain", kEnvironmentKeys), std::nullopt);
  EXPECT_EQ(ClosestMatch("", kEnvironmentKeys), std::nullopt);
  EXPECT_EQ(ClosestMatch(std::string(10000, 't'), kEnvironmentKeys), std::nullopt);
}

}  // namespace
}  // namespace eph::config
