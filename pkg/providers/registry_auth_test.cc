#include "pkg/providers/registry_auth.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/escaping.h"
#include "nlohmann/json.hpp"

namespace eph::providers {
namespace {

using ::testing::HasSubstr;

std::string Msg(const absl::Status& s) { return std::string(s.message()); }

TEST(RegistryAuthTest, AuthFieldIsBase64OfUserAndPassword) {
  const std::string auth = absl::Base64Escape("ci:s3cr:et");  // a colon in the password
  absl::StatusOr<RegistryAuth> a =
      ParseRegistryAuth(R"({"auths": {"127.0.0.1:5000": {"auth": ")" + auth + R"("}}})", "f");
  ASSERT_TRUE(a.ok()) << a.status();
  const RegistryCredential* c = a->Find("127.0.0.1:5000");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->username, "ci");
  EXPECT_EQ(c->password, "s3cr:et");
  EXPECT_EQ(a->Find("127.0.0.1:5001"), nullptr);
}

TEST(RegistryAuthTest, UsernameAndPasswordFields) {
  absl::StatusOr<RegistryAuth> a = ParseRegistryAuth(
      R"({"auths": {"ghcr.io": {"username": "bot", "password": "tok"}}, "credsStore": "x"})", "f");
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_NE(a->Find("GHCR.io"), nullptr);
  EXPECT_EQ(*a->Find("ghcr.io"), (RegistryCredential{"bot", "tok"}));
}

TEST(RegistryAuthTest, HostsAreNormalised) {
  EXPECT_EQ(NormalizeRegistryHost("https://index.docker.io/v1/"), "docker.io");
  EXPECT_EQ(NormalizeRegistryHost("registry-1.docker.io"), "docker.io");
  EXPECT_EQ(NormalizeRegistryHost("docker.io"), "docker.io");
  EXPECT_EQ(NormalizeRegistryHost("http://127.0.0.1:5000/v2/"), "127.0.0.1:5000");
  EXPECT_EQ(NormalizeRegistryHost("Registry.Example.com"), "registry.example.com");
  absl::StatusOr<RegistryAuth> a = ParseRegistryAuth(
      R"({"auths": {"https://index.docker.io/v1/": {"username": "u", "password": "p"},
                    "https://127.0.0.1:5000": {"username": "v", "password": "q"}}})",
      "f");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_NE(a->Find("docker.io"), nullptr);
  EXPECT_NE(a->Find("index.docker.io"), nullptr);
  ASSERT_NE(a->Find("127.0.0.1:5000"), nullptr);
  EXPECT_EQ(a->Find("127.0.0.1:5000")->username, "v");
}

TEST(RegistryAuthTest, RegistryHostOfImageReferences) {
  EXPECT_EQ(RegistryHostOf("nginx"), "docker.io");
  EXPECT_EQ(RegistryHostOf("nginx:1.27"), "docker.io");
  EXPECT_EQ(RegistryHostOf("library/nginx"), "docker.io");
  EXPECT_EQ(RegistryHostOf("acme/app@sha256:abc"), "docker.io");
  EXPECT_EQ(RegistryHostOf("127.0.0.1:5000/app:v1"), "127.0.0.1:5000");
  EXPECT_EQ(RegistryHostOf("localhost/app"), "localhost");
  EXPECT_EQ(RegistryHostOf("ghcr.io/acme/app:pr-7"), "ghcr.io");
}

