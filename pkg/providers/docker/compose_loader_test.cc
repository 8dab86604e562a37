// The compose loader with the real eph-compose (tools/compose/build) on the projects under
// testdata/compose/: what compose-go resolves (merge keys, extends, env_file, .env, several
// documents, profiles), that interpolation sees Eph's variables and never the process
// environment, and that the policy reports every refusal at once where the user wrote it.
// Without eph-compose the tests fail (they never skip): run tools/compose/build.
#include "pkg/providers/docker/compose_loader.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>

#include "test/support/testbed.h"

namespace eph::providers::docker {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;

class ComposeLoaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(FindComposeTool().empty())
        << "eph-compose not found: run tools/compose/build (scripts/install-deps does)";
  }

  static std::string Dir(const std::string& name) {
    return testing::SourceDir() + "/pkg/providers/docker/testdata/compose/" + name;
  }

  static absl::StatusOr<ComposeFile> Load(const std::string& name,
                                          std::vector<std::string> profiles = {},
                                          std::map<std::string, std::string> variables = {}) {
    ComposeProjectSource source;
    source.project_dir = Dir(name);
    source.files = {"compose.yaml"};
    source.profiles = std::move(profiles);
    source.variables = std::move(variables);
    return LoadComposeProject(source, {});
  }

  static std::string Message(const absl::Status& status) { return std::string(status.message()); }
};

TEST_F(ComposeLoaderTest, MergeKeysAreResolvedAsYamlDefinesThem) {
  absl::StatusOr<ComposeFile> file = Load("merge");
  ASSERT_TRUE(file.ok()) << file.status();
  const ComposeService* web = file->Find("web");
  const ComposeService* worker = file->Find("worker");
  ASSERT_NE(web, nullptr);
  ASSERT_NE(worker, nullptr);
  EXPECT_EQ(web->restart, "unless-stopped");
  EXPECT_EQ(worker->restart, "unless-stopped");
  EXPECT_EQ(web->labels.at("team"), "web");
  EXPECT_THAT(web->environment, UnorderedElementsAre("LOG_LEVEL=info", "PORT=8080"));
  EXPECT_THAT(*worker->command, ElementsAre("sleep", "infinity"));
  EXPECT_EQ(web->image, "nginx:1.27");
}

TEST_F(ComposeLoaderTest, ExtendsFromAnotherFileAndWithinTheFile) {
  absl::StatusOr<ComposeFile> file = Load("extends");
  ASSERT_TRUE(file.ok()) << file.status();
  const ComposeService* api = file->Find("api");
  const ComposeService* admin = file->Find("admin");
  ASSERT_NE(api, nullptr);
  ASSERT_NE(admin, nullptr);
  EXPECT_EQ(api->image, "registry.example/app:latest");
  EXPECT_THAT(api->environment, UnorderedElementsAre("FROM_BASE=yes", "ROLE=api"));
  EXPECT_THAT(admin->environment, UnorderedElementsAre("FROM_BASE=yes", "ROLE=admin"));
  ASSERT_EQ(api->expose.size(), 1u);
  EXPECT_EQ(api->expose[0].container_port, 9000);
  // container_name becomes a network alias; the container keeps Eph's unique name.
  EXPECT_THAT(api->aliases, ElementsAre("the-api"));
  EXPECT_THAT(admin->aliases, ElementsAre("the-admin"));
}

TEST_F(ComposeLoaderTest, VariablesComeFromEphAndDotEnvNeverFromTheProcess) {
  ASSERT_EQ(::setenv("EPH_COMPOSE_TEST_LEAK", "ephd-secret", 1), 0);
  absl::StatusOr<ComposeFile> file =
      Load("envfile", {}, {{"EPH_PR_NUMBER", "42"}, {"EPH_SHORT_SHA", "abc1234"}});
  ::unsetenv("EPH_COMPOSE_TEST_LEAK");
  ASSERT_TRUE(file.ok()) << file.status();
  const ComposeService* web = file->Find("web");
  ASSERT_NE(web, nullptr);
  EXPECT_EQ(web->image, "nginx:1.27");  // TAG from .env
  EXPECT_THAT(web->environment,
              UnorderedElementsAre("DATABASE_URL=postgres://db/app",  // env_file
                                   "PR=pr-42", "FROM_DOTENV=from-dotenv", "LEAK=not-set",
                                   "HOME_SEEN=no-home",
                                   // Eph's variable wins over .env's
                                   "OVERRIDDEN=abc1234"));
}

