#include "pkg/names/names.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>

#include "pkg/names/words.h"

namespace eph::names {
namespace {

auto NeverTaken() {
  return [](const std::string&) { return false; };
}

TEST(NamesTest, DefaultTemplateGivesProjectWordsNumberAndSuffix) {
  SeededRandom random(1);
  auto name = MakeName({.project = "my-app", .pr_number = 42}, {}, random, NeverTaken());
  ASSERT_TRUE(name.ok()) << name.status();
  // The words' 16 bits and 10 base-32 characters: at least 64 bits (issue 16).
  EXPECT_GE(WordsEntropyBits() + 10 * 5, kMinRandomBits);
  EXPECT_THAT(*name, ::testing::MatchesRegex("my-app-[a-z]+-[a-z]+-42-[a-z2-7]{10}"));
  EXPECT_TRUE(IsDnsLabel(*name));
}

TEST(NamesTest, SameSeedSameName) {
  SeededRandom a(99), b(99);
  EXPECT_EQ(*MakeName({.project = "web", .pr_number = 7}, {}, a, NeverTaken()),
            *MakeName({.project = "web", .pr_number = 7}, {}, b, NeverTaken()));
}

TEST(NamesTest, LongProjectIsShortenedKeepingWordsAndNumber) {
  SeededRandom random(3);
  const std::string project(120, 'p');
  auto name = MakeName({.project = project, .pr_number = 123456}, {}, random, NeverTaken());
  ASSERT_TRUE(name.ok());
  EXPECT_LE(name->size(), kMaxNameLength);
  EXPECT_TRUE(IsDnsLabel(*name));
  EXPECT_TRUE(IsDnsLabel("eph-" + *name));
  EXPECT_THAT(*name, ::testing::MatchesRegex("p+-[a-z]+-[a-z]+-123456-[a-z2-7]{10}"));
}

TEST(NamesTest, ProjectNamesAreSanitised) {
  SeededRandom random(5);
  auto name = MakeName({.project = "My_App.Web--Front", .pr_number = 1}, {}, random, NeverTaken());
  ASSERT_TRUE(name.ok());
  EXPECT_THAT(*name, ::testing::StartsWith("my-app-web-front-"));
  EXPECT_TRUE(IsDnsLabel(*name));
}

TEST(NamesTest, AvoidsTakenNames) {
  SeededRandom first(11);
  const std::string taken = *MakeName({.project = "a", .pr_number = 1}, {}, first, NeverTaken());
  SeededRandom again(11);
  auto name = MakeName({.project = "a", .pr_number = 1}, {}, again,
                       [&](const std::string& n) { return n == taken; });
  ASSERT_TRUE(name.ok());
  EXPECT_NE(*name, taken);
}

TEST(NamesTest, TemplateWithoutWordsFallsBackToSuffixOnCollision) {
  SeededRandom random(2);
  NameOptions options{.name_template = "{project}-{number}", .random_suffix = false};
  auto name = MakeName({.project = "shop", .pr_number = 9}, options, random,
                       [](const std::string& n) { return n == "shop-9"; });
  ASSERT_TRUE(name.ok());
  EXPECT_THAT(*name, ::testing::MatchesRegex("shop-9-[a-z2-7]{13}"));
}

TEST(NamesTest, RandomSuffixCarriesAtLeast64Bits) {
  SeededRandom random(4);
  NameOptions options{.random_suffix = true};
  std::set<std::string> seen;
  for (int i = 0; i < 200; ++i) {
    auto name = MakeName({.project = "x", .pr_number = 1}, options, random, NeverTaken());
    ASSERT_TRUE(name.ok());
    EXPECT_THAT(*name, ::testing::MatchesRegex("x-[a-z]+-[a-z]+-1-[a-z2-7]{10}"));
    EXPECT_LE(name->size(), kMaxNameLength);
    seen.insert(*name);
  }
  EXPECT_EQ(seen.size(), 200u);
  // 13 characters of a 32-letter alphabet.
  EXPECT_GE(13 * 5, 64);
}

TEST(NamesTest, ShaAndBranchVariables) {
  SeededRandom random(6);
  NameOptions options{.name_template = "{branch}-{short_sha}", .random_suffix = false};
  auto name = MakeName({.project = "p", .pr_number = 3, .sha = "ABCDEF0123456789",
                        .branch = "feature/Login_Page"},
                       options, random, NeverTaken());
  ASSERT_TRUE(name.ok());
  EXPECT_EQ(*name, "feature-login-page-abcdef0");
}

TEST(NamesTest, UnknownVariableIsAnError) {
  SeededRandom random(6);
  NameOptions options{.name_template = "{project}-{colour}"};
  auto name = MakeName({.project = "p", .pr_number = 3}, options, random, NeverTaken());
  EXPECT_EQ(name.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(name.status().message()), ::testing::HasSubstr("{colour}"));
}

TEST(NamesTest, WordListsAreCleanAndLargeEnough) {
  for (const auto* list : {&Adjectives(), &Nouns()}) {
    std::set<std::string_view> unique(list->begin(), list->end());
    EXPECT_EQ(unique.size(), list->size());
    for (auto w : *list) EXPECT_TRUE(IsDnsLabel(w, 11)) << w;
  }
  EXPECT_GE(WordsEntropyBits(), 16.0);
}

TEST(NamesTest, DnsLabelCheck) {
  EXPECT_TRUE(IsDnsLabel("a-1"));
  EXPECT_FALSE(IsDnsLabel("-a"));
  EXPECT_FALSE(IsDnsLabel("a-"));
  EXPECT_FALSE(IsDnsLabel("A"));
  EXPECT_FALSE(IsDnsLabel(std::string(64, 'a')));
}

TEST(NamesTest, RepositoryCheck) {
  EXPECT_TRUE(IsRepository("acme/shop"));
  EXPECT_TRUE(IsRepository("Acme-Inc/my_repo.v2"));
  EXPECT_TRUE(IsRepository(std::string(39, 'o') + "/" + std::string(100, 'r')));
  EXPECT_FALSE(IsRepository(std::string(40, 'o') + "/r"));
  EXPECT_FALSE(IsRepository("o/" + std::string(101, 'r')));
  EXPECT_FALSE(IsRepository("acme"));
  EXPECT_FALSE(IsRepository("/shop"));
  EXPECT_FALSE(IsRepository("acme/"));
  EXPECT_FALSE(IsRepository("acme/shop/x"));
  EXPECT_FALSE(IsRepository("acme/sh op"));
  EXPECT_FALSE(IsRepository("acme/sh\xc3\xa9p"));
  EXPECT_FALSE(IsRepository(std::string_view("acme/s\0p", 7)));
  // Long input is refused in linear time; a backtracking pattern crashed on 30,000 characters.
  EXPECT_FALSE(IsRepository("acme/" + std::string(1'000'000, 'a')));
  EXPECT_FALSE(IsRepository(std::string(1'000'000, 'a') + "/b"));
}

}  // namespace
}  // namespace eph::names
