#include "pkg/config/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

namespace eph::config {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

std::filesystem::path ValidDir() {
  return std::filesystem::path(EPH_SOURCE_DIR) / "test/config/valid";
}

std::string ReadFixture(const std::string& name) {
  std::ifstream in(ValidDir() / name, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

ProjectConfig ParseOk(std::string_view text) {
  ValidationResult result = ParseConfig(text);
  EXPECT_THAT(result.diagnostics, IsEmpty()) << FormatDiagnostics(result.diagnostics);
  return result.config.value_or(ProjectConfig{});
}

TEST(ParseConfigTest, VisionExampleParsesAsWritten) {
  ProjectConfig expected;
  expected.version = "1.0";
  expected.name = "my-app";
  Trigger trigger;
  trigger.labels = {"preview"};
  trigger.wait_for_checks = {"build"};
  expected.triggers = {trigger};
  expected.environment.name_template = "{project}-{words}-{number}";
  expected.environment.ttl = absl::Hours(72);
  expected.environment.idle_timeout = absl::Hours(4);
  expected.kubernetes = KubernetesSettings{
      .manifests = {"k8s/base", "k8s/overlays/preview"},
      .images = {{"api", "pr-{pr_number}"}},
      .helm = {},
  };
  expected.database.enabled = true;
  expected.database.instances = {DatabaseInstance{
      .name = "postgres",
      .version = "15",
      .strategy = DatabaseTemplateStrategy::kSeed,
      .seed_scripts = {"db/schema.sql"},
  }};

  EXPECT_EQ(ParseOk(ReadFixture("vision-example.yaml")), expected);
}

TEST(ParseConfigTest, MaximalExampleFillsEveryField) {
  ProjectConfig config = ParseOk(ReadFixture("maximal.yaml"));
  EXPECT_EQ(config.name, "shop");
  ASSERT_EQ(config.triggers.size(), 2u);
  const Trigger& trigger = config.triggers[0];
  EXPECT_THAT(trigger.labels, ElementsAre("preview", "preview:full"));
  EXPECT_THAT(trigger.skip_labels, ElementsAre("no-preview", "wip"));
  EXPECT_THAT(trigger.wait_for_checks, ElementsAre("build", "test (ubuntu-latest)"));
  EXPECT_TRUE(trigger.include_drafts);
  EXPECT_THAT(trigger.paths, ElementsAre("services/shop/**", "libs/common/**", "!**/*.md"));
  EXPECT_THAT(config.triggers[1].paths, ElementsAre("docs"));

  EXPECT_EQ(config.environment.name_template, "{project}-pr{pr_number}-{words}");
  EXPECT_EQ(config.environment.ttl, absl::Hours(7 * 24));
  EXPECT_EQ(config.environment.idle_timeout, absl::Minutes(90));
  EXPECT_TRUE(config.environment.has_idle_timeout());
  EXPECT_TRUE(config.environment.allow_forks);
  EXPECT_EQ(config.environment.base_domain, "preview.example.com");
  EXPECT_TRUE(config.environment.random_suffix);

  ASSERT_TRUE(config.kubernetes.has_value());
  EXPECT_THAT(config.kubernetes->manifests,
              ElementsAre("deploy/k8s/base", "deploy/k8s/overlays/preview"));
  EXPECT_THAT(config.kubernetes->images,
              ElementsAre(ImageOverride{"ghcr.io/example/shop-api", "pr-{pr_number}-{short_sha}"},
                          ImageOverride{"ghcr.io/example/shop-web", "{sha}"}));
  ASSERT_EQ(config.kubernetes->helm.size(), 2u);
  const HelmRelease& redis = config.kubernetes->helm[0];
  EXPECT_EQ(redis.chart, "charts/redis");
  EXPECT_THAT(redis.values, ElementsAre("charts/redis/values.yaml", "deploy/redis-preview.yaml"));
  EXPECT_EQ(redis.release_name, "cache");
  EXPECT_EQ(redis.set, (std::map<std::string, std::string>{{"image.tag", "pr-{pr_number}"},
                                                           {"replicas", "1"}}));
  EXPECT_EQ(config.kubernetes->helm[1].release_name, "search-engine");  // derived from the chart

  EXPECT_TRUE(config.database.enabled);
  ASSERT_EQ(config.database.instances.size(), 3u);
  EXPECT_EQ(config.database.instances[0].strategy, DatabaseTemplateStrategy::kSeed);
  EXPECT_THAT(config.database.instances[0].seed_scripts,
              ElementsAre("db/schema.sql", "db/fixtures/orders.sql"));
  EXPECT_EQ(config.database.instances[1].strategy, DatabaseTemplateStrategy::kClone);
  EXPECT_EQ(config.database.instances[2].strategy, DatabaseTemplateStrategy::kEmpty);

  ASSERT_TRUE(config.docker.has_value());
  EXPECT_EQ(config.docker->compose_file, "compose.preview.yaml");
  EXPECT_THAT(config.docker->images, ElementsAre(ImageOverride{"shop-api", "pr-{pr_number}"}));
  EXPECT_EQ(config.docker->web, (DockerWebService{"web", 8080}));
}

TEST(ParseConfigTest, MinimalConfigGetsDefaults) {
  ProjectConfig config = ParseOk(ReadFixture("minimal.yaml"));
  ASSERT_EQ(config.triggers.size(), 1u);
  EXPECT_EQ(config.triggers[0], (Trigger{.labels = {"preview"}}));
  EXPECT_EQ(config.environment, EnvironmentSettings{});
  EXPECT_EQ(config.environment.name_template, "{project}-{words}-{number}");
  EXPECT_EQ(config.environment.ttl, absl::Hours(72));
  EXPECT_FALSE(config.environment.has_idle_timeout());
  EXPECT_FALSE(config.environment.allow_forks);
  EXPECT_TRUE(config.environment.random_suffix);  // unguessable by default (issue 16)
  EXPECT_EQ(config.environment.base_domain, std::nullopt);
  EXPECT_FALSE(config.database.enabled);
  EXPECT_FALSE(config.docker.has_value());
}

TEST(ParseConfigTest, DockerOnlyConfig) {
  ProjectConfig config = ParseOk(ReadFixture("docker-only.yaml"));
  EXPECT_EQ(config.version, "1.0");  // `version: 1` is read as 1.0
  EXPECT_FALSE(config.kubernetes.has_value());
  ASSERT_TRUE(config.docker.has_value());
  EXPECT_EQ(config.docker->compose_file, "docker-compose.yml");
  EXPECT_EQ(config.docker->web, (DockerWebService{"frontend", 3000}));
  EXPECT_FALSE(config.triggers[0].include_drafts);
}

TEST(ParseConfigTest, CrlfAndByteOrderMarkAreFine) {
  EXPECT_EQ(ParseOk(ReadFixture("crlf.yaml")).name, "crlf-app");
  EXPECT_EQ(ParseOk(ReadFixture("bom.yaml")).name, "bom-app");
}

TEST(ParseConfigTest, AliasesAndTrailingDocumentSeparatorAreFine) {
  ProjectConfig config = ParseOk(
      "version: '1.0'\n"
      "name: app\n"
      "triggers:\n"
      "  - {type: pr_label, labels: &labels [preview, deploy]}\n"
      "  - {type: pr_label, labels: *labels, include_drafts: true}\n"
      "kubernetes: {manifests: [k8s]}\n"
      "---\n");
  ASSERT_EQ(config.triggers.size(), 2u);
  EXPECT_EQ(config.triggers[1].labels, config.triggers[0].labels);
}

TEST(ParseConfigTest, EmptySectionsTakeDefaults) {
  ProjectConfig config = ParseOk("version: '1.0'\nname: app\ntriggers:\nenvironment:\ndocker:\n");
  EXPECT_EQ(config.triggers, std::vector<Trigger>{Trigger{.labels = {"preview"}}});
  EXPECT_EQ(config.environment, EnvironmentSettings{});
  ASSERT_TRUE(config.docker.has_value());
  EXPECT_EQ(config.docker->compose_file, "docker-compose.yml");
}

TEST(ParseConfigTest, ZeroIdleTimeoutMeansNever) {
  ProjectConfig config =
      ParseOk("version: '1.0'\nname: app\nenvironment: {idle_timeout: 0}\ndocker: {}\n");
  EXPECT_FALSE(config.environment.has_idle_timeout());
}

TEST(ParseConfigTest, DatabaseCanBeSwitchedOff) {
  ProjectConfig config =
      ParseOk("version: '1.0'\nname: app\ndatabase: {enabled: false}\ndocker: {}\n");
  EXPECT_FALSE(config.database.enabled);
}

TEST(ParseConfigTest, CloneTemplateFromSeedScriptsWithSanitiserAndSeedSettings) {
  ProjectConfig config = ParseOk(
      "version: '1.0'\nname: app\ndocker: {}\ndatabase:\n  instances:\n"
      "    - name: pg\n      version: '15'\n      template:\n        strategy: clone\n"
      "        seed: {scripts: [./db/schema.sql, db/data.sql], timeout: 90s}\n"
      "        on_seed_change: reseed\n        sanitize: ./db/scrub.sql\n");
  ASSERT_EQ(config.database.instances.size(), 1u);
  const DatabaseInstance& db = config.database.instances[0];
  EXPECT_EQ(db.strategy, DatabaseTemplateStrategy::kClone);
  EXPECT_THAT(db.seed_scripts, ElementsAre("db/schema.sql", "db/data.sql"));
  EXPECT_EQ(db.seed_timeout, absl::Seconds(90));
  EXPECT_EQ(db.on_seed_change, DatabaseSeedChange::kReseed);
  EXPECT_EQ(db.sanitize_script, "db/scrub.sql");

  ProjectConfig defaults = ParseOk(
      "version: '1.0'\nname: app\ndocker: {}\ndatabase:\n  instances:\n"
      "    - name: pg\n      version: '15'\n      template: {strategy: seed, seed: {scripts: "
      "[a.sql]}}\n");
  EXPECT_EQ(defaults.database.instances[0].seed_timeout, kDefaultSeedTimeout);
  EXPECT_EQ(defaults.database.instances[0].on_seed_change, DatabaseSeedChange::kKeep);
}

TEST(ParseConfigTest, RejectsBadSeedSettings) {
  const std::string head =
      "version: '1.0'\nname: app\ndocker: {}\ndatabase:\n  instances:\n"
      "    - name: pg\n      version: '15'\n      template:\n";
  struct Case {
    std::string body;
    std::string says;
  };
  for (const Case& c : {
           Case{"        strategy: clone\n        on_seed_change: resed\n",
                "did you mean `reseed`?"},
           Case{"        strategy: seed\n        seed: {scripts: [a.sql], timeout: 0s}\n",
                "must be longer than zero"},
           Case{"        strategy: clone\n        sanitize: scrub.sql\n", "needs `seed.scripts`"},
           Case{"        strategy: clone\n        seed: {scripts: [a.sql]}\n        sanitize: "
                "../x.sql\n",
                "x.sql"},
       }) {
    ValidationResult result = ParseConfig(head + c.body);
    ASSERT_FALSE(result.ok()) << c.body;
    EXPECT_THAT(result.diagnostics[0].message, HasSubstr(c.says)) << c.body;
  }
}

TEST(ParseConfigTest, DatabasePlacementPicksTheServerAndItsImage) {
  const std::string head = "version: '1.0'\nname: app\ndocker: {}\ndatabase:\n  instances:\n";
  ProjectConfig shared = ParseOk(head + "    - {name: pg, version: '15'}\n");
  EXPECT_EQ(shared.database.instances[0].placement, DatabasePlacement::kShared);
  EXPECT_EQ(shared.database.instances[0].image, "");

  ProjectConfig own = ParseOk(head + "    - {name: pg, version: '16', placement: environment}\n");
  EXPECT_EQ(own.database.instances[0].placement, DatabasePlacement::kEnvironment);
  EXPECT_EQ(own.database.instances[0].image, "postgres:16");

  ProjectConfig named = ParseOk(
      head + "    - {name: pg, version: '15', placement: environment, image: acme/pg:15.4}\n");
  EXPECT_EQ(named.database.instances[0].image, "acme/pg:15.4");

  struct Case {
    std::string item;
    std::string says;
  };
  for (const Case& c : {
           Case{"{name: pg, version: '15', placement: enviroment}", "did you mean `environment`?"},
           Case{"{name: pg, version: latest, placement: environment}",
                "must be a PostgreSQL version"},
           Case{"{name: pg, version: '15', image: acme/pg:15}",
                "only applies to `placement: environment`"},
           Case{"{name: pg, version: '15', placement: environment, image: 'a b'}",
                "is not an image reference"},
       }) {
    ValidationResult result = ParseConfig(head + "    - " + c.item + "\n");
    ASSERT_FALSE(result.ok()) << c.item;
    EXPECT_THAT(result.diagnostics[0].message, HasSubstr(c.says)) << c.item;
  }
}

TEST(ParseConfigTest, RandomSuffixAllowsAConstantNameTemplate) {
  ProjectConfig config = ParseOk(
      "version: '1.0'\nname: app\n"
      "environment: {name_template: '{project}', random_suffix: true}\ndocker: {}\n");
  EXPECT_EQ(config.environment.name_template, "{project}");
}

TEST(ParseConfigTest, ReportsAllProblemsNotOnlyTheFirst) {
  ValidationResult result = ParseConfig(
      "version: '1.0'\n"
      "name: app\n"
      "environment:\n"
      "  ttl: 4hr\n"
      "  idle_timeout: soon\n"
      "  random_sufix: true\n"
      "kubernetes:\n"
      "  manifests: [/abs, ../up]\n",
      "repo/eph.yaml");
  EXPECT_FALSE(result.ok());
  EXPECT_EQ(FormatDiagnostics(result.diagnostics),
            "repo/eph.yaml:4:8: error: `environment.ttl`: invalid duration \"4hr\": unknown unit "
            "\"hr\" (valid units: ns, us, ms, s, m, h, d)\n"
            "repo/eph.yaml:5:17: error: `environment.idle_timeout`: invalid duration \"soon\": "
            "expected a number at \"soon\"\n"
            "repo/eph.yaml:6:3: error: unknown key `random_sufix` in `environment`; did you mean "
            "`random_suffix`?\n"
            "repo/eph.yaml:8:15: error: `kubernetes.manifests[0]`: path \"/abs\" is absolute; "
            "paths are relative to the repository root\n"
            "repo/eph.yaml:8:21: error: `kubernetes.manifests[1]`: path \"../up\" leaves the "
            "repository\n");
}

TEST(ParseConfigTest, KubernetesWebAndProgressDeadlineErrorsArePositioned) {
  ValidationResult result = ParseConfig(
      "version: '1.0'\n"
      "name: app\n"
      "kubernetes:\n"
      "  manifests: [k8s]\n"
      "  web: {service: Front_End, port: 99999}\n"
      "  progress_deadline: 0s\n",
      "eph.yaml");
  EXPECT_EQ(FormatDiagnostics(result.diagnostics),
            "eph.yaml:5:18: error: `kubernetes.web.service` \"Front_End\" is not a Service name: "
            "lowercase letters, digits and '-', starting with a letter\n"
            "eph.yaml:5:35: error: `kubernetes.web.port`: expected a port number (1-65535), got "
            "\"99999\"\n"
            "eph.yaml:6:22: error: `kubernetes.progress_deadline` must be more than 0\n");
  ValidationResult missing = ParseConfig(
      "version: '1.0'\nname: app\nkubernetes:\n  manifests: [k8s]\n  web: frontend:80\n");
  EXPECT_THAT(FormatDiagnostics(missing.diagnostics), HasSubstr("eph.yaml:5:8: error:"));
  ValidationResult no_port = ParseConfig(
      "version: '1.0'\nname: app\nkubernetes:\n  manifests: [k8s]\n  web: {service: web}\n");
  EXPECT_THAT(FormatDiagnostics(no_port.diagnostics), HasSubstr("`port`"));
}

TEST(ParseConfigTest, KubernetesDefaultsHaveNoWebAndTenMinutes) {
  ProjectConfig config = ParseOk("version: '1.0'\nname: app\nkubernetes: {manifests: [k8s]}\n");
  ASSERT_TRUE(config.kubernetes.has_value());
  EXPECT_EQ(config.kubernetes->web, std::nullopt);
  EXPECT_EQ(config.kubernetes->progress_deadline, absl::Minutes(10));
}

TEST(ParseConfigTest, CapsTheNumberOfDiagnostics) {
  std::string text = "version: '1.0'\nname: app\ndocker: {}\nenvironment:\n";
  for (int i = 0; i < 500; ++i) text += "  unknown_" + std::to_string(i) + ": 1\n";
  ValidationResult result = ParseConfig(text);
  ASSERT_EQ(result.diagnostics.size(), DiagnosticCollector::kMaxDiagnostics + 1);
  EXPECT_THAT(result.diagnostics.back().message, HasSubstr("too many errors"));
}

TEST(LoadConfigTest, ReturnsInvalidArgumentWithTheFormattedDiagnostics) {
  absl::StatusOr<ProjectConfig> config = LoadConfig("version: '1.0'\n", "eph.yaml");
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(config.status().message(),
            "eph.yaml:1:1: error: missing required key `name`\n"
            "eph.yaml:1:1: error: nothing to deploy: add a `kubernetes` or `docker` section");
}

TEST(LoadConfigTest, ReturnsTheConfig) {
  absl::StatusOr<ProjectConfig> config = LoadConfig(ReadFixture("vision-example.yaml"));
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->name, "my-app");
}

TEST(SummarizeConfigTest, VisionExample) {
  EXPECT_EQ(SummarizeConfig(ParseOk(ReadFixture("vision-example.yaml")), "eph.yaml"),
            "eph.yaml: valid (project my-app, 1 trigger, 2 manifest paths, entry service my-app, "
            "web or frontend (else the first Service with an HTTP port), 1 database)");
}

TEST(SummarizeConfigTest, MaximalExample) {
  EXPECT_EQ(SummarizeConfig(ParseOk(ReadFixture("maximal.yaml")), "eph.yaml"),
            "eph.yaml: valid (project shop, 2 triggers, 2 manifest paths, 2 Helm charts, entry "
            "service storefront:8080, compose file compose.preview.yaml, 3 databases)");
}

class ValidateFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("eph_config_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::filesystem::path dir_;
};

TEST_F(ValidateFileTest, ValidFile) {
  ValidationResult result = ValidateFile(ValidDir() / "vision-example.yaml");
  EXPECT_TRUE(result.ok());
  EXPECT_THAT(result.diagnostics, IsEmpty());
}

TEST_F(ValidateFileTest, DiagnosticsNameTheFileAsGiven) {
  std::filesystem::path path = dir_ / "eph.yaml";
  std::ofstream(path) << "version: '1.0'\nname: app\ndocker: {}\nenvironment: {ttl: 1y}\n";
  ValidationResult result = ValidateFile(path);
  ASSERT_EQ(result.diagnostics.size(), 1u);
  EXPECT_EQ(result.diagnostics[0].file, path.string());
  EXPECT_EQ(result.diagnostics[0].line, 4);
  EXPECT_EQ(result.diagnostics[0].column, 20);
}

TEST_F(ValidateFileTest, MissingFile) {
  ValidationResult result = ValidateFile(dir_ / "nope.yaml");
  EXPECT_FALSE(result.ok());
  ASSERT_EQ(result.diagnostics.size(), 1u);
  EXPECT_EQ(result.diagnostics[0].line, 0);
  EXPECT_THAT(FormatDiagnostic(result.diagnostics[0]),
              HasSubstr("nope.yaml: error: cannot read file: No such file or directory"));
}

TEST_F(ValidateFileTest, Directory) {
  ValidationResult result = ValidateFile(dir_);
  ASSERT_EQ(result.diagnostics.size(), 1u);
  EXPECT_THAT(result.diagnostics[0].message, HasSubstr("is a directory"));
}

TEST(KnownKeyPathsTest, AreUniqueAndEachSectionIsListedBeforeItsKeys) {
  std::set<std::string_view> seen;
  for (std::string_view path : KnownKeyPaths()) {
    EXPECT_TRUE(seen.insert(path).second) << "duplicate " << path;
    size_t cut = path.find_last_of('.');
    if (cut == std::string_view::npos) continue;
    std::string_view parent = path.substr(0, cut);
    if (parent.ends_with("[]")) parent.remove_suffix(2);
    EXPECT_TRUE(seen.count(parent)) << path << " comes before its section " << parent;
  }
  EXPECT_TRUE(seen.count("environment.ttl"));
  EXPECT_TRUE(seen.count("triggers[].labels"));
}

}  // namespace
}  // namespace eph::config
