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

// A source answering from a map, or with `error` for every name when set.
class MapSecretSource final : public SecretSource {
 public:
  MapSecretSource(std::string label, std::map<std::string, std::string> values,
                  absl::Status error = absl::OkStatus())
      : label_(std::move(label)), values_(std::move(values)), error_(std::move(error)) {}
  absl::StatusOr<std::string> Get(const std::string& name) const override {
    if (!error_.ok()) return error_;
    auto it = values_.find(name);
    if (it == values_.end()) return absl::NotFoundError(name);
    return it->second;
  }
  std::string Describe() const override { return label_; }

 private:
  std::string label_;
  std::map<std::string, std::string> values_;
  absl::Status error_;
};

TEST(ChainedSecretSourceTest, FirstSourceThatHasItWinsAndOtherErrorsStopTheSearch) {
  std::vector<std::unique_ptr<SecretSource>> sources;
  sources.push_back(std::make_unique<MapSecretSource>(
      "dir", std::map<std::string, std::string>{{"A", "from-dir"}}));
  sources.push_back(std::make_unique<MapSecretSource>(
      "cluster", std::map<std::string, std::string>{{"A", "from-cluster"}, {"B", "b"}}));
  ChainedSecretSource chain(std::move(sources));
  EXPECT_EQ(*chain.Get("A"), "from-dir");
  EXPECT_EQ(*chain.Get("B"), "b");
  EXPECT_EQ(chain.Get("C").status().message(), "secret C is not configured in ephd (dir, cluster)");
  EXPECT_EQ(ResolveSecrets({"A", "C"}, &chain).status().message(),
            "secret C is not configured in ephd (dir, cluster)");

  std::vector<std::unique_ptr<SecretSource>> down;
  down.push_back(std::make_unique<MapSecretSource>("dir", std::map<std::string, std::string>{}));
  down.push_back(std::make_unique<MapSecretSource>("cluster", std::map<std::string, std::string>{},
                                                   absl::UnavailableError("api down")));
  ChainedSecretSource unreachable(std::move(down));
  // Unavailable stays Unavailable: the reconciler retries instead of failing the environment.
  EXPECT_EQ(ResolveSecrets({"A"}, &unreachable).status().code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace eph::controller
