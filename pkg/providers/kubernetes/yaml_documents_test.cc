#include "pkg/providers/kubernetes/yaml_documents.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "fmt/format.h"
#include "pkg/kube/api_errors.h"

namespace eph::providers::kubernetes {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

std::string Msg(const absl::Status& s) { return kube::MessageOf(s); }

TEST(ParseManifestDocumentsTest, TypesScalarsAsKubectlDoes) {
  absl::StatusOr<std::vector<json>> docs = ParseManifestDocuments(R"(
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  quoted_true: "true"
  quoted_number: "8080"
  block: |
    line one
spec:
  replicas: 3
  octal_mode: 0644
  hex: 0x1F
  ratio: 0.25
  enabled: yes
  disabled: Off
  empty:
  tilde: ~
  big: 18446744073709551615
  negative: -12
  version: 1.10
  word: hello
)",
                                                                  "test.yaml");
  ASSERT_TRUE(docs.ok()) << docs.status();
  ASSERT_EQ(docs->size(), 1u);
  const json& d = (*docs)[0];
  EXPECT_EQ(d["data"]["quoted_true"], "true");
  EXPECT_EQ(d["data"]["quoted_number"], "8080");
  EXPECT_EQ(d["data"]["block"], "line one\n");
  EXPECT_EQ(d["spec"]["replicas"], 3);
  EXPECT_TRUE(d["spec"]["replicas"].is_number_integer());
  EXPECT_EQ(d["spec"]["octal_mode"], 420);  // YAML 1.1, as kubectl reads defaultMode: 0644
  EXPECT_EQ(d["spec"]["hex"], 31);
  EXPECT_DOUBLE_EQ(d["spec"]["ratio"].get<double>(), 0.25);
  EXPECT_EQ(d["spec"]["enabled"], true);
  EXPECT_EQ(d["spec"]["disabled"], false);
  EXPECT_TRUE(d["spec"]["empty"].is_null());
  EXPECT_TRUE(d["spec"]["tilde"].is_null());
  EXPECT_EQ(d["spec"]["big"].get<uint64_t>(), 18446744073709551615ULL);
  EXPECT_EQ(d["spec"]["negative"], -12);
  EXPECT_DOUBLE_EQ(d["spec"]["version"].get<double>(), 1.1);
  EXPECT_EQ(d["spec"]["word"], "hello");
}

// Found by yaml_documents_fuzz: strtod reports ERANGE on underflow too, which made 5e-314 (a
// number kustomize may print) a string after a round trip. Only overflow stays a string.
TEST(ParseManifestDocumentsTest, UnderflowIsANumberAndOverflowAString) {
  absl::StatusOr<std::vector<json>> docs = ParseManifestDocuments(
      "apiVersion: v1\nkind: ConfigMap\nspec:\n  tiny: 5e-314\n  zero: 1e-400\n  huge: 1e400\n",
      "range.yaml");
  ASSERT_TRUE(docs.ok()) << docs.status();
  const json& spec = (*docs)[0]["spec"];
  ASSERT_TRUE(spec["tiny"].is_number_float()) << spec.dump();
  EXPECT_DOUBLE_EQ(spec["tiny"].get<double>(), 5e-314);
  ASSERT_TRUE(spec["zero"].is_number_float()) << spec.dump();
  EXPECT_EQ(spec["zero"].get<double>(), 0.0);
  EXPECT_EQ(spec["huge"], "1e400");
}

TEST(ParseManifestDocumentsTest, TypesFloatsLikeYaml11AndSurvivesLongScalars) {
  absl::StatusOr<std::vector<json>> docs = ParseManifestDocuments(R"(
apiVersion: v1
kind: ConfigMap
spec:
  exponent: 1.5e3
  signed: -.5
  trailing_dot: 7.
  separators: 1_000.5
  dot: .
  e_only: 1e
  sign_only: +
  two_dots: 1.2.3
  word_e: e5
)",
                                                                  "floats.yaml");
  ASSERT_TRUE(docs.ok()) << docs.status();
  const json& spec = (*docs)[0]["spec"];
  EXPECT_DOUBLE_EQ(spec["exponent"].get<double>(), 1500);
  EXPECT_DOUBLE_EQ(spec["signed"].get<double>(), -0.5);
  EXPECT_DOUBLE_EQ(spec["trailing_dot"].get<double>(), 7);
  EXPECT_DOUBLE_EQ(spec["separators"].get<double>(), 1000.5);
  EXPECT_EQ(spec["dot"], ".");
  EXPECT_EQ(spec["e_only"], "1e");
  EXPECT_EQ(spec["sign_only"], "+");
  EXPECT_EQ(spec["two_dots"], "1.2.3");
  EXPECT_EQ(spec["word_e"], "e5");

  // A plain scalar of 300,000 digits: std::regex ran out of stack on it and crashed the process.
  const std::string long_number = "1." + std::string(300'000, '0');
  docs = ParseManifestDocuments(
      "apiVersion: v1\nkind: ConfigMap\nspec:\n  long: " + long_number + "\n", "long.yaml");
  ASSERT_TRUE(docs.ok()) << docs.status();
  EXPECT_DOUBLE_EQ((*docs)[0]["spec"]["long"].get<double>(), 1.0);
}

