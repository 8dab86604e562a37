#include "pkg/dashboard/dashboard.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "pkg/base/sha256.h"
#include "test/support/testbed.h"

namespace eph::dashboard {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

constexpr std::string_view kIndexHtml =
    "<!doctype html><html><head><script type=\"module\" src=\"./assets/index-DI6U2NaO.js\">"
    "</script></head><body><div id=\"root\"></div></body></html>";
constexpr std::string_view kScript = "console.log('eph')";

const unsigned char* Bytes(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

// A small stand-in for the generated table: the names and shapes Vite produces.
const EmbeddedFile kFiles[] = {
    {"index.html", "\"index-tag\"", Bytes(kIndexHtml), kIndexHtml.size()},
    {"assets/index-DI6U2NaO.js", "\"js-tag\"", Bytes(kScript), kScript.size()},
    {"assets/index-qkpH-uxh.css", "\"css-tag\"", Bytes("body{}"), 6},
    {"assets/index-DI6U2NaO.js.map", "\"map-tag\"", Bytes("{}"), 2},
    {"assets/logo.svg", "\"logo-tag\"", Bytes("<svg/>"), 6},
    {"favicon.svg", "\"fav-tag\"", Bytes("<svg/>"), 6},
    {"robots.txt", "\"txt-tag\"", Bytes(""), 0},
};

// What a browser sends when it navigates.
constexpr char kBrowserAccept[] = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

server::HttpResponse Get(const DashboardFiles* files, const std::string& path,
                         server::Headers headers = {}, const std::string& method = "GET") {
  server::HttpRequest req;
  req.method = method;
  req.path = path;
  req.target = path;
  headers.emplace("Accept", kBrowserAccept);
  req.headers = std::move(headers);
  server::HttpResponse res;
  ServeDashboard(files, req, res);
  return res;
}

class DashboardTest : public ::testing::Test {
 protected:
  EmbeddedDashboard files_{kFiles, ""};
};

TEST_F(DashboardTest, ServesEachFileWithItsContentType) {
  auto index = Get(&files_, "/");
  EXPECT_EQ(index.status, 200);
  EXPECT_EQ(index.body, kIndexHtml);
  EXPECT_EQ(index.headers["Content-Type"], "text/html; charset=utf-8");
  auto js = Get(&files_, "/assets/index-DI6U2NaO.js");
  EXPECT_EQ(js.status, 200);
  EXPECT_EQ(js.body, kScript);
  EXPECT_EQ(js.headers["Content-Type"], "text/javascript; charset=utf-8");
  EXPECT_EQ(Get(&files_, "/assets/index-qkpH-uxh.css").headers["Content-Type"],
            "text/css; charset=utf-8");
  EXPECT_EQ(Get(&files_, "/favicon.svg").headers["Content-Type"], "image/svg+xml");
  auto empty = Get(&files_, "/robots.txt");
  EXPECT_EQ(empty.status, 200);
  EXPECT_EQ(empty.body, "");
  EXPECT_EQ(empty.headers["Content-Type"], "text/plain; charset=utf-8");
  EXPECT_EQ(index.headers["X-Content-Type-Options"], "nosniff");
  EXPECT_THAT(index.headers["Content-Security-Policy"], HasSubstr("frame-ancestors 'none'"));
  EXPECT_EQ(index.headers["X-Frame-Options"], "DENY");
}

TEST(ContentTypeTest, CoversWhatAViteBuildHolds) {
  const std::pair<const char*, const char*> kCases[] = {
      {"index.html", "text/html; charset=utf-8"},
      {"assets/a-1.js", "text/javascript; charset=utf-8"},
      {"assets/a.mjs", "text/javascript; charset=utf-8"},
      {"assets/a.css", "text/css; charset=utf-8"},
      {"a.svg", "image/svg+xml"},
      {"a.png", "image/png"},
      {"favicon.ico", "image/x-icon"},
      {"a.json", "application/json"},
      {"assets/a.woff2", "font/woff2"},
      {"assets/a.js.map", "application/json"},
      {"robots.txt", "text/plain; charset=utf-8"},
      {"site.webmanifest", "application/manifest+json"},
      {"a.wasm", "application/octet-stream"},
      {"assets.d/noext", "application/octet-stream"},
  };
  for (const auto& [path, type] : kCases) EXPECT_EQ(ContentTypeFor(path), type) << path;
}

TEST_F(DashboardTest, HashedAssetsAreImmutableAndEverythingElseRevalidates) {
  const std::string kImmutable = "public, max-age=31536000, immutable";
  EXPECT_EQ(Get(&files_, "/assets/index-DI6U2NaO.js").headers["Cache-Control"], kImmutable);
  // base64url hashes may hold '-' themselves.
  EXPECT_EQ(Get(&files_, "/assets/index-qkpH-uxh.css").headers["Cache-Control"], kImmutable);
  EXPECT_EQ(Get(&files_, "/assets/index-DI6U2NaO.js.map").headers["Cache-Control"], kImmutable);
  EXPECT_EQ(Get(&files_, "/").headers["Cache-Control"], "no-cache");
  EXPECT_EQ(Get(&files_, "/index.html").headers["Cache-Control"], "no-cache");
  EXPECT_EQ(Get(&files_, "/favicon.svg").headers["Cache-Control"], "no-cache");
  // Under assets/ but not named after its content: it may change under the same name.
  EXPECT_EQ(Get(&files_, "/assets/logo.svg").headers["Cache-Control"], "no-cache");
}

TEST(HashedAssetTest, OnlyViteHashedNamesUnderAssets) {
  EXPECT_TRUE(IsHashedAsset("assets/index-DI6U2NaO.js"));
  EXPECT_TRUE(IsHashedAsset("assets/index-a_b-9xyz.css"));
  EXPECT_TRUE(IsHashedAsset("assets/react-dom-Bq3x0_9Z.js"));
  EXPECT_FALSE(IsHashedAsset("index-DI6U2NaO.js"));           // not under assets/
  EXPECT_FALSE(IsHashedAsset("assets/x/index-DI6U2NaO.js"));  // not directly under it
  EXPECT_FALSE(IsHashedAsset("assets/index.js"));
  EXPECT_FALSE(IsHashedAsset("assets/my-fallback.js"));    // a word, not a hash
  EXPECT_FALSE(IsHashedAsset("assets/index-DI6U2Na.js"));  // 7 characters
  EXPECT_FALSE(IsHashedAsset("assets/index-DI6U2N.O.js"));
  EXPECT_FALSE(IsHashedAsset("assets/-DI6U2NaO.js"));
}

TEST_F(DashboardTest, MatchingETagGets304AndAnyOtherTheFile) {
  auto first = Get(&files_, "/assets/index-DI6U2NaO.js");
  ASSERT_EQ(first.headers["ETag"], "\"js-tag\"");
  for (const char* tag : {"\"js-tag\"", "W/\"js-tag\"", "\"other\", \"js-tag\"", "*"}) {
    auto again = Get(&files_, "/assets/index-DI6U2NaO.js", {{"If-None-Match", tag}});
    EXPECT_EQ(again.status, 304) << tag;
    EXPECT_EQ(again.body, "") << tag;
    EXPECT_EQ(again.headers["ETag"], "\"js-tag\"") << tag;
    EXPECT_EQ(again.headers["Cache-Control"], "public, max-age=31536000, immutable") << tag;
  }
  for (const char* tag : {"\"index-tag\"", "\"js-tag", "js-tag", ""}) {
    auto changed = Get(&files_, "/assets/index-DI6U2NaO.js", {{"If-None-Match", tag}});
    EXPECT_EQ(changed.status, 200) << tag;
    EXPECT_EQ(changed.body, kScript) << tag;
  }
  EXPECT_EQ(Get(&files_, "/", {{"If-None-Match", "\"index-tag\""}}).status, 304);
}

TEST_F(DashboardTest, HeadAnswersLikeGet) {
  // The HTTP server drops a HEAD response's body and sends its length; the rest must match GET.
  for (const char* path : {"/", "/assets/index-DI6U2NaO.js", "/environments/foo", "/nope.js"}) {
    auto get = Get(&files_, path);
    auto head = Get(&files_, path, {}, "HEAD");
    EXPECT_EQ(head.status, get.status) << path;
    EXPECT_EQ(head.headers, get.headers) << path;
    EXPECT_EQ(head.body.size(), get.body.size()) << path;
  }
  EXPECT_EQ(Get(&files_, "/", {{"If-None-Match", "\"index-tag\""}}, "HEAD").status, 304);
}

TEST_F(DashboardTest, ClientRoutesGetIndexHtmlThatStillFindsItsAssets) {
  auto top = Get(&files_, "/environments");
  EXPECT_EQ(top.status, 200);
  EXPECT_EQ(top.body, kIndexHtml);
  EXPECT_EQ(top.headers["Cache-Control"], "no-cache");

  auto deep = Get(&files_, "/environments/foo");
  EXPECT_EQ(deep.status, 200);
  EXPECT_EQ(deep.headers["Content-Type"], "text/html; charset=utf-8");
  EXPECT_EQ(deep.headers["Cache-Control"], "no-cache");
  EXPECT_THAT(deep.body, HasSubstr("<div id=\"root\">"));
  // "./assets/..." must resolve against the root, not /environments/.
  EXPECT_THAT(deep.body, StartsWith("<!doctype html><html><head><base href=\"../\">"));
  EXPECT_NE(deep.headers["ETag"], Get(&files_, "/").headers["ETag"]);
  EXPECT_THAT(Get(&files_, "/a/b/c/").body, HasSubstr("<base href=\"../../../\">"));
  EXPECT_EQ(Get(&files_, "/environments/foo", {{"If-None-Match", deep.headers["ETag"]}}).status,
            304);
}

// `eph` with EPH_SERVER=http://host/wrong asked for /wrong/api/v1/..., got index.html with 200
// and said "not JSON" instead of "does not point at an ephd API". Only a browser's navigation
// (Accept: text/html) is a client route; the root is the page whatever is asked.
TEST_F(DashboardTest, OnlyABrowserGetsIndexHtmlForAnUnknownPath) {
  for (const char* accept : {"application/json", "*/*", ""}) {
    auto res = Get(&files_, "/wrong/api/v1/environments/x", {{"Accept", accept}});
    EXPECT_EQ(res.status, 404) << accept;
    EXPECT_EQ(res.body, "404 not found\n") << accept;
    EXPECT_EQ(Get(&files_, "/", {{"Accept", accept}}).body, kIndexHtml) << accept;
  }
  EXPECT_EQ(Get(&files_, "/wrong/api/v1/environments/x", {{"Accept", "TEXT/HTML"}}).status, 200);
}

TEST_F(DashboardTest, AMissingFileIsAPlain404) {
  for (const char* path : {"/assets/missing.js", "/favicon.ico", "/environments/foo.json",
                           "/assets/index-DI6U2NaO.js/x.js"}) {
    auto res = Get(&files_, path);
    EXPECT_EQ(res.status, 404) << path;
    EXPECT_EQ(res.body, "404 not found\n") << path;
    EXPECT_EQ(res.headers["Content-Type"], "text/plain; charset=utf-8") << path;
  }
}

TEST_F(DashboardTest, NonCanonicalPathsNameNothing) {
  for (const char* path :
       {"/../index.html", "/assets/../index.html", "/./index.html", "//index.html",
        "/assets\\index-DI6U2NaO.js", "", "index.html", "/environments/../..", "/a\nb"}) {
    auto res = Get(&files_, path);
    EXPECT_EQ(res.status, 404) << path;
    EXPECT_THAT(res.body, Not(HasSubstr("root"))) << path;
  }
}

TEST(MissingDashboardTest, TheRootAndClientRoutesSayWhyAndHow) {
  EmbeddedDashboard empty({},
                          "Node.js was not found when this ephd was built, so it has no "
                          "dashboard.");
  EXPECT_THAT(empty.Missing(), HasSubstr("Node.js was not found"));
  EXPECT_THAT(empty.Missing(), HasSubstr("npm ci"));
  EXPECT_THAT(empty.Missing(), HasSubstr("--web-dir"));
  for (const char* path : {"/", "/environments/foo", "/index.html"}) {
    auto res = Get(&empty, path);
    EXPECT_EQ(res.status, 404) << path;
    EXPECT_EQ(res.headers["Content-Type"], "text/html; charset=utf-8") << path;
    EXPECT_EQ(res.headers["Cache-Control"], "no-cache") << path;
    EXPECT_THAT(res.body, HasSubstr("Node.js was not found")) << path;
    EXPECT_THAT(res.body, HasSubstr("20.19")) << path;
    EXPECT_THAT(res.body, HasSubstr("`npm ci` in web/")) << path;
  }
  EXPECT_EQ(Get(&empty, "/assets/index-DI6U2NaO.js").body, "404 not found\n");
  // No dashboard object at all (an API server without one) says the same kind of thing.
  auto none = Get(nullptr, "/");
  EXPECT_EQ(none.status, 404);
  EXPECT_THAT(none.body, HasSubstr("npm ci"));
  // The reason is text, not markup.
  EmbeddedDashboard odd({}, "built <here> & \"there\".");
  EXPECT_THAT(Get(&odd, "/").body, HasSubstr("built &lt;here&gt; &amp; &quot;there&quot;."));
  EXPECT_EQ(EmbeddedDashboard(kFiles, "").Missing(), "");
}

TEST(DirectoryDashboardTest, ServesThroughTheSameRulesWithContentETags) {
  const std::string dir = eph::testing::MakeTempDir("dashboard");
  std::filesystem::create_directories(dir + "/web/assets");
  std::ofstream(dir + "/web/index.html") << kIndexHtml;
  std::ofstream(dir + "/web/assets/index-DI6U2NaO.js") << kScript;
  std::ofstream(dir + "/secret.txt") << "do not serve";
  std::filesystem::create_symlink(dir + "/secret.txt", dir + "/web/leak.txt");
  DirectoryDashboard files(dir + "/web");
  EXPECT_EQ(files.Missing(), "");
  auto js = Get(&files, "/assets/index-DI6U2NaO.js");
  EXPECT_EQ(js.status, 200);
  EXPECT_EQ(js.body, kScript);
  EXPECT_EQ(js.headers["Cache-Control"], "public, max-age=31536000, immutable");
  // The tag the build writes into the embedded table for the same bytes.
  EXPECT_EQ(js.headers["ETag"], "\"" + Sha256Hex(kScript).substr(0, 32) + "\"");
  EXPECT_EQ(
      Get(&files, "/assets/index-DI6U2NaO.js", {{"If-None-Match", js.headers["ETag"]}}).status,
      304);
  EXPECT_THAT(Get(&files, "/environments/foo").body, HasSubstr("<base href=\"../\">"));
  EXPECT_EQ(Get(&files, "/assets/missing.js").status, 404);
  EXPECT_EQ(Get(&files, "/leak.txt").status, 404);

  DirectoryDashboard unbuilt(dir + "/nothing");
  EXPECT_THAT(unbuilt.Missing(), HasSubstr("has no index.html"));
  auto root = Get(&unbuilt, "/");
  EXPECT_EQ(root.status, 404);
  EXPECT_THAT(root.body, HasSubstr("--web-dir"));
}

}  // namespace
}  // namespace eph::dashboard
