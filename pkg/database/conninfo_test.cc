#include "pkg/database/conninfo.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace eph::database {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(ConninfoTest, AdminUrlGetsBoundedConnectsAndKeepalivesUnlessItSetsThem) {
  absl::StatusOr<ConnParams> p = ParseAdminUrl(
      "postgres://admin:s3cret@db.example:6543/eph?connect_timeout=3&application_name=mine",
      std::chrono::seconds(10));
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->at("host"), "db.example");
  EXPECT_EQ(p->at("port"), "6543");
  EXPECT_EQ(p->at("dbname"), "eph");
  EXPECT_EQ(p->at("password"), "s3cret");
  EXPECT_EQ(p->at("connect_timeout"), "3");
  EXPECT_EQ(p->at("application_name"), "mine");
  EXPECT_EQ(p->at("keepalives_idle"), "30");
  absl::StatusOr<ConnParams> kv = ParseAdminUrl("host=/run/pg user=admin", std::chrono::seconds(7));
  ASSERT_TRUE(kv.ok()) << kv.status();
  EXPECT_EQ(kv->at("connect_timeout"), "7");
  EXPECT_EQ(kv->at("application_name"), "ephd-database");
}

TEST(ConninfoTest, ABadAdminUrlIsInvalidArgumentWithoutTheUrl) {
  const std::string url = "postgres://admin:hunter22@db/eph?nosuchoption=hunter22";
  absl::StatusOr<ConnParams> p = ParseAdminUrl(url, std::chrono::seconds(10));
  ASSERT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(p.status().message(), HasSubstr("not a valid PostgreSQL URL"));
  EXPECT_THAT(p.status().message(), Not(HasSubstr("hunter22")));
}

TEST(ConninfoTest, ConninfoStringQuotesEveryValue) {
  EXPECT_EQ(ConninfoString({{"password", "it's a \\ pw"}, {"user", "a b"}}),
            "password='it\\'s a \\\\ pw' user='a b'");
}

TEST(ConninfoTest, RoleParamsKeepTheAdminsAddressButNotItsLogin) {
  const ConnParams p = RoleParams({{"host", "h"}, {"user", "admin"}, {"password", "apw"}},
                                  "eph_env_x", "rpw", "eph_env_x");
  EXPECT_EQ(p.at("host"), "h");
  EXPECT_EQ(p.at("user"), "eph_env_x");
  EXPECT_EQ(p.at("password"), "rpw");
  EXPECT_EQ(p.at("dbname"), "eph_env_x");
  EXPECT_EQ(p.at("application_name"), "ephd-seed");
}

TEST(ConninfoTest, CredentialsUseTheAdminsAddressPercentEncoded) {
  const Credentials c =
      AppCredentials({{"host", "db.internal"}, {"port", "6543"}}, {}, "eph_env_a", "p@ss/w:rd");
  EXPECT_EQ(c.database_url, "postgresql://eph_env_a:p%40ss%2Fw%3Ard@db.internal:6543/eph_env_a");
  EXPECT_EQ(c.env.at("DATABASE_URL"), c.database_url);
  EXPECT_EQ(c.env.at("PGHOST"), "db.internal");
  EXPECT_EQ(c.env.at("PGPORT"), "6543");
  EXPECT_EQ(c.env.at("PGDATABASE"), "eph_env_a");
  EXPECT_EQ(c.env.at("PGUSER"), "eph_env_a");
  EXPECT_EQ(c.env.at("PGPASSWORD"), "p@ss/w:rd");
  EXPECT_EQ(c.env.count("PGSSLMODE"), 0u);
}

TEST(ConninfoTest, CredentialsForAnAppEndpointIpv6OrASocket) {
  const Credentials app = AppCredentials({{"host", "127.0.0.1"}, {"port", "5432"}},
                                         {"pg.ns.svc", 5433, "require"}, "db", "pw");
  EXPECT_EQ(app.database_url, "postgresql://db:pw@pg.ns.svc:5433/db?sslmode=require");
  EXPECT_EQ(app.env.at("PGSSLMODE"), "require");
  const Credentials v6 = AppCredentials({{"host", "::1"}}, {}, "db", "pw");
  EXPECT_EQ(v6.database_url, "postgresql://db:pw@[::1]:5432/db");
  const Credentials socket = AppCredentials({{"host", "/run/pg"}}, {"", 0, "disable"}, "db", "pw");
  EXPECT_EQ(socket.database_url, "postgresql://db:pw@:5432/db?host=%2Frun%2Fpg&sslmode=disable");
  const Credentials none = AppCredentials({}, {}, "db", "pw");
  EXPECT_EQ(none.host, "localhost");
}

}  // namespace
}  // namespace eph::database
