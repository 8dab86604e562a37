// DockerProvider without an engine: settings, the eph.yaml section, and the errors that come
// before any Engine API call (a socket that is not there is Unavailable, i.e. retried).
#include "pkg/providers/docker/docker_provider.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "test/support/testbed.h"

namespace eph::providers::docker {
namespace {

using ::testing::HasSubstr;

TEST(DockerSettingsTest, DefaultsAndValues) {
  absl::StatusOr<DockerProviderOptions> d = ParseDockerSettings({});
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->engine.socket_path, "/var/run/docker.sock");
  EXPECT_FALSE(d->fixed_host_ports);
  absl::StatusOr<DockerProviderOptions> o =
      ParseDockerSettings({{{"docker_host", "unix:///tmp/d.sock"},
                            {"request_timeout", "90s"},
                            {"connect_timeout", "2s"},
                            {"health_timeout", "1m"},
                            {"log_tail_lines", "50"},
                            {"fixed_host_ports", "true"},
                            {"base_domain", "preview.localhost"}}});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->engine.socket_path, "/tmp/d.sock");
  EXPECT_EQ(o->engine.request_timeout, std::chrono::seconds(90));
  EXPECT_EQ(o->engine.connect_timeout, std::chrono::seconds(2));
  EXPECT_EQ(o->health_timeout, absl::Minutes(1));
  EXPECT_EQ(o->log_tail_lines, 50);
  EXPECT_TRUE(o->fixed_host_ports);
}

