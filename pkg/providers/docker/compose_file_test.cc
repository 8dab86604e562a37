#include "pkg/providers/docker/compose_file.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "fmt/format.h"

namespace eph::providers::docker {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::string ErrorOf(std::string_view yaml) {
  absl::StatusOr<ComposeFile> f = ParseComposeFile(yaml, "compose.yml");
  EXPECT_FALSE(f.ok()) << "parsed: " << yaml;
  if (f.ok()) return "";
  EXPECT_EQ(f.status().code(), absl::StatusCode::kInvalidArgument);
  return {f.status().message().data(), f.status().message().size()};
}

TEST(ComposeFileTest, ParsesTheSupportedSubset) {
  absl::StatusOr<ComposeFile> f = ParseComposeFile(R"(version: "3.9"
name: ignored
x-common: &common
  FOO: bar
services:
  web:
    image: eph-sample:v1
    command: ["/sample_server"]
    environment:
      PAGE: hello world
      PORT: 8080
    ports:
      - "8080"
      - 127.0.0.1:0:9090/udp
      - "3000:3001"
    healthcheck:
      test: ["CMD", "/sample_server", "probe", "8080"]
      interval: 1s
      timeout: 500ms
      retries: 3
      start_period: 1m30s
    depends_on:
      db:
        condition: service_healthy
    volumes:
      - data:/data:ro
    labels:
      team: shop
  db:
    image: postgres:15
    entrypoint: [docker-entrypoint.sh]
    command: postgres -c "max_connections=20" it\'s
    environment:
      - POSTGRES_PASSWORD=x=y
    healthcheck:
      test: pg_isready
    labels: ["tier=db"]
volumes:
  data:
  cache:
    labels:
      keep: "no"
)",
                                                   "compose.yml");
  ASSERT_TRUE(f.ok()) << f.status();
  ASSERT_EQ(f->services.size(), 2u);
  const ComposeService& web = f->services[0];
  EXPECT_EQ(web.name, "web");
  EXPECT_EQ(web.line, 6);
  EXPECT_EQ(web.image, "eph-sample:v1");
  EXPECT_THAT(*web.command, ElementsAre("/sample_server"));
  EXPECT_THAT(web.environment, ElementsAre("PAGE=hello world", "PORT=8080"));
  EXPECT_THAT(web.ports, ElementsAre(PortMapping{8080, "tcp", 0}, PortMapping{9090, "udp", 0},
                                     PortMapping{3001, "tcp", 3000}));
  ASSERT_TRUE(web.healthcheck.has_value());
  EXPECT_THAT(web.healthcheck->test, ElementsAre("CMD", "/sample_server", "probe", "8080"));
  EXPECT_EQ(web.healthcheck->interval, absl::Seconds(1));
  EXPECT_EQ(web.healthcheck->timeout, absl::Milliseconds(500));
  EXPECT_EQ(web.healthcheck->start_period, absl::Seconds(90));
  EXPECT_EQ(web.healthcheck->retries, 3);
  EXPECT_THAT(web.depends_on, ElementsAre("db"));
  EXPECT_EQ(web.depends_on_condition.at("db"), "service_healthy");
  EXPECT_THAT(web.volumes, ElementsAre(VolumeMount{"data", "/data", true}));
  EXPECT_EQ(web.labels.at("team"), "shop");
  const ComposeService& db = f->services[1];
  EXPECT_THAT(*db.command, ElementsAre("postgres", "-c", "max_connections=20", "it's"));
  EXPECT_THAT(*db.entrypoint, ElementsAre("docker-entrypoint.sh"));
  EXPECT_FALSE(web.entrypoint.has_value());
  EXPECT_THAT(db.environment, ElementsAre("POSTGRES_PASSWORD=x=y"));
  EXPECT_THAT(db.healthcheck->test, ElementsAre("CMD-SHELL", "pg_isready"));
  EXPECT_EQ(db.labels.at("tier"), "db");
  EXPECT_THAT(f->volumes, ElementsAre("data", "cache"));
  EXPECT_EQ(f->volume_labels.at("cache").at("keep"), "no");
  // db first: web depends on it.
  std::vector<std::string> order;
  for (const ComposeService* s : f->StartOrder()) order.push_back(s->name);
  EXPECT_THAT(order, ElementsAre("db", "web"));
}

