// DockerProvider pulling from the test bed's real registry (test/bed/registry: CNCF distribution
// with TLS and htpasswd auth) into the test bed's real dockerd (test/bed/docker). Each test
// pushes its own image (FROM scratch, built from testdata/sample_server.c with the legacy
// builder) under a repository of its own, removes it from the engine, and lets the provider pull
// it: a pushed image runs as a preview; a missing tag, missing and wrong credentials and an
// unreachable registry fail with their reasons and create nothing; pull_policy never, missing and
// always do what Compose does.
//
// The registry is registry.eph.test:<port> on ::1, which the bed's dockerd resolves and trusts
// through the bed's CA in its certs.d: verified TLS, as with a real registry (test/bed/registry).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <thread>

#include "absl/strings/escaping.h"
#include "fmt/format.h"
#include "nlohmann/json.hpp"
#include "pkg/providers/docker/docker_provider.h"
#include "test/support/process.h"
#include "test/support/testbed.h"

namespace eph::providers::docker {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using nlohmann::json;
using ::testing::HasSubstr;

constexpr char kTestLabel[] = "eph.dev/test=docker-registry";

std::string DockerHost() { return eph::testing::TestbedValue("docker", "EPH_TEST_DOCKER_HOST"); }
std::string Registry() {
  return eph::testing::TestbedValue("registry", "EPH_TEST_REGISTRY_HOST");
}
std::string AuthFile() {
  return eph::testing::TestbedValue("registry", "EPH_TEST_REGISTRY_AUTH_FILE");
}

// RunCommand execs without a PATH search.
std::string Tool(const std::string& name) {
  for (const char* dir : {"/usr/local/bin", "/usr/bin", "/bin"}) {
    std::string path = fmt::format("{}/{}", dir, name);
    if (access(path.c_str(), X_OK) == 0) return path;
  }
  ADD_FAILURE() << name << " not found";
  return name;
}

void Write(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
}

std::string HttpGet(const std::string& url) {
  eph::testing::CommandResult r =
      eph::testing::RunCommand({Tool("curl"), "-sS", "--max-time", "2", url}, {}, 10s);
  return r.exit_code == 0 ? r.out : "curl failed: " + r.err;
}

class DockerRegistryBedTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::string lower;
    for (const char c : name) {
      if (std::isupper(static_cast<unsigned char>(c)) != 0 && !lower.empty()) lower += '-';
      lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    const std::string suffix = fmt::format("{}-{}", lower.substr(0, 30), getpid() % 100000);
    environment_ = "rg-" + suffix;
    project_ = "eph-" + environment_;
    repository_ = fmt::format("{}/eph-{}", Registry(), suffix);
    work_dir_ = eph::testing::MakeTempDir("docker-registry");
    source_dir_ = work_dir_ + "/source";
    // The Docker CLI pushes with the same config.json ephd is given.
    fs::create_directories(work_dir_ + "/docker-config");
    fs::copy_file(AuthFile(), work_dir_ + "/docker-config/config.json");
    fs::create_directories(work_dir_ + "/image");
    eph::testing::CommandResult gcc = eph::testing::RunCommand(
        {Tool("gcc"), "-static", "-O2", "-o", work_dir_ + "/image/sample_server",
         eph::testing::SourceDir() + "/pkg/providers/docker/testdata/sample_server.c"},
        {}, 120s);
    ASSERT_EQ(gcc.exit_code, 0) << gcc.err;
  }

  void TearDown() override {
    if (provider_ != nullptr) (void)provider_->Destroy(Ref());
    for (const std::string& tag : pushed_) (void)Docker({"rmi", "-f", tag});
  }

  eph::testing::CommandResult Docker(std::vector<std::string> args) {
    args.insert(args.begin(), {Tool("docker"), "--config", work_dir_ + "/docker-config"});
    return eph::testing::RunCommand(
        args, {{"DOCKER_HOST", DockerHost()}, {"DOCKER_BUILDKIT", "0"}}, 180s);
  }

  // Builds `repository_:tag` serving `page`, pushes it, and removes it from the engine, so only
  // a pull brings it back.
  void PushImage(const std::string& tag, const std::string& page) {
    const std::string ref = repository_ + ":" + tag;
    Write(fs::path(work_dir_) / "image/Dockerfile",
          fmt::format("FROM scratch\nCOPY sample_server /sample_server\nENV PAGE=\"{}\"\n"
                      "USER 65534:65534\nENTRYPOINT [\"/sample_server\"]\n",
                      page));
    eph::testing::CommandResult build =
        Docker({"build", "-q", "--label", kTestLabel, "-t", ref, work_dir_ + "/image"});
    ASSERT_EQ(build.exit_code, 0) << build.out << build.err;
    pushed_.push_back(ref);
    eph::testing::CommandResult push = Docker({"push", ref});
    ASSERT_EQ(push.exit_code, 0) << push.out << push.err;
    RemoveLocal(ref);
  }

