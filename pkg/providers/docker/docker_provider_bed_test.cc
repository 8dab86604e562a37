// DockerProvider against the test bed's real dockerd (test/bed/docker): create -> ready -> page
// -> new image tag -> new page -> destroy -> nothing left; a missing image, a port clash, a
// command that cannot start, a crashing service and a service that never becomes healthy all
// end `failed` with the reason and leave nothing running. The sample images (eph-sample:v1 and
// :v2) are built here from testdata/sample_server.c, FROM scratch, with the legacy builder.
// Every test uses its own environment name and checks the engine itself, not only the provider.
#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "absl/time/time.h"
#include "fmt/format.h"
#include "nlohmann/json.hpp"
#include "pkg/providers/docker/container_spec.h"
#include "pkg/providers/docker/docker_provider.h"
#include "test/support/process.h"
#include "test/support/testbed.h"

namespace eph::providers::docker {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kTestLabel[] = "eph.dev/test=docker-provider";

std::string DockerHost() { return eph::testing::TestbedValue("docker", "EPH_TEST_DOCKER_HOST"); }

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

// Builds eph-sample:v1 and :v2 (page "eph-sample v1"/"v2") once per test process.
void BuildSampleImages() {
  static std::once_flag once;
  static bool built = false;
  std::call_once(once, [] {
    const std::string dir = eph::testing::MakeTempDir("docker-sample");
    const std::string source =
        eph::testing::SourceDir() + "/pkg/providers/docker/testdata/sample_server.c";
    eph::testing::CommandResult gcc = eph::testing::RunCommand(
        {Tool("gcc"), "-static", "-O2", "-o", dir + "/sample_server", source}, {}, 120s);
    ASSERT_EQ(gcc.exit_code, 0) << gcc.err;
    for (const char* version : {"v1", "v2"}) {
      Write(fs::path(dir) / "Dockerfile",
            fmt::format("FROM scratch\nCOPY sample_server /sample_server\n"
                        "ENV PAGE=\"eph-sample {}\"\nUSER 65534:65534\n"
                        "ENTRYPOINT [\"/sample_server\"]\n",
                        version));
      eph::testing::CommandResult build =
          eph::testing::RunCommand({Tool("docker"), "build", "-q", "--label", kTestLabel, "-t",
                                    std::string("eph-sample:") + version, dir},
                                   {{"DOCKER_HOST", DockerHost()}, {"DOCKER_BUILDKIT", "0"}}, 180s);
      ASSERT_EQ(build.exit_code, 0) << build.out << build.err;
    }
    built = true;
  });
  ASSERT_TRUE(built) << "building the sample images failed in an earlier test";
}

std::string HttpGet(const std::string& url) {
  eph::testing::CommandResult r =
      eph::testing::RunCommand({Tool("curl"), "-sS", "--max-time", "2", url}, {}, 10s);
  return r.exit_code == 0 ? r.out : "curl failed: " + r.err;
}

// A listening socket on 127.0.0.1:<ephemeral>, held for the test's lifetime.
class HeldPort {
 public:
  HeldPort() {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 && listen(fd_, 1) == 0 &&
        getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
      port_ = ntohs(addr.sin_port);
    }
  }
  ~HeldPort() { close(fd_); }
  HeldPort(const HeldPort&) = delete;
  HeldPort& operator=(const HeldPort&) = delete;
  int port() const { return port_; }

 private:
  int fd_ = -1;
  int port_ = 0;
};