TEST_F(ComposeLoaderTest, ProfilesChooseServices) {
  absl::StatusOr<ComposeFile> plain = Load("profiles");
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_EQ(plain->services.size(), 1u);
  EXPECT_EQ(plain->Find("debug"), nullptr);
  absl::StatusOr<ComposeFile> debug = Load("profiles", {"debug"});
  ASSERT_TRUE(debug.ok()) << debug.status();
  ASSERT_NE(debug->Find("debug"), nullptr);
  EXPECT_THAT(debug->Find("debug")->depends_on, ElementsAre("web"));
}

TEST_F(ComposeLoaderTest, LaterDocumentsOverrideEarlierOnesAsComposeDoes) {
  absl::StatusOr<ComposeFile> file = Load("documents");
  ASSERT_TRUE(file.ok()) << file.status();
  ASSERT_EQ(file->services.size(), 1u);
  EXPECT_EQ(file->services[0].image, "nginx");
  EXPECT_THAT(file->services[0].environment, ElementsAre("SECOND=document"));
}

TEST_F(ComposeLoaderTest, EveryRefusalAtOnceWhereTheUserWroteIt) {
  absl::StatusOr<ComposeFile> file = Load("errors");
  ASSERT_FALSE(file.ok());
  EXPECT_TRUE(absl::IsInvalidArgument(file.status())) << file.status();
  const std::string m = Message(file.status());
  EXPECT_THAT(m, HasSubstr("compose.yaml:4:5: error: services.web.privileged: not supported: a "
                           "privileged container controls the shared Docker host"));
  EXPECT_THAT(m, HasSubstr("compose.yaml:6:9: error: services.web.ports.0: host address "
                           "`0.0.0.0`"));
  EXPECT_THAT(m, HasSubstr("compose.yaml:8:9: error: services.web.volumes.0: bind mount of "
                           "`/var/run/docker.sock`: a preview must not see the Docker host's "
                           "files"));
  EXPECT_THAT(m, HasSubstr("compose.yaml:11:5: error: services.builder.build: not supported: "
                           "Eph cannot build images yet"));
  EXPECT_THAT(m, HasSubstr("compose.yaml:12:5: error: services.builder.network_mode:"));
  EXPECT_THAT(m, HasSubstr("compose.yaml:15:5: error: volumes.data.external:"));
  EXPECT_THAT(m, HasSubstr("compose.yaml:16:1: error: secrets: not supported"));
  EXPECT_EQ(std::count(m.begin(), m.end(), '\n'), 6) << m;  // seven lines, in file order
}

TEST_F(ComposeLoaderTest, AFileOutsideTheRepositoryIsRefusedBeforeItIsRead) {
  absl::StatusOr<ComposeFile> file = Load("outside");
  ASSERT_FALSE(file.ok());
  EXPECT_THAT(Message(file.status()),
              HasSubstr("compose.yaml:4:5: error: services.web.env_file: /etc/hostname is "
                        "outside the repository"));
}

TEST_F(ComposeLoaderTest, ComposeGoErrorsArePlacedToo) {
  const std::string dir = testing::MakeTempDir("compose-loader");
  std::ofstream(dir + "/compose.yaml") << "services:\n  web:\n    image: ${IMAGE:?set IMAGE}\n";
  ComposeProjectSource source{dir, {"compose.yaml"}, {}, {}};
  absl::StatusOr<ComposeFile> file = LoadComposeProject(source, {});
  ASSERT_FALSE(file.ok());
  EXPECT_THAT(Message(file.status()), HasSubstr("compose.yaml:3:5: error: error while "
                                                "interpolating services.web.image: required "
                                                "variable IMAGE is missing a value: set IMAGE"));

  std::ofstream(dir + "/compose.yaml") << "services:\n  web:\n    image: x\n   bad: [\n";
  file = LoadComposeProject(source, {});
  ASSERT_FALSE(file.ok());
  // The position is the one compose-go's YAML parser gives ("line 3, column 4").
  EXPECT_THAT(Message(file.status()), HasSubstr("compose.yaml:3:4: error: failed to parse "
                                                "compose.yaml: yaml:"));
}

