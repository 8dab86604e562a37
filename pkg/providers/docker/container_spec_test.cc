#include "pkg/providers/docker/container_spec.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace eph::providers::docker {
namespace {

using nlohmann::json;

TEST(DockerImageTest, NamesAndOverrides) {
  EXPECT_EQ(ImageName("eph-sample:v1"), "eph-sample");
  EXPECT_EQ(ImageName("registry:5000/team/app"), "registry:5000/team/app");
  EXPECT_EQ(ImageName("registry:5000/team/app:1.2"), "registry:5000/team/app");
  EXPECT_EQ(ImageName("app@sha256:abcd"), "app");
  const std::vector<ImageTag> tags = {{"eph-sample", "v2"}, {"registry:5000/team/app", "pr-7"}};
  EXPECT_EQ(ResolveImage("eph-sample:v1", tags), "eph-sample:v2");
  EXPECT_EQ(ResolveImage("eph-sample", tags), "eph-sample:v2");
  EXPECT_EQ(ResolveImage("registry:5000/team/app@sha256:ab", tags), "registry:5000/team/app:pr-7");
  EXPECT_EQ(ResolveImage("other:v1", tags), "other:v1");
}

class DockerCreateBodyTest : public ::testing::Test {
 protected:
  DockerCreateBodyTest() {
    service_.name = "web";
    service_.image = "eph-sample:v1";
    service_.command = std::vector<std::string>{"/sample_server"};
    service_.environment = {"PAGE=hi"};
    service_.ports = {PortMapping{8080, "tcp", 18080}};
    service_.volumes = {VolumeMount{"data", "/data", false}};
    HealthCheck h;
    h.test = {"CMD", "/sample_server", "probe", "8080"};
    h.interval = absl::Seconds(2);
    h.retries = 3;
    service_.healthcheck = h;
    plan_.service = &service_;
    plan_.image = "eph-sample:v1";
    plan_.image_id = "sha256:1111";
    plan_.project = "eph-foo";
    plan_.labels = {{kManagedByLabel, kManagedByValue}, {kEnvironmentLabel, "foo"}};
  }
  ComposeService service_;
  ServicePlan plan_;
};

TEST_F(DockerCreateBodyTest, PublishesOnLoopbackWithEphemeralPortsAndLabelsEverything) {
  const json body = ContainerCreateBody(plan_);
  EXPECT_EQ(body["Image"], "eph-sample:v1");
  EXPECT_EQ(body["Labels"][kEnvironmentLabel], "foo");
  EXPECT_EQ(body["Labels"][kManagedByLabel], "eph");
  EXPECT_EQ(body["Labels"][kProjectLabel], "eph-foo");
  EXPECT_EQ(body["Labels"][kServiceLabel], "web");
  EXPECT_FALSE(body["Labels"].contains(kWebPortLabel));
  EXPECT_EQ(body["HostConfig"]["PortBindings"]["8080/tcp"],
            json::parse(R"([{"HostIp":"127.0.0.1","HostPort":""}])"));
  EXPECT_EQ(body["HostConfig"]["NetworkMode"], "eph-foo_default");
  EXPECT_EQ(body["HostConfig"]["Mounts"][0]["Source"], "eph-foo_data");
  EXPECT_EQ(body["NetworkingConfig"]["EndpointsConfig"]["eph-foo_default"]["Aliases"][0], "web");
  EXPECT_EQ(body["Healthcheck"]["Interval"], 2'000'000'000);
  EXPECT_EQ(body["Healthcheck"]["Retries"], 3);
  EXPECT_FALSE(body["Healthcheck"].contains("Timeout"));

  plan_.fixed_host_ports = true;
  EXPECT_EQ(ContainerCreateBody(plan_)["HostConfig"]["PortBindings"]["8080/tcp"][0]["HostPort"],
            "18080");
}

TEST_F(DockerCreateBodyTest, EphsSecretSettingsJoinTheEnvironmentAndWinOverTheFile) {
  service_.environment = {"PAGE=hi", "DATABASE_URL=postgres://compose-db/app"};
  plan_.secret_env = {{"DATABASE_URL", "postgres://env:pw@127.0.0.1:5432/env"}, {"PGUSER", "env"}};
  const json body = ContainerCreateBody(plan_);
  EXPECT_EQ(body["Env"], json::array({"PAGE=hi", "DATABASE_URL=postgres://env:pw@127.0.0.1:5432/env",
                                      "PGUSER=env"}));
  const std::string with = ConfigHash(body, plan_.image_id);
  plan_.secret_env["PGUSER"] = "other";
  EXPECT_NE(ConfigHash(ContainerCreateBody(plan_), plan_.image_id), with)
      << "new settings must replace the container";
}

TEST_F(DockerCreateBodyTest, StartIntervalGoesToTheEngineAndToALabelForOlderEngines) {
  EXPECT_FALSE(ContainerCreateBody(plan_)["Healthcheck"].contains("StartInterval"));
  EXPECT_FALSE(ContainerCreateBody(plan_)["Labels"].contains(kStartIntervalLabel));
  const std::string before = ConfigHash(ContainerCreateBody(plan_), plan_.image_id);
  service_.healthcheck->start_period = absl::Seconds(10);
  service_.healthcheck->start_interval = absl::Milliseconds(100);
  const json body = ContainerCreateBody(plan_);
  EXPECT_EQ(body["Healthcheck"]["StartInterval"], 100'000'000);
  EXPECT_EQ(body["Healthcheck"]["StartPeriod"], 10'000'000'000);
  EXPECT_EQ(body["Labels"][kStartIntervalLabel], "100000000");
  EXPECT_NE(ConfigHash(body, plan_.image_id), before) << "a new start_interval must replace";
}

TEST_F(DockerCreateBodyTest, TheWebPortIsPublishedEvenWhenUnlisted) {
  plan_.web_port = 3000;
  const json body = ContainerCreateBody(plan_);
  EXPECT_EQ(body["Labels"][kWebPortLabel], "3000");
  EXPECT_EQ(body["HostConfig"]["PortBindings"]["3000/tcp"][0]["HostIp"], "127.0.0.1");
  EXPECT_TRUE(body["ExposedPorts"].contains("3000/tcp"));
}

TEST_F(DockerCreateBodyTest, ConfigHashChangesWithTheImageAndTheConfigOnly) {
  const std::string h = ConfigHash(ContainerCreateBody(plan_), plan_.image_id);
  EXPECT_EQ(h.size(), 64u);
  EXPECT_EQ(h, ConfigHash(ContainerCreateBody(plan_), plan_.image_id)) << "not deterministic";
  EXPECT_NE(h, ConfigHash(ContainerCreateBody(plan_), "sha256:2222")) << "rebuilt image";
  plan_.image = "eph-sample:v2";
  EXPECT_NE(h, ConfigHash(ContainerCreateBody(plan_), plan_.image_id)) << "new tag";
  plan_.image = "eph-sample:v1";
  service_.environment = {"PAGE=other"};
  EXPECT_NE(h, ConfigHash(ContainerCreateBody(plan_), plan_.image_id)) << "environment";
  service_.environment = {"PAGE=hi"};
  EXPECT_EQ(h, ConfigHash(ContainerCreateBody(plan_), plan_.image_id));
}

}  // namespace
}  // namespace eph::providers::docker