class DockerProviderBedTest : public ::testing::Test {
 protected:
  void SetUp() override {
    BuildSampleImages();
    if (HasFatalFailure()) return;
    std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::string lower;
    for (const char c : name) {
      if (std::isupper(static_cast<unsigned char>(c)) != 0 && !lower.empty()) lower += '-';
      lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    environment_ = fmt::format("dk-{}-{}", lower.substr(0, 30), getpid() % 100000);
    project_ = "eph-" + environment_;
    source_dir_ = eph::testing::MakeTempDir("docker-source");
    provider_ = MakeProvider({});
  }

  void TearDown() override {
    if (provider_ != nullptr) (void)provider_->Destroy(Ref());
  }

  std::unique_ptr<DockerProvider> MakeProvider(std::map<std::string, std::string> settings,
                                               const Clock* clock = nullptr) {
    settings["docker_host"] = DockerHost();
    absl::StatusOr<DockerProviderOptions> options = ParseDockerSettings({settings});
    EXPECT_TRUE(options.ok()) << options.status();
    options->clock = clock;
    return std::make_unique<DockerProvider>(*options);
  }

  EnvironmentRef Ref() const { return {environment_, project_}; }

  ApplyRequest Request(const std::string& compose, std::vector<ImageTag> images = {}) {
    Write(fs::path(source_dir_) / "deploy/compose.yml", compose);
    ApplyRequest r;
    r.environment = environment_;
    r.namespace_name = project_;
    r.project = "acme/shop";
    r.pr_number = 7;
    r.head_sha = "0123456789abcdef0123456789abcdef01234567";
    r.source_dir = source_dir_;
    r.config_json = R"({"docker":{"compose_file":"deploy/compose.yml","images":[]},)"
                    R"("database":{"enabled":false,"instances":[]}})";
    r.images = std::move(images);
    r.labels = {{kManagedByLabel, kManagedByValue}, {kEnvironmentLabel, environment_}};
    return r;
  }

  // Polls Observe until `done` says so or the deadline passes; returns the last observation.
  Observation ObserveUntil(const std::function<bool(const Observation&)>& done,
                           std::chrono::seconds timeout = 60s, DockerProvider* provider = nullptr) {
    DockerProvider& p = provider != nullptr ? *provider : *provider_;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    Observation last;
    while (true) {
      absl::StatusOr<Observation> o = p.Observe(Ref());
      EXPECT_TRUE(o.ok()) << o.status();
      if (o.ok()) {
        last = *o;
        if (done(last)) return last;
      }
      if (std::chrono::steady_clock::now() > deadline) {
        ADD_FAILURE() << "condition not reached within " << timeout.count() << "s; last phase "
                      << PhaseName(last.phase) << ": " << last.message;
        return last;
      }
      std::this_thread::sleep_for(200ms);
    }
  }

  // Objects on the engine labelled with this environment ("container x", "network y", ...),
  // read with the Engine API directly.
  std::vector<std::string> Leftovers() {
    std::vector<std::string> out;
    const std::string filter = UrlEncode(
        json({{"label", {fmt::format("{}={}", kEnvironmentLabel, environment_)}}}).dump());
    for (const auto& [path, kind] : std::vector<std::pair<std::string, std::string>>{
             {"/containers/json?all=1&filters=" + filter, "container"},
             {"/networks?filters=" + filter, "network"},
             {"/volumes?filters=" + filter, "volume"}}) {
      absl::StatusOr<EngineResponse> r = provider_->engine().Get(path);
      EXPECT_TRUE(r.ok() && r->status == 200);
      if (!r.ok()) continue;
      json items = json::parse(r->body);
      if (kind == "volume") items = items["Volumes"];
      if (!items.is_array()) continue;
      for (const json& i : items) out.push_back(kind + " " + i.value("Name", i.value("Id", "")));
    }
    // And by name: nothing labelled or not.
    for (const std::string& path :
         {"/networks/" + NetworkName(project_), "/volumes/" + VolumeName(project_, "data")}) {
      absl::StatusOr<EngineResponse> r = provider_->engine().Get(path);
      if (r.ok() && r->status != 404) out.push_back(path + " answers " + std::to_string(r->status));
    }
    return out;
  }

  json Inspect(const std::string& container) {
    absl::StatusOr<EngineResponse> r =
        provider_->engine().Get(fmt::format("/containers/{}/json", container));
    EXPECT_TRUE(r.ok());
    return r.ok() ? json::parse(r->body, nullptr, false) : json();
  }

  void DestroyCompletely() {
    const auto deadline = std::chrono::steady_clock::now() + 60s;
    while (true) {
      absl::StatusOr<DestroyResult> d = provider_->Destroy(Ref());
      ASSERT_TRUE(d.ok()) << d.status();
      if (d->done) break;
      ASSERT_LT(std::chrono::steady_clock::now(), deadline) << d->message;
      std::this_thread::sleep_for(200ms);
    }
    EXPECT_THAT(Leftovers(), ::testing::IsEmpty());
  }

  std::string environment_;
  std::string project_;
  std::string source_dir_;
  std::unique_ptr<DockerProvider> provider_;
};

constexpr char kApp[] = R"(services:
  web:
    image: eph-sample:v1
    ports: ["8080"]
    healthcheck:
      test: ["CMD", "/sample_server", "probe", "8080"]
      interval: 300ms
      timeout: 2s
      retries: 50
    depends_on: [worker]
    volumes: ["data:/data"]
    labels:
      team: shop
  worker:
    image: eph-sample:v1
    environment:
      PORT: "9000"
      PAGE: worker
volumes:
  data:
)";