TEST_F(ComposeLoaderTest, AKeyFromAMergeIsPlacedWhereTheMergeIsUsed) {
  const std::string dir = testing::MakeTempDir("compose-loader");
  std::ofstream(dir + "/compose.yaml") << "x-base: &base\n"
                                          "  privileged: true\n"
                                          "services:\n"
                                          "  web:\n"
                                          "    image: nginx\n"
                                          "    <<: *base\n";
  absl::StatusOr<ComposeFile> file = LoadComposeProject({dir, {"compose.yaml"}, {}, {}}, {});
  ASSERT_FALSE(file.ok());
  EXPECT_THAT(Message(file.status()), HasSubstr("compose.yaml:6:5: error: services.web."
                                                "privileged"));
}

TEST_F(ComposeLoaderTest, AMissingToolIsAFailedPreconditionThatSaysWhatToDo) {
  ComposeProjectSource source{Dir("merge"), {"compose.yaml"}, {}, {}};
  absl::StatusOr<ComposeFile> file =
      LoadComposeProject(source, {.compose_path = "/nonexistent/eph-compose"});
  ASSERT_FALSE(file.ok());
  EXPECT_TRUE(absl::IsFailedPrecondition(file.status()));
  EXPECT_THAT(Message(file.status()), HasSubstr("compose_path=/nonexistent/eph-compose"));
}

TEST_F(ComposeLoaderTest, SourcesWithoutACheckoutAreWrittenOutAndRemoved) {
  ApplyRequest request;
  request.sources = {{"deploy/compose.yaml",
                      "services:\n  web:\n    image: ${IMG:-nginx}\n"
                      "    deploy:\n      resources:\n        limits:\n"
                      "          cpus: '0.5'\n          memory: 64M\n"
                      "    volumes: ['/scratch']\n"}};
  ComposeProjectSource source;
  source.files = {"deploy/compose.yaml"};
  absl::StatusOr<ComposeFile> file = LoadComposeProject(request, source, {});
  ASSERT_TRUE(file.ok()) << file.status();
  const ComposeService& web = file->services.at(0);
  EXPECT_EQ(web.image, "nginx");
  EXPECT_EQ(web.nano_cpus, 500'000'000);
  EXPECT_EQ(web.memory_bytes, 64 << 20);
  ASSERT_EQ(web.volumes.size(), 1u);
  EXPECT_EQ(web.volumes[0].volume, "");  // anonymous
  EXPECT_EQ(web.volumes[0].target, "/scratch");
}

}  // namespace
}  // namespace eph::providers::docker

namespace eph::providers::docker {
namespace {

// healthcheck.start_interval (issue 15): read through compose-go; alone, without the start
// period it applies in, it would silently do nothing, so it is refused where it is written.
TEST_F(ComposeLoaderTest, StartIntervalDuringTheStartPeriod) {
  absl::StatusOr<ComposeFile> file = Load("start-interval");
  ASSERT_TRUE(file.ok()) << file.status();
  const ComposeService* web = file->Find("web");
  const ComposeService* plain = file->Find("plain");
  ASSERT_NE(web, nullptr);
  ASSERT_NE(plain, nullptr);
  ASSERT_TRUE(web->healthcheck.has_value());
  EXPECT_EQ(web->healthcheck->start_interval, absl::Milliseconds(100));
  EXPECT_EQ(web->healthcheck->start_period, absl::Seconds(10));
  EXPECT_EQ(web->healthcheck->interval, absl::Seconds(30));
  ASSERT_TRUE(plain->healthcheck.has_value());
  EXPECT_EQ(plain->healthcheck->start_interval, absl::ZeroDuration());

  absl::StatusOr<ComposeFile> alone = Load("start-interval-alone");
  ASSERT_FALSE(alone.ok());
  EXPECT_THAT(Message(alone.status()),
              HasSubstr("compose.yaml:6:7: error: services.web.healthcheck.start_interval: applies only "
                        "during start_period"));
}

}  // namespace
}  // namespace eph::providers::docker
