#include "pkg/kube/resource_mapper.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "pkg/kube/api_errors.h"

namespace eph::kube {
namespace {

using ::testing::HasSubstr;

std::string Msg(const absl::Status& st) { return MessageOf(st); }

// Discovery documents as a small API server would serve them; `crd_installed` adds a kind later.
class FakeDiscovery {
 public:
  absl::StatusOr<nlohmann::json> Fetch(const std::string& path) {
    fetched.push_back(path);
    if (path == "/api") return nlohmann::json{{"kind", "APIVersions"}, {"versions", {"v1"}}};
    if (path == "/apis") {
      return nlohmann::json::parse(R"({"kind":"APIGroupList","groups":[
          {"name":"apps","versions":[{"groupVersion":"apps/v1","version":"v1"}]},
          {"name":"example.com","versions":[{"groupVersion":"example.com/v1","version":"v1"}]}]})");
    }
    if (path == "/api/v1") {
      return nlohmann::json::parse(R"({"resources":[
          {"name":"configmaps","kind":"ConfigMap","namespaced":true,"verbs":["get","list"]},
          {"name":"namespaces","kind":"Namespace","namespaced":false},
          {"name":"pods/log","kind":"Pod","namespaced":true}]})");
    }
    if (path == "/apis/apps/v1") {
      return nlohmann::json::parse(R"({"resources":[
          {"name":"deployments","kind":"Deployment","namespaced":true},
          {"name":"deployments/scale","kind":"Scale","namespaced":true}]})");
    }
    if (path == "/apis/example.com/v1") {
      nlohmann::json doc = {{"resources", nlohmann::json::array()}};
      if (crd_installed) {
        doc["resources"].push_back({{"name", "widgets"}, {"kind", "Widget"}, {"namespaced", true}});
      }
      return doc;
    }
    return StatusFromApiResponse(
        404,
        R"({"kind":"Status","message":"the server could not find the requested resource","reason":"NotFound","code":404})",
        "GET " + path);
  }
  std::vector<std::string> fetched;
  bool crd_installed = false;
};

class ResourceMapperTest : public ::testing::Test {
 protected:
  ResourceMapper mapper_{[this](const std::string& p) { return discovery_.Fetch(p); }, clock_,
                         std::chrono::seconds(5)};
  FakeDiscovery discovery_;
  FakeClock clock_;
};

TEST_F(ResourceMapperTest, ResolvesCoreAndGroupKindsToPaths) {
  absl::StatusOr<ResourceInfo> cm = mapper_.Resolve("v1", "ConfigMap");
  ASSERT_TRUE(cm.ok()) << cm.status();
  EXPECT_EQ(cm->resource, "configmaps");
  EXPECT_TRUE(cm->namespaced);
  EXPECT_EQ(cm->CollectionPath("n"), "/api/v1/namespaces/n/configmaps");
  EXPECT_EQ(cm->CollectionPath(""), "/api/v1/configmaps");
  EXPECT_EQ(cm->ObjectPath("n", "c"), "/api/v1/namespaces/n/configmaps/c");
  EXPECT_EQ(cm->verbs, (std::vector<std::string>{"get", "list"}));

  absl::StatusOr<ResourceInfo> ns = mapper_.Resolve("v1", "Namespace");
  ASSERT_TRUE(ns.ok());
  EXPECT_FALSE(ns->namespaced);
  EXPECT_EQ(ns->ObjectPath("ignored", "eph-a"), "/api/v1/namespaces/eph-a");

  absl::StatusOr<ResourceInfo> deploy = mapper_.Resolve("apps/v1", "Deployment");
  ASSERT_TRUE(deploy.ok());
  EXPECT_EQ(deploy->ObjectPath("n", "web"), "/apis/apps/v1/namespaces/n/deployments/web");
  // Subresources are not kinds of their own.
  EXPECT_FALSE(mapper_.Resolve("apps/v1", "Scale").ok());
}

TEST_F(ResourceMapperTest, DiscoveryIsCachedPerGroupVersion) {
  ASSERT_TRUE(mapper_.Resolve("v1", "ConfigMap").ok());
  ASSERT_TRUE(mapper_.Resolve("v1", "Namespace").ok());
  ASSERT_TRUE(mapper_.Resolve("v1", "ConfigMap").ok());
  EXPECT_EQ(discovery_.fetched, (std::vector<std::string>{"/api/v1"}));
  mapper_.Invalidate();
  ASSERT_TRUE(mapper_.Resolve("v1", "ConfigMap").ok());
  EXPECT_EQ(discovery_.fetched.size(), 2u);
}

