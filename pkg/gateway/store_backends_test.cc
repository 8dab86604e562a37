#include "pkg/gateway/store_backends.h"

#include <gtest/gtest.h>

#include "pkg/base/clock.h"

namespace eph::gateway {
namespace {

TEST(BackendFromUrlTest, TakesPlainHttpWithAPort) {
  const std::optional<Backend> b = BackendFromUrl("http://127.0.0.1:32001/health");
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->host, "127.0.0.1");
  EXPECT_EQ(b->port, 32001);
  const std::optional<Backend> v6 = BackendFromUrl("http://[::1]:8080");
  ASSERT_TRUE(v6.has_value());
  EXPECT_EQ(v6->host, "::1");
  for (const char* url : {"", "https://127.0.0.1:1", "http://127.0.0.1", "http://127.0.0.1:0",
                          "http://127.0.0.1:99999", "127.0.0.1:80"}) {
    EXPECT_FALSE(BackendFromUrl(url).has_value()) << url;
  }
}

TEST(StoreBackendsTest, OnlyReadyEnvironmentsWithABackendAreServed) {
  std::unique_ptr<state::Store> store = state::OpenStore("sqlite::memory:").value();
  FakeClock clock;
  state::Environment env;
  env.name = "shop-ready-1";
  env.project = "acme/shop";
  env.pr_number = 1;
  env.state = state::EnvState::kReady;
  env.backend_url = "http://127.0.0.1:40001";
  env.created_at = env.updated_at = clock.Now();
  ASSERT_TRUE(store->CreateEnvironment(env).ok());
  env.name = "shop-pending-2";
  env.pr_number = 2;
  env.state = state::EnvState::kProvisioning;
  ASSERT_TRUE(store->CreateEnvironment(env).ok());

  StoreBackends backends(*store);
  const std::optional<Backend> ready = backends.Find("shop-ready-1");
  ASSERT_TRUE(ready.has_value());
  EXPECT_EQ(ready->port, 40001);
  EXPECT_FALSE(backends.Find("shop-pending-2").has_value());
  EXPECT_FALSE(backends.Find("nobody").has_value());
}

TEST(StoreActivityTest, AVisitBecomesTheEnvironmentsLastActivity) {
  std::unique_ptr<state::Store> store = state::OpenStore("sqlite::memory:").value();
  FakeClock clock;
  state::Environment env;
  env.name = "shop-ready-1";
  env.project = "acme/shop";
  env.pr_number = 1;
  env.state = state::EnvState::kReady;
  env.created_at = env.updated_at = clock.Now();
  ASSERT_TRUE(store->CreateEnvironment(env).ok());

  const ActivitySink sink = StoreActivity(*store);
  clock.Advance(std::chrono::minutes(5));
  sink("shop-ready-1", clock.Now());
  EXPECT_EQ(store->GetEnvironment("shop-ready-1").value()->last_activity_at, clock.Now());
  sink("nobody", clock.Now());  // logged, not fatal
}

}  // namespace
}  // namespace eph::gateway
