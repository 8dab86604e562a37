#include "pkg/controller/render.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace eph::controller {
namespace {

config::ProjectConfig Parse(const std::string& yaml) {
  absl::StatusOr<config::ProjectConfig> c = config::LoadConfig(yaml);
  EXPECT_TRUE(c.ok()) << c.status();
  return c.ok() ? *c : config::ProjectConfig{};
}

TEST(RenderTest, KubernetesSectionWithExpandedTags) {
  const config::ProjectConfig c = Parse(
      "version: \"1.0\"\nname: my-app\nkubernetes:\n  manifests: [./k8s/base]\n"
      "  images:\n    - name: api\n      newTag: \"pr-{pr_number}-{short_sha}\"\n");
  absl::StatusOr<RenderedSpec> spec = RenderSpec(c, {"acme/shop", 42, "0123456789abcdef", "f"});
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->provider, "kubernetes");
  ASSERT_EQ(spec->images.size(), 1u);
  EXPECT_EQ(spec->images[0].tag, "pr-42-0123456");
  const nlohmann::json j = nlohmann::json::parse(spec->config_json);
  EXPECT_EQ(j["kubernetes"]["manifests"][0], "k8s/base");
  EXPECT_EQ(j["kubernetes"]["images"][0]["newTag"], "pr-42-0123456");
  EXPECT_FALSE(j["database"]["enabled"].get<bool>());
}

TEST(RenderTest, KubernetesWebAndProjectReachTheProvider) {
  const config::ProjectConfig c = Parse(
      "version: \"1.0\"\nname: my-app\nkubernetes:\n  manifests: [k8s]\n"
      "  web: {service: frontend, port: 80}\n");
  absl::StatusOr<RenderedSpec> spec = RenderSpec(c, {"acme/shop", 42, "0123456789abcdef", "f"});
  ASSERT_TRUE(spec.ok()) << spec.status();
  const nlohmann::json j = nlohmann::json::parse(spec->config_json);
  EXPECT_EQ(j["kubernetes"]["web"], (nlohmann::json{{"service", "frontend"}, {"port", 80}}));
  EXPECT_EQ(j["kubernetes"]["project"], "my-app");
}

TEST(RenderTest, DockerSection) {
  const config::ProjectConfig c =
      Parse("version: \"1.0\"\nname: my-app\ndocker:\n  compose_file: compose.yml\n");
  absl::StatusOr<RenderedSpec> spec = RenderSpec(c, {"acme/shop", 1, "abc", "main"});
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->provider, "docker");
  EXPECT_EQ(nlohmann::json::parse(spec->config_json)["docker"]["compose_file"], "compose.yml");
}

TEST(RenderTest, UnsetTemplateVariableIsInvalidArgument) {
  const config::ProjectConfig c = Parse(
      "version: \"1.0\"\nname: my-app\nkubernetes:\n  manifests: [./k8s]\n"
      "  images:\n    - name: api\n      newTag: \"pr-{pr_number}\"\n");
  absl::StatusOr<RenderedSpec> spec = RenderSpec(c, {"acme/shop", 0, "abc", ""});
  EXPECT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(spec.status().message().find("kubernetes.images[api].newTag"), std::string::npos);
}

}  // namespace
}  // namespace eph::controller
