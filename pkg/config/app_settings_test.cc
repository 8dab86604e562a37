// eph.yaml's `environment.variables` and `environment.secrets`: what the app gets besides Eph's
// own settings, and the names eph.yaml may not take.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "pkg/config/config.h"

namespace eph::config {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr char kHead[] = "version: '1.0'\nname: app\ndocker: {}\nenvironment:\n";

TEST(AppSettingsTest, VariablesAreTemplatesAndSecretsAreNames) {
  ValidationResult result = ParseConfig(std::string(kHead) +
                                        "  variables:\n"
                                        "    API_URL: https://api.example.com/pr-{pr_number}\n"
                                        "    FEATURE_FLAGS: \"\"\n"
                                        "    WORKERS: 4\n"
                                        "    _private: on\n"
                                        "  secrets: [STRIPE_KEY, SENTRY_DSN]\n");
  ASSERT_THAT(result.diagnostics, IsEmpty()) << FormatDiagnostics(result.diagnostics);
  const EnvironmentSettings& environment = result.config->environment;
  EXPECT_EQ(environment.variables, (std::map<std::string, std::string>{
                                       {"API_URL", "https://api.example.com/pr-{pr_number}"},
                                       {"FEATURE_FLAGS", ""},
                                       {"WORKERS", "4"},
                                       {"_private", "on"}}));
  EXPECT_THAT(environment.secrets, ElementsAre("STRIPE_KEY", "SENTRY_DSN"));
  EXPECT_THAT(SummarizeConfig(*result.config, "eph.yaml"), HasSubstr("4 variables, 2 secrets"));
}

TEST(AppSettingsTest, NoneByDefault) {
  ValidationResult result = ParseConfig(kHead);
  ASSERT_TRUE(result.ok());
  EXPECT_THAT(result.config->environment.variables, IsEmpty());
  EXPECT_THAT(result.config->environment.secrets, IsEmpty());
}

TEST(AppSettingsTest, ReservedNamesAreRefusedWithKeyAndLine) {
  ValidationResult result = ParseConfig(std::string(kHead) +
                                            "  variables:\n"
                                            "    DATABASE_URL: postgres://elsewhere\n"
                                            "    ORDERS_DATABASE_URL: x\n"
                                            "    PGPASSWORD: hunter2\n"
                                            "  secrets:\n"
                                            "    - PGHOST\n",
                                        "repo/eph.yaml");
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(FormatDiagnostics(result.diagnostics),
            "repo/eph.yaml:6:5: error: `environment.variables`: DATABASE_URL is reserved: Eph "
            "sets it to the database's URL; choose another name\n"
            "repo/eph.yaml:7:5: error: `environment.variables`: ORDERS_DATABASE_URL is "
            "reserved: Eph sets <INSTANCE>_DATABASE_URL to each database instance's URL; choose "
            "another name\n"
            "repo/eph.yaml:8:5: error: `environment.variables`: PGPASSWORD is reserved: Eph sets "
            "PG* (PGHOST, PGUSER, PGPASSWORD, ...) to the database's settings; choose another "
            "name\n"
            "repo/eph.yaml:10:7: error: `environment.secrets[0]`: PGHOST is reserved: Eph sets "
            "PG* (PGHOST, PGUSER, PGPASSWORD, ...) to the database's settings; choose another "
            "name\n");
}

TEST(AppSettingsTest, RefusesBadNamesValuesAndOverlaps) {
  struct Case {
    std::string body;
    std::string says;
  };
  for (const Case& c : {
           Case{"  variables: {1ST: x}\n", "\"1ST\" is not an environment variable name"},
           Case{"  variables: {API-URL: x}\n", "\"API-URL\" is not an environment variable name"},
           Case{"  variables: {\"\": x}\n", "\"\" is not an environment variable name"},
           Case{"  variables: {A: [1, 2]}\n", "`environment.variables.A`: expected a string"},
           Case{"  variables:\n    A:\n", "write \"\" for an empty value"},
           Case{"  variables: {A: \"{nope}\"}\n", "unknown template variable"},
           Case{"  variables: [A]\n", "expected a mapping"},
           Case{"  variables: {A: \"x-{words}\"}\n",
                "`{words}` only exists in `environment.name_template`"},
           Case{"  variables: {A: \"{number}\"}\n",
                "`{number}` only exists in `environment.name_template`"},
           Case{"  variables:\n    A: x\n    A: y\n", "duplicate key `A`"},
           Case{"  secrets: STRIPE_KEY\n", "expected a list of secret names"},
           Case{"  secrets: [{name: X}]\n", "expected a secret's name"},
           Case{"  secrets: [\"my key\"]\n", "is not an environment variable name"},
           Case{"  secrets: [X, X]\n", "secret X is listed twice"},
           Case{"  variables: {X: a}\n  secrets: [X]\n",
                "X is also in `environment.variables` (line 5)"},
       }) {
    ValidationResult result = ParseConfig(std::string(kHead) + c.body);
    ASSERT_FALSE(result.ok()) << c.body;
    EXPECT_THAT(result.diagnostics[0].message, HasSubstr(c.says))
        << c.body << FormatDiagnostics(result.diagnostics);
  }
}

TEST(AppSettingsTest, NameRules) {
  EXPECT_TRUE(IsEnvVarName("A"));
  EXPECT_TRUE(IsEnvVarName("_a9"));
  EXPECT_FALSE(IsEnvVarName(""));
  EXPECT_FALSE(IsEnvVarName("9A"));
  EXPECT_FALSE(IsEnvVarName("A.B"));
  EXPECT_FALSE(IsEnvVarName("A=B"));
  EXPECT_TRUE(ReservedEnvNameReason("DATABASE_URL").has_value());
  EXPECT_TRUE(ReservedEnvNameReason("X_DATABASE_URL").has_value());
  EXPECT_TRUE(ReservedEnvNameReason("PGDATABASE").has_value());
  EXPECT_FALSE(ReservedEnvNameReason("DATABASE").has_value());
  EXPECT_FALSE(ReservedEnvNameReason("APP_PG").has_value());
  EXPECT_FALSE(ReservedEnvNameReason("database_url").has_value());
}

}  // namespace
}  // namespace eph::config