TEST_F(DockerProviderBedTest, CreateReadyUpdateDestroy) {
  absl::StatusOr<ApplyResult> applied = provider_->Apply(Request(kApp));
  ASSERT_TRUE(applied.ok()) << applied.status();
  EXPECT_EQ(applied->summary, "2 services: 2 created, 0 replaced, 0 unchanged");
  EXPECT_EQ(applied->handle, "compose-project/" + project_);

  Observation ready = ObserveUntil([](const Observation& o) { return o.phase == Phase::kReady; });
  ASSERT_EQ(ready.phase, Phase::kReady) << ready.message;
  ASSERT_EQ(ready.components.size(), 2u);
  EXPECT_EQ(ready.components[0].name, "web");
  EXPECT_EQ(ready.components[1].name, "worker");
  ASSERT_THAT(ready.url, ::testing::StartsWith("http://127.0.0.1:"));
  EXPECT_EQ(HttpGet(ready.url), "eph-sample v1\n");

  // What the engine holds: names, labels, loopback-only publishing.
  const json web = Inspect(ContainerName(project_, "web"));
  const json& labels = web["Config"]["Labels"];
  EXPECT_EQ(labels[kEnvironmentLabel], environment_);
  EXPECT_EQ(labels[kManagedByLabel], "eph");
  EXPECT_EQ(labels[kProjectLabel], project_);
  EXPECT_EQ(labels[kServiceLabel], "web");
  EXPECT_EQ(labels["team"], "shop");
  EXPECT_EQ(labels[kConfigHashLabel].get<std::string>().size(), 64u);
  for (const json& b : web["NetworkSettings"]["Ports"]["8080/tcp"]) {
    EXPECT_EQ(b["HostIp"], "127.0.0.1");
  }
  EXPECT_TRUE(web["NetworkSettings"]["Networks"].contains(NetworkName(project_)));
  const std::string web_id = web["Id"];
  absl::StatusOr<EngineResponse> volume =
      provider_->engine().Get("/volumes/" + VolumeName(project_, "data"));
  ASSERT_TRUE(volume.ok());
  ASSERT_EQ(volume->status, 200);
  EXPECT_EQ(json::parse(volume->body)["Labels"][kEnvironmentLabel], environment_);

  // The same request again changes nothing.
  applied = provider_->Apply(Request(kApp));
  ASSERT_TRUE(applied.ok()) << applied.status();
  EXPECT_EQ(applied->summary, "2 services: 0 created, 0 replaced, 2 unchanged");
  EXPECT_EQ(Inspect(ContainerName(project_, "web"))["Id"], web_id);

  // Logs of one service; an unknown service is NotFound.
  std::vector<std::string> lines;
  ASSERT_TRUE(provider_
                  ->Logs({environment_, project_, "web", false, 0},
                         [&](const LogLine& l) {
                           EXPECT_EQ(l.component, "web");
                           EXPECT_GT(l.at, TimePoint{});
                           lines.push_back(l.text);
                           return true;
                         })
                  .ok());
  EXPECT_THAT(lines, ::testing::Contains("listening on :8080"));
  EXPECT_THAT(lines, ::testing::Contains(HasSubstr("served")));
  EXPECT_EQ(
      provider_
          ->Logs({environment_, project_, "nope", false, 0}, [](const LogLine&) { return true; })
          .code(),
      absl::StatusCode::kNotFound);

  // Following all services: a new request shows up as a line, and the reader can stop.
  std::atomic<bool> saw_request{false};
  std::thread follower([&] {
    absl::Status s = provider_->Logs({environment_, project_, "", true, 1}, [&](const LogLine& l) {
      if (l.component == "web" && l.text.find("served") != std::string::npos &&
          l.text != lines.back()) {
        saw_request = true;
        return false;
      }
      return true;
    });
    EXPECT_TRUE(s.ok()) << s;
  });
  const auto follow_deadline = std::chrono::steady_clock::now() + 30s;
  while (!saw_request && std::chrono::steady_clock::now() < follow_deadline) {
    (void)HttpGet(ready.url);
    std::this_thread::sleep_for(200ms);
  }
  follower.join();
  EXPECT_TRUE(saw_request);

  // ListOwned sees all three kinds.
  absl::StatusOr<std::vector<OwnedObject>> owned = provider_->ListOwned();
  ASSERT_TRUE(owned.ok()) << owned.status();
  std::set<std::string> kinds;
  for (const OwnedObject& o : *owned) {
    if (o.environment == environment_) kinds.insert(o.kind + " " + o.name);
  }
  EXPECT_THAT(kinds,
              ::testing::UnorderedElementsAre("container " + ContainerName(project_, "web"),
                                              "container " + ContainerName(project_, "worker"),
                                              "network " + NetworkName(project_),
                                              "volume " + VolumeName(project_, "data")));

  // A new push: the web image's tag changes; only containers using it are replaced.
  applied = provider_->Apply(Request(kApp, {{"eph-sample", "v2"}}));
  ASSERT_TRUE(applied.ok()) << applied.status();
  EXPECT_EQ(applied->summary, "2 services: 0 created, 2 replaced, 0 unchanged");
  Observation updated =
      ObserveUntil([](const Observation& o) { return o.phase == Phase::kReady && !o.url.empty(); });
  ASSERT_EQ(updated.phase, Phase::kReady);
  EXPECT_EQ(HttpGet(updated.url), "eph-sample v2\n");
  EXPECT_NE(Inspect(ContainerName(project_, "web"))["Id"], web_id);

  DestroyCompletely();
  absl::StatusOr<Observation> gone = provider_->Observe(Ref());
  ASSERT_TRUE(gone.ok());
  EXPECT_EQ(gone->phase, Phase::kAbsent);
  absl::StatusOr<DestroyResult> again = provider_->Destroy(Ref());
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->done);
}

constexpr char kWithConditions[] = R"(services:
  web:
    image: eph-sample:v1
    ports: ["8080"]
    depends_on:
      db: {condition: service_healthy}
      migrate: {condition: service_completed_successfully}
  db:
    image: eph-sample:v1
    environment: {PORT: "9000"}
    healthcheck:
      test: [CMD, /sample_server, probe, "{db_probe_port}"]
      interval: {db_interval}
      retries: {db_retries}
  migrate:
    image: eph-sample:v1
    command: [exit, "0"]
)";

// `db_interval`: db's first check runs this long after it starts.
std::string WithConditions(const std::string& db_probe_port, int db_retries,
                           const std::string& db_interval = "200ms") {
  std::string text = kWithConditions;
  text.replace(text.find("{db_interval}"), 13, db_interval);
  text.replace(text.find("{db_probe_port}"), 15, db_probe_port);
  text.replace(text.find("{db_retries}"), 12, std::to_string(db_retries));
  return text;
}

