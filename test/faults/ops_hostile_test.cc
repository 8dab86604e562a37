// Issue 12, defects 2, 8 and 9: the built ephd and eph driven as an attacker or an unlucky
// operator would, over real sockets, with real processes holding real locks.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "pkg/http/http_client.h"
#include "pkg/webhook/signature.h"
#include "test/support/process.h"
#include "test/support/testbed.h"

namespace eph::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using json = nlohmann::json;
namespace fs = std::filesystem;

constexpr char kSecret[] = "ops-hostile-secret";

std::string EphdBinary() { return BinaryDir() + "/cmd/ephd/ephd"; }
std::string EphBinary() { return BinaryDir() + "/cmd/eph/eph"; }

// Polls `condition` until it holds or `timeout` passes.
bool WaitFor(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return condition();
}

// ephd on 127.0.0.1:0 with its SQLite state at <dir>/state/eph.db.
struct Ephd {
  std::string dir;
  std::string db;
  std::string url;
  std::unique_ptr<ChildProcess> process;

  explicit Ephd(std::map<std::string, std::string> env = {}, std::vector<std::string> args = {},
                std::string state_dir = "") {
    dir = MakeTempDir("ops-hostile");
    db = (state_dir.empty() ? dir + "/state" : state_dir) + "/eph.db";
    env.emplace("EPH_GITHUB_WEBHOOK_SECRET", kSecret);
    env.emplace("EPH_WORKERS", "0");  // intake only: nothing but the test touches the store
    std::vector<std::string> argv{EphdBinary(), "--listen", "127.0.0.1:0", "--state",
                                  "sqlite:" + db};
    argv.insert(argv.end(), args.begin(), args.end());
    process = std::make_unique<ChildProcess>(argv, env, dir);
    auto port = process->WaitForOutput(std::regex("listening on http://127\\.0\\.0\\.1:(\\d+)"),
                                       std::chrono::seconds(30));
    if (!port) {
      ADD_FAILURE() << "ephd did not start:\n" << process->Output();
      return;
    }
    url = "http://127.0.0.1:" + *port;
  }
  ~Ephd() {
    process->Signal(SIGTERM);
    EXPECT_EQ(process->Wait(std::chrono::seconds(20)), 0) << process->Output();
  }
  bool Running() const { return kill(process->pid(), 0) == 0; }

  std::string CreateToken() const {
    auto created = RunCommand({EphdBinary(), "token", "create", "--name", "ops", "--scope", "write",
                               "--state", "sqlite:" + db});
    EXPECT_EQ(created.exit_code, 0) << created.err;
    std::string token = created.out;
    while (!token.empty() && token.back() == '\n') token.pop_back();
    return token.substr(token.rfind('\n') + 1);
  }
};

http::Response Http(const std::string& method, const std::string& url,
                               std::vector<std::string> headers = {},
                               std::optional<std::string> body = std::nullopt) {
  http::Request exchange{.method = method, .url = url, .headers = std::move(headers)};
  exchange.body = std::move(body);
  exchange.timeout = std::chrono::seconds(30);
  auto answer = http::Perform(exchange);
  EXPECT_TRUE(answer.ok()) << answer.status();
  return answer.ok() ? *answer : http::Response{};
}

http::Response PostJson(const Ephd& ephd, const std::string& path,
                                   const std::string& token, const std::string& body) {
  return Http("POST", ephd.url + path,
              {"Authorization: Bearer " + token, "Content-Type: application/json"}, body);
}

http::Response Webhook(const Ephd& ephd, const std::string& delivery,
                                  const std::string& body) {
  return Http("POST", ephd.url + "/webhooks/github",
              {"X-GitHub-Event: ping", "X-GitHub-Delivery: " + delivery,
               "X-Hub-Signature-256: " + webhook::SignGitHub(kSecret, body),
               "Content-Type: application/json"},
              body);
}

