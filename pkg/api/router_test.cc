#include "pkg/api/router.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace eph::api {
namespace {

server::HttpRequest Req(const std::string& method, const std::string& path) {
  server::HttpRequest r;
  r.method = method;
  r.path = path;
  return r;
}

TEST(RouterTest, CapturesParamsAndRejectsWrongMethods) {
  Router router;
  std::string seen;
  router.Add("GET", "/api/v1/environments/{name}",
             [&](const server::HttpRequest&, server::HttpResponse& res, const PathParams& p) {
               seen = p.at("name");
               res.SetJson(200, "{}");
             });
  server::HttpResponse res;
  EXPECT_TRUE(router.Dispatch(Req("GET", "/api/v1/environments/shop-x-1"), res));
  EXPECT_EQ(seen, "shop-x-1");

  server::HttpResponse wrong_method;
  router.Dispatch(Req("PUT", "/api/v1/environments/a"), wrong_method);
  EXPECT_EQ(wrong_method.status, 405);
  EXPECT_EQ(wrong_method.headers["Allow"], "GET");

  server::HttpResponse missing;
  EXPECT_FALSE(router.Dispatch(Req("GET", "/api/v1/nothing"), missing));
  EXPECT_EQ(missing.status, 404);
  EXPECT_THAT(missing.body, ::testing::HasSubstr(R"("code":"not_found")"));
}

}  // namespace
}  // namespace eph::api