TEST_F(ResourceMapperTest, UnknownKindIsAClearErrorAndANewCrdIsFoundAfterTheRefreshInterval) {
  absl::Status st = mapper_.Resolve("apps/v1", "Foo").status();
  EXPECT_TRUE(absl::IsNotFound(st)) << st;
  EXPECT_THAT(Msg(st), HasSubstr("no kind Foo in apps/v1"));

  EXPECT_FALSE(mapper_.Resolve("example.com/v1", "Widget").ok());
  discovery_.crd_installed = true;
  const size_t fetches = discovery_.fetched.size();
  // Within the refresh interval the cached answer stands (no request storm)...
  EXPECT_FALSE(mapper_.Resolve("example.com/v1", "Widget").ok());
  EXPECT_EQ(discovery_.fetched.size(), fetches);
  // ...after it, a miss looks again.
  clock_.Advance(std::chrono::seconds(6));
  absl::StatusOr<ResourceInfo> widget = mapper_.Resolve("example.com/v1", "Widget");
  ASSERT_TRUE(widget.ok()) << widget.status();
  EXPECT_EQ(widget->CollectionPath("n"), "/apis/example.com/v1/namespaces/n/widgets");
}

TEST_F(ResourceMapperTest, UnknownGroupsAndVersionsSayWhatTheServerHas) {
  absl::Status st = mapper_.Resolve("apps/v2", "Deployment").status();
  EXPECT_TRUE(absl::IsNotFound(st)) << st;
  EXPECT_THAT(Msg(st), HasSubstr("no version v2 of API group apps (the server has: v1)"));
  st = mapper_.Resolve("nope.io/v1", "Thing").status();
  EXPECT_THAT(Msg(st), HasSubstr("no API group nope.io"));
  st = mapper_.Resolve("v2", "Pod").status();
  EXPECT_THAT(Msg(st), HasSubstr("no API version v2 in the core group (the server has: v1)"));
}

TEST_F(ResourceMapperTest, MalformedApiVersionsAndKindsAreInvalid) {
  for (const auto& [api_version, kind] :
       std::vector<std::pair<std::string, std::string>>{{"", "Pod"},
                                                        {"apps/", "Deployment"},
                                                        {"../v1", "X"},
                                                        {"v1", "Con/figMap"},
                                                        {"v1", ""},
                                                        {"a/b/c", "X"}}) {
    const absl::Status st = mapper_.Resolve(api_version, kind).status();
    EXPECT_TRUE(absl::IsInvalidArgument(st)) << api_version << " " << kind << ": " << st;
  }
  EXPECT_TRUE(discovery_.fetched.empty());
}

TEST(ValidatePathSegmentTest, RefusesWhatCouldEscapeThePath) {
  EXPECT_TRUE(ValidatePathSegment("web-0", "name").ok());
  EXPECT_TRUE(ValidatePathSegment("a.b.c", "name").ok());
  for (const std::string bad : {"", ".", "..", "a/b", "a%2Fb", "a?b", "a b", "a#b"}) {
    EXPECT_TRUE(absl::IsInvalidArgument(ValidatePathSegment(bad, "name"))) << bad;
  }
}

TEST(ApiErrorsTest, NonStatusBodiesAreQuoted) {
  const absl::Status st = StatusFromApiResponse(502, "<html>bad gateway</html>", "GET /x");
  EXPECT_TRUE(absl::IsUnavailable(st));
  EXPECT_EQ(Msg(st), "GET /x: HTTP 502: <html>bad gateway</html>");
  EXPECT_EQ(ApiHttpStatus(st), 502);
  EXPECT_EQ(ApiHttpStatus(absl::UnavailableError("no http")), 0);
}

TEST(ApiErrorsTest, WatchErrorEventStatusWith410IsGone) {
  const absl::Status st = StatusFromApiStatus(
      nlohmann::json::parse(
          R"({"kind":"Status","code":410,"reason":"Expired","message":"too old"})"),
      "WATCH /api/v1/pods");
  EXPECT_TRUE(IsGone(st));
  EXPECT_EQ(ApiReason(st), "Expired");
  EXPECT_FALSE(IsGone(StatusFromApiStatus(nlohmann::json::parse(R"({"code":500})"), "w")));
}

}  // namespace
}  // namespace eph::kube