// Another process holding the database's write lock, as `sqlite3 eph.db` with
// `BEGIN EXCLUSIVE;` would: a child of this test, so it goes when the test does.
class LockHolder {
 public:
  explicit LockHolder(const std::string& path) {
    int ready[2], release[2];
    if (pipe(ready) != 0 || pipe(release) != 0) {
      ADD_FAILURE() << "pipe failed";
      return;
    }
    // Forked before any thread of this test starts (none do): the child uses only SQLite.
    pid_ = fork();
    if (pid_ == 0) {
      close(ready[0]);
      close(release[1]);
      sqlite3* db = nullptr;
      char ok = 0;
      if (sqlite3_open(path.c_str(), &db) == SQLITE_OK &&
          sqlite3_exec(db, "BEGIN EXCLUSIVE", nullptr, nullptr, nullptr) == SQLITE_OK) {
        ok = 1;
      }
      if (write(ready[1], &ok, 1) != 1) _exit(3);
      char c;
      while (read(release[0], &c, 1) > 0) {
      }
      _exit(ok ? 0 : 1);
    }
    close(ready[1]);
    close(release[0]);
    release_ = release[1];
    char ok = 0;
    locked_ = read(ready[0], &ok, 1) == 1 && ok == 1;
    close(ready[0]);
  }
  ~LockHolder() { Release(); }

  bool locked() const { return locked_; }

  void Release() {
    if (pid_ <= 0) return;
    close(release_);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
  }

 private:
  pid_t pid_ = -1;
  int release_ = -1;
  bool locked_ = false;
};

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// --- Defect 2: a long project string crashed ephd -------------------------------------------