// Applies again, as the reconciler's later passes do, until Apply started everything.
absl::StatusOr<ApplyResult> ApplyUntilComplete(DockerProvider& provider, const ApplyRequest& r) {
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (true) {
    absl::StatusOr<ApplyResult> applied = provider.Apply(r);
    if (!applied.ok() || !applied->needs_reapply) return applied;
    if (std::chrono::steady_clock::now() > deadline) {
      return absl::DeadlineExceededError("Apply still needs another pass: " + applied->summary);
    }
    std::this_thread::sleep_for(100ms);
  }
}

TEST_F(DockerProviderBedTest, DependsOnConditionsAreMetBeforeTheDependantStarts) {
  const ApplyRequest request = Request(WithConditions("9000", 50, "3s"));
  absl::StatusOr<ApplyResult> first = provider_->Apply(request);
  ASSERT_TRUE(first.ok()) << first.status();
  // The dependant is created, not started, while db is not healthy yet (it cannot be: its first
  // check runs an interval, 3s, after it starts).
  EXPECT_TRUE(first->needs_reapply);
  EXPECT_THAT(first->summary, HasSubstr("waiting for dependencies"));
  EXPECT_EQ(Inspect(ContainerName(project_, "web"))["State"]["Status"], "created");
  absl::StatusOr<Observation> early = provider_->Observe(Ref());
  ASSERT_TRUE(early.ok());
  EXPECT_EQ(early->phase, Phase::kProgressing);
  absl::StatusOr<ApplyResult> applied = ApplyUntilComplete(*provider_, request);
  ASSERT_TRUE(applied.ok()) << applied.status();
  // The web service started only after both conditions held.
  const json db = Inspect(ContainerName(project_, "db"));
  EXPECT_EQ(db["State"]["Health"]["Status"], "healthy");
  const json migrate = Inspect(ContainerName(project_, "migrate"));
  EXPECT_EQ(migrate["State"]["Status"], "exited");
  EXPECT_EQ(migrate["State"]["ExitCode"], 0);
  absl::Time web_started;
  absl::Time migrate_finished;
  std::string err;
  ASSERT_TRUE(absl::ParseTime(
      absl::RFC3339_full,
      Inspect(ContainerName(project_, "web"))["State"]["StartedAt"].get<std::string>(),
      &web_started, &err));
  ASSERT_TRUE(absl::ParseTime(absl::RFC3339_full, migrate["State"]["FinishedAt"].get<std::string>(),
                              &migrate_finished, &err));
  EXPECT_GE(web_started, migrate_finished);
  Observation o = ObserveUntil([](const Observation& x) { return x.phase == Phase::kReady; });
  ASSERT_EQ(o.phase, Phase::kReady) << o.message;
  ASSERT_EQ(o.components.size(), 3u);
  EXPECT_EQ(o.components[1].name, "migrate");
  EXPECT_EQ(o.components[1].message, "completed");
  EXPECT_EQ(HttpGet(o.url), "eph-sample v1\n");
  // Converged: another Apply keeps everything, and the completed task is not run again.
  absl::StatusOr<ApplyResult> again = provider_->Apply(request);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_FALSE(again->needs_reapply);
  EXPECT_THAT(again->summary, HasSubstr("3 unchanged"));
  EXPECT_EQ(Inspect(ContainerName(project_, "migrate"))["Id"], migrate["Id"]);
  DestroyCompletely();
}

