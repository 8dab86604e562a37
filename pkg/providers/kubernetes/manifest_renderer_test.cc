// ManifestRenderer with the real, pinned kustomize and helm (tools/k8s/build; found on PATH or in
// the build cache). No cluster is involved.
#include "pkg/providers/kubernetes/manifest_renderer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>

#include "pkg/kube/api_errors.h"
#include "test/support/testbed.h"

namespace eph::providers::kubernetes {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using nlohmann::json;
using ::testing::HasSubstr;

std::string Msg(const absl::Status& s) { return kube::MessageOf(s); }

void Write(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
}

std::string AppFixture() { return eph::testing::SourceDir() + "/test/kubernetes/app"; }

std::map<std::string, std::string> ImagesByName(const std::vector<json>& objects) {
  std::map<std::string, std::string> out;
  for (const json& o : objects) {
    if (o["kind"] != "Deployment") continue;
    out[o["metadata"]["name"]] =
        o["spec"]["template"]["spec"]["containers"][0]["image"].get<std::string>();
  }
  return out;
}

class ManifestRendererTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // The tools must be there: a test that cannot find them fails rather than skips.
    ASSERT_FALSE(FindTool("kustomize").empty()) << "kustomize not found; run tools/k8s/build";
    ASSERT_FALSE(FindTool("helm").empty()) << "helm not found; run tools/k8s/build";
  }
  ManifestRenderer renderer_{RendererOptions{}};
};

TEST_F(ManifestRendererTest, RendersTheKustomizeOverlayOfTheMultiServiceApp) {
  RenderRequest request{.source_dir = AppFixture(), .manifests = {"overlays/preview"}};
  absl::StatusOr<std::vector<json>> objects = renderer_.Render(request);
  ASSERT_TRUE(objects.ok()) << objects.status();
  std::map<std::string, int> kinds;
  for (const json& o : *objects) ++kinds[o["kind"].get<std::string>()];
  EXPECT_EQ(kinds["Deployment"], 12);
  EXPECT_EQ(kinds["Service"], 12);
  EXPECT_EQ(kinds["Ingress"], 1);
  EXPECT_EQ(kinds["ConfigMap"], 2);
  // The overlay did its work: one replica, its labels, its patch.
  for (const json& o : *objects) {
    EXPECT_EQ(o["metadata"]["labels"]["shop.acme.dev/stage"], "preview") << o.dump();
    if (o["kind"] == "Deployment") {
      EXPECT_EQ(o["spec"]["replicas"], 1) << o.dump();
    }
  }
  EXPECT_EQ(ImagesByName(*objects)["api"], "ghcr.io/acme/shop-api:1.4.0");
}

TEST_F(ManifestRendererTest, AppliesImageTagsAsKustomizeImageOverrides) {
  RenderRequest request{.source_dir = AppFixture(),
                        .manifests = {"overlays/preview"},
                        .images = {{"ghcr.io/acme/shop-api", "pr-42"},
                                   {"ghcr.io/acme/shop-cart", "pr-42"},
                                   {"ghcr.io/acme/not-used", "pr-42"}}};
  absl::StatusOr<std::vector<json>> objects = renderer_.Render(request);
  ASSERT_TRUE(objects.ok()) << objects.status();
  std::map<std::string, std::string> images = ImagesByName(*objects);
  EXPECT_EQ(images["api"], "ghcr.io/acme/shop-api:pr-42");
  EXPECT_EQ(images["cart"], "ghcr.io/acme/shop-cart:pr-42");
  EXPECT_EQ(images["search"], "ghcr.io/acme/shop-search:1.4.0");
  EXPECT_EQ(objects->size(), 27u);
}

TEST_F(ManifestRendererTest, ReadsPlainFilesAndDirectories) {
  const std::string dir = eph::testing::MakeTempDir("render-plain");
  Write(dir + "/k8s/b.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\n");
  Write(dir + "/k8s/a.yml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n"
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a2}\n");
  Write(dir + "/k8s/README.md", "not a manifest");
  Write(dir + "/extra/one.json", R"({"apiVersion":"v1","kind":"Secret","metadata":{"name":"s"}})");
  absl::StatusOr<std::vector<json>> objects =
      renderer_.Render({.source_dir = dir, .manifests = {"k8s", "extra/one.json"}});
  ASSERT_TRUE(objects.ok()) << objects.status();
  std::vector<std::string> names;
  for (const json& o : *objects) names.push_back(o["metadata"]["name"]);
  EXPECT_THAT(names, ::testing::ElementsAre("a", "a2", "b", "s"));
}