TEST(OpsHostileTest, LongProjectIsRefusedWith400AndEphdStaysUp) {
  Ephd ephd;
  ASSERT_FALSE(ephd.url.empty());
  const std::string token = ephd.CreateToken();
  for (size_t length : {30'000u, 1'000'000u}) {
    const json body = {{"project", "acme/" + std::string(length, 'a')}, {"pr", 1}};
    auto res = PostJson(ephd, "/api/v1/environments", token, body.dump());
    EXPECT_EQ(res.status, 400) << length << ": " << res.body.substr(0, 200);
    EXPECT_THAT(res.body, HasSubstr("owner/repo"));
    ASSERT_TRUE(ephd.Running()) << "ephd died on a " << length << "-character project:\n"
                                << ephd.process->Output();
  }
  // Other fields and query parameters are bounded too, and refusals do not echo the input.
  auto by = PostJson(ephd, "/api/v1/environments/x/extend", token,
                     json{{"by", std::string(100'000, '9') + "h"}}.dump());
  EXPECT_EQ(by.status, 400);
  EXPECT_LT(by.body.size(), 400u);
  auto filter = Http("GET", ephd.url + "/api/v1/environments?project=" + std::string(50'000, 'p'),
                     {"Authorization: Bearer " + token});
  EXPECT_EQ(filter.status, 400);
  EXPECT_EQ(Http("GET", ephd.url + "/healthz").status, 200);
  // And a well-formed request still works.
  EXPECT_EQ(PostJson(ephd, "/api/v1/environments", token,
                     json{{"project", "acme/shop"}, {"pr", 1}}.dump())
                .status,
            201);
}

// --- Defect 8: a store locked by another process ----------------------------------------------

TEST(OpsHostileTest, LockedStoreAnswersQuicklyWithoutPathsAndReadyzSaysSo) {
  Ephd ephd;
  ASSERT_FALSE(ephd.url.empty());
  const std::string token = ephd.CreateToken();
  EXPECT_EQ(Http("GET", ephd.url + "/readyz").status, 200);
  const std::string ping = R"({"zen":"Keep it logically awesome.","hook_id":1})";

  LockHolder holder(ephd.db);
  ASSERT_TRUE(holder.locked());

  // (a) A webhook gets a retryable 503 well before GitHub's own 10 s timeout.
  auto start = std::chrono::steady_clock::now();
  auto hook = Webhook(ephd, "d-locked-1", ping);
  const double hook_seconds = SecondsSince(start);
  EXPECT_EQ(hook.status, 503) << hook.body;
  EXPECT_LT(hook_seconds, 7.0);
  EXPECT_FALSE(hook.headers["retry-after"].empty());

  // (b) The API's 503 says what to do, not where the data lives.
  start = std::chrono::steady_clock::now();
  auto create = PostJson(ephd, "/api/v1/environments", token,
                         json{{"project", "acme/shop"}, {"pr", 3}}.dump());
  EXPECT_LT(SecondsSince(start), 7.0);
  EXPECT_EQ(create.status, 503) << create.body;
  EXPECT_THAT(create.body, HasSubstr("state store is unavailable"));
  EXPECT_THAT(create.body, Not(HasSubstr(ephd.dir)));
  EXPECT_THAT(create.body, Not(HasSubstr("eph.db")));

  // (c) Readiness fails while the store cannot take writes, and says so quickly.
  start = std::chrono::steady_clock::now();
  auto ready = Http("GET", ephd.url + "/readyz");
  EXPECT_EQ(ready.status, 503) << ready.body;
  EXPECT_LT(SecondsSince(start), 3.0);
  EXPECT_THAT(ready.body, Not(HasSubstr("eph.db")));
  EXPECT_EQ(Http("GET", ephd.url + "/healthz").status, 200);  // alive, just not ready

  // The operator finds the detail in the log.
  EXPECT_THAT(ephd.process->Output(), HasSubstr("database is locked"));

  holder.Release();
  EXPECT_TRUE(WaitFor([&] { return Http("GET", ephd.url + "/readyz").status == 200; },
                      std::chrono::seconds(10)));
  // Nothing was acknowledged while locked: the redelivery is stored now, as new.
  auto again = Webhook(ephd, "d-locked-1", ping);
  EXPECT_EQ(again.status, 202) << again.body;
  EXPECT_THAT(again.body, Not(HasSubstr("duplicate")));
}

// --- Defect 9 ------------------------------------------------------------------------------

// (a) An unknown log level silenced ephd; it must stop start-up naming the valid levels.
TEST(OpsHostileTest, UnknownLogLevelStopsStartUp) {
  const std::string dir = MakeTempDir("ops-loglevel");
  std::ofstream(dir + "/ephd.yaml") << "log_level: loud\n";
  const std::vector<std::string> base{EphdBinary(), "--listen", "127.0.0.1:0", "--state",
                                      "sqlite:" + dir + "/eph.db"};
  struct Case {
    std::vector<std::string> extra;
    std::map<std::string, std::string> env;
  };
  for (const Case& c :
       {Case{{}, {{"EPH_LOG_LEVEL", "loud"}}}, Case{{"--log-level", "loud"}, {}},
        Case{{"--config", dir + "/ephd.yaml"}, {}}, Case{{"--log-format", "xml"}, {}}}) {
    std::vector<std::string> argv = base;
    argv.insert(argv.end(), c.extra.begin(), c.extra.end());
    auto r = RunCommand(argv, c.env, std::chrono::seconds(15));
    EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
    EXPECT_THAT(r.err,
                ::testing::AnyOf(HasSubstr("debug, info, warn, error"), HasSubstr("text, json")));
  }
}

// (b) SIGHUP killed ephd without a word.
TEST(OpsHostileTest, SighupIsLoggedAndEphdKeepsRunning) {
  Ephd ephd;
  ASSERT_FALSE(ephd.url.empty());
  ephd.process->Signal(SIGHUP);
  EXPECT_TRUE(ephd.process->WaitForOutput(std::regex("SIGHUP received"), std::chrono::seconds(10)))
      << ephd.process->Output();
  EXPECT_TRUE(ephd.Running());
  EXPECT_EQ(Http("GET", ephd.url + "/healthz").status, 200);
  // ~Ephd: SIGTERM still stops it cleanly (exit 0).
}

// (c) The dashboard must not be frameable nor run anything but its own files.
TEST(OpsHostileTest, DashboardSendsCspAndFrameHeaders) {
  const std::string web = MakeTempDir("ops-web");
  std::ofstream(web + "/index.html") << "<!doctype html><title>eph</title>";
  Ephd ephd({}, {"--web-dir", web});
  ASSERT_FALSE(ephd.url.empty());
  auto index = Http("GET", ephd.url + "/");
  ASSERT_EQ(index.status, 200);
  const std::string csp = index.headers["content-security-policy"];
  EXPECT_THAT(csp, HasSubstr("default-src 'self'"));
  EXPECT_THAT(csp, HasSubstr("frame-ancestors 'none'"));
  EXPECT_THAT(csp, Not(HasSubstr("unsafe-inline")));
  EXPECT_EQ(index.headers["x-frame-options"], "DENY");
  EXPECT_EQ(index.headers["referrer-policy"], "no-referrer");
}

// (d) The state directory and database held webhook bodies readable by every user.
TEST(OpsHostileTest, StateDirectoryAndDatabaseArePrivate) {
  const mode_t old_umask = umask(022);  // a common default, under which files come out 0644
  constexpr auto kOthers = fs::perms::group_all | fs::perms::others_all;
  std::string state;
  {
    Ephd ephd;
    ASSERT_FALSE(ephd.url.empty());
    state = fs::path(ephd.db).parent_path().string();
    EXPECT_EQ(Webhook(ephd, "d-private-1", R"({"zen":"z","hook_id":1})").status, 202);
    EXPECT_EQ(fs::status(state).permissions() & fs::perms::all, fs::perms::owner_all);
    for (const std::string suffix : {"", "-wal", "-shm"}) {
      ASSERT_TRUE(fs::exists(ephd.db + suffix)) << suffix;
      EXPECT_EQ(fs::status(ephd.db + suffix).permissions() & kOthers, fs::perms::none) << suffix;
    }
  }
  // Left world-readable (an older ephd, a careless copy): tightened at start, with a warning.
  fs::permissions(state, fs::perms::others_read | fs::perms::others_exec, fs::perm_options::add);
  fs::permissions(state + "/eph.db", fs::perms::others_read, fs::perm_options::add);
  {
    Ephd ephd({}, {}, state);
    ASSERT_FALSE(ephd.url.empty());
    EXPECT_EQ(fs::status(state).permissions() & kOthers, fs::perms::none);
    EXPECT_EQ(fs::status(state + "/eph.db").permissions() & kOthers, fs::perms::none);
    EXPECT_THAT(ephd.process->Output(), HasSubstr("made it private"));
  }
  umask(old_umask);
}

// (e) ephd's usage errors exited with CLI11's codes (105) and two lines.
TEST(OpsHostileTest, EphdUsageErrorsExit2WithOneLine) {
  const std::string dir = MakeTempDir("ops-usage");
  const std::string state = "sqlite:" + dir + "/eph.db";
  for (const std::vector<std::string>& argv : std::vector<std::vector<std::string>>{
           {EphdBinary(), "token", "create", "--name", "x", "--scope", "admin", "--state", state},
           {EphdBinary(), "token", "create", "--state", state},
           {EphdBinary(), "--no-such-flag"},
           {EphdBinary(), "--workers", "999"}}) {
    auto r = RunCommand(argv, {}, std::chrono::seconds(15));
    EXPECT_EQ(r.exit_code, 2) << argv[1] << ": " << r.err;
    EXPECT_THAT(r.err, ::testing::StartsWith("ephd: ")) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
  EXPECT_EQ(RunCommand({EphdBinary(), "--help"}).exit_code, 0);
}

// (f) and (g): eph's usage errors, and a 404 from something that is not ephd's API.
TEST(OpsHostileTest, EphNamesUnknownCommandsAndWrongServers) {
  auto unknown = RunCommand({EphBinary(), "nosuchcmd"});
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_THAT(unknown.err, HasSubstr("unknown command \"nosuchcmd\""));
  EXPECT_THAT(unknown.err, HasSubstr("list"));
  EXPECT_EQ(std::count(unknown.err.begin(), unknown.err.end(), '\n'), 1) << unknown.err;
  auto none = RunCommand({EphBinary()});
  EXPECT_EQ(none.exit_code, 2);
  EXPECT_THAT(none.err, HasSubstr("status"));
  auto bad_flag = RunCommand({EphBinary(), "list", "--frobnicate"});
  EXPECT_EQ(bad_flag.exit_code, 2);
  EXPECT_EQ(std::count(bad_flag.err.begin(), bad_flag.err.end(), '\n'), 1) << bad_flag.err;

  Ephd ephd;
  ASSERT_FALSE(ephd.url.empty());
  const std::string token = ephd.CreateToken();
  for (const std::string path : {"/wrong", "/api"}) {
    auto wrong = RunCommand({EphBinary(), "status", "x"},
                            {{"EPH_SERVER", ephd.url + path}, {"EPH_TOKEN", token}});
    EXPECT_EQ(wrong.exit_code, 3) << path << ": " << wrong.err;
    EXPECT_THAT(wrong.err, HasSubstr("does not point at an ephd API")) << path;
    EXPECT_THAT(wrong.err, Not(HasSubstr("no environment named"))) << path;
  }
  // The real thing still says what is missing.
  auto missing = RunCommand({EphBinary(), "status", "no-such-env"},
                            {{"EPH_SERVER", ephd.url}, {"EPH_TOKEN", token}});
  EXPECT_EQ(missing.exit_code, 5) << missing.err;
  EXPECT_THAT(missing.err, HasSubstr("no environment named no-such-env"));
}

}  // namespace
}  // namespace eph::testing
