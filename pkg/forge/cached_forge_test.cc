#include "pkg/forge/cached_forge.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "pkg/forge/fake_forge.h"

namespace eph::forge {
namespace {

namespace fs = std::filesystem;

const std::string kSha = "0123456789abcdef0123456789abcdef01234567";
const std::string kOther = "89abcdef0123456789abcdef0123456789abcdef";

std::string TempDir() {
  std::string pattern = (fs::temp_directory_path() / "cached-forge-XXXXXX").string();
  EXPECT_NE(mkdtemp(pattern.data()), nullptr);
  return pattern;
}

std::string Slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

TEST(CachedForgeTest, ReadFileAtAShaIsReadOnceIncludingNotFound) {
  FakeForge fake;
  fake.SetFile("acme/shop", kSha, "eph.yaml", "v1");
  CachedForge forge(fake);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(*forge.ReadFile("acme/shop", kSha, "eph.yaml"), "v1");
    EXPECT_EQ(forge.ReadFile("acme/shop", kSha, "missing").status().code(),
              absl::StatusCode::kNotFound);
  }
  EXPECT_EQ(fake.Calls(FakeForge::Method::kReadFile), 2);
  // Another commit, another repository: read through.
  fake.SetFile("acme/shop", kOther, "eph.yaml", "v2");
  EXPECT_EQ(*forge.ReadFile("acme/shop", kOther, "eph.yaml"), "v2");
  EXPECT_EQ(forge.ReadFile("acme/other", kSha, "eph.yaml").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(fake.Calls(FakeForge::Method::kReadFile), 4);
}

TEST(CachedForgeTest, ErrorsAndMovableRefsAreNotCached) {
  FakeForge fake;
  fake.SetFile("acme/shop", kSha, "eph.yaml", "v1");
  fake.SetFile("acme/shop", "main", "eph.yaml", "v1");
  CachedForge forge(fake);
  fake.FailNext(FakeForge::Method::kReadFile, absl::UnavailableError("GitHub is down"));
  EXPECT_EQ(forge.ReadFile("acme/shop", kSha, "eph.yaml").status().code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(*forge.ReadFile("acme/shop", kSha, "eph.yaml"), "v1");
  forge.ReadFile("acme/shop", "main", "eph.yaml").IgnoreError();
  forge.ReadFile("acme/shop", "main", "eph.yaml").IgnoreError();
  EXPECT_EQ(fake.Calls(FakeForge::Method::kReadFile), 4);
}

TEST(CachedForgeTest, FetchSourceIsFetchedOnceAndServesReadFile) {
  FakeForge fake;
  fake.SetFile("acme/shop", kSha, "eph.yaml", "name: shop\n");
  fake.SetFile("acme/shop", kSha, "deploy/compose.yaml", "services: {}\n");
  CachedForge forge(fake);
  const std::string first = TempDir();
  const std::string second = TempDir();
  ASSERT_TRUE(forge.FetchSource("acme/shop", kSha, first).ok());
  ASSERT_TRUE(forge.FetchSource("acme/shop", kSha, second).ok());
  EXPECT_EQ(fake.Calls(FakeForge::Method::kFetchSource), 1);
  EXPECT_EQ(Slurp(fs::path(second) / "deploy/compose.yaml"), "services: {}\n");
  EXPECT_EQ(Slurp(fs::path(second) / "eph.yaml"), "name: shop\n");
  // eph.yaml at that commit comes from the cached tree.
  EXPECT_EQ(*forge.ReadFile("acme/shop", kSha, "eph.yaml"), "name: shop\n");
  EXPECT_EQ(fake.Calls(FakeForge::Method::kReadFile), 0);
  // A commit that does not exist is NotFound every time (not cached).
  const std::string third = TempDir();
  EXPECT_EQ(forge.FetchSource("acme/shop", kOther, third).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(forge.FetchSource("acme/shop", kOther, third).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(fake.Calls(FakeForge::Method::kFetchSource), 3);
  for (const auto& d : {first, second, third}) fs::remove_all(d);
}

TEST(CachedForgeTest, BoundedLeastRecentlyUsedFirst) {
  FakeForge fake;
  const std::string big(400, 'x');
  for (const char* path : {"a", "b", "c", "d", "e"}) fake.SetFile("acme/shop", kSha, path, big);
  // Room for four entries of ~520 bytes (each under a quarter of the budget), not five.
  CachedForge forge(fake, CachedForgeOptions{.max_bytes = 2100});
  for (const char* path : {"a", "b", "c", "d", "a"}) {
    EXPECT_TRUE(forge.ReadFile("acme/shop", kSha, path).ok());
  }
  EXPECT_EQ(fake.Calls(FakeForge::Method::kReadFile), 4);
  EXPECT_TRUE(forge.ReadFile("acme/shop", kSha, "e").ok());  // b, the least recent, goes
  EXPECT_LE(forge.stats().bytes, 2100u);
  EXPECT_EQ(forge.stats().entries, 4u);
  EXPECT_TRUE(forge.ReadFile("acme/shop", kSha, "a").ok());
  EXPECT_EQ(fake.Calls(FakeForge::Method::kReadFile), 5);
  EXPECT_TRUE(forge.ReadFile("acme/shop", kSha, "b").ok());
  EXPECT_EQ(fake.Calls(FakeForge::Method::kReadFile), 6);
}

TEST(CachedForgeTest, LiveStatePassesThrough) {
  FakeForge fake;
  PullRequest pr;
  pr.repo = "acme/shop";
  pr.number = 1;
  pr.head_sha = kSha;
  fake.SetPullRequest(pr);
  CachedForge forge(fake);
  for (int i = 0; i < 2; ++i) {
    EXPECT_TRUE(forge.GetPullRequest("acme/shop", 1).ok());
    EXPECT_TRUE(forge.ListChecks("acme/shop", kSha).ok());
    EXPECT_TRUE(forge.ListChangedFiles("acme/shop", 1).ok());
  }
  EXPECT_EQ(fake.Calls(FakeForge::Method::kGetPullRequest), 2);
  EXPECT_EQ(fake.Calls(FakeForge::Method::kListChecks), 2);
  EXPECT_EQ(fake.Calls(FakeForge::Method::kListChangedFiles), 2);
}

}  // namespace
}  // namespace eph::forge