  void RemoveLocal(const std::string& ref) {
    eph::testing::CommandResult rmi = Docker({"rmi", "-f", ref});
    ASSERT_EQ(rmi.exit_code, 0) << rmi.err;
    ASSERT_FALSE(OnEngine(ref));
  }

  bool OnEngine(const std::string& ref) {
    return Docker({"image", "inspect", ref}).exit_code == 0;
  }

  // The provider with `auth_file` as registry_auth_file ("" for none).
  std::unique_ptr<DockerProvider> MakeProvider(const std::string& auth_file) {
    std::map<std::string, std::string> settings = {{"docker_host", DockerHost()}};
    if (!auth_file.empty()) settings["registry_auth_file"] = auth_file;
    absl::StatusOr<std::unique_ptr<DockerProvider>> p = NewDockerProvider({settings});
    EXPECT_TRUE(p.ok()) << p.status();
    return p.ok() ? *std::move(p) : nullptr;
  }

  // A file like the bed's auth.json with another password.
  std::string WrongAuthFile() {
    const std::string user = eph::testing::TestbedValue("registry", "EPH_TEST_REGISTRY_USER");
    const std::string path = work_dir_ + "/wrong-auth.json";
    Write(path, json({{"auths",
                       {{Registry(), {{"auth", absl::Base64Escape(user + ":not-the-password")}}}}}})
                    .dump());
    return path;
  }

  EnvironmentRef Ref() const { return {environment_, project_}; }

  ApplyRequest Request(const std::string& image, const std::string& pull_policy = "") {
    std::string compose = fmt::format(
        "services:\n  web:\n    image: {}\n    ports: [\"8080\"]\n"
        "    healthcheck:\n      test: [\"CMD\", \"/sample_server\", \"probe\", \"8080\"]\n"
        "      interval: 300ms\n      retries: 50\n",
        image);
    if (!pull_policy.empty()) compose += "    pull_policy: " + pull_policy + "\n";
    Write(fs::path(source_dir_) / "compose.yml", compose);
    ApplyRequest r;
    r.environment = environment_;
    r.namespace_name = project_;
    r.project = "acme/shop";
    r.pr_number = 7;
    r.head_sha = "0123456789abcdef0123456789abcdef01234567";
    r.source_dir = source_dir_;
    r.config_json = R"({"docker":{"compose_file":"compose.yml","images":[]}})";
    r.labels = {{kManagedByLabel, kManagedByValue}, {kEnvironmentLabel, environment_}};
    return r;
  }

  Observation ObserveUntilSettled() {
    const auto deadline = std::chrono::steady_clock::now() + 60s;
    Observation last;
    while (std::chrono::steady_clock::now() < deadline) {
      absl::StatusOr<Observation> o = provider_->Observe(Ref());
      EXPECT_TRUE(o.ok()) << o.status();
      if (o.ok()) {
        last = *o;
        if (last.phase == Phase::kReady || last.phase == Phase::kFailed) return last;
      }
      std::this_thread::sleep_for(200ms);
    }
    ADD_FAILURE() << "not settled within 60s: " << PhaseName(last.phase) << ": " << last.message;
    return last;
  }

  // Nothing of the environment on the engine.
  void ExpectNothingCreated() {
    absl::StatusOr<std::vector<OwnedObject>> owned = provider_->ListOwned();
    ASSERT_TRUE(owned.ok()) << owned.status();
    for (const OwnedObject& o : *owned) {
      EXPECT_NE(o.environment, environment_) << o.kind << " " << o.name;
    }
  }

  std::string environment_;
  std::string project_;
  std::string repository_;
  std::string work_dir_;
  std::string source_dir_;
  std::vector<std::string> pushed_;
  std::unique_ptr<DockerProvider> provider_;
};

TEST_F(DockerRegistryBedTest, AnImagePushedToTheAuthenticatedRegistryRunsAsAPreview) {
  ASSERT_NO_FATAL_FAILURE(PushImage("pr-7", "pushed by CI"));
  provider_ = MakeProvider(AuthFile());
  absl::StatusOr<ApplyResult> applied = provider_->Apply(Request(repository_ + ":pr-7"));
  ASSERT_TRUE(applied.ok()) << applied.status();
  const Observation o = ObserveUntilSettled();
  ASSERT_EQ(o.phase, Phase::kReady) << o.message;
  EXPECT_EQ(HttpGet(o.url), "pushed by CI\n");
  EXPECT_TRUE(OnEngine(repository_ + ":pr-7"));
}