TEST(DockerSettingsTest, RejectsBadSettingsNamingThem) {
  for (const auto& [key, value, expected] :
       std::vector<std::tuple<std::string, std::string, std::string>>{
           {"docker_host", "tcp://1.2.3.4:2375", "docker_host"},
           {"docker_host", "unix://relative.sock", "docker_host"},
           {"request_timeout", "soon", "request_timeout"},
           {"health_timeout", "0s", "health_timeout"},
           {"log_tail_lines", "-3", "log_tail_lines"},
           {"fixed_host_ports", "maybe", "fixed_host_ports"},
           {"dockerhost", "unix:///x", "unknown Docker provider setting `dockerhost`"}}) {
    absl::StatusOr<DockerProviderOptions> o = ParseDockerSettings({{{key, value}}});
    ASSERT_FALSE(o.ok()) << key << "=" << value;
    EXPECT_EQ(o.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(o.status().message(), HasSubstr(expected));
  }
}

TEST(DockerSettingsTest, RegistersAFactoryThatValidates) {
  ProviderRegistry registry;
  ASSERT_TRUE(RegisterDockerProvider(registry).ok());
  EXPECT_EQ(RegisterDockerProvider(registry).code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(registry.Enable("docker", {{{"docker_host", "http://x"}}}).code(),
            absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(registry.Enable("docker", {{{"docker_host", "unix:///nonexistent.sock"}}}).ok());
  ASSERT_NE(registry.Find("docker"), nullptr);
  EXPECT_EQ(registry.Find("docker")->Info().name, "docker");
}

TEST(DockerSectionTest, ReadsWhatPkgControllerWrites) {
  absl::StatusOr<DockerSection> s =
      ParseDockerSection(R"({"docker":{"compose_file":"deploy/compose.yml","images":[],)"
                         R"("web":{"service":"web","port":8080}},"database":{"enabled":false}})");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->compose_file, "deploy/compose.yml");
  EXPECT_EQ(s->web_service, "web");
  EXPECT_EQ(s->web_port, 8080);
  absl::StatusOr<DockerSection> d = ParseDockerSection(R"({"docker":{}})");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->compose_file, "docker-compose.yml");
  EXPECT_TRUE(d->web_service.empty());
  EXPECT_EQ(ParseDockerSection("[").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseDockerSection(R"({"docker":{"web":{"port":1}}})").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(EngineClientTest, ErrorsCarryTheEnginesMessageAndARetryDecision) {
  EngineResponse r;
  r.status = 404;
  r.body = R"({"message":"No such image: x:1"})";
  absl::Status s = ErrorFromResponse(r, "inspecting image x:1");
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(s.message(), "inspecting image x:1: No such image: x:1");
  r.status = 409;
  EXPECT_EQ(ErrorFromResponse(r, "x").code(), absl::StatusCode::kFailedPrecondition);
  r.status = 500;
  EXPECT_EQ(ErrorFromResponse(r, "x").code(), absl::StatusCode::kUnavailable);
  r.body = R"({"message":"Bind for 127.0.0.1:8080 failed: port is already allocated"})";
  EXPECT_EQ(ErrorFromResponse(r, "x").code(), absl::StatusCode::kFailedPrecondition);
  r.status = 502;
  r.body = "bad gateway\n";
  EXPECT_EQ(EngineMessage(r), "bad gateway");
  r.body.clear();
  EXPECT_EQ(EngineMessage(r), "HTTP 502");
}

TEST(EngineClientTest, HostsAndEncoding) {
  EXPECT_EQ(*SocketPathFromHost("unix:///run/docker.sock"), "/run/docker.sock");
  EXPECT_FALSE(SocketPathFromHost("unix://").ok());
  EXPECT_FALSE(SocketPathFromHost("tcp://127.0.0.1:2375").ok());
  EXPECT_EQ(UrlEncode(R"({"label":["a=b"]})"), "%7B%22label%22%3A%5B%22a%3Db%22%5D%7D");
  EXPECT_EQ(UrlEncode("eph-sample_1.0~x"), "eph-sample_1.0~x");
}

TEST(EngineClientTest, AnAbsentSocketIsUnavailable) {
  EngineClientOptions options;
  options.socket_path = "/nonexistent/docker.sock";
  absl::StatusOr<EngineResponse> r = EngineClient(options).Get("/_ping");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(r.status().message(),
              HasSubstr("cannot reach the Docker engine at unix:///nonexistent/docker.sock"));
}

class DockerApplyWithoutEngineTest : public ::testing::Test {
 protected:
  DockerApplyWithoutEngineTest()
      : provider_(*ParseDockerSettings({{{"docker_host", "unix:///nonexistent/docker.sock"}}})) {
    dir_ = eph::testing::MakeTempDir("docker-provider");
    request_.environment = "foo";
    request_.namespace_name = "eph-foo";
    request_.source_dir = dir_;
    request_.config_json = R"({"docker":{"compose_file":"compose.yml"}})";
  }
  void WriteCompose(const std::string& text) {
    std::ofstream(std::filesystem::path(dir_) / "compose.yml") << text;
  }
  DockerProvider provider_;
  std::string dir_;
  ApplyRequest request_;
};

TEST_F(DockerApplyWithoutEngineTest, MissingComposeFileIsTerminal) {
  absl::StatusOr<ApplyResult> r = provider_.Apply(request_);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(r.status().message(), HasSubstr("compose file `compose.yml`"));
}

TEST_F(DockerApplyWithoutEngineTest, ComposeErrorsComeBeforeTheEngine) {
  WriteCompose("services:\n  web:\n    image: x\n    privileged: true\n");
  absl::StatusOr<ApplyResult> r = provider_.Apply(request_);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr("compose.yml:4:5"));
}

TEST_F(DockerApplyWithoutEngineTest, UnknownWebServiceIsInvalid) {
  WriteCompose("services:\n  web:\n    image: x\n");
  request_.config_json = R"({"docker":{"compose_file":"compose.yml","web":{"service":"api"}}})";
  absl::StatusOr<ApplyResult> r = provider_.Apply(request_);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr("docker.web.service `api`"));
}

TEST_F(DockerApplyWithoutEngineTest, HugeComposeFileIsRefusedBeforeReading) {
  WriteCompose(std::string(size_t{3} << 20, '#'));
  absl::StatusOr<ApplyResult> r = provider_.Apply(request_);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr("compose.yml: the file is 3145728 bytes"));
}

TEST_F(DockerApplyWithoutEngineTest, ComposeFileOutsideTheRepositoryIsInvalid) {
  request_.config_json = R"({"docker":{"compose_file":"../compose.yml"}})";
  EXPECT_EQ(provider_.Apply(request_).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(DockerApplyWithoutEngineTest, AnUnreachableEngineIsRetried) {
  WriteCompose("services:\n  web:\n    image: x\n");
  absl::StatusOr<ApplyResult> r = provider_.Apply(request_);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(r.status().message(), HasSubstr("/nonexistent/docker.sock"));
  EXPECT_EQ(provider_.Observe({"foo", "eph-foo"}).status().code(), absl::StatusCode::kUnavailable);
}

TEST_F(DockerApplyWithoutEngineTest, ReadsTheComposeFileFromSourcesWithoutACheckout) {
  request_.source_dir.clear();
  request_.sources = {{"compose.yml", "services:\n  web:\n    image: x\n    bad: 1\n"}};
  absl::StatusOr<ApplyResult> r = provider_.Apply(request_);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr("compose.yml:4:5"));
}

}  // namespace
}  // namespace eph::providers::docker
