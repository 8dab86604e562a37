#include "pkg/controller/secret_source.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "test/support/testbed.h"

namespace eph::controller {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class DirectorySecretSourceTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = eph::testing::MakeTempDir("secrets"); }
  void Write(const std::string& name, const std::string& content) {
    std::ofstream(dir_ + "/" + name, std::ios::binary) << content;
  }
  std::string dir_;
};

TEST_F(DirectorySecretSourceTest, ReadsOneFilePerSecretAndDropsOneTrailingNewline) {
  Write("STRIPE_KEY", "sk_test_123\n");
  Write("CRLF", "value\r\n");
  Write("TWO_LINES", "a\nb\n\n");
  Write("EMPTY", "");
  DirectorySecretSource source(dir_);
  EXPECT_EQ(*source.Get("STRIPE_KEY"), "sk_test_123");
  EXPECT_EQ(*source.Get("CRLF"), "value");
  EXPECT_EQ(*source.Get("TWO_LINES"), "a\nb\n");
  EXPECT_EQ(*source.Get("EMPTY"), "");
  EXPECT_EQ(source.Describe(), "secrets_dir " + dir_);
}

TEST_F(DirectorySecretSourceTest, MissingUnreadableAndOddEntries) {
  Write("BIG", std::string(DirectorySecretSource::kMaxValueBytes + 1, 'x'));
  Write("NUL", std::string("a\0b", 3));
  std::filesystem::create_directory(dir_ + "/DIR");
  Write(".hidden", "no");
  DirectorySecretSource source(dir_);
  EXPECT_EQ(source.Get("NOPE").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(source.Get("NOPE").status().message(),
            "secret NOPE is not configured in ephd (secrets_dir " + dir_ + ")");
  EXPECT_EQ(source.Get("BIG").status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(source.Get("BIG").status().message(), Not(HasSubstr("xxx")));
  EXPECT_EQ(source.Get("NUL").status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(source.Get("DIR").status().code(), absl::StatusCode::kFailedPrecondition);
  // Only variable names become file names: nothing outside the directory, no hidden files.
  EXPECT_EQ(source.Get(".hidden").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(source.Get("../etc/passwd").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(DirectorySecretSourceTest, ResolveNamesEveryMissingSecretAndWhereItLooked) {
  Write("A", "value-of-a\n");
  DirectorySecretSource source(dir_);
  auto found = ResolveSecrets({"A"}, &source);
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_EQ(found->at("A"), "value-of-a");
  EXPECT_TRUE(ResolveSecrets({}, nullptr).ok());

  auto one = ResolveSecrets({"A", "B"}, &source);
  EXPECT_EQ(one.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(one.status().message(),
            "secret B is not configured in ephd (secrets_dir " + dir_ + ")");
  auto two = ResolveSecrets({"B", "A", "C"}, &source);
  EXPECT_EQ(two.status().message(),
            "secrets B, C are not configured in ephd (secrets_dir " + dir_ + ")");
  EXPECT_EQ(ResolveSecrets({"A"}, nullptr).status().message(),
            "secret A is not configured in ephd (no secrets_dir is set)");
  // The value of a secret that is there never shows in the message about one that is not.
  EXPECT_THAT(two.status().message(), Not(HasSubstr("value-of-a")));
}

}  // namespace
}  // namespace eph::controller