TEST_F(ManifestRendererTest, RendersAHelmChartWithValuesAndSet) {
  RenderRequest request{.source_dir = eph::testing::SourceDir() + "/test/kubernetes",
                        .helm = {{.chart = "chart/greeter",
                                  .values = {"chart/preview-values.yaml"},
                                  .release_name = "demo",
                                  .set = {{"image.tag", "pr-7"}, {"service.port", "9090"}}}},
                        .namespace_name = "eph-demo-7"};
  absl::StatusOr<std::vector<json>> objects = renderer_.Render(request);
  ASSERT_TRUE(objects.ok()) << objects.status();
  ASSERT_EQ(objects->size(), 2u);  // the test hook is skipped
  const json* deployment = nullptr;
  for (const json& o : *objects) {
    if (o["kind"] == "Deployment") deployment = &o;
  }
  ASSERT_NE(deployment, nullptr);
  EXPECT_EQ((*deployment)["metadata"]["name"], "demo-greeter");
  EXPECT_EQ((*deployment)["spec"]["replicas"], 1);  // from the values file
  const json& container = (*deployment)["spec"]["template"]["spec"]["containers"][0];
  EXPECT_EQ(container["image"], "ghcr.io/acme/greeter:pr-7");  // --set
  EXPECT_EQ(container["ports"][0]["containerPort"], 9090);
  EXPECT_EQ(container["env"][0]["value"], "hello from a preview");
  EXPECT_EQ(container["env"][1]["value"], "eph-demo-7");  // --namespace
}

TEST_F(ManifestRendererTest, AChartListedUnderManifestsIsTemplatedToo) {
  absl::StatusOr<std::vector<json>> objects =
      renderer_.Render({.source_dir = eph::testing::SourceDir() + "/test/kubernetes",
                        .manifests = {"chart/greeter"},
                        .images = {{"ghcr.io/acme/greeter", "pr-9"}}});
  ASSERT_TRUE(objects.ok()) << objects.status();
  EXPECT_EQ(ImagesByName(*objects)["greeter-greeter"], "ghcr.io/acme/greeter:pr-9");
}

// Text a pull request wrote is parsed by kustomize, not in ephd: this 101-byte file makes
// yaml-cpp 0.7 allocate until memory runs out (found by fuzzing).
TEST_F(ManifestRendererTest, MalformedYamlIsReportedByKustomizeNotParsedInProcess) {
  const std::string dir = eph::testing::MakeTempDir("render-malformed");
  Write(dir + "/k8s/secret.yaml",
        "{\"apiVersion\":\"v1\",\"kind\":Secr\"et\",\"metadata\":NOname\":\"s\"},"
        "\"stringData\":{\"k\":\"\\u00e9\"}}\n---\n--- \n...\n");
  absl::StatusOr<std::vector<json>> r = renderer_.Render({.source_dir = dir, .manifests = {"k8s"}});
  ASSERT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << r.status();
  EXPECT_THAT(Msg(r.status()), HasSubstr("k8s/secret.yaml"));
  EXPECT_THAT(Msg(r.status()), HasSubstr("missing metadata.name"));
  RecordProperty("message", Msg(r.status()));
}