TEST_F(DockerProviderBedTest, ApplyReturnsAtOnceWhileADependencyIsNotHealthy) {
  FakeClock clock(std::chrono::system_clock::now());
  provider_ = MakeProvider({{"health_timeout", "30s"}}, &clock);
  // db probes a port nothing listens on: it stays `starting` for a long while.
  const ApplyRequest request = Request(WithConditions("9", 100000));
  const auto started = std::chrono::steady_clock::now();
  absl::StatusOr<ApplyResult> applied = provider_->Apply(request);
  ASSERT_TRUE(applied.ok()) << applied.status();
  // It used to wait here for db, up to health_timeout (5 minutes by default).
  EXPECT_LT(std::chrono::steady_clock::now() - started, 10s);
  EXPECT_TRUE(applied->needs_reapply);
  EXPECT_EQ(Inspect(ContainerName(project_, "web"))["State"]["Status"], "created");
  // Once db has been checked, a later pass still waits, quickly, without failing.
  ObserveUntil([&](const Observation&) {
    return !Inspect(ContainerName(project_, "db"))["State"]["Health"]["Log"].empty();
  });
  absl::StatusOr<ApplyResult> later = provider_->Apply(request);
  ASSERT_TRUE(later.ok()) << later.status();
  EXPECT_TRUE(later->needs_reapply);
  // The health timeout runs on the injected clock: past it, the dependant can never start.
  // (31 s past db's start, however long the engine took to start it.)
  clock.Advance(31s + (std::chrono::system_clock::now() - clock.Now()) + 1s);
  absl::StatusOr<ApplyResult> timed_out = provider_->Apply(request);
  ASSERT_FALSE(timed_out.ok());
  EXPECT_EQ(timed_out.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(timed_out.status().message(),
              HasSubstr("service `web` waits for `db` to be healthy (depends_on), but it was "
                        "not within 30s"));
  DestroyCompletely();
}

TEST_F(DockerProviderBedTest, TheChangeStreamAnnouncesADependencyTurningHealthy) {
  std::mutex mu;
  std::condition_variable cv;
  int changes = 0;
  const std::string environment = environment_;
  std::jthread watch([&](std::stop_token stop) {
    absl::Status s = provider_->WatchChanges(
        [&](const EnvironmentChange& change) {
          if (change.environment != environment) return;
          std::lock_guard<std::mutex> lock(mu);
          ++changes;
          cv.notify_all();
        },
        stop);
    EXPECT_TRUE(s.ok()) << s;
  });
  // The stream is up once the engine answered; give it a moment to subscribe.
  std::this_thread::sleep_for(300ms);
  const ApplyRequest request = Request(WithConditions("9000", 50, "3s"));
  absl::StatusOr<ApplyResult> first = provider_->Apply(request);
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_TRUE(first->needs_reapply);
  // No polling: the engine's health_status (or die, for migrate) event wakes us.
  int seen = 0;
  absl::StatusOr<ApplyResult> applied = first;
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (applied.ok() && applied->needs_reapply && std::chrono::steady_clock::now() < deadline) {
    {
      std::unique_lock<std::mutex> lock(mu);
      ASSERT_TRUE(cv.wait_for(lock, 20s, [&] { return changes > seen; }))
          << "no change announced for " << environment;
      seen = changes;
    }
    applied = provider_->Apply(request);
  }
  ASSERT_TRUE(applied.ok()) << applied.status();
  EXPECT_FALSE(applied->needs_reapply);
  Observation o = ObserveUntil([](const Observation& x) { return x.phase == Phase::kReady; });
  EXPECT_EQ(o.phase, Phase::kReady) << o.message;
  // Stopping the stream is prompt.
  const auto stopping = std::chrono::steady_clock::now();
  watch.request_stop();
  watch.join();
  EXPECT_LT(std::chrono::steady_clock::now() - stopping, 3s);
  DestroyCompletely();
}

// healthcheck.start_interval: ready long before the engine's first check at `interval` (60 s).
// This engine (Docker 20.10, API 1.41) drops the setting, so the check that passes is Eph's
// emulation (start_probe.h), announced on the change stream; a newer engine checks by itself.
TEST_F(DockerProviderBedTest, AStartIntervalMakesAServiceReadyBeforeItsInterval) {
  std::mutex mu;
  std::condition_variable cv;
  int changes = 0;
  const std::string environment = environment_;
  std::jthread watch([&](std::stop_token stop) {
    absl::Status s = provider_->WatchChanges(
        [&](const EnvironmentChange& change) {
          if (change.environment != environment) return;
          std::lock_guard<std::mutex> lock(mu);
          ++changes;
          cv.notify_all();
        },
        stop);
    EXPECT_TRUE(s.ok()) << s;
  });
  const auto started = std::chrono::steady_clock::now();
  absl::StatusOr<ApplyResult> applied = provider_->Apply(Request(R"(services:
  web:
    image: eph-sample:v1
    ports: ["8080"]
    healthcheck:
      test: ["CMD", "/sample_server", "probe", "8080"]
      interval: 60s
      start_period: 30s
      start_interval: 100ms
)"));
  ASSERT_TRUE(applied.ok()) << applied.status();
  absl::StatusOr<Observation> first = provider_->Observe(Ref());
  ASSERT_TRUE(first.ok()) << first.status();
  const json web = Inspect(ContainerName(project_, "web"));
  const bool engine_checks = web["Config"]["Healthcheck"].value("StartInterval", 0) > 0;
  EXPECT_EQ(web["Config"]["Labels"][kStartIntervalLabel], "100000000");
  if (first->phase != Phase::kReady) {
    // Not polled: the pass is announced (by Eph's check, or the engine's health_status event).
    std::unique_lock<std::mutex> lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, 20s, [&] { return changes > 0; })) << "nothing announced";
  }
  absl::StatusOr<Observation> ready = provider_->Observe(Ref());
  ASSERT_TRUE(ready.ok()) << ready.status();
  EXPECT_EQ(ready->phase, Phase::kReady) << ready->message;
  EXPECT_LT(std::chrono::steady_clock::now() - started, 20s) << "the 60s interval was waited";
  EXPECT_THAT(HttpGet(ready->url), HasSubstr("eph-sample v1"));
  if (!engine_checks) {
    // The engine itself has not checked yet: the readiness is Eph's check alone.
    EXPECT_EQ(Inspect(ContainerName(project_, "web"))["State"]["Health"]["Status"], "starting");
    ASSERT_EQ(ready->components.size(), 1u);
    EXPECT_THAT(ready->components[0].message, HasSubstr("start_interval"));
  }
  watch.request_stop();
  watch.join();
  DestroyCompletely();
}