TEST(ComposeFileTest, InterpolatesEphsVariablesInValues) {
  const std::map<std::string, std::string> vars = {
      {"EPH_PR_NUMBER", "7"}, {"EPH_SHORT_SHA", "abc1234"}, {"EPH_EMPTY", ""}};
  absl::StatusOr<ComposeFile> f = ParseComposeFile(R"(services:
  web:
    image: acme/web:pr-${EPH_PR_NUMBER}
    ports: ["${PORT:-8080}"]
    environment:
      BUILD: $EPH_SHORT_SHA
      COST: "$$5 and $ alone"
      EMPTY_DEFAULT: ${EPH_EMPTY:-fallback}
      EMPTY_KEPT: ${EPH_EMPTY-kept}
      NESTED: ${MISSING:-${EPH_PR_NUMBER}-x}
      ALT: ${EPH_PR_NUMBER:+yes}${MISSING:+no}
    command: echo ${EPH_PR_NUMBER}
)",
                                                   "compose.yml", vars);
  ASSERT_TRUE(f.ok()) << f.status();
  const ComposeService& web = f->services[0];
  EXPECT_EQ(web.image, "acme/web:pr-7");
  EXPECT_EQ(web.ports[0].container_port, 8080);
  EXPECT_THAT(web.environment,
              ElementsAre("BUILD=abc1234", "COST=$5 and $ alone", "EMPTY_DEFAULT=fallback",
                          "EMPTY_KEPT=", "NESTED=7-x", "ALT=yes"));
  ASSERT_TRUE(web.command.has_value());
  EXPECT_THAT(*web.command, ElementsAre("echo", "7"));
}

TEST(ComposeFileTest, AnUnsetVariableIsAnErrorThatSaysWhatIsSet) {
  const std::map<std::string, std::string> vars = {{"EPH_PR_NUMBER", "7"}};
  struct Case {
    std::string value;
    std::string says;
  };
  for (const Case& c : {
           Case{"${TAG}",
                "compose.yml:3:12: services.web.image: ${TAG} is not set (Eph sets "
                "EPH_PR_NUMBER); give it a default with ${TAG:-value}"},
           Case{"$TAG", "${TAG} is not set"},
           Case{"${TAG:?needs a tag}", "services.web.image: needs a tag"},
           Case{"${TAG", "has no closing brace"},
           Case{"${1abc}", "is not a variable reference"},
           Case{"${TAG/x/y}", "is not a variable reference Eph understands"},
       }) {
    absl::StatusOr<ComposeFile> f = ParseComposeFile(
        "services:\n  web:\n    image: \"" + c.value + "\"\n", "compose.yml", vars);
    ASSERT_FALSE(f.ok()) << c.value;
    EXPECT_EQ(f.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(f.status().message(), HasSubstr(c.says)) << c.value;
  }
}

TEST(ComposeFileTest, DisabledHealthcheck) {
  absl::StatusOr<ComposeFile> f = ParseComposeFile(
      "services:\n  a:\n    image: x\n    healthcheck:\n      disable: true\n", "c.yml");
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_THAT(f->services[0].healthcheck->test, ElementsAre("NONE"));
}

TEST(ComposeFileTest, StartIntervalDuringTheStartPeriod) {
  absl::StatusOr<ComposeFile> f = ParseComposeFile(
      "services:\n  a:\n    image: x\n    healthcheck:\n      test: [CMD, /app, --check]\n"
      "      interval: 30s\n      start_period: 10s\n      start_interval: 100ms\n",
      "c.yml");
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->services[0].healthcheck->start_interval, absl::Milliseconds(100));
  EXPECT_EQ(f->services[0].healthcheck->start_period, absl::Seconds(10));
  absl::StatusOr<ComposeFile> plain = ParseComposeFile(
      "services:\n  a:\n    image: x\n    healthcheck:\n      test: [CMD, x]\n", "c.yml");
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_EQ(plain->services[0].healthcheck->start_interval, absl::ZeroDuration());
}

TEST(ComposeFileTest, PullPolicies) {
  absl::StatusOr<ComposeFile> f = ParseComposeFile(
      "services:\n  a:\n    image: x\n  b:\n    image: x\n    pull_policy: always\n"
      "  c:\n    image: x\n    pull_policy: if_not_present\n  d:\n    image: x\n"
      "    pull_policy: never\n",
      "c.yml");
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->services[0].pull_policy, "missing");
  EXPECT_EQ(f->services[1].pull_policy, "always");
  EXPECT_EQ(f->services[2].pull_policy, "missing");
  EXPECT_EQ(f->services[3].pull_policy, "never");
}

