#include "pkg/providers/fake_provider.h"

#include <gtest/gtest.h>

namespace eph::providers {
namespace {

using M = FakeProvider::Method;

ApplyRequest Request(const std::string& env) {
  ApplyRequest r;
  r.environment = env;
  r.namespace_name = "eph-" + env;
  r.labels = {{kManagedByLabel, kManagedByValue}, {kEnvironmentLabel, env}};
  return r;
}

TEST(FakeProviderTest, ApplyObserveDestroy) {
  FakeProvider p;
  EXPECT_EQ(p.Observe({"a", "eph-a"})->phase, Phase::kAbsent);
  ASSERT_TRUE(p.Apply(Request("a")).ok());
  ASSERT_TRUE(p.Apply(Request("a")).ok());  // idempotent
  EXPECT_EQ(p.Existing(), std::set<std::string>{"a"});
  EXPECT_EQ(p.Observe({"a", "eph-a"})->phase, Phase::kReady);
  EXPECT_EQ(p.Calls(M::kApply, "a"), 2);
  ASSERT_TRUE(p.Destroy({"a", "eph-a"})->done);
  ASSERT_TRUE(p.Destroy({"a", "eph-a"})->done);  // idempotent
  EXPECT_FALSE(p.Exists("a"));
}

TEST(FakeProviderTest, Scripting) {
  FakeProvider p;
  p.FailNext(M::kApply, absl::UnavailableError("down"));
  EXPECT_EQ(p.Apply(Request("a")).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_FALSE(p.Exists("a"));
  p.SetPhaseAfterApply(Phase::kProgressing);
  ASSERT_TRUE(p.Apply(Request("a")).ok());
  EXPECT_EQ(p.Observe({"a", ""})->phase, Phase::kProgressing);
  p.SetPhase("a", Phase::kFailed, "crash loop");
  absl::StatusOr<Observation> o = p.Observe({"a", ""});
  EXPECT_EQ(o->phase, Phase::kFailed);
  EXPECT_EQ(o->message, "crash loop");
  p.SetDestroyPending(1);
  EXPECT_FALSE(p.Destroy({"a", ""})->done);
  EXPECT_TRUE(p.Exists("a"));
  EXPECT_TRUE(p.Destroy({"a", ""})->done);
}

TEST(FakeProviderTest, ListOwnedAndForeignObjects) {
  FakeProvider p;
  ASSERT_TRUE(p.Apply(Request("a")).ok());
  p.AddForeignObject({"Namespace", "eph-ghost", "", "ghost"});
  std::vector<OwnedObject> owned = *p.ListOwned();
  ASSERT_EQ(owned.size(), 2u);
  EXPECT_EQ(owned[0].environment, "a");
  EXPECT_EQ(owned[0].name, "eph-a");
  ASSERT_TRUE(p.Destroy({"ghost", "eph-ghost"})->done);
  EXPECT_EQ(p.ListOwned()->size(), 1u);
}

TEST(FakeProviderTest, LogsStopWhenTheSinkSaysSo) {
  FakeProvider p;
  EXPECT_EQ(p.Logs({"a"}, [](const LogLine&) { return true; }).code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(p.Apply(Request("a")).ok());
  p.SetLogs("a", {{"api", {}, "one"}, {"web", {}, "two"}, {"api", {}, "three"}});
  std::vector<std::string> got;
  ASSERT_TRUE(p.Logs({"a", "", "api"}, [&](const LogLine& l) {
                 got.push_back(l.text);
                 return true;
               }).ok());
  EXPECT_EQ(got, (std::vector<std::string>{"one", "three"}));
  got.clear();
  ASSERT_TRUE(p.Logs({"a"}, [&](const LogLine& l) {
                 got.push_back(l.text);
                 return false;
               }).ok());
  EXPECT_EQ(got, std::vector<std::string>{"one"});
}

TEST(FakeProviderTest, DetectsOverlappingCallsForOneEnvironment) {
  FakeProvider p;
  bool nested = false;
  p.SetCallHook([&](M method, const std::string& env) {
    if (method == M::kApply && !nested) {
      nested = true;
      (void)p.Observe({env, ""});  // a second call for the same environment while in flight
    }
  });
  ASSERT_TRUE(p.Apply(Request("a")).ok());
  EXPECT_EQ(p.MaxConcurrentPerEnvironment(), 2);
}

}  // namespace
}  // namespace eph::providers