TEST_F(DockerRegistryBedTest, AMissingTagIsNotFoundInTheRegistry) {
  ASSERT_NO_FATAL_FAILURE(PushImage("v1", "v1"));
  provider_ = MakeProvider(AuthFile());
  absl::StatusOr<ApplyResult> applied = provider_->Apply(Request(repository_ + ":no-such-tag"));
  ASSERT_FALSE(applied.ok());
  EXPECT_EQ(applied.status().code(), absl::StatusCode::kFailedPrecondition) << applied.status();
  EXPECT_EQ(std::string(applied.status().message()),
            fmt::format("image {}:no-such-tag not found in registry {}", repository_, Registry()));
  ExpectNothingCreated();
}

TEST_F(DockerRegistryBedTest, WithoutCredentialsThePullIsUnauthorized) {
  ASSERT_NO_FATAL_FAILURE(PushImage("v1", "v1"));
  provider_ = MakeProvider("");
  absl::StatusOr<ApplyResult> applied = provider_->Apply(Request(repository_ + ":v1"));
  ASSERT_FALSE(applied.ok());
  EXPECT_EQ(applied.status().code(), absl::StatusCode::kFailedPrecondition) << applied.status();
  EXPECT_EQ(std::string(applied.status().message()),
            fmt::format("unauthorized for registry {} (no credentials configured)", Registry()));
  EXPECT_FALSE(OnEngine(repository_ + ":v1"));
  ExpectNothingCreated();
}

TEST_F(DockerRegistryBedTest, WrongCredentialsAreRejected) {
  ASSERT_NO_FATAL_FAILURE(PushImage("v1", "v1"));
  provider_ = MakeProvider(WrongAuthFile());
  absl::StatusOr<ApplyResult> applied = provider_->Apply(Request(repository_ + ":v1"));
  ASSERT_FALSE(applied.ok());
  EXPECT_EQ(applied.status().code(), absl::StatusCode::kFailedPrecondition) << applied.status();
  EXPECT_EQ(std::string(applied.status().message()),
            fmt::format("unauthorized for registry {} (credentials rejected)", Registry()));
  ExpectNothingCreated();
}

TEST_F(DockerRegistryBedTest, AnUnreachableRegistryIsRetried) {
  provider_ = MakeProvider(AuthFile());
  // Port 1 on loopback: nothing listens there.
  absl::StatusOr<ApplyResult> applied = provider_->Apply(Request("127.0.0.1:1/eph/app:v1"));
  ASSERT_FALSE(applied.ok());
  EXPECT_EQ(applied.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(applied.status().message(), HasSubstr("registry 127.0.0.1:1 unreachable: "));
  EXPECT_THAT(applied.status().message(), HasSubstr("connection refused"));
  ExpectNothingCreated();
}

TEST_F(DockerRegistryBedTest, PullPolicies) {
  ASSERT_NO_FATAL_FAILURE(PushImage("latest", "first push"));
  const std::string image = repository_ + ":latest";

  // never: the registry is not asked.
  provider_ = MakeProvider(AuthFile());
  absl::StatusOr<ApplyResult> applied = provider_->Apply(Request(image, "never"));
  ASSERT_FALSE(applied.ok());
  EXPECT_EQ(applied.status().message(),
            fmt::format("image {} not found on the Docker host (service `web` has pull_policy: "
                        "never)",
                        image));
  EXPECT_FALSE(OnEngine(image));

  // missing (the default, and if_not_present): pulled once; present, not asked again, so a
  // provider without credentials still runs it.
  applied = provider_->Apply(Request(image, "if_not_present"));
  ASSERT_TRUE(applied.ok()) << applied.status();
  Observation o = ObserveUntilSettled();
  ASSERT_EQ(o.phase, Phase::kReady) << o.message;
  EXPECT_EQ(HttpGet(o.url), "first push\n");
  std::unique_ptr<DockerProvider> anonymous = MakeProvider("");
  applied = anonymous->Apply(Request(image));
  ASSERT_TRUE(applied.ok()) << applied.status();
  EXPECT_THAT(applied->summary, HasSubstr("1 unchanged"));

  // always: asks the registry on every Apply (without credentials, refused even though the
  // image is on the engine) and picks up a tag CI pushed again.
  applied = anonymous->Apply(Request(image, "always"));
  ASSERT_FALSE(applied.ok());
  EXPECT_THAT(applied.status().message(), HasSubstr("no credentials configured"));
  ASSERT_NO_FATAL_FAILURE(PushImage("latest", "second push"));
  applied = provider_->Apply(Request(image, "always"));
  ASSERT_TRUE(applied.ok()) << applied.status();
  EXPECT_THAT(applied->summary, HasSubstr("1 replaced"));
  o = ObserveUntilSettled();
  ASSERT_EQ(o.phase, Phase::kReady) << o.message;
  EXPECT_EQ(HttpGet(o.url), "second push\n");
}

}  // namespace
}  // namespace eph::providers::docker