struct BadCase {
  const char* name;
  const char* yaml;
  const char* expected;  // substring, including the file:line:column
};

class BadComposeFileTest : public ::testing::TestWithParam<BadCase> {};

TEST_P(BadComposeFileTest, NamesTheProblemAndItsLine) {
  EXPECT_THAT(ErrorOf(GetParam().yaml), HasSubstr(GetParam().expected));
}

INSTANTIATE_TEST_SUITE_P(
    Cases, BadComposeFileTest,
    ::testing::Values(
        BadCase{"Empty", "", "compose.yml: the compose file is empty"},
        BadCase{"NotYaml", "services: [a\n", "compose.yml:2:1: not valid YAML"},
        BadCase{"NoServices", "volumes: {}\n", "no services"},
        BadCase{"UnknownTopLevel", "services:\n  a:\n    image: x\nnetworks:\n  front: {}\n",
                "compose.yml:4:1: unsupported top-level key `networks`"},
        BadCase{"UnknownServiceKey", "services:\n  a:\n    image: x\n    build: .\n",
                "compose.yml:4:5: services.a: unsupported key `build`"},
        BadCase{"PullPolicyBuild", "services:\n  a:\n    image: x\n    pull_policy: build\n",
                "compose.yml:4:18: services.a.pull_policy: `build` is not supported"},
        BadCase{"PullPolicyDaily", "services:\n  a:\n    image: x\n    pull_policy: daily\n",
                "compose.yml:4:18: services.a.pull_policy: `daily` is not supported"},
        BadCase{"MissingImage", "services:\n  a:\n    command: x\n",
                "compose.yml:2:3: services.a: `image` is required"},
        BadCase{"BindMount", "services:\n  a:\n    image: x\n    volumes:\n      - ./src:/src\n",
                "compose.yml:5:9: services.a.volumes: `./src:/src`: bind mounts are not "
                "supported"},
        BadCase{"UndeclaredVolume",
                "services:\n  a:\n    image: x\n    volumes:\n      - data:/data\n",
                "compose.yml:5:9: services.a.volumes: volume `data` is not declared"},
        BadCase{"AnonymousVolume", "services:\n  a:\n    image: x\n    volumes:\n      - /data\n",
                "anonymous volumes are not supported"},
        BadCase{"PublicPort", "services:\n  a:\n    image: x\n    ports:\n      - 0.0.0.0:80:80\n",
                "compose.yml:5:9: services.a.ports: `0.0.0.0:80:80`: Eph publishes ports on "
                "127.0.0.1 only"},
        BadCase{"PortRange", "services:\n  a:\n    image: x\n    ports:\n      - 8000-8010\n",
                "compose.yml:5:9: services.a.ports: container port `8000-8010` is not a port "
                "number"},
        BadCase{"LongPortSyntax", "services:\n  a:\n    image: x\n    ports:\n      - target: 80\n",
                "compose.yml:5:9: services.a.ports: only the short syntax"},
        BadCase{"EnvWithoutValue",
                "services:\n  a:\n    image: x\n    environment:\n      SECRET:\n",
                "compose.yml:5:7: services.a.environment: `SECRET` has no value"},
        BadCase{"EnvListWithoutValue",
                "services:\n  a:\n    image: x\n    environment:\n      - SECRET\n",
                "compose.yml:5:9: services.a.environment: `SECRET` has no value"},
        BadCase{"UnknownDependency", "services:\n  a:\n    image: x\n    depends_on: [b]\n",
                "compose.yml:4:18: services.a.depends_on: no service named `b`"},
        BadCase{"DependencyCycle",
                "services:\n  a:\n    image: x\n    depends_on: [b]\n  b:\n    image: y\n"
                "    depends_on: [a]\n",
                "depends_on cycle: a -> b -> a"},
        BadCase{"HealthcheckKey",
                "services:\n  a:\n    image: x\n    healthcheck:\n      test: [CMD, x]\n"
                "      probe: 1\n",
                "compose.yml:6:7: services.a.healthcheck: unsupported key `probe`"},
        BadCase{"HealthcheckDuration",
                "services:\n  a:\n    image: x\n    healthcheck:\n      test: [CMD, x]\n"
                "      interval: soon\n",
                "compose.yml:6:17: services.a.healthcheck.interval: invalid duration"},
        BadCase{"StartIntervalWithoutStartPeriod",
                "services:\n  a:\n    image: x\n    healthcheck:\n      test: [CMD, x]\n"
                "      start_interval: 1s\n",
                "compose.yml:5:7: services.a.healthcheck: start_interval applies only during "
                "start_period"},
        BadCase{"StartIntervalDuration",
                "services:\n  a:\n    image: x\n    healthcheck:\n      test: [CMD, x]\n"
                "      start_period: 5s\n      start_interval: 0.5\n",
                "compose.yml:7:23: services.a.healthcheck.start_interval: invalid duration"},
        BadCase{"HealthcheckTestForm",
                "services:\n  a:\n    image: x\n    healthcheck:\n      test: [curl, x]\n",
                "compose.yml:5:13: services.a.healthcheck.test: a list must start with CMD"},
        BadCase{"HealthcheckRetries",
                "services:\n  a:\n    image: x\n    healthcheck:\n      test: [CMD, x]\n"
                "      retries: -1\n",
                "compose.yml:6:16: services.a.healthcheck.retries must be a whole number"},
        BadCase{"ReservedLabel",
                "services:\n  a:\n    image: x\n    labels:\n      eph.dev/environment: other\n",
                "compose.yml:5:7: services.a.labels: label `eph.dev/environment` is reserved"},
        BadCase{"VolumeDriver",
                "services:\n  a:\n    image: x\nvolumes:\n  data:\n    driver: nfs\n",
                "compose.yml:6:5: volumes.data: unsupported key `driver`"},
        BadCase{"BadServiceName", "services:\n  -a:\n    image: x\n",
                "compose.yml:2:3: service name `-a`"},
        BadCase{"DuplicateService",
                "services:\n  a:\n    image: x\n  b:\n    image: y\n  a:\n    image: z\n",
                "compose.yml:6:3: `a` appears twice"},
        BadCase{"DuplicateField", "services:\n  a:\n    image: x\n    image: y\n",
                "compose.yml:4:5: `image` appears twice"},
        BadCase{"TabIndentation", "services:\n\ta:\n    image: x\n", "compose.yml:2:1"},
        BadCase{"UnterminatedQuote", "services:\n  a:\n    image: x\n    command: echo 'hi\n",
                "compose.yml:4:14: services.a.command: unterminated ' quote"}),
    [](const ::testing::TestParamInfo<BadCase>& param_info) {
      return std::string(param_info.param.name);
    });

