#include "pkg/database/pg_status.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <pqxx/pqxx>
#include <stdexcept>

namespace eph::database {
namespace {

absl::Status StatusOf(const std::exception_ptr& e, const std::vector<std::string>& secrets = {}) {
  try {
    std::rethrow_exception(e);
  } catch (...) {
    return CurrentExceptionStatus("doing it", secrets);
  }
}

absl::StatusCode CodeOfSqlState(const char* state) {
  return StatusOf(std::make_exception_ptr(pqxx::sql_error("boom", "SELECT 1", state))).code();
}

TEST(PgStatusTest, SqlStateDecidesRetryOrGiveUp) {
  EXPECT_EQ(CodeOfSqlState("08006"), absl::StatusCode::kUnavailable);  // connection failure
  EXPECT_EQ(CodeOfSqlState("53300"), absl::StatusCode::kUnavailable);  // too many connections
  EXPECT_EQ(CodeOfSqlState("57P01"), absl::StatusCode::kUnavailable);  // admin shutdown
  EXPECT_EQ(CodeOfSqlState("40P01"), absl::StatusCode::kUnavailable);  // deadlock
  EXPECT_EQ(CodeOfSqlState("55P03"), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(CodeOfSqlState("42501"), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(CodeOfSqlState("57014"), absl::StatusCode::kInternal);  // not 57P
  EXPECT_EQ(CodeOfSqlState("42P01"), absl::StatusCode::kInternal);
  EXPECT_EQ(StatusOf(std::make_exception_ptr(pqxx::broken_connection("gone"))).code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(StatusOf(std::make_exception_ptr(std::runtime_error("x"))).code(),
            absl::StatusCode::kInternal);
  EXPECT_EQ(StatusOf(std::make_exception_ptr(42)).message(), "doing it: unknown exception");
}

TEST(PgStatusTest, MessagesAreOneLineAndScrubbed) {
  const absl::Status st =
      StatusOf(std::make_exception_ptr(pqxx::sql_error(
                   "ERROR:  password hunter22 is wrong\nDETAIL:  no\n", "", "28P01")),
               {"hunter22", "pw"});
  EXPECT_EQ(st.message(), "doing it: ERROR: password *** is wrong; DETAIL: no");
  EXPECT_EQ(OneLine("a.\n\tb\nc"), "a. b; c");
  EXPECT_EQ(Scrub("abc pw abcd", {"pw", "abcd"}), "abc pw ***");  // short secrets are not scrubbed
}

}  // namespace
}  // namespace eph::database
