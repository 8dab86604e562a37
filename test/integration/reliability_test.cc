// The engine issue's reliability promises, shown against the real PostgreSQL of the test bed and
// the built ephd binary:
//  - kill -9 of ephd while deliveries stream in and workers reconcile: every delivery ephd
//    acknowledged is in the store after a restart, and every pull request ends with exactly one
//    environment and one sticky comment (none lost, none doubled);
//  - PostgreSQL restarted mid-run: /readyz says not ready while it is down, webhooks are refused
//    with 503 (so GitHub redelivers) rather than acknowledged and lost, and ephd catches up
//    without a restart.
#include <signal.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <set>
#include <thread>

#include "pkg/http/http_client.h"
#include "pkg/state/store.h"
#include "pkg/webhook/signature.h"
#include "test/github/standin_process.h"
#include "test/support/process.h"
#include "test/support/testbed.h"

namespace eph {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;
constexpr char kSecret[] = "reliability";

std::string Ephd() { return testing::BinaryDir() + "/cmd/ephd/ephd"; }

// POSTs one signed pull_request delivery; returns the HTTP status (0 if no answer).
long Deliver(const std::string& base, const std::string& id, int pr) {
  const std::string body = R"({"action":"synchronize","number":)" + std::to_string(pr) +
                           R"(,"pull_request":{"number":)" + std::to_string(pr) +
                           R"(},"repository":{"full_name":"acme/shop"}})";
  auto answer = http::Perform(
      {.method = "POST",
       .url = base + "/webhooks/github",
       .headers = {"X-GitHub-Event: pull_request", "X-GitHub-Delivery: " + id,
                   "X-Hub-Signature-256: " + webhook::SignGitHub(kSecret, body),
                   "Content-Type: application/json"},
       .body = body,
       .timeout = std::chrono::milliseconds(5000)});
  return answer.ok() ? answer->status : 0;
}

long Get(const std::string& url) {
  auto answer = http::Perform({.url = url, .timeout = std::chrono::milliseconds(5000)});
  return answer.ok() ? answer->status : 0;
}

// A fresh database on the test bed's PostgreSQL for one test.
std::string FreshDatabase(const std::string& name) {
  const std::string admin = testing::TestbedValue("postgres", "EPH_TEST_POSTGRES_ADMIN_URL");
  const std::string bin = testing::TestbedValue("postgres", "EPH_TEST_POSTGRES_BIN");
  testing::RunCommand({bin + "/psql", "-X", "-q", admin, "-c", "DROP DATABASE IF EXISTS " + name});
  auto r = testing::RunCommand({bin + "/psql", "-X", "-q", admin, "-c", "CREATE DATABASE " + name});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return admin.substr(0, admin.rfind('/')) + "/" + name;
}

struct RunningEphd {
  std::unique_ptr<testing::ChildProcess> process;
  std::string base;
};

RunningEphd StartEphd(const std::string& state, const std::string& dir, int workers = 0,
                      std::map<std::string, std::string> env = {}) {
  RunningEphd r;
  env["EPH_GITHUB_WEBHOOK_SECRET"] = kSecret;
  r.process = std::make_unique<testing::ChildProcess>(
      std::vector<std::string>{Ephd(), "--listen", "127.0.0.1:0", "--state", state, "--workers",
                               std::to_string(workers)},
      env, dir);
  auto port =
      r.process->WaitForOutput(std::regex("listening on http://127\\.0\\.0\\.1:(\\d+)"), 30s);
  EXPECT_TRUE(port.has_value()) << r.process->Output();
  if (port) r.base = "http://127.0.0.1:" + *port;
  return r;
}

TEST(ReliabilityTest, KillNineWhileDeliveriesStreamInLosesNothingAndDoublesNothing) {
  // 50 labelled pull requests on the GitHub stand-in; ephd reconciles against it (no provider is
  // enabled, so each ends as one `failed` environment with one sticky comment saying why).
  constexpr int kDeliveries = 500;
  constexpr int kPullRequests = 50;
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
  const std::map<std::string, std::string> forge_env = {
      {"EPH_GITHUB_API_URL", standin.url()}, {"EPH_GITHUB_TOKEN", testing::kStandInToken}};

  const std::string dir = testing::MakeTempDir("kill9");
  const std::string url = FreshDatabase("eph_kill9");
  RunningEphd ephd = StartEphd(url, dir, 2, forge_env);
  ASSERT_FALSE(ephd.base.empty());

  // 4 senders, 500 deliveries over 50 pull requests (10 each, as pushes would send), and a
  // kill -9 once about half are in, while the workers are busy reconciling.
  std::atomic<int> next{0}, sent{0};
  std::mutex mu;
  std::set<std::string> acknowledged;
  std::vector<std::thread> senders;
  for (int t = 0; t < 4; ++t) {
    senders.emplace_back([&] {
      while (true) {
        const int i = next.fetch_add(1);
        if (i >= kDeliveries) return;
        const std::string id = "kill9-" + std::to_string(i);
        const long status = Deliver(ephd.base, id, 1 + i % kPullRequests);
        ++sent;
        if (status >= 200 && status < 300) {
          std::lock_guard<std::mutex> lock(mu);
          acknowledged.insert(id);
        }
      }
    });
  }
  while (sent.load() < kDeliveries / 2) std::this_thread::yield();
  ephd.process->Signal(SIGKILL);
  for (auto& t : senders) t.join();
  ASSERT_EQ(ephd.process->Wait(10s), 128 + SIGKILL);
  ASSERT_GT(acknowledged.size(), 100u);
  ASSERT_LT(acknowledged.size(), static_cast<size_t>(kDeliveries)) << "the kill came too late";

  // Restart on the same database; redeliver everything, as GitHub would for unacknowledged ones.
  RunningEphd again = StartEphd(url, dir, 2, forge_env);
  ASSERT_FALSE(again.base.empty());
  int duplicates = 0;
  for (int i = 0; i < kDeliveries; ++i) {
    const std::string id = "kill9-" + std::to_string(i);
    const long status = Deliver(again.base, id, 1 + i % kPullRequests);
    ASSERT_TRUE(status == 200 || status == 202) << id << " " << status;
    if (status == 200) ++duplicates;
    if (acknowledged.count(id)) {
      EXPECT_EQ(status, 200) << id << " was acknowledged before the kill but is not stored";
    }
  }
  EXPECT_GE(duplicates, static_cast<int>(acknowledged.size()));

  auto store = state::OpenStore(url);
  ASSERT_TRUE(store.ok()) << store.status();
  // Processed: every pull request ends with exactly one environment.
  const auto deadline = std::chrono::steady_clock::now() + 120s;
  auto failed_count = [&] {
    auto envs = (*store)->ListEnvironments({.include_destroyed = true});
    int n = 0;
    if (envs.ok()) {
      for (const auto& e : *envs) n += e.state == state::EnvState::kFailed;
    }
    return n;
  };
  // A failed environment is saved before its comment is written, and a pull request whose comment
  // the killed ephd never wrote is only reported when its redelivered key comes up: converged
  // means every environment failed and every pull request shows its sticky comment.
  auto commented_count = [&] {
    std::set<int64_t> prs;
    const json github_state = standin.State();
    for (const json& c : github_state["comments"]) {
      if (c.value("body", "").find("<!-- eph:environment=") != std::string::npos) {
        prs.insert(c.value("issue_number", int64_t{0}));
      }
    }
    return static_cast<int>(prs.size());
  };
  while ((failed_count() < kPullRequests || commented_count() < kPullRequests) &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(100ms);
  }
  again.process->Signal(SIGTERM);
  EXPECT_EQ(again.process->Wait(30s), 0);

  EXPECT_EQ(*(*store)->CountDeliveries(), kDeliveries);
  auto envs = (*store)->ListEnvironments({.include_destroyed = true});
  ASSERT_TRUE(envs.ok());
  std::map<int64_t, int> per_pr;
  for (const auto& e : *envs) ++per_pr[e.pr_number];
  EXPECT_EQ(per_pr.size(), static_cast<size_t>(kPullRequests)) << "an environment is missing";
  for (const auto& [pr, n] : per_pr) EXPECT_EQ(n, 1) << "pull request " << pr << " got " << n;
  // And on GitHub: one sticky comment per pull request, never a second one.
  std::map<int64_t, int> comments;
  const json github_state = standin.State();  // named: a temporary would dangle in the loop
  for (const json& c : github_state["comments"]) {
    if (c.value("body", "").find("<!-- eph:environment=") != std::string::npos) {
      ++comments[c.value("issue_number", int64_t{0})];
    }
  }
  EXPECT_EQ(comments.size(), static_cast<size_t>(kPullRequests));
  for (const auto& [pr, n] : comments) EXPECT_EQ(n, 1) << "pull request " << pr;
  EXPECT_EQ(standin.Violations(), json::array());
}

TEST(ReliabilityTest, PostgresRestartMidRunIsReportedAndCaughtUp) {
  const std::string dir = testing::MakeTempDir("pgrestart");
  const std::string url = FreshDatabase("eph_pgrestart");
  RunningEphd ephd = StartEphd(url, dir);
  ASSERT_FALSE(ephd.base.empty());
  ASSERT_EQ(Get(ephd.base + "/readyz"), 200);
  ASSERT_EQ(Deliver(ephd.base, "before", 1), 202);

  const std::string bed = testing::SourceDir() + "/test/bed/postgres/";
  auto stop = testing::RunCommand({bed + "stop-server", "fast"}, {{"EPH_TESTBED_DIR", testing::TestbedDir()}});
  ASSERT_EQ(stop.exit_code, 0) << stop.err;

  // Not ready while the database is gone; deliveries are refused, not acknowledged and lost.
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  long ready = 200;
  while (ready == 200 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(20ms);
    ready = Get(ephd.base + "/readyz");
  }
  EXPECT_EQ(ready, 503);
  EXPECT_EQ(Deliver(ephd.base, "during", 2), 503);
  EXPECT_EQ(Get(ephd.base + "/healthz"), 200) << "the process itself is fine";

  auto start = testing::RunCommand({bed + "start-server"}, {{"EPH_TESTBED_DIR", testing::TestbedDir()}});
  ASSERT_EQ(start.exit_code, 0) << start.err;
  // Catches up without a restart: ready again, and the redelivery is accepted.
  const auto back = std::chrono::steady_clock::now() + 30s;
  while (Get(ephd.base + "/readyz") != 200 && std::chrono::steady_clock::now() < back) {
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(Get(ephd.base + "/readyz"), 200);
  EXPECT_EQ(Deliver(ephd.base, "during", 2), 202);
  EXPECT_EQ(Deliver(ephd.base, "before", 1), 200);
  ephd.process->Signal(SIGTERM);
  EXPECT_EQ(ephd.process->Wait(20s), 0) << ephd.process->Output();
}

}  // namespace
}  // namespace eph