TEST(ParseManifestDocumentsTest, SplitsDocumentsSkipsEmptyOnesAndExpandsLists) {
  absl::StatusOr<std::vector<json>> docs = ParseManifestDocuments(R"(---
# only a comment
---
apiVersion: v1
kind: Service
metadata: {name: a}
---
---
apiVersion: v1
kind: List
items:
  - {apiVersion: v1, kind: ConfigMap, metadata: {name: b}}
  - {apiVersion: v1, kind: ConfigMap, metadata: {name: c}}
)",
                                                                  "multi.yaml");
  ASSERT_TRUE(docs.ok()) << docs.status();
  ASSERT_EQ(docs->size(), 3u);
  EXPECT_EQ((*docs)[0]["metadata"]["name"], "a");
  EXPECT_EQ((*docs)[1]["metadata"]["name"], "b");
  EXPECT_EQ((*docs)[2]["metadata"]["name"], "c");
}

TEST(ParseManifestDocumentsTest, ReadsJsonToo) {
  absl::StatusOr<std::vector<json>> docs = ParseManifestDocuments(
      R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"j"},"data":{"n":"1"}})",
      "x.json");
  ASSERT_TRUE(docs.ok()) << docs.status();
  EXPECT_EQ((*docs)[0]["data"]["n"], "1");
}

TEST(ParseManifestDocumentsTest, HonoursMergeKeys) {
  absl::StatusOr<std::vector<json>> docs = ParseManifestDocuments(R"(
apiVersion: v1
kind: ConfigMap
metadata:
  name: merged
defaults: &defaults
  a: "1"
  b: "2"
data:
  <<: *defaults
  b: "own"
)",
                                                                  "merge.yaml");
  ASSERT_TRUE(docs.ok()) << docs.status();
  EXPECT_EQ((*docs)[0]["data"], (json{{"a", "1"}, {"b", "own"}}));
}

TEST(ParseManifestDocumentsTest, InvalidYamlNamesFileLineAndColumn) {
  absl::StatusOr<std::vector<json>> docs =
      ParseManifestDocuments("apiVersion: v1\nkind: [unclosed\n", "k8s/bad.yaml");
  ASSERT_EQ(docs.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Msg(docs.status()), HasSubstr("k8s/bad.yaml: line "));
  EXPECT_THAT(Msg(docs.status()), HasSubstr("invalid YAML"));
}

TEST(ParseManifestDocumentsTest, RefusesDocumentsThatAreNotObjects) {
  absl::StatusOr<std::vector<json>> docs = ParseManifestDocuments("- a\n- b\n", "list.yaml");
  ASSERT_EQ(docs.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Msg(docs.status()), HasSubstr("list.yaml: document 1 is not a Kubernetes object"));
}

TEST(ParseManifestDocumentsTest, RefusesAliasBombs) {
  std::string text = "a: &a [x, x, x, x, x, x, x, x, x, x]\n";
  std::string prev = "a";
  for (int i = 0; i < 8; ++i) {
    const std::string name = "l" + std::to_string(i);
    std::string refs;
    for (int j = 0; j < 10; ++j) {
      refs += j == 0 ? "*" : ", *";
      refs += prev;
    }
    text += fmt::format("{0}: &{0} [{1}]\n", name, refs);
    prev = name;
  }
  absl::StatusOr<std::vector<json>> docs = ParseManifestDocuments(text, "bomb.yaml", 100'000);
  ASSERT_EQ(docs.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Msg(docs.status()), HasSubstr("YAML aliases"));
}

TEST(FormatManifestDocumentsTest, RoundTrips) {
  std::vector<json> objects = {
      {{"apiVersion", "v1"}, {"kind", "ConfigMap"}, {"data", {{"k", "yes"}}}},
      {{"apiVersion", "v1"}, {"kind", "Service"}}};
  absl::StatusOr<std::vector<json>> back =
      ParseManifestDocuments(FormatManifestDocuments(objects), "round-trip");
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, objects);
}

}  // namespace
}  // namespace eph::providers::kubernetes
