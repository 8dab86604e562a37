// Two ephd processes on one PostgreSQL share the work and never reconcile one key at the same
// time (engine issue). Both talk to the GitHub stand-in; no provider is enabled, so each labelled
// pull request ends as one `failed` environment whose reason says so — what matters here is who
// worked on which key when, read from both processes' debug logs.
#include <signal.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <regex>
#include <sstream>
#include <thread>

#include "pkg/http/http_client.h"
#include "test/github/standin_process.h"
#include "test/support/process.h"
#include "test/support/testbed.h"

namespace eph {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;
constexpr char kSecret[] = "two-ephd";
constexpr int kPullRequests = 30;

std::string Ephd() { return testing::BinaryDir() + "/cmd/ephd/ephd"; }

std::string FreshDatabase(const std::string& name) {
  const std::string admin = testing::TestbedValue("postgres", "EPH_TEST_POSTGRES_ADMIN_URL");
  const std::string bin = testing::TestbedValue("postgres", "EPH_TEST_POSTGRES_BIN");
  testing::RunCommand({bin + "/psql", "-X", "-q", admin, "-c", "DROP DATABASE IF EXISTS " + name});
  auto r = testing::RunCommand({bin + "/psql", "-X", "-q", admin, "-c", "CREATE DATABASE " + name});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return admin.substr(0, admin.rfind('/')) + "/" + name;
}

// Milliseconds of the day from "2026-11-27T16:30:01.123Z" (both processes log in UTC).
int64_t MillisOfDay(const std::string& ts) {
  const int h = std::stoi(ts.substr(11, 2)), m = std::stoi(ts.substr(14, 2)),
            s = std::stoi(ts.substr(17, 2)), ms = std::stoi(ts.substr(20, 3));
  return ((h * 60 + m) * 60 + s) * 1000 + ms;
}

struct Interval {
  int process;
  int64_t begin, end;
};

TEST(TwoEphdTest, ShareTheWorkAndNeverHoldOneKeyAtOnce) {
  const std::string url = FreshDatabase("eph_two");
  testing::StandInProcess standin;
  ASSERT_FALSE(standin.url().empty());
  standin.Request("POST", "/_standin/repos",
                  {{"owner", "acme"},
                   {"repo", "shop"},
                   {"files",
                    {{"eph.yaml", "version: \"1.0\"\nname: shop\nkubernetes:\n  manifests: [k8s]\n"},
                     {"k8s/deployment.yaml", "kind: Deployment\n"}}}});
  for (int pr = 1; pr <= kPullRequests; ++pr) {
    standin.Request("PUT", "/_standin/repos/acme/shop/pulls/" + std::to_string(pr),
                    {{"labels", {"preview"}}, {"head_ref", "f" + std::to_string(pr)}});
  }
  const std::string dir = testing::MakeTempDir("two-ephd");
  std::vector<std::unique_ptr<testing::ChildProcess>> ephds;
  std::vector<std::string> bases;
  for (int i = 0; i < 2; ++i) {
    ephds.push_back(std::make_unique<testing::ChildProcess>(
        std::vector<std::string>{Ephd(), "--listen", "127.0.0.1:0", "--state", url, "--workers",
                                 "2", "--log-level", "debug"},
        std::map<std::string, std::string>{{"EPH_GITHUB_WEBHOOK_SECRET", kSecret},
                                           {"EPH_GITHUB_API_URL", standin.url()},
                                           {"EPH_GITHUB_TOKEN", testing::kStandInToken}},
        dir));
    auto port =
        ephds.back()->WaitForOutput(std::regex("listening on http://127\\.0\\.0\\.1:(\\d+)"), 30s);
    ASSERT_TRUE(port.has_value()) << ephds.back()->Output();
    bases.push_back("http://127.0.0.1:" + *port);
  }
  // Every pull request is announced to both (GitHub retries and redeliveries look like this),
  // alternating which hears first.
  for (int pr = 1; pr <= kPullRequests; ++pr) {
    for (int k = 0; k < 2; ++k) {
      const std::string& base = bases[(pr + k) % 2];
      json d = standin.Request("POST", "/_standin/deliver",
                               {{"url", base + "/webhooks/github"},
                                {"secret", kSecret},
                                {"event", "pull_request"},
                                {"action", "labeled"},
                                {"repo", "acme/shop"},
                                {"number", pr},
                                {"label", "preview"}});
      EXPECT_EQ(d.value("status", 0) / 100, 2) << d;
    }
  }
  // Wait until every pull request has its one (failed: no provider) environment.
  const std::string bin = testing::TestbedValue("postgres", "EPH_TEST_POSTGRES_BIN");
  auto count = [&](const std::string& sql) {
    auto r = testing::RunCommand({bin + "/psql", "-X", "-At", url, "-c", sql});
    return r.exit_code == 0 ? std::atoi(r.out.c_str()) : -1;
  };
  const auto deadline = std::chrono::steady_clock::now() + 90s;
  while (count("SELECT count(*) FROM environments WHERE state = 'failed'") < kPullRequests &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_EQ(count("SELECT count(*) FROM environments"), kPullRequests)
      << "one environment per pull request, never two";
  EXPECT_EQ(count("SELECT count(*) FROM environments WHERE state = 'failed' AND reason LIKE "
                  "'%not enabled%'"),
            kPullRequests);
  for (auto& e : ephds) {
    e->Signal(SIGTERM);
    EXPECT_EQ(e->Wait(30s), 0) << e->Output();
  }

  // Who reconciled what, when.
  const std::regex line(
      R"((\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3})Z debug work queue: (begin|done) (\S+) as (\S+))");
  std::map<std::string, std::vector<Interval>> by_key;
  int per_process[2] = {0, 0};
  for (int p = 0; p < 2; ++p) {
    std::map<std::string, int64_t> open;  // key+owner → begin
    std::istringstream in(ephds[p]->Output());
    std::string text;
    while (std::getline(in, text)) {
      std::smatch m;
      if (!std::regex_search(text, m, line)) continue;
      const std::string id = m[3].str() + " " + m[4].str();
      const int64_t t = MillisOfDay(m[1].str());
      if (m[2] == "begin") {
        open[id] = t;
      } else if (open.count(id)) {
        by_key[m[3].str()].push_back({p, open[id], t});
        open.erase(id);
        ++per_process[p];
      }
    }
  }
  EXPECT_EQ(by_key.size(), static_cast<size_t>(kPullRequests));
  EXPECT_GT(per_process[0], 0) << "the first ephd did no work";
  EXPECT_GT(per_process[1], 0) << "the second ephd did no work";
  for (auto& [key, intervals] : by_key) {
    std::sort(intervals.begin(), intervals.end(),
              [](const Interval& a, const Interval& b) { return a.begin < b.begin; });
    for (size_t i = 1; i < intervals.size(); ++i) {
      EXPECT_GE(intervals[i].begin, intervals[i - 1].end)
          << key << " was reconciled by ephd " << intervals[i - 1].process << " and ephd "
          << intervals[i].process << " at the same time";
    }
  }
  std::printf("reconciles: first ephd %d, second ephd %d\n", per_process[0], per_process[1]);
  EXPECT_EQ(standin.Violations(), json::array());
}

}  // namespace
}  // namespace eph
