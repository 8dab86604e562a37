// A running ephd for the tests that drive it through the GitHub stand-in: start-up on a fresh
// SQLite store, an API token, and polling helpers for what the stand-in and the API show.
#pragma once

#include <signal.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "pkg/forge/github/github_http.h"
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

inline forge::github::HttpAnswer Post(const std::string& url, std::vector<std::string> headers,
                               const std::string& body) {
  forge::github::HttpExchange exchange{.method = "POST", .url = url, .headers = std::move(headers)};
  exchange.body = body;
  auto answer = forge::github::PerformHttp(exchange);
  EXPECT_TRUE(answer.ok()) << answer.status();
  return answer.ok() ? *answer : forge::github::HttpAnswer{};
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
  forge::github::HttpExchange exchange{
      .method = "GET", .url = url, .headers = {"Authorization: Bearer " + token}};
  auto answer = forge::github::PerformHttp(exchange);
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

}  // namespace eph::testing
