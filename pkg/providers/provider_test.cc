#include "pkg/providers/provider.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "pkg/providers/fake_provider.h"

namespace eph::providers {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(ProviderRegistryTest, FactoriesAreEnabledByName) {
  ProviderRegistry registry;
  int made = 0;
  ASSERT_TRUE(registry
                  .RegisterFactory(
                      "fake",
                      [&](const ProviderSettings& s) -> absl::StatusOr<std::unique_ptr<Provider>> {
                        ++made;
                        return std::make_unique<FakeProvider>(s.values.at("name"));
                      })
                  .ok());
  EXPECT_EQ(registry.RegisterFactory("fake", nullptr).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(registry
                .RegisterFactory(
                    "fake",
                    [](const ProviderSettings&) -> absl::StatusOr<std::unique_ptr<Provider>> {
                      return nullptr;
                    })
                .code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(registry.AvailableNames(), ElementsAre("fake"));
  EXPECT_EQ(registry.Find("fake"), nullptr);

  ASSERT_TRUE(registry.Enable("fake", {{{"name", "fake"}}}).ok());
  EXPECT_EQ(made, 1);
  ASSERT_NE(registry.Find("fake"), nullptr);
  EXPECT_EQ(registry.Find("fake")->Info().name, "fake");
  EXPECT_EQ(registry.Enable("fake", {{{"name", "fake"}}}).code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(registry.Enable("nomad", {}).code(), absl::StatusCode::kNotFound);
}

TEST(ProviderRegistryTest, FactoryErrorsAreReturned) {
  ProviderRegistry registry;
  ASSERT_TRUE(registry
                  .RegisterFactory(
                      "kubernetes",
                      [](const ProviderSettings&) -> absl::StatusOr<std::unique_ptr<Provider>> {
                        return absl::UnavailableError("no kubeconfig");
                      })
                  .ok());
  EXPECT_EQ(registry.Enable("kubernetes", {}).code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(registry.EnabledNames().empty());
}

TEST(ProviderRegistryTest, ReadyInstancesAreAddedUnderTheirName) {
  ProviderRegistry registry;
  ASSERT_TRUE(registry.Add(std::make_unique<FakeProvider>("docker")).ok());
  ASSERT_TRUE(registry.Add(std::make_unique<FakeProvider>("kubernetes")).ok());
  EXPECT_EQ(registry.Add(std::make_unique<FakeProvider>("docker")).code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(registry.Add(nullptr).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(registry.EnabledNames(), ElementsAre("docker", "kubernetes"));
  ASSERT_EQ(registry.Enabled().size(), 2u);
  EXPECT_EQ(registry.Enabled()[1]->Info().name, "kubernetes");
}

TEST(ProviderRegistryTest, BuiltinRegistrationIsExplicitAndRepeatable) {
  ProviderRegistry registry;
  ASSERT_TRUE(RegisterBuiltinProviders(registry).ok());
  // Nothing is enabled by registering: ephd decides from its configuration.
  EXPECT_TRUE(registry.EnabledNames().empty());
}

TEST(ProviderTest, PhaseNames) {
  EXPECT_EQ(PhaseName(Phase::kAbsent), "absent");
  EXPECT_EQ(PhaseName(Phase::kProgressing), "progressing");
  EXPECT_EQ(PhaseName(Phase::kReady), "ready");
  EXPECT_EQ(PhaseName(Phase::kFailed), "failed");
}

// The gRPC protocol mirrors the interface: one RPC per method, one message per struct.
TEST(ProviderProtoTest, MirrorsTheInterface) {
  std::ifstream in(std::string(EPH_SOURCE_DIR) + "/proto/eph/provider/v1/provider.proto");
  ASSERT_TRUE(in.good());
  std::stringstream text;
  text << in.rdbuf();
  const std::string proto = text.str();
  for (const char* rpc : {"rpc GetInfo(GetInfoRequest) returns (ProviderInfo)",
                          "rpc Apply(ApplyRequest) returns (ApplyResult)",
                          "rpc Observe(EnvironmentRef) returns (Observation)",
                          "rpc Destroy(EnvironmentRef) returns (DestroyResult)",
                          "rpc Logs(LogsRequest) returns (stream LogLine)",
                          "rpc ListOwned(ListOwnedRequest) returns (ListOwnedResponse)",
                          "rpc EnsureDatabaseServer(DatabaseServerRequest) returns "
                          "(DatabaseServer)",
                          "rpc WatchChanges(WatchChangesRequest) returns (stream "
                          "EnvironmentChange)"}) {
    EXPECT_THAT(proto, HasSubstr(rpc));
  }
  for (const char* message : {"ProviderInfo", "SourceFile", "ImageTag", "ApplyRequest",
                              "ApplyResult", "ComponentStatus", "EnvironmentRef", "Observation",
                              "DestroyResult", "LogsRequest", "LogLine", "OwnedObject",
                              "DatabaseServerRequest", "DatabaseServer",
                              "EnvironmentChange"}) {
    EXPECT_THAT(proto, HasSubstr(std::string("message ") + message + " {"));
  }
  for (const char* field : {"string namespace_name = 2;", "map<string, string> labels = 11;",
                            "string config_json = 9;", "bool follow = 4;", "bool done = 1;",
                            "bool needs_reapply = 4;"}) {
    EXPECT_THAT(proto, HasSubstr(field));
  }
}

}  // namespace
}  // namespace eph::providers