TEST(ComposeFileTest, RefusesAliasBombs) {
  // Ten to the eighth strings from a few hundred bytes: refused at the first nested list.
  std::string yaml = "x-0: &a0 [v, v, v, v, v, v, v, v, v, v]\n";
  for (int i = 1; i <= 7; ++i) {
    yaml += fmt::format("x-{}: &a{} [", i, i);
    for (int j = 0; j < 10; ++j) yaml += fmt::format("{}*a{}", j == 0 ? "" : ", ", i - 1);
    yaml += "]\n";
  }
  yaml += "services:\n  web:\n    image: x\n    command: *a7\n";
  EXPECT_THAT(ErrorOf(yaml), HasSubstr("services.web.command[] must be a string"));
  // Valid, but aliases make it far larger than its text.
  std::string wide = "x-labels: &l {";
  for (int i = 0; i < 100; ++i) wide += fmt::format("{}k{}: v", i == 0 ? "" : ", ", i);
  wide += "}\nservices:\n";
  for (int i = 0; i < 2'000; ++i) wide += fmt::format("  s{}: {{image: x, labels: *l}}\n", i);
  EXPECT_THAT(ErrorOf(wide), HasSubstr("more than 200000 values"));
}

TEST(ComposeFileTest, RefusesHugeFiles) {
  EXPECT_THAT(ErrorOf("services:\n  a:\n    image: x\n" + std::string(2 << 20, '#')),
              HasSubstr("compose.yml: the file is 2097180 bytes; a compose file may be at most"));
}

TEST(ComposeSplitCommandTest, QuotesAndEscapes) {
  EXPECT_THAT(*SplitCommand(R"(a "b c" 'd "e"' f\ g "h\"i")"),
              ElementsAre("a", "b c", "d \"e\"", "f g", "h\"i"));
  EXPECT_THAT(*SplitCommand("  "), ElementsAre());
  EXPECT_THAT(*SplitCommand("''"), ElementsAre(""));
  EXPECT_FALSE(SplitCommand("\"open").ok());
}

}  // namespace
}  // namespace eph::providers::docker
