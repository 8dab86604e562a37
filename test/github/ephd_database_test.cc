// Per-environment databases end to end: ephd with the test bed's PostgreSQL as its database
// server, the Kubernetes and the Docker provider, driven through the GitHub stand-in. The app's
// settings are read back where the app would find them (the eph-env Secret, the container's
// environment) and used to connect as the app does.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <pqxx/pqxx>

#include <filesystem>
#include <fstream>

#include "absl/strings/escaping.h"
#include "pkg/database/database_manager.h"
#include "test/github/ephd_harness.h"
#include "test/github/standin_process.h"
#include "test/support/process.h"
#include "test/support/testbed.h"

namespace eph {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using testing::ApiGet;
using testing::EphdProcess;
using testing::kSecret;
using testing::StickyComment;
using testing::WaitFor;
using ::testing::HasSubstr;
using namespace std::chrono_literals;

constexpr char kSchema[] =
    "CREATE TABLE users (id serial PRIMARY KEY, name text NOT NULL);\n"
    "INSERT INTO users (name) VALUES ('ada'), ('grace');\n";
constexpr char kBrokenSchema[] =
    "CREATE TABLE users (id serial PRIMARY KEY, name text NOT NULL);\n"
    "\n"
    "INSERT INTO userz (name) VALUES ('ada');\n";

std::string DatabaseSection(const std::string& strategy) {
  return "database:\n"
         "  instances:\n"
         "    - name: main\n"
         "      version: \"15\"\n"
         "      template:\n"
         "        strategy: " +
         strategy +
         "\n"
         "        seed:\n"
         "          scripts: [db/schema.sql]\n";
}

int64_t CountUsers(const std::string& url) {
  pqxx::connection conn(url);
  pqxx::work tx(conn);
  return tx.exec1("SELECT count(*) FROM users")[0].as<int64_t>();
}

bool DatabaseExists(const std::string& name) {
  pqxx::connection conn(testing::TestbedValue("postgres", "EPH_TEST_POSTGRES_ADMIN_URL"));
  pqxx::work tx(conn);
  return tx.exec_params1("SELECT count(*) FROM pg_database WHERE datname = $1", name)[0]
             .as<int64_t>() > 0 ||
         tx.exec_params1("SELECT count(*) FROM pg_roles WHERE rolname = $1", name)[0]
                 .as<int64_t>() > 0;
}

std::string SecretValue(const json& secret, const std::string& key) {
  std::string out;
  absl::Base64Unescape(secret["data"].value(key, ""), &out);
  return out;
}

TEST(EphdDatabaseTest, EachEnvironmentGetsItsOwnSeededOrClonedDatabaseThroughBothProviders) {
  testing::BuildDemoImage("pr-1");
  testing::StandInProcess standin;
  ASSERT_FALSE(standin.url().empty());
  // A Kubernetes project seeding its database, a Docker project cloning it.
  standin.Request(
      "POST", "/_standin/repos",
      {{"owner", "acme"},
       {"repo", "kube"},
       {"files",
        {{"eph.yaml", "version: \"1.0\"\nname: kube\nkubernetes:\n  manifests: [k8s]\n" +
                          DatabaseSection("seed")},
         {"db/schema.sql", kSchema},
         {"k8s/app.yaml",
          "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 1\n"
          "  selector:\n    matchLabels: {app: web}\n  template:\n    metadata:\n"
          "      labels: {app: web}\n    spec:\n      containers:\n"
          "        - name: web\n          image: acme/web:1\n"}}}});
  standin.Request(
      "POST", "/_standin/repos",
      {{"owner", "acme"},
       {"repo", "compose"},
       {"files",
        {{"eph.yaml",
          "version: \"1.0\"\nname: compose\ndocker:\n  compose_file: compose.yaml\n  images:\n"
          "    - name: eph-demo/web\n      newTag: \"pr-1\"\n" +
              DatabaseSection("clone") +
              // A second database: the app finds it as ANALYTICS_DATABASE_URL.
              "    - name: analytics\n      version: \"15\"\n      template:\n"
              "        strategy: seed\n        seed:\n          scripts: [db/schema.sql]\n"},
         {"db/schema.sql", kSchema},
         {"compose.yaml",
          "services:\n  web:\n    image: eph-demo/web:dev\n    ports: [\"8080\"]\n"
          "    healthcheck:\n      test: [\"CMD\", \"/app\", \"--check\"]\n"
          "      interval: 1s\n      retries: 30\n"}}}});
  for (const char* repo : {"kube", "compose"}) {
    for (int pr : {1, 2}) {
      standin.Request("PUT", std::string("/_standin/repos/acme/") + repo + "/pulls/" +
                                 std::to_string(pr),
                      {{"labels", {"preview"}}});
    }
  }
  const std::string bin = testing::KubeBed("EPH_TEST_KUBE_BIN");
  EphdProcess ephd(
      {{"EPH_GITHUB_API_URL", standin.url()},
       {"EPH_GITHUB_TOKEN", testing::kStandInToken},
       {"EPH_KUBECONFIG", testing::KubeBed("EPH_TEST_KUBECONFIG")},
       {"EPH_KUSTOMIZE_PATH", bin + "/kustomize"},
       {"EPH_HELM_PATH", bin + "/helm"},
       {"EPH_DOCKER_HOST", testing::DockerHost()},
       {"EPH_DATABASE_ADMIN_URL", testing::TestbedValue("postgres", "EPH_TEST_POSTGRES_ADMIN_URL")},
       // A spare of the compose project's template is made after its first clone.
       {"EPH_DATABASE_CLONE_SPARES", "1"},
       {"EPH_LOG_LEVEL", "debug"}});
  ASSERT_FALSE(ephd.url.empty());
  const std::string token = testing::CreateApiToken(ephd);
  for (const char* repo : {"kube", "compose"}) {
    for (int pr : {1, 2}) {
      json sent = testing::Deliver(standin, ephd, std::string("acme/") + repo,
                          {{"event", "pull_request"}, {"action", "labeled"}, {"number", pr},
                           {"label", "preview"}});
      ASSERT_EQ(sent.value("status", 0) / 100, 2) << sent;
    }
  }
  auto ready = [&](const std::string& repo, int pr) {
    json list = ApiGet(ephd.url + "/api/v1/environments?project=" + repo, token);
    for (const json& e : list["items"]) {
      if (e.value("pr", 0) == pr && e.value("state", "") == "ready") return e;
    }
    return json();
  };
  for (const char* repo : {"acme/kube", "acme/compose"}) {
    for (int pr : {1, 2}) {
      ASSERT_TRUE(WaitFor([&] { return ready(repo, pr).is_object(); }, 180s))
          << repo << "#" << pr << "\n"
          << ApiGet(ephd.url + "/api/v1/environments?all=true", token).dump(1) << "\n"
          << ephd.process->Output();
    }
  }

  // Kubernetes: the app finds DATABASE_URL in Secret eph-env and its seeded tables behind it.
  std::vector<std::string> passwords;
  std::vector<std::string> kube_urls;
  for (int pr : {1, 2}) {
    const std::string name = ready("acme/kube", pr).value("name", "");
    auto got = testing::RunCommand({bin + "/kubectl", "--kubeconfig", testing::KubeBed("EPH_TEST_KUBECONFIG"),
                                    "get", "secret", "eph-env", "-n", "eph-" + name, "-o", "json"});
    ASSERT_EQ(got.exit_code, 0) << got.err;
    const json secret = json::parse(got.out);
    kube_urls.push_back(SecretValue(secret, "DATABASE_URL"));
    passwords.push_back(SecretValue(secret, "PGPASSWORD"));
    EXPECT_EQ(CountUsers(kube_urls.back()), 2) << name;
  }
  // Docker: the container's environment carries the clone's settings; two clones are separate.
  std::vector<std::string> docker_urls;
  std::vector<std::string> analytics_urls;
  for (int pr : {1, 2}) {
    const std::string name = ready("acme/compose", pr).value("name", "");
    auto inspected =
        testing::RunCommand({testing::Tool("docker"), "inspect", "eph-" + name + "-web-1"},
                            {{"DOCKER_HOST", testing::DockerHost()}});
    ASSERT_EQ(inspected.exit_code, 0) << inspected.err;
    std::string url;
    const json container = json::parse(inspected.out);  // named: a temporary would dangle
    for (const json& kv : container[0]["Config"]["Env"]) {
      const std::string s = kv.get<std::string>();
      if (s.rfind("DATABASE_URL=", 0) == 0) url = s.substr(13);
      if (s.rfind("PGPASSWORD=", 0) == 0) passwords.push_back(s.substr(11));
      if (s.rfind("ANALYTICS_DATABASE_URL=", 0) == 0) analytics_urls.push_back(s.substr(23));
    }
    ASSERT_FALSE(url.empty()) << inspected.out;
    docker_urls.push_back(url);
    EXPECT_EQ(CountUsers(url), 2) << name;
    ASSERT_EQ(analytics_urls.size(), docker_urls.size()) << inspected.out;
    EXPECT_NE(analytics_urls.back(), url);
    EXPECT_EQ(CountUsers(analytics_urls.back()), 2) << name << " analytics";
    // Its password, between ':' and '@'.
    const std::string& a = analytics_urls.back();
    const size_t at = a.find('@'), colon = a.find(':', a.find("//") + 2);
    passwords.push_back(a.substr(colon + 1, at - colon - 1));
  }
  {
    pqxx::connection conn(docker_urls[0]);
    pqxx::work tx(conn);
    tx.exec0("INSERT INTO users (name) VALUES ('only in the first clone')");
    tx.commit();
  }
  EXPECT_EQ(CountUsers(docker_urls[0]), 3);
  EXPECT_TRUE(WaitFor(
      [&] { return ephd.process->Output().find("database: spare eph_spr_") != std::string::npos; },
      60s))
      << "no spare clone was made\n"
      << ephd.process->Output();
  EXPECT_EQ(CountUsers(docker_urls[1]), 2) << "a clone saw another environment's write";
  EXPECT_THROW(pqxx::connection(docker_urls[0].substr(0, docker_urls[0].rfind('/')) + "/" +
                                docker_urls[1].substr(docker_urls[1].rfind('/') + 1)),
               pqxx::broken_connection)
      << "one environment's role reached another's database";

  // A push with a failing seed script: failed with the script and line, nothing of it left.
  json commit = standin.Request("POST", "/_standin/repos/acme/kube/commits",
                                {{"branch", "feature-3"}, {"files", {{"db/schema.sql", kBrokenSchema}}}});
  standin.Request("PUT", "/_standin/repos/acme/kube/pulls/3",
                  {{"labels", {"preview"}}, {"head_ref", "feature-3"}, {"head_sha", commit["sha"]}});
  testing::Deliver(standin, ephd, "acme/kube",
          {{"event", "pull_request"}, {"action", "labeled"}, {"number", 3}, {"label", "preview"}});
  ASSERT_TRUE(WaitFor(
      [&] { return StickyComment(standin, 3).find("db/schema.sql line 3") != std::string::npos; },
      120s))
      << StickyComment(standin, 3) << "\n"
      << ephd.process->Output();
  EXPECT_THAT(StickyComment(standin, 3), HasSubstr("userz"));
  json failed = ApiGet(ephd.url + "/api/v1/environments?project=acme/kube", token);
  std::string failed_name;
  for (const json& e : failed["items"]) {
    if (e.value("pr", 0) == 3) failed_name = e.value("name", "");
  }
  ASSERT_FALSE(failed_name.empty());
  EXPECT_FALSE(DatabaseExists(database::DatabaseManager::ObjectName(failed_name)))
      << "the half-made database or role of " << failed_name << " is left";

  // A server of the environment's own on Kubernetes, with ephd outside the cluster (as here):
  // the StatefulSet comes up (kwok), but ephd cannot resolve its Service name. The environment
  // fails saying so, instead of retrying the seed for ever.
  std::string own_yaml =
      "version: \"1.0\"\nname: kube\nkubernetes:\n  manifests: [k8s]\n" + DatabaseSection("seed");
  own_yaml.insert(own_yaml.find("      version:"), "      placement: environment\n");
  json own = standin.Request("POST", "/_standin/repos/acme/kube/commits",
                             {{"branch", "feature-4"}, {"files", {{"eph.yaml", own_yaml}}}});
  standin.Request("PUT", "/_standin/repos/acme/kube/pulls/4",
                  {{"labels", {"preview"}}, {"head_ref", "feature-4"}, {"head_sha", own["sha"]}});
  testing::Deliver(
      standin, ephd, "acme/kube",
      {{"event", "pull_request"}, {"action", "labeled"}, {"number", 4}, {"label", "preview"}});
  ASSERT_TRUE(WaitFor(
      [&] {
        return StickyComment(standin, 4).find("Run ephd in the cluster") != std::string::npos;
      },
      120s))
      << StickyComment(standin, 4) << "\n"
      << ephd.process->Output();
  EXPECT_THAT(StickyComment(standin, 4), HasSubstr("cannot reach it at main.eph-"));
  {
    std::string own_name;
    const json listed = ApiGet(ephd.url + "/api/v1/environments?project=acme/kube", token);
    for (const json& e : listed["items"]) {  // named: a temporary's element would dangle
      if (e.value("pr", 0) == 4) own_name = e.value("name", "");
    }
    auto got = testing::RunCommand({bin + "/kubectl", "--kubeconfig",
                                    testing::KubeBed("EPH_TEST_KUBECONFIG"), "get", "secret",
                                    "main-admin", "-n", "eph-" + own_name, "-o", "json"});
    ASSERT_EQ(got.exit_code, 0) << got.err;
    passwords.push_back(SecretValue(json::parse(got.out), "POSTGRES_PASSWORD"));  // checked below
  }

  // Closing every pull request drops every database and role.
  std::vector<std::string> dbnames;
  for (const std::string& url : kube_urls) dbnames.push_back(url.substr(url.rfind('/') + 1));
  for (const std::string& url : docker_urls) dbnames.push_back(url.substr(url.rfind('/') + 1));
  for (const std::string& url : analytics_urls) dbnames.push_back(url.substr(url.rfind('/') + 1));
  for (const char* repo : {"kube", "compose"}) {
    for (int pr : {1, 2}) {
      standin.Request("PUT", std::string("/_standin/repos/acme/") + repo + "/pulls/" +
                                 std::to_string(pr),
                      {{"state", "closed"}});
      testing::Deliver(standin, ephd, std::string("acme/") + repo,
              {{"event", "pull_request"}, {"action", "closed"}, {"number", pr}});
    }
  }
  for (const std::string& db : dbnames) {
    EXPECT_TRUE(WaitFor([&] { return !DatabaseExists(db); }, 120s)) << db << " is left";
  }

  // No password in any log line of the run or any API answer.
  const std::string api = ApiGet(ephd.url + "/api/v1/environments?all=true", token).dump();
  ASSERT_EQ(passwords.size(), 7u);
  for (const std::string& pw : passwords) {
    ASSERT_GE(pw.size(), 16u);
    EXPECT_EQ(ephd.process->Output().find(pw), std::string::npos) << "a password is in ephd's log";
    EXPECT_EQ(api.find(pw), std::string::npos) << "a password is in the API";
    const json github_state = standin.State();
    for (const json& c : github_state["comments"]) {
      EXPECT_EQ(c.value("body", "").find(pw), std::string::npos) << "a password is on GitHub";
    }
  }
  EXPECT_EQ(standin.Violations(), json::array());
}

// `placement: environment`: the environment runs a PostgreSQL server of its own (a container of
// the stand-in postgres:15 image next to the app), Eph creates the app's database on it and runs
// the seed there, and the server and its data go with the environment. No shared server at all.
TEST(EphdDatabaseTest, AnEnvironmentCanRunAPostgresServerOfItsOwn) {
  testing::BuildDemoImage("pr-4");
  auto image = testing::RunCommand(
      {testing::Tool("bash"), testing::SourceDir() + "/test/support/postgres_image/build.sh",
       "postgres:15"},
      {{"DOCKER_HOST", testing::DockerHost()}}, std::chrono::seconds(300));
  ASSERT_EQ(image.exit_code, 0) << image.err;
  testing::StandInProcess standin;
  ASSERT_FALSE(standin.url().empty());
  standin.Request(
      "POST", "/_standin/repos",
      {{"owner", "acme"},
       {"repo", "own"},
       {"files",
        {{"eph.yaml",
          "version: \"1.0\"\nname: own\ndocker:\n  compose_file: compose.yaml\n  images:\n"
          "    - name: eph-demo/web\n      newTag: \"pr-4\"\n"
          "database:\n  instances:\n    - name: pg\n      version: \"15\"\n"
          "      placement: environment\n      template:\n        strategy: seed\n"
          "        seed:\n          scripts: [db/schema.sql]\n"},
         {"db/schema.sql", kSchema},
         {"compose.yaml",
          "services:\n  web:\n    image: eph-demo/web:dev\n    ports: [\"8080\"]\n"
          "    healthcheck:\n      test: [\"CMD\", \"/app\", \"--check\"]\n"
          "      interval: 1s\n      retries: 30\n"}}}});
  standin.Request("PUT", "/_standin/repos/acme/own/pulls/4", {{"labels", {"preview"}}});
  EphdProcess ephd({{"EPH_GITHUB_API_URL", standin.url()},
                    {"EPH_GITHUB_TOKEN", testing::kStandInToken},
                    {"EPH_DOCKER_HOST", testing::DockerHost()},
                    {"EPH_LOG_LEVEL", "debug"}});
  ASSERT_FALSE(ephd.url.empty());
  const std::string token = testing::CreateApiToken(ephd);
  auto environment = [&] {
    json list = ApiGet(ephd.url + "/api/v1/environments?all=true&project=acme/own", token);
    for (const json& e : list.value("items", json::array())) {
      if (e.value("pr", 0) == 4) return e;
    }
    return json::object();
  };
  json sent = testing::Deliver(
      standin, ephd, "acme/own",
      {{"event", "pull_request"}, {"action", "labeled"}, {"number", 4}, {"label", "preview"}});
  ASSERT_EQ(sent.value("status", 0) / 100, 2) << sent;
  ASSERT_TRUE(WaitFor([&] { return environment().value("state", "") == "ready"; }, 180s))
      << environment().dump() << "\n"
      << ephd.process->Output();
  const std::string name = environment().value("name", "");

  auto inspect = [&](const std::string& container) {
    auto got = testing::RunCommand({testing::Tool("docker"), "inspect", container},
                                   {{"DOCKER_HOST", testing::DockerHost()}});
    return got.exit_code == 0 ? json::parse(got.out, nullptr, false)[0] : json::object();
  };
  auto env_of = [](const json& container, const std::string& key) {
    for (const json& kv : container["Config"]["Env"]) {
      const std::string s = kv.get<std::string>();
      if (s.rfind(key + "=", 0) == 0) return s.substr(key.size() + 1);
    }
    return std::string();
  };
  // The app reaches the server by its service name on the environment's network.
  const json web = inspect("eph-" + name + "-web-1");
  const json server = inspect("eph-" + name + "-pg-1");
  ASSERT_TRUE(web.is_object() && server.is_object());
  const std::string url = env_of(web, "DATABASE_URL");
  EXPECT_THAT(url, ::testing::MatchesRegex("postgres(ql)?://[^:]+:[^@]+@pg:5432/.+")) << url;
  EXPECT_EQ(env_of(web, "PGHOST"), "pg");
  EXPECT_EQ(server["Config"]["Image"], "postgres:15");
  EXPECT_EQ(server["Config"]["Labels"].value("eph.dev/environment", ""), name);
  // From the host, through the server's port on 127.0.0.1, as the app's role: its seeded tables.
  const std::string port = server["NetworkSettings"]["Ports"]["5432/tcp"][0].value("HostPort", "");
  ASSERT_FALSE(port.empty()) << server.dump();
  std::string host_url = url;
  host_url.replace(host_url.find("@pg:5432/"), 9, "@127.0.0.1:" + port + "/");
  EXPECT_EQ(CountUsers(host_url), 2);
  {
    pqxx::connection conn(host_url);
    pqxx::work tx(conn);
    tx.exec0("INSERT INTO users (name) VALUES ('kept across pushes')");
    tx.commit();
  }

  // A push with the same seed: the same server, the data kept, nothing re-run.
  json commit = standin.Request("POST", "/_standin/repos/acme/own/commits",
                                {{"branch", "feature-4"}, {"files", {{"README", "v2\n"}}}});
  standin.Request("PUT", "/_standin/repos/acme/own/pulls/4", {{"head_sha", commit["sha"]}});
  testing::Deliver(standin, ephd, "acme/own",
                   {{"event", "pull_request"}, {"action", "synchronize"}, {"number", 4}});
  ASSERT_TRUE(WaitFor(
      [&] {
        const json e = environment();
        return e.value("state", "") == "ready" && e.value("head_sha", "") == commit["sha"];
      },
      120s))
      << environment().dump() << "\n"
      << ephd.process->Output();
  EXPECT_EQ(inspect("eph-" + name + "-pg-1")["Id"], server["Id"]);
  EXPECT_EQ(CountUsers(host_url), 3);

  // No password in ephd's log, the API or on GitHub: the app's nor the server's.
  const std::vector<std::string> passwords = {env_of(web, "PGPASSWORD"),
                                              env_of(server, "POSTGRES_PASSWORD")};
  const std::string api = ApiGet(ephd.url + "/api/v1/environments?all=true", token).dump();
  const json github_state = standin.State();
  for (const std::string& pw : passwords) {
    ASSERT_GE(pw.size(), 16u);
    EXPECT_EQ(ephd.process->Output().find(pw), std::string::npos) << "a password is in the log";
    EXPECT_EQ(api.find(pw), std::string::npos) << "a password is in the API";
    for (const json& c : github_state["comments"]) {
      EXPECT_EQ(c.value("body", "").find(pw), std::string::npos) << "a password is on GitHub";
    }
  }

  // A pull request whose seed fails on its own server: failed with the script and the line, and
  // the half-made database is dropped from that server.
  json broken =
      standin.Request("POST", "/_standin/repos/acme/own/commits",
                      {{"branch", "feature-5"}, {"files", {{"db/schema.sql", kBrokenSchema}}}});
  standin.Request(
      "PUT", "/_standin/repos/acme/own/pulls/5",
      {{"labels", {"preview"}}, {"head_ref", "feature-5"}, {"head_sha", broken["sha"]}});
  testing::Deliver(
      standin, ephd, "acme/own",
      {{"event", "pull_request"}, {"action", "labeled"}, {"number", 5}, {"label", "preview"}});
  ASSERT_TRUE(WaitFor(
      [&] { return StickyComment(standin, 5).find("db/schema.sql line 3") != std::string::npos; },
      180s))
      << StickyComment(standin, 5) << "\n"
      << ephd.process->Output();
  EXPECT_THAT(StickyComment(standin, 5), HasSubstr("userz"));
  std::string failed_name;
  const json listed = ApiGet(ephd.url + "/api/v1/environments?project=acme/own", token);
  for (const json& e : listed.value("items", json::array())) {
    if (e.value("pr", 0) == 5) failed_name = e.value("name", "");
  }
  ASSERT_FALSE(failed_name.empty());
  const json failed_server = inspect("eph-" + failed_name + "-pg-1");
  const std::string failed_port =
      failed_server["NetworkSettings"]["Ports"]["5432/tcp"][0].value("HostPort", "");
  ASSERT_FALSE(failed_port.empty()) << failed_server.dump();
  {
    pqxx::connection admin("postgresql://eph_admin:" + env_of(failed_server, "POSTGRES_PASSWORD") +
                           "@127.0.0.1:" + failed_port + "/postgres");
    pqxx::work tx(admin);
    EXPECT_EQ(tx.exec_params1("SELECT count(*) FROM pg_database WHERE datname = $1",
                              database::DatabaseManager::ObjectName(failed_name))[0]
                  .as<int64_t>(),
              0)
        << "the half-made database of " << failed_name << " is left on its server";
  }
  standin.Request("PUT", "/_standin/repos/acme/own/pulls/5", {{"state", "closed"}});
  testing::Deliver(standin, ephd, "acme/own",
                   {{"event", "pull_request"}, {"action", "closed"}, {"number", 5}});

  // Closed: the server, its data volume and the app are gone.
  standin.Request("PUT", "/_standin/repos/acme/own/pulls/4", {{"state", "closed"}});
  testing::Deliver(standin, ephd, "acme/own",
                   {{"event", "pull_request"}, {"action", "closed"}, {"number", 4}});
  ASSERT_TRUE(WaitFor([&] { return environment().value("state", "") == "destroyed"; }, 120s))
      << environment().dump() << "\n"
      << ephd.process->Output();
  auto volumes = testing::RunCommand(
      {testing::Tool("docker"), "volume", "ls", "-q", "--filter", "label=eph.dev/environment=" + name},
      {{"DOCKER_HOST", testing::DockerHost()}});
  EXPECT_EQ(volumes.exit_code, 0);
  EXPECT_EQ(volumes.out, "");
  EXPECT_FALSE(inspect("eph-" + name + "-pg-1").is_object() &&
               inspect("eph-" + name + "-pg-1").contains("Id"));
  EXPECT_EQ(standin.Violations(), json::array());
}

}  // namespace
}  // namespace eph
