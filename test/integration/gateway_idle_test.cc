// Idle timeout through the gateway, on an injected clock: requests through the preview gateway
// keep an environment alive; once nobody has visited it for its idle_timeout (4h in the test
// world's eph.yaml), the reconciler destroys it and says why. The gateway, the store and the
// reconciler are real; the provider is the fake whose URL points at a real HTTP server.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <regex>
#include <thread>

#include "pkg/controller/env_record.h"
#include "pkg/controller/test_world.h"
#include "pkg/http/http_client.h"
#include "pkg/gateway/gateway.h"
#include "test/support/process.h"
#include "test/support/testbed.h"

namespace eph {
namespace {

using controller::testing::World;
using namespace std::chrono_literals;

// A backend: Python's static HTTP server on a free loopback port.
struct Backend {
  std::unique_ptr<testing::ChildProcess> process;
  int port = 0;
  Backend() {
    const std::string dir = testing::MakeTempDir("idle-backend");
    process = std::make_unique<testing::ChildProcess>(
        std::vector<std::string>{"/usr/bin/python3", "-u", "-m", "http.server", "0", "--bind",
                                 "127.0.0.1", "--directory", dir},
        std::map<std::string, std::string>{}, dir);
    auto found = process->WaitForOutput(std::regex("port (\\d+)"), 30s);
    if (!found) {
      ADD_FAILURE() << "python3 -m http.server did not start: " << process->Output();
      return;
    }
    port = std::stoi(*found);
  }
};

long GetThroughGateway(int gateway_port, const std::string& environment) {
  http::Request exchange{
      .method = "GET",
      .url = "http://127.0.0.1:" + std::to_string(gateway_port) + "/",
      .headers = {"Host: " + environment + ".preview.localhost"}};
  auto answer = http::Perform(exchange);
  return answer.ok() ? answer->status : 0;
}

TEST(GatewayIdleTest, VisitsThroughTheGatewayKeepAnEnvironmentAndSilenceEndsIt) {
  Backend backend;
  ASSERT_GT(backend.port, 0);
  World w;  // eph.yaml: ttl 72h, idle_timeout 4h
  w.OpenPr(80);
  w.MustReconcile(80);
  const std::string name = w.Live(80)->name;
  w.provider->SetUrl(name, "http://127.0.0.1:" + std::to_string(backend.port));
  w.MustReconcile(80);
  ASSERT_EQ(w.Live(80)->backend_url,
            "http://127.0.0.1:" + std::to_string(backend.port));

  // The gateway as ephd wires it: the backend from the store, activity into the store.
  gateway::GatewayOptions options;
  options.port = 0;
  options.activity_interval = 1min;
  gateway::Gateway gw(
      options,
      [&](std::string_view environment) -> std::optional<gateway::Backend> {
        auto env = w.store->GetEnvironment(std::string(environment));
        if (!env.ok() || !env->has_value() || (*env)->state != state::EnvState::kReady) {
          return std::nullopt;
        }
        return gateway::Backend{"127.0.0.1", static_cast<uint16_t>(backend.port)};
      },
      [&](std::string_view environment, TimePoint at) {
        ASSERT_TRUE(w.store->TouchEnvironment(std::string(environment), at).ok());
      },
      w.clock);
  ASSERT_TRUE(gw.Start().ok());
  auto activity_is_now = [&] {
    for (int i = 0; i < 200; ++i) {
      auto env = w.Live(80);
      if (env && env->last_activity_at == w.clock.Now()) return true;
      std::this_thread::sleep_for(10ms);  // the sink runs on the gateway's own thread
    }
    return false;
  };

  // Visited every 3 hours: alive well past the 4h idle timeout.
  for (int visit = 0; visit < 3; ++visit) {
    w.clock.Advance(3h);
    ASSERT_EQ(GetThroughGateway(gw.port(), name), 200);
    ASSERT_TRUE(activity_is_now()) << "visit " << visit << " was not recorded";
    w.MustReconcile(80);
    ASSERT_TRUE(w.Live(80).has_value()) << "destroyed although visited 3h ago";
  }

  // Then silence: just under 4h keeps it, 4h destroys it with the reason.
  w.clock.Advance(4h - 1min);
  w.MustReconcile(80);
  ASSERT_TRUE(w.Live(80).has_value());
  w.clock.Advance(1min);
  w.MustReconcile(80);
  w.MustReconcile(80);
  EXPECT_FALSE(w.Live(80).has_value());
  EXPECT_EQ(w.History(80).back().reason, "idle for 4h");
  EXPECT_FALSE(w.provider->Exists(name));
  // And the gateway no longer serves it.
  EXPECT_EQ(GetThroughGateway(gw.port(), name), 404);
  gw.Stop();
}

}  // namespace
}  // namespace eph