TEST_F(ManifestRendererTest, PathsMustStayInsideTheCheckout) {
  const std::string dir = eph::testing::MakeTempDir("render-escape");
  Write(dir + "/ok.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n");
  for (const std::string& bad :
       {std::string("../outside"), std::string("/etc"), std::string("k8s/../../x")}) {
    absl::StatusOr<std::vector<json>> r = renderer_.Render({.source_dir = dir, .manifests = {bad}});
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
  absl::StatusOr<std::vector<json>> missing =
      renderer_.Render({.source_dir = dir, .manifests = {"k8s/overlays/preview"}});
  ASSERT_EQ(missing.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Msg(missing.status()), HasSubstr("'k8s/overlays/preview' does not exist"));
}

TEST_F(ManifestRendererTest, RefusesSymlinksThatLeaveTheCheckout) {
  const std::string dir = eph::testing::MakeTempDir("render-symlink");
  fs::create_directories(dir + "/k8s");
  fs::create_symlink("/etc/passwd", dir + "/k8s/passwd.yaml");
  absl::StatusOr<std::vector<json>> r = renderer_.Render({.source_dir = dir, .manifests = {"k8s"}});
  ASSERT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Msg(r.status()), HasSubstr("symbolic link that leads out of the repository"));

  // Inside a kustomization (a configMapGenerator would read it).
  const std::string k = eph::testing::MakeTempDir("render-symlink-k");
  Write(k + "/app/kustomization.yaml",
        "configMapGenerator:\n- name: leak\n  files:\n  - secret.txt\n");
  fs::create_symlink("/etc/hostname", k + "/app/secret.txt");
  r = renderer_.Render({.source_dir = k, .manifests = {"app"}});
  ASSERT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Msg(r.status()), HasSubstr("leads out of the repository"));

  // A symlinked directory as a manifests path.
  const std::string d = eph::testing::MakeTempDir("render-symlink-d");
  fs::create_directory_symlink("/etc", d + "/k8s");
  r = renderer_.Render({.source_dir = d, .manifests = {"k8s"}});
  ASSERT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Msg(r.status()), HasSubstr("leads out of the repository"));
}

TEST_F(ManifestRendererTest, KustomizationsMayNotReachOutsideOrOnline) {
  const std::string dir = eph::testing::MakeTempDir("render-kust-escape");
  Write(dir + "/repo/app/kustomization.yaml", "resources:\n- ../../outside\n");
  Write(dir + "/outside/kustomization.yaml", "resources: []\n");
  absl::StatusOr<std::vector<json>> r =
      renderer_.Render({.source_dir = dir + "/repo", .manifests = {"app"}});
  ASSERT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Msg(r.status()), HasSubstr("'../../outside' leaves the repository"));

  Write(dir + "/repo/remote/kustomization.yaml",
        "resources:\n- "
        "https://github.com/kubernetes-sigs/kustomize//examples/helloWorld?ref=v5.0.0\n");
  r = renderer_.Render({.source_dir = dir + "/repo", .manifests = {"remote"}});
  ASSERT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Msg(r.status()), HasSubstr("remote resource"));

  // Checked through bases, too.
  Write(dir + "/repo/overlay/kustomization.yaml", "resources:\n- ../remote\n");
  r = renderer_.Render({.source_dir = dir + "/repo", .manifests = {"overlay"}});
  ASSERT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Msg(r.status()), HasSubstr("remote resource"));
}

TEST_F(ManifestRendererTest, AFailingKustomizeBuildReportsItsError) {
  const std::string dir = eph::testing::MakeTempDir("render-kust-fail");
  Write(dir + "/app/kustomization.yaml", "resources:\n- missing.yaml\n");
  absl::StatusOr<std::vector<json>> r = renderer_.Render({.source_dir = dir, .manifests = {"app"}});
  ASSERT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Msg(r.status()), HasSubstr("resources: 'app/missing.yaml' does not exist"));

  // kustomize's own error, from its stderr.
  Write(dir + "/dup/kustomization.yaml", "resources:\n- a.yaml\n- b.yaml\n");
  Write(dir + "/dup/a.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: same}\n");
  Write(dir + "/dup/b.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: same}\n");
  r = renderer_.Render({.source_dir = dir, .manifests = {"dup"}});
  ASSERT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Msg(r.status()), HasSubstr("kustomize build dup failed (exit status 1)"));
  EXPECT_THAT(Msg(r.status()), HasSubstr("already registered id"));
}

TEST_F(ManifestRendererTest, AHelmErrorIsReported) {
  const std::string dir = eph::testing::MakeTempDir("render-helm-fail");
  fs::copy(eph::testing::SourceDir() + "/test/kubernetes/chart", dir + "/chart",
           fs::copy_options::recursive);
  Write(dir + "/chart/greeter/templates/broken.yaml", "{{ .Values.nope.deeper }}\n");
  absl::StatusOr<std::vector<json>> r =
      renderer_.Render({.source_dir = dir, .helm = {{.chart = "chart/greeter"}}});
  ASSERT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Msg(r.status()), HasSubstr("helm template greeter chart/greeter failed"));
  EXPECT_THAT(Msg(r.status()), HasSubstr("nil pointer"));
}

