// A running ephd for the tests that drive it through the GitHub stand-in: start-up on a fresh
// SQLite store, an API token, and polling helpers for what the stand-in and the API show.
#pragma once

#include <signal.h>

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "pkg/http/http_client.h"
#include "test/github/standin_process.h"
#include "test/support/process.h"
#include "test/support/testbed.h"

namespace eph::testing {

using json = nlohmann::json;

inline constexpr char kSecret[] = "github-webhook-secret";

inline std::string EphdBinary() { return BinaryDir() + "/cmd/ephd/ephd"; }

struct EphdProcess {
  std::string dir;
  std::string url;
  std::unique_ptr<ChildProcess> process;

  // `env` adds to ephd's environment (EPH_* settings); `args` to its command line.
  explicit EphdProcess(std::map<std::string, std::string> env,
                       std::vector<std::string> args = {}) {
    dir = MakeTempDir("ephd-github");
    env["EPH_GITHUB_WEBHOOK_SECRET"] = kSecret;
    process = std::make_unique<ChildProcess>(
        [&] {
          std::vector<std::string> argv{EphdBinary(), "--listen", "127.0.0.1:0", "--state",
                                        "sqlite:" + dir + "/eph.db"};
          argv.insert(argv.end(), args.begin(), args.end());
          return argv;
        }(),
        env, dir);
    auto port =
        process->WaitForOutput(std::regex("listening on http://127\\.0\\.0\\.1:(\\d+)"), std::chrono::seconds(30));
    if (!port) {
      ADD_FAILURE() << "ephd did not start:\n" << process->Output();
      return;
    }
    url = "http://127.0.0.1:" + *port;
  }
  ~EphdProcess() {
    process->Signal(SIGTERM);
    EXPECT_EQ(process->Wait(std::chrono::seconds(20)), 0) << process->Output();
  }
};

inline http::Response Post(const std::string& url, std::vector<std::string> headers,
                               const std::string& body) {
  http::Request exchange{.method = "POST", .url = url, .headers = std::move(headers)};
  exchange.body = body;
  auto answer = http::Perform(exchange);
  EXPECT_TRUE(answer.ok()) << answer.status();
  return answer.ok() ? *answer : http::Response{};
}

// The stand-in's sticky comment body for `repo`#`number`, or "".
inline std::string StickyComment(StandInProcess& standin, int64_t number) {
  const json state = standin.State();
  for (const json& c : state["comments"]) {
    if (c.value("issue_number", 0) == number &&
        c.value("body", "").find("<!-- eph:environment=") != std::string::npos) {
      return c.value("body", "");
    }
  }
  return "";
}

// Polls `condition` until it holds or `timeout` passes.
inline bool WaitFor(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return condition();
}

inline json ApiGet(const std::string& url, const std::string& token) {
  http::Request exchange{
      .method = "GET", .url = url, .headers = {"Authorization: Bearer " + token}};
  auto answer = http::Perform(exchange);
  EXPECT_TRUE(answer.ok()) << answer.status();
  if (!answer.ok()) return nullptr;
  EXPECT_EQ(answer->status, 200) << answer->body;
  return json::parse(answer->body, nullptr, false);
}

// An API token with write scope made with `ephd token create` on ephd's store.
inline std::string CreateApiToken(const EphdProcess& ephd) {
  auto created = RunCommand({EphdBinary(), "token", "create", "--name", "test", "--scope", "write",
                             "--state", "sqlite:" + ephd.dir + "/eph.db"});
  EXPECT_EQ(created.exit_code, 0) << created.err;
  std::string token = created.out;
  while (!token.empty() && token.back() == '\n') token.pop_back();
  return token.substr(token.rfind('\n') + 1);
}

// RunCommand execs without a PATH search: the absolute path of a system tool.
inline std::string Tool(const std::string& name) {
  for (const char* dir : {"/usr/local/bin", "/usr/bin", "/bin"}) {
    const std::string path = std::string(dir) + "/" + name;
    if (access(path.c_str(), X_OK) == 0) return path;
  }
  ADD_FAILURE() << name << " not found";
  return name;
}

inline std::string KubeBed(const std::string& key) { return TestbedValue("kubernetes", key); }
inline std::string DockerHost() { return TestbedValue("docker", "EPH_TEST_DOCKER_HOST"); }

// The demo's sample app (deploy/demo/app, static, FROM scratch) on the test bed's engine as
// eph-demo/web:<tag>, its page naming `tag` as the version.
inline void BuildDemoImage(const std::string& tag) {
  const std::string dir = MakeTempDir("demo-image");
  auto gcc = RunCommand({Tool("gcc"), "-static", "-O2", "-o", dir + "/demo_server",
                         SourceDir() + "/deploy/demo/app/demo_server.c"},
                        {}, std::chrono::seconds(120));
  ASSERT_EQ(gcc.exit_code, 0) << gcc.err;
  std::filesystem::copy_file(SourceDir() + "/deploy/demo/app/Dockerfile", dir + "/Dockerfile");
  auto build = RunCommand({Tool("docker"), "build", "-q", "--build-arg", "APP_VERSION=" + tag,
                           "-t", "eph-demo/web:" + tag, dir},
                          {{"DOCKER_HOST", DockerHost()}, {"DOCKER_BUILDKIT", "0"}},
                          std::chrono::seconds(180));
  ASSERT_EQ(build.exit_code, 0) << build.out << build.err;
}

// Delivers a signed webhook for `repo` to ephd through the stand-in.
inline json Deliver(StandInProcess& standin, const EphdProcess& ephd, const std::string& repo,
                    json body) {
  body["url"] = ephd.url + "/webhooks/github";
  body["secret"] = kSecret;
  body["repo"] = repo;
  return standin.Request("POST", "/_standin/deliver", body);
}

}  // namespace eph::testing
