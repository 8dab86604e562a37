#include "pkg/database/sql_script.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace eph::database {
namespace {

using ::testing::HasSubstr;

std::vector<SqlStatement> Split(std::string_view script) {
  absl::StatusOr<std::vector<SqlStatement>> out = SplitSqlScript(script);
  EXPECT_TRUE(out.ok()) << out.status();
  return out.ok() ? *out : std::vector<SqlStatement>{};
}

TEST(SplitSqlScriptTest, SplitsOnSemicolonsAndRecordsLines) {
  auto s = Split(
      "CREATE TABLE a (x int);\n\n-- comment; not a split\nINSERT INTO a VALUES (1);\n"
      "SELECT 1");
  ASSERT_EQ(s.size(), 3u);
  EXPECT_EQ(s[0].text, "CREATE TABLE a (x int)");
  EXPECT_EQ(s[0].line, 1);
  EXPECT_EQ(s[1].text, "INSERT INTO a VALUES (1)");
  EXPECT_EQ(s[1].line, 4);
  EXPECT_EQ(s[2].text, "SELECT 1");
  EXPECT_EQ(s[2].line, 5);
}

TEST(SplitSqlScriptTest, KeepsSemicolonsInsideQuotesCommentsAndParentheses) {
  auto s = Split(
      "INSERT INTO t VALUES ('a;b', E'c\\';d', \"we;ird\");\n"
      "CREATE FUNCTION f() RETURNS int AS $body$ SELECT 1; $body$ LANGUAGE sql;\n"
      "SELECT $$x;y$$ /* a; /* nested; */ b; */;\n"
      "CREATE RULE r AS ON INSERT TO t DO ALSO (SELECT 1; SELECT 2);\n"
      "SELECT $1;");
  ASSERT_EQ(s.size(), 5u);
  EXPECT_THAT(s[0].text, HasSubstr("\"we;ird\")"));
  EXPECT_THAT(s[1].text, HasSubstr("LANGUAGE sql"));
  EXPECT_THAT(s[2].text, HasSubstr("b; */"));
  EXPECT_THAT(s[3].text, HasSubstr("SELECT 2)"));
  EXPECT_EQ(s[4].text, "SELECT $1");
}

TEST(SplitSqlScriptTest, CopyFromStdinTakesDataUpToBackslashDot) {
  auto s = Split("COPY public.t (a, b) FROM stdin;\n1\tx;y\n2\tz\n\\.\nSELECT 1;\n");
  ASSERT_EQ(s.size(), 2u);
  ASSERT_TRUE(s[0].copy_data.has_value());
  EXPECT_EQ(*s[0].copy_data, "1\tx;y\n2\tz\n");
  EXPECT_EQ(s[1].text, "SELECT 1");
  EXPECT_EQ(s[1].line, 5);
}

TEST(SplitSqlScriptTest, ReportsUnterminatedInputWithItsLine) {
  for (std::string_view bad : {"SELECT 1;\nSELECT 'abc", "SELECT 1;\n/* open", "SELECT 1;\n$$ x",
                               "SELECT 1;\nCOPY t FROM STDIN;\n1\n"}) {
    absl::StatusOr<std::vector<SqlStatement>> out = SplitSqlScript(bad);
    ASSERT_FALSE(out.ok()) << bad;
    EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(out.status().message(), HasSubstr("line 2")) << bad;
  }
}

TEST(SplitSqlScriptTest, RefusesMetaCommandsButSkipsPgDumpRestrict) {
  auto ok = Split("\\restrict abc\nSELECT 1;\n\\unrestrict abc\n");
  EXPECT_EQ(ok.size(), 1u);
  absl::StatusOr<std::vector<SqlStatement>> bad = SplitSqlScript("SELECT 1;\n\\connect other\n");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr("line 2"));
  EXPECT_THAT(bad.status().message(), HasSubstr("\\connect"));
}

TEST(NeedsOwnTransactionTest, RecognisesStatementsRefusedInTransactionBlocks) {
  auto needs = [](std::string text) { return NeedsOwnTransaction(SqlStatement{text, 1, {}}); };
  EXPECT_TRUE(needs("VACUUM ANALYZE t"));
  EXPECT_TRUE(needs("create unique index concurrently i on t (x)"));
  EXPECT_TRUE(needs("DROP INDEX CONCURRENTLY i"));
  EXPECT_TRUE(needs("REINDEX TABLE CONCURRENTLY t"));
  EXPECT_TRUE(needs("CREATE DATABASE x"));
  EXPECT_TRUE(needs("ALTER SYSTEM SET work_mem = '1MB'"));
  EXPECT_TRUE(needs("BEGIN"));
  EXPECT_TRUE(needs("/* lead */ COMMIT"));
  EXPECT_FALSE(needs("CREATE INDEX i ON t (x)"));
  EXPECT_FALSE(needs("INSERT INTO t VALUES ('VACUUM')"));
  EXPECT_FALSE(needs("CREATE TABLE concurrently_named (x int)"));
}

TEST(LineOfPositionTest, CountsCharactersNotBytes) {
  SqlStatement s{"SELECT 'é',\n  nope", 10, {}};
  // 'n' of "nope" is character 15 (é is one character, two bytes).
  EXPECT_EQ(LineOfPosition(s, 15), 11);
  EXPECT_EQ(LineOfPosition(s, 1), 10);
  EXPECT_EQ(LineOfPosition(s, 0), 10);
  EXPECT_EQ(LineOfPosition(s, 999), 10);
}

}  // namespace
}  // namespace eph::database