TEST(RegistryAuthTest, EngineHeaderIsBase64UrlJson) {
  absl::StatusOr<RegistryAuth> a = ParseRegistryAuth(
      R"({"auths": {"docker.io": {"username": "u", "password": "p?>"},
                    "127.0.0.1:5000": {"username": "v", "password": "q"}}})",
      "f");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->EngineAuthHeader("ghcr.io"), "");
  for (const auto& [host, server] :
       {std::pair<std::string, std::string>{"docker.io", "https://index.docker.io/v1/"},
        {"127.0.0.1:5000", "127.0.0.1:5000"}}) {
    const std::string header = a->EngineAuthHeader(host);
    EXPECT_EQ(header.find_first_of("+/"), std::string::npos) << header;
    EXPECT_EQ(header.size() % 4, 0u) << "padded, as Go's base64.URLEncoding wants: " << header;
    std::string decoded;
    ASSERT_TRUE(absl::WebSafeBase64Unescape(header, &decoded));
    const nlohmann::json doc = nlohmann::json::parse(decoded);
    EXPECT_EQ(doc["serveraddress"], server);
    EXPECT_EQ(doc["username"], host == "docker.io" ? "u" : "v");
  }
}

TEST(RegistryAuthTest, DockerConfigJsonForKubernetes) {
  absl::StatusOr<RegistryAuth> a =
      ParseRegistryAuth(R"({"auths": {"index.docker.io": {"auth": ")" + absl::Base64Escape("u:p") +
                            R"("}, "127.0.0.1:5000": {"username": "v", "password": "q"}}})",
                        "f");
  ASSERT_TRUE(a.ok()) << a.status();
  const nlohmann::json doc = nlohmann::json::parse(a->DockerConfigJson());
  EXPECT_EQ(doc["auths"]["https://index.docker.io/v1/"]["auth"], absl::Base64Escape("u:p"));
  EXPECT_EQ(doc["auths"]["127.0.0.1:5000"]["username"], "v");
  EXPECT_EQ(doc["auths"]["127.0.0.1:5000"]["password"], "q");
  EXPECT_EQ(doc["auths"]["127.0.0.1:5000"]["auth"], absl::Base64Escape("v:q"));
  // Round trip: what Eph writes, Eph (and so Docker's format) reads back.
  absl::StatusOr<RegistryAuth> back = ParseRegistryAuth(a->DockerConfigJson(), "secret");
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->by_host(), a->by_host());
}

TEST(RegistryAuthTest, MalformedFilesSayWhatIsWrong) {
  struct Case {
    std::string text;
    std::string message;
  };
  for (const Case& c : std::vector<Case>{
           {"{", "/etc/eph/auth.json: not valid JSON"},
           {"[]", "expected a JSON object"},
           {R"({"credsStore": "desktop"})", "no \"auths\" object"},
           {R"({"auths": {"r.io": "x"}})", "\"r.io\": expected an object"},
           {R"({"auths": {"r.io": {"auth": "!!!"}}})", "\"r.io\": \"auth\" is not base64"},
           {R"({"auths": {"r.io": {"auth": "dXNlcg=="}}})", "not base64 of \"username:password\""},
           {R"({"auths": {"r.io": {"username": "u"}}})", "needs \"auth\""},
           {R"({"auths": {"r.io": {"username": 1, "password": "p"}}})",
            "\"username\" is not a string"},
           {R"({"auths": {"r.io": {"identitytoken": "t"}}})", "identity tokens are not supported"},
           {R"({"auths": {"docker.io": {"username": "a", "password": "b"},
                          "https://index.docker.io/v1/": {"username": "c", "password": "d"}}})",
            "a second, different entry for registry docker.io"},
       }) {
    absl::StatusOr<RegistryAuth> a = ParseRegistryAuth(c.text, "/etc/eph/auth.json");
    ASSERT_FALSE(a.ok()) << c.text;
    EXPECT_EQ(a.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(Msg(a.status()), HasSubstr(c.message)) << c.text;
    EXPECT_THAT(Msg(a.status()), HasSubstr("registry credentials /etc/eph/auth.json: "));
  }
  absl::StatusOr<RegistryAuth> missing = LoadRegistryAuthFile("/nonexistent/eph-auth.json");
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(Msg(missing.status()), HasSubstr("/nonexistent/eph-auth.json: cannot read the file"));
}

}  // namespace
}  // namespace eph::providers
