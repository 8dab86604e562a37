// The engine issue's reliability promises, shown against the real PostgreSQL of the test bed and
// the built ephd binary:
//  - kill -9 of ephd while deliveries stream in: every delivery ephd acknowledged is in the store
//    after a restart, with its work queued exactly once per pull request (none lost, none doubled);
//  - PostgreSQL restarted mid-run: /readyz says not ready while it is down, webhooks are refused
//    with 503 (so GitHub redelivers) rather than acknowledged and lost, and ephd catches up
//    without a restart.
#include <curl/curl.h>
#include <signal.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <set>
#include <thread>

#include "pkg/state/store.h"
#include "pkg/webhook/signature.h"
#include "test/support/process.h"
#include "test/support/testbed.h"

namespace eph {
namespace {

using namespace std::chrono_literals;
constexpr char kSecret[] = "reliability";

std::string Ephd() { return testing::BinaryDir() + "/cmd/ephd/ephd"; }

size_t Discard(char*, size_t size, size_t n, void*) { return size * n; }

// POSTs one signed pull_request delivery; returns the HTTP status (0 if no answer).
long Deliver(const std::string& base, const std::string& id, int pr) {
  const std::string body = R"({"action":"synchronize","number":)" + std::to_string(pr) +
                           R"(,"pull_request":{"number":)" + std::to_string(pr) +
                           R"(},"repository":{"full_name":"acme/shop"}})";
  CURL* curl = curl_easy_init();
  curl_slist* headers = nullptr;
  const std::string h1 = "X-GitHub-Delivery: " + id;
  const std::string h2 = "X-Hub-Signature-256: " + webhook::SignGitHub(kSecret, body);
  headers = curl_slist_append(headers, "X-GitHub-Event: pull_request");
  headers = curl_slist_append(headers, h1.c_str());
  headers = curl_slist_append(headers, h2.c_str());
  headers = curl_slist_append(headers, "Content-Type: application/json");
  const std::string url = base + "/webhooks/github";
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.c_str());
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, Discard);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 5000L);
  long status = 0;
  if (curl_easy_perform(curl) == CURLE_OK) curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  return status;
}

long Get(const std::string& url) {
  CURL* curl = curl_easy_init();
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, Discard);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 5000L);
  long status = 0;
  if (curl_easy_perform(curl) == CURLE_OK) curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_cleanup(curl);
  return status;
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

RunningEphd StartEphd(const std::string& state, const std::string& dir) {
  RunningEphd r;
  r.process = std::make_unique<testing::ChildProcess>(
      std::vector<std::string>{Ephd(), "--listen", "127.0.0.1:0", "--state", state, "--workers",
                               "0"},
      std::map<std::string, std::string>{{"EPH_GITHUB_WEBHOOK_SECRET", kSecret}}, dir);
  auto port =
      r.process->WaitForOutput(std::regex("listening on http://127\\.0\\.0\\.1:(\\d+)"), 30s);
  EXPECT_TRUE(port.has_value()) << r.process->Output();
  if (port) r.base = "http://127.0.0.1:" + *port;
  return r;
}

TEST(ReliabilityTest, KillNineWhileDeliveriesStreamInLosesNothingAcknowledged) {
  const std::string dir = testing::MakeTempDir("kill9");
  const std::string url = FreshDatabase("eph_kill9");
  RunningEphd ephd = StartEphd(url, dir);
  ASSERT_FALSE(ephd.base.empty());

  // 4 senders, 500 deliveries over 50 pull requests (10 each, as pushes would send), and a
  // kill -9 once about half are in.
  constexpr int kDeliveries = 500;
  constexpr int kPullRequests = 50;
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
  RunningEphd again = StartEphd(url, dir);
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
  again.process->Signal(SIGTERM);
  EXPECT_EQ(again.process->Wait(20s), 0);

  auto store = state::OpenStore(url);
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_EQ(*(*store)->CountDeliveries(), kDeliveries);
  // One queue row per pull request: 500 deliveries merged into 50 keys, none lost, none doubled.
  EXPECT_EQ(*(*store)->QueueDepth(), kPullRequests);
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