// Once Eph's check passed (and was announced), the engine's own `healthy` a second later is no
// news: announcing it would cost the controller a reconcile pass and its forge reads.
TEST_F(DockerProviderBedTest, TheEnginesHealthyAfterEphsCheckPassedIsNotAnnouncedAgain) {
  std::mutex mu;
  std::condition_variable cv;
  int changes = 0;
  const std::string environment = environment_;
  std::jthread watch([&](std::stop_token stop) {
    (void)provider_->WatchChanges(
        [&](const EnvironmentChange& change) {
          if (change.environment != environment) return;
          std::lock_guard<std::mutex> lock(mu);
          ++changes;
          cv.notify_all();
        },
        stop);
  });
  absl::StatusOr<ApplyResult> applied = provider_->Apply(Request(R"(services:
  web:
    image: eph-sample:v1
    healthcheck:
      test: ["CMD", "/sample_server", "probe", "8080"]
      interval: 1s
      start_period: 30s
      start_interval: 100ms
)"));
  ASSERT_TRUE(applied.ok()) << applied.status();
  ASSERT_TRUE(provider_->Observe(Ref()).ok());
  const std::string web = ContainerName(project_, "web");
  if (Inspect(web)["Config"]["Healthcheck"].value("StartInterval", 0) > 0) {
    GTEST_SKIP() << "the engine checks start_interval itself: nothing is emulated";
  }
  {
    std::unique_lock<std::mutex> lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, 20s, [&] { return changes > 0; })) << "nothing announced";
  }
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (Inspect(web)["State"]["Health"]["Status"] != "healthy" &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(50ms);
  }
  ASSERT_EQ(Inspect(web)["State"]["Health"]["Status"], "healthy");
  {
    // The engine's health_status event goes out as the status changes; give the stream time.
    std::unique_lock<std::mutex> lock(mu);
    EXPECT_FALSE(cv.wait_for(lock, 1s, [&] { return changes > 1; })) << "announced again";
  }
  absl::StatusOr<Observation> o = provider_->Observe(Ref());
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->phase, Phase::kReady) << o->message;
  watch.request_stop();
  watch.join();
  DestroyCompletely();
}