// 50 MB of manifests: refused with a clear message, without reading it all into memory.
TEST_F(ManifestRendererTest, AFiftyMegabyteRenderIsRefused) {
  const std::string dir = eph::testing::MakeTempDir("render-huge");
  fs::create_directories(dir + "/big");
  {
    std::ofstream out(dir + "/big/configmaps.yaml", std::ios::binary);
    const std::string blob(1 << 20, 'x');
    for (int i = 0; i < 50; ++i) {
      out << "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: blob-" << i
          << "\ndata:\n  blob: " << blob << "\n";
    }
  }
  Write(dir + "/big/kustomization.yaml", "resources:\n- configmaps.yaml\n");
  const auto start = std::chrono::steady_clock::now();
  absl::StatusOr<std::vector<json>> r = renderer_.Render({.source_dir = dir, .manifests = {"big"}});
  ASSERT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << r.status();
  EXPECT_THAT(Msg(r.status()), HasSubstr("too large"));
  EXPECT_THAT(Msg(r.status()), HasSubstr("kustomize build big"));
  EXPECT_THAT(Msg(r.status()), HasSubstr("20 MiB limit"));
  RecordProperty("kustomize_refusal_ms",
                 std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                                    std::chrono::steady_clock::now() - start)
                                    .count()));

  // The same file read as plain YAML.
  r = renderer_.Render({.source_dir = dir, .manifests = {"big/configmaps.yaml"}});
  ASSERT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Msg(r.status()), HasSubstr("big/configmaps.yaml brings them over the 20 MiB limit"));
  fs::remove_all(dir);  // 50 MB; other test directories stay for inspection
}

TEST_F(ManifestRendererTest, ARenderThatTakesTooLongIsStopped) {
  const std::string dir = eph::testing::MakeTempDir("render-slow");
  Write(dir + "/app/kustomization.yaml", "resources: []\n");
  // A stand-in kustomize that hangs.
  const std::string tool = dir + "/slow-kustomize";
  Write(tool, "#!/bin/sh\nsleep 30\n");
  ::chmod(tool.c_str(), 0755);
  ManifestRenderer slow({.kustomize_path = tool, .timeout = 500ms});
  const auto start = std::chrono::steady_clock::now();
  absl::StatusOr<std::vector<json>> r = slow.Render({.source_dir = dir, .manifests = {"app"}});
  ASSERT_EQ(r.status().code(), absl::StatusCode::kDeadlineExceeded) << r.status();
  EXPECT_THAT(Msg(r.status()), HasSubstr("rendering took longer than"));
  EXPECT_LT(std::chrono::steady_clock::now() - start, 10s);
}

TEST_F(ManifestRendererTest, AMissingToolIsAnOperatorProblem) {
  ManifestRenderer broken({.kustomize_path = "/nonexistent/kustomize"});
  absl::StatusOr<std::vector<json>> r =
      broken.Render({.source_dir = AppFixture(), .manifests = {"overlays/preview"}});
  ASSERT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(Msg(r.status()), HasSubstr("kustomize_path"));
}

TEST(ParseKubernetesSectionTest, ReadsWhatTheReconcilerSends) {
  absl::StatusOr<RenderRequest> r = ParseKubernetesSection(R"({
    "kubernetes": {"manifests": ["k8s/overlays/preview"],
                   "images": [{"name": "api", "newTag": "pr-1"}],
                   "helm": [{"chart": "charts/redis", "values": ["charts/redis/preview.yaml"],
                             "release_name": "cache", "set": {"auth.enabled": "false"}}]},
    "database": {"enabled": false, "instances": []}})");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->manifests, std::vector<std::string>{"k8s/overlays/preview"});
  ASSERT_EQ(r->helm.size(), 1u);
  EXPECT_EQ(r->helm[0].release_name, "cache");
  EXPECT_EQ(r->helm[0].set.at("auth.enabled"), "false");
  EXPECT_EQ(ParseKubernetesSection("not json").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseKubernetesSection(R"({"kubernetes": {"helm": [{}]}})").status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace eph::providers::kubernetes
