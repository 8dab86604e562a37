// Against the test bed's PostgreSQL (FIXTURES postgres), as the admin: what a script connection
// reports for each kind of statement, and the watchdog's cancel.
#include "pkg/database/pg_connection.h"

#include <gtest/gtest.h>

#include <chrono>

#include "test/support/testbed.h"

namespace eph::database {
namespace {

using std::chrono::steady_clock;

std::unique_ptr<ScriptConnection> Open() {
  absl::StatusOr<ConnParams> params =
      ParseAdminUrl(eph::testing::TestbedValue("postgres", "EPH_TEST_POSTGRES_ADMIN_URL"),
                    std::chrono::seconds(10));
  EXPECT_TRUE(params.ok()) << params.status();
  absl::StatusOr<std::unique_ptr<ScriptConnection>> conn = ScriptConnection::Open(*params);
  EXPECT_TRUE(conn.ok()) << conn.status();
  return conn.ok() ? *std::move(conn) : nullptr;
}

TEST(ScriptConnectionTest, ARefusedStatementCarriesItsPositionAndSqlState) {
  std::unique_ptr<ScriptConnection> conn = Open();
  ASSERT_NE(conn, nullptr);
  StatementResult ok = conn->Run("SELECT 1", std::nullopt);
  EXPECT_TRUE(ok.connection.ok());
  EXPECT_FALSE(ok.refused);
  StatementResult bad = conn->Run("SELECT 1,\n  nope FROM pg_class", std::nullopt);
  ASSERT_TRUE(bad.connection.ok()) << bad.connection;
  ASSERT_TRUE(bad.refused);
  EXPECT_EQ(bad.refused->severity, "ERROR");
  EXPECT_EQ(bad.refused->sqlstate, "42703");
  EXPECT_EQ(bad.refused->position, 13);  // 1-based character of `nope`
  EXPECT_EQ(bad.refused->message, "column \"nope\" does not exist");
}

TEST(ScriptConnectionTest, CopyTakesItsDataAndFailsWithoutIt) {
  std::unique_ptr<ScriptConnection> conn = Open();
  ASSERT_NE(conn, nullptr);
  ASSERT_FALSE(conn->Run("CREATE TEMP TABLE t (n int)", std::nullopt).refused);
  StatementResult copied = conn->Run("COPY t FROM STDIN", std::string("1\n2\n"));
  EXPECT_TRUE(copied.connection.ok());
  EXPECT_FALSE(copied.refused);
  StatementResult missing = conn->Run("COPY t FROM STDIN", std::nullopt);
  ASSERT_TRUE(missing.refused);
  EXPECT_NE(missing.refused->message.find("needs its data"), std::string::npos)
      << missing.refused->message;
  StatementResult out = conn->Run("COPY t TO STDOUT", std::nullopt);
  EXPECT_TRUE(out.connection.ok());
  EXPECT_FALSE(out.refused);
  EXPECT_FALSE(conn->InTransaction());
  ASSERT_FALSE(conn->Run("BEGIN", std::nullopt).refused);
  EXPECT_TRUE(conn->InTransaction());
}

TEST(StatementWatchdogTest, CancelsTheRunningStatementAtTheDeadline) {
  std::unique_ptr<ScriptConnection> conn = Open();
  ASSERT_NE(conn, nullptr);
  const auto started = steady_clock::now();
  StatementWatchdog watchdog(*conn, started + std::chrono::milliseconds(300));
  StatementResult slow = conn->Run("SELECT pg_sleep(30)", std::nullopt);
  EXPECT_LT(steady_clock::now() - started, std::chrono::seconds(10));
  ASSERT_TRUE(slow.refused);
  EXPECT_EQ(slow.refused->sqlstate, "57014");  // query_canceled
  EXPECT_TRUE(watchdog.fired());
}

TEST(StatementWatchdogTest, StopsQuietlyBeforeItsDeadline) {
  std::unique_ptr<ScriptConnection> conn = Open();
  ASSERT_NE(conn, nullptr);
  {
    StatementWatchdog watchdog(*conn, steady_clock::now() + std::chrono::hours(1));
    EXPECT_FALSE(conn->Run("SELECT 1", std::nullopt).refused);
    EXPECT_FALSE(watchdog.fired());
  }  // joins at once, not after an hour
  EXPECT_FALSE(conn->Run("SELECT 1", std::nullopt).refused);
}

TEST(ScriptConnectionTest, AnUnreachableServerIsUnavailable) {
  absl::StatusOr<std::unique_ptr<ScriptConnection>> conn = ScriptConnection::Open(
      {{"host", "127.0.0.1"}, {"port", "1"}, {"connect_timeout", "2"}, {"dbname", "x"}});
  EXPECT_EQ(conn.status().code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace eph::database