// Eph's emulated check counts only an exit 0: a check that fails leaves the service starting.
TEST_F(DockerProviderBedTest, AFailingStartIntervalCheckKeepsTheServiceStarting) {
  absl::StatusOr<ApplyResult> applied = provider_->Apply(Request(R"(services:
  web:
    image: eph-sample:v1
    ports: ["8080"]
    healthcheck:
      test: ["CMD", "/sample_server", "probe", "9"]
      interval: 60s
      start_period: 30s
      start_interval: 50ms
)"));
  ASSERT_TRUE(applied.ok()) << applied.status();
  const std::string web = ContainerName(project_, "web");
  ASSERT_TRUE(provider_->Observe(Ref()).ok());  // starts Eph's checks
  // Several of them have run and failed: the engine's exec_die events (its own first check
  // comes only after 60 s).
  auto failed_checks = [&] {
    const std::string filters =
        UrlEncode(json({{"container", {web}}, {"event", {"exec_die"}}}).dump());
    absl::StatusOr<EngineResponse> r = provider_->engine().Get(
        fmt::format("/events?since=0&until={}&filters={}", std::time(nullptr) + 1, filters));
    int n = 0;
    if (!r.ok() || r->status != 200) return n;
    std::istringstream lines(r->body);
    for (std::string line; std::getline(lines, line);) {
      const json e = json::parse(line, nullptr, false);
      if (e.is_object() && e["Actor"]["Attributes"].value("exitCode", "0") != "0") ++n;
    }
    return n;
  };
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (failed_checks() < 3 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_GE(failed_checks(), 3);
  absl::StatusOr<Observation> o = provider_->Observe(Ref());
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->phase, Phase::kProgressing) << o->message;
  DestroyCompletely();
}

TEST_F(DockerProviderBedTest, AnUnhealthyDependencyFailsTheEnvironment) {
  const ApplyRequest request = Request(WithConditions("9", 2, "1s"));
  absl::StatusOr<ApplyResult> applied = provider_->Apply(request);
  // Usually db is still starting when Apply returns (on a slow engine it may already be
  // unhealthy, and the first Apply fails at once, leaving nothing).
  if (applied.ok()) {
    EXPECT_TRUE(applied->needs_reapply);
    // db turns unhealthy after two failed checks: Observe says so, and the next Apply gives up.
    Observation o = ObserveUntil([](const Observation& x) { return x.phase == Phase::kFailed; });
    EXPECT_THAT(o.message, HasSubstr("service `db` is unhealthy"));
    applied = provider_->Apply(request);
  }
  ASSERT_FALSE(applied.ok());
  EXPECT_EQ(applied.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(applied.status().message(),
              HasSubstr("service `web` waits for `db` to be healthy (depends_on), but it is "
                        "unhealthy"));
  // web never ran.
  const json web = Inspect(ContainerName(project_, "web"));
  EXPECT_TRUE(!web.contains("State") || web["State"]["Status"] == "created") << web.dump();
  DestroyCompletely();
}

TEST_F(DockerProviderBedTest, MissingImageFailsAndCreatesNothing) {
  // pull_policy: never, so that nothing asks Docker Hub (registry_bed_test has the pulls).
  absl::StatusOr<ApplyResult> r = provider_->Apply(
      Request("services:\n  web:\n    image: eph-sample:no-such-tag\n    ports: [\"8080\"]\n"
              "    pull_policy: never\n"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(r.status().message(),
              HasSubstr("image eph-sample:no-such-tag not found on the Docker host (service `web` "
                        "has pull_policy: never)"));
  EXPECT_THAT(Leftovers(), ::testing::IsEmpty());

  // The same through an image override on an otherwise good file.
  r = provider_->Apply(
      Request("services:\n  web:\n    image: eph-sample:v1\n    ports: [\"8080\"]\n"
              "    pull_policy: never\n",
              {{"eph-sample", "pr-404"}}));
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("image eph-sample:pr-404 not found"));
  EXPECT_THAT(Leftovers(), ::testing::IsEmpty());
  absl::StatusOr<Observation> o = provider_->Observe(Ref());
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->phase, Phase::kAbsent);
}

TEST_F(DockerProviderBedTest, DatabaseServerWithAMissingImageFailsAndCreatesNothing) {
  absl::StatusOr<DatabaseServer> server = provider_->EnsureDatabaseServer(
      {.environment = environment_,
       .namespace_name = project_,
       .labels = {{kEnvironmentLabel, environment_}},
       .name = "pg",
       .version = "15",
       .image = "postgres:no-such-version"});
  ASSERT_FALSE(server.ok());
  EXPECT_EQ(server.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(server.status().message(), HasSubstr("Eph does not pull a database server's image"));
  EXPECT_THAT(Leftovers(), ::testing::IsEmpty());
}

// The database server is not a compose service: Apply neither replaces nor removes it, and a
// compose service of the same name is refused. Destroy takes it, and its data volume, along.
TEST_F(DockerProviderBedTest, TheDatabaseServerLivesBesideTheServicesAndGoesWithThem) {
  const DatabaseServerRequest request{.environment = environment_,
                                      .namespace_name = project_,
                                      .labels = {{kEnvironmentLabel, environment_}},
                                      .name = "db",
                                      .version = "15",
                                      .image = "eph-sample:v1"};  // no pg_isready: never ready
  absl::StatusOr<DatabaseServer> server = provider_->EnsureDatabaseServer(request);
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_FALSE(server->ready);
  EXPECT_THAT(server->message, HasSubstr("database `db`"));
  const std::string id = Inspect(ContainerName(project_, "db")).value("Id", "");
  ASSERT_FALSE(id.empty());
  // Again: the same container (and password).
  server = provider_->EnsureDatabaseServer(request);
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_EQ(Inspect(ContainerName(project_, "db")).value("Id", ""), id);

  absl::StatusOr<ApplyResult> applied = provider_->Apply(Request(kApp));
  ASSERT_TRUE(applied.ok()) << applied.status();
  EXPECT_THAT(applied->summary, Not(HasSubstr("removed")));
  EXPECT_EQ(Inspect(ContainerName(project_, "db")).value("Id", ""), id);

  absl::StatusOr<ApplyResult> clash = provider_->Apply(
      Request("services:\n  db:\n    image: eph-sample:v1\n    ports: [\"8080\"]\n"));
  ASSERT_FALSE(clash.ok());
  EXPECT_EQ(clash.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(clash.status().message(), HasSubstr("the name of the environment's database"));

  DestroyCompletely();
  absl::StatusOr<EngineResponse> volume =
      provider_->engine().Get("/volumes/" + VolumeName(project_, "db-data"));
  ASSERT_TRUE(volume.ok());
  EXPECT_EQ(volume->status, 404);
}

TEST_F(DockerProviderBedTest, OverridesTheTagOfARegistryPathImage) {
  absl::StatusOr<EngineResponse> tagged = provider_->engine().Post(
      "/images/eph-sample:v2/tag?repo=" + UrlEncode("localhost:5000/acme/eph-sample") + "&tag=pr-7",
      std::nullopt);
  ASSERT_TRUE(tagged.ok());
  ASSERT_EQ(tagged->status, 201) << tagged->body;
  ASSERT_TRUE(provider_
                  ->Apply(Request("services:\n  web:\n"
                                  "    image: localhost:5000/acme/eph-sample:latest\n"
                                  "    ports: [\"8080\"]\n",
                                  {{"localhost:5000/acme/eph-sample", "pr-7"}}))
                  .ok());
  Observation o = ObserveUntil([](const Observation& x) { return x.phase == Phase::kReady; });
  ASSERT_EQ(o.phase, Phase::kReady) << o.message;
  EXPECT_EQ(HttpGet(o.url), "eph-sample v2\n");
  EXPECT_EQ(Inspect(ContainerName(project_, "web"))["Config"]["Image"],
            "localhost:5000/acme/eph-sample:pr-7");
  DestroyCompletely();
}

TEST_F(DockerProviderBedTest, PortClashFailsWithDockersMessageAndLeavesNothing) {
  provider_ = MakeProvider({{"fixed_host_ports", "true"}});
  HeldPort held;
  ASSERT_NE(held.port(), 0);
  absl::StatusOr<ApplyResult> r = provider_->Apply(Request(
      fmt::format("services:\n  worker:\n    image: eph-sample:v1\n    environment: [PORT=9000]\n"
                  "  web:\n    image: eph-sample:v1\n    ports: [\"127.0.0.1:{}:8080\"]\n"
                  "    depends_on: [worker]\n",
                  held.port())));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(r.status().message(), HasSubstr("starting service `web` failed"));
  EXPECT_THAT(r.status().message(), HasSubstr(std::to_string(held.port())));
  // The worker had started already: it is gone too.
  EXPECT_THAT(Leftovers(), ::testing::IsEmpty());
}

TEST_F(DockerProviderBedTest, CommandThatCannotStartFailsAndLeavesNothing) {
  absl::StatusOr<ApplyResult> r = provider_->Apply(
      Request("services:\n  web:\n    image: eph-sample:v1\n    entrypoint: /no/such/binary\n"
              "    ports: [\"8080\"]\nvolumes:\n  data:\n"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(r.status().message(), HasSubstr("/no/such/binary"));
  EXPECT_THAT(Leftovers(), ::testing::IsEmpty());
}

TEST_F(DockerProviderBedTest, CrashingServiceIsFailedWithItsOutput) {
  ASSERT_TRUE(provider_
                  ->Apply(Request("services:\n  web:\n    image: eph-sample:v1\n"
                                  "    ports: [\"8080\"]\n    command: [fail]\n"))
                  .ok());
  Observation o = ObserveUntil([](const Observation& x) { return x.phase == Phase::kFailed; });
  ASSERT_EQ(o.phase, Phase::kFailed);
  EXPECT_THAT(o.message, HasSubstr("service `web` exited with code 3"));
  EXPECT_THAT(o.message, HasSubstr("sample failing on purpose"));
  DestroyCompletely();
}

TEST_F(DockerProviderBedTest, UnhealthyServiceIsFailed) {
  ASSERT_TRUE(provider_
                  ->Apply(Request("services:\n  web:\n    image: eph-sample:v1\n"
                                  "    ports: [\"8080\"]\n    healthcheck:\n"
                                  "      test: [CMD, /sample_server, probe, \"9\"]\n"
                                  "      interval: 200ms\n      retries: 2\n"))
                  .ok());
  Observation o = ObserveUntil([](const Observation& x) { return x.phase == Phase::kFailed; });
  ASSERT_EQ(o.phase, Phase::kFailed);
  EXPECT_THAT(o.message, HasSubstr("service `web` is unhealthy"));
  EXPECT_THAT(o.message, HasSubstr("probe connect"));
  DestroyCompletely();
}

TEST_F(DockerProviderBedTest, ServiceThatNeverBecomesHealthyFailsAfterTheHealthTimeout) {
  FakeClock clock(std::chrono::system_clock::now());
  provider_ = MakeProvider({{"health_timeout", "30s"}}, &clock);
  // retries so high that the engine itself would report "starting" for days.
  ASSERT_TRUE(provider_
                  ->Apply(Request("services:\n  web:\n    image: eph-sample:v1\n"
                                  "    ports: [\"8080\"]\n    healthcheck:\n"
                                  "      test: [CMD, /sample_server, probe, \"9\"]\n"
                                  "      interval: 200ms\n      retries: 1000000\n"))
                  .ok());
  // Running and checked at least once, still within the timeout: progressing.
  Observation waiting = ObserveUntil([&](const Observation& x) {
    return x.phase == Phase::kProgressing &&
           x.message.find("waiting for its healthcheck") != std::string::npos &&
           !Inspect(ContainerName(project_, "web"))["State"]["Health"]["Log"].empty();
  });
  ASSERT_EQ(waiting.phase, Phase::kProgressing);
  // 31 s past the container's start, however long the engine took to start it (a loaded machine).
  clock.Advance(31s + (std::chrono::system_clock::now() - clock.Now()) + 1s);
  Observation o = ObserveUntil([](const Observation& x) { return x.phase == Phase::kFailed; });
  ASSERT_EQ(o.phase, Phase::kFailed);
  EXPECT_THAT(o.message, HasSubstr("service `web` did not become healthy within 30s"));
  EXPECT_THAT(o.message, HasSubstr("probe connect"));
  EXPECT_TRUE(o.url.empty() || o.url.rfind("http://127.0.0.1:", 0) == 0);
  DestroyCompletely();
}

TEST_F(DockerProviderBedTest, NeverTouchesANetworkItDoesNotOwn) {
  const json body = {{"Name", NetworkName(project_)}, {"Labels", {{"owner", "someone"}}}};
  absl::StatusOr<EngineResponse> created =
      provider_->engine().Post("/networks/create", body.dump());
  ASSERT_TRUE(created.ok());
  ASSERT_EQ(created->status, 201) << created->body;
  absl::StatusOr<ApplyResult> r = provider_->Apply(Request(kApp));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(r.status().message(), HasSubstr("is not Eph's"));
  absl::StatusOr<DestroyResult> d = provider_->Destroy(Ref());
  ASSERT_TRUE(d.ok());
  absl::StatusOr<EngineResponse> still =
      provider_->engine().Get("/networks/" + NetworkName(project_));
  ASSERT_TRUE(still.ok());
  EXPECT_EQ(still->status, 200) << "Destroy removed a network without Eph's labels";
  (void)provider_->engine().Delete("/networks/" + NetworkName(project_));
}

}  // namespace
}  // namespace eph::providers::docker
