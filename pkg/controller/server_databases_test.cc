#include "pkg/controller/server_databases.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace eph::controller {
namespace {

using ::testing::HasSubstr;

SharedDatabaseServer Set(const std::string& address) {
  SharedDatabaseServer shared;
  shared.app_host = "unchanged";
  absl::Status s = SetAppAddress(shared, address);
  EXPECT_TRUE(s.ok()) << address << ": " << s;
  return shared;
}

TEST(SetAppAddressTest, SetsTheHostAndThePortWhenGiven) {
  EXPECT_EQ(Set("db.internal:6432").app_host, "db.internal");
  EXPECT_EQ(Set("db.internal:6432").app_port, 6432);
  EXPECT_EQ(Set("[fd00::5]:6432").app_host, "fd00::5");
  EXPECT_EQ(Set("[fd00::5]:6432").app_port, 6432);
}

TEST(SetAppAddressTest, AHostAloneKeepsTheAdminUrlsPort) {
  for (const char* host : {"db.internal", "10.0.0.7", "fd00::5"}) {
    const SharedDatabaseServer shared = Set(host);
    EXPECT_EQ(shared.app_host, host);
    EXPECT_EQ(shared.app_port, 0) << host;
  }
  EXPECT_EQ(Set("[fd00::5]").app_host, "fd00::5");
  EXPECT_EQ(Set("").app_host, "unchanged") << "nothing configured: the admin URL's host";
}

// A mistyped port used to become part of the host name, so apps were pointed at a host
// called "db:543z" and the mistake surfaced as a connection error in every environment.
TEST(SetAppAddressTest, ABadPortIsRefusedNamingTheText) {
  for (const char* bad : {"db:543z", "db:", "db:0", "db:70000", ":5432", "[fd00::5]:x"}) {
    SharedDatabaseServer shared;
    absl::Status s = SetAppAddress(shared, bad);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(s.message(), HasSubstr(bad));
    EXPECT_TRUE(shared.app_host.empty()) << bad << ": nothing half-set";
  }
}

}  // namespace
}  // namespace eph::controller
