// The API port of the real ephd binary under hostile input, over real sockets (issue 12,
// defects 1, 3, 4, 5 and 6): paths that are not canonical, more idle connections than
// descriptors, event streams opened and closed by the hundred, a reader that stops reading,
// and large bodies from clients that are not authenticated.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <sstream>
#include <thread>

#include "test/github/ephd_harness.h"

namespace eph::testing {
namespace {

using namespace std::chrono_literals;
using Steady = std::chrono::steady_clock;

// A connected TCP socket to 127.0.0.1:`port`, or -1. `rcvbuf` > 0 shrinks its receive buffer
// (set before connecting, so the window the peer sees is small from the start).
int Connect(uint16_t port, int rcvbuf = 0) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (rcvbuf > 0) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

bool SendAll(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

// Reads until EOF, until `until` appears, or until `timeout` passes.
std::string ReadFor(int fd, std::chrono::milliseconds timeout, std::string_view until = {}) {
  std::string out;
  const auto deadline = Steady::now() + timeout;
  char buf[16384];
  while (Steady::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Steady::now()).count();
    if (::poll(&p, 1, static_cast<int>(std::max<int64_t>(left, 1))) <= 0) break;
    const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (!until.empty() && out.find(until) != std::string::npos) break;
  }
  return out;
}

// One request on a fresh connection, the answer read to EOF (Connection: close).
std::string Exchange(uint16_t port, const std::string& request,
                     std::chrono::milliseconds timeout = 10s) {
  const int fd = Connect(port);
  if (fd < 0) return "";
  SendAll(fd, request);
  std::string answer = ReadFor(fd, timeout);
  ::close(fd);
  return answer;
}

int StatusOf(const std::string& answer) {
  if (answer.rfind("HTTP/1.1 ", 0) != 0 || answer.size() < 12) return -1;
  return std::atoi(answer.substr(9, 3).c_str());
}

std::string Request(const std::string& method, const std::string& target, const std::string& token,
                    const std::string& body = "") {
  std::string r = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n";
  if (!token.empty()) r += "Authorization: Bearer " + token + "\r\n";
  if (!body.empty() || method == "POST") {
    r += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
         "\r\n";
  }
  return r + "\r\n" + body;
}

uint16_t PortOf(const std::string& url) {
  return static_cast<uint16_t>(std::stoi(url.substr(url.rfind(':') + 1)));
}

// A field of /proc/PID/status in kB or as a count ("VmSize", "VmRSS", "Threads"), or -1.
int64_t ProcStatus(pid_t pid, const std::string& field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) return std::atoll(line.c_str() + field.size() + 1);
  }
  return -1;
}

// utime + stime of PID, in clock ticks.
int64_t CpuTicks(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::istringstream fields(stat.substr(stat.rfind(')') + 2));
  std::string f;
  int64_t utime = 0, stime = 0;
  for (int i = 3; fields >> f; ++i) {
    if (i == 14) utime = std::atoll(f.c_str());
    if (i == 15) {
      stime = std::atoll(f.c_str());
      break;
    }
  }
  return utime + stime;
}

void RaiseOwnOpenFilesLimit() {
  rlimit limit{};
  getrlimit(RLIMIT_NOFILE, &limit);
  limit.rlim_cur = limit.rlim_max;
  setrlimit(RLIMIT_NOFILE, &limit);
}

// ephd started as given (e.g. behind prlimit), on a SQLite store of its own (in its temp dir
// unless `state` says otherwise), with its port once it listens.
struct CustomEphd {
  std::string dir = MakeTempDir("ephd-faults");
  std::string state;
  std::unique_ptr<ChildProcess> process;
  uint16_t port = 0;

  CustomEphd(std::vector<std::string> prefix, std::map<std::string, std::string> env,
             std::string state_url = "")
      : state(state_url.empty() ? "sqlite:" + dir + "/eph.db" : std::move(state_url)) {
    env.emplace("EPH_GITHUB_WEBHOOK_SECRET", kSecret);
    env.emplace("EPH_WORKERS", "0");
    std::vector<std::string> argv = std::move(prefix);
    argv.insert(argv.end(), {EphdBinary(), "--listen", "127.0.0.1:0", "--state", state});
    process = std::make_unique<ChildProcess>(argv, env, dir);
    auto p = process->WaitForOutput(std::regex("listening on http://127\\.0\\.0\\.1:(\\d+)"), 30s);
    if (!p) {
      ADD_FAILURE() << "ephd did not start:\n" << process->Output();
      return;
    }
    port = static_cast<uint16_t>(std::stoi(*p));
  }
};

std::string TokenFor(const std::string& state_url) {
  auto created = RunCommand({EphdBinary(), "token", "create", "--name", "faults", "--scope",
                             "write", "--state", state_url});
  EXPECT_EQ(created.exit_code, 0) << created.err;
  std::string token = created.out;
  while (!token.empty() && token.back() == '\n') token.pop_back();
  return token.substr(token.rfind('\n') + 1);
}

// Defect 1: the auth check and the router once read the path differently ("//api/..." was
// outside "/api/" for the one and inside it for the other). Every non-canonical spelling of an
// API path is now refused before either looks at it, with or without a token.
TEST(ApiHostileTest, NonCanonicalPathsNeverReachTheApi) {
  EphdProcess ephd(std::map<std::string, std::string>{{"EPH_WORKERS", "0"}});
  const uint16_t port = PortOf(ephd.url);
  const std::string token = CreateApiToken(ephd);
  const std::string made = Exchange(
      port, Request("POST", "/api/v1/environments", token,
                    R"({"project":"acme/shop","name":"target-1"})"));
  ASSERT_EQ(StatusOf(made), 201) << made;
  const json before = ApiGet(ephd.url + "/api/v1/environments/target-1", token);

  const std::string create = R"({"project":"acme/shop","name":"sneaky-1"})";
  const std::vector<std::pair<std::string, std::string>> attempts = {
      {"POST", "//api/v1/environments"},
      {"POST", "//api/v1/environments/target-1/extend"},
      {"DELETE", "//api/v1/environments/target-1"},
      {"GET", "//api/v1/environments"},
      {"POST", "/api//v1/environments"},
      {"POST", "/api/v1//environments"},
      {"POST", "/./api/v1/environments"},
      {"POST", "/api/./v1/environments"},
      {"POST", "/x/../api/v1/environments"},
      {"POST", "/%2e/api/v1/environments"},
      {"POST", "/%2fapi/v1/environments"},
      {"POST", "/api%2Fv1/environments"},
      {"DELETE", "/api/v1/environments/target-1/."},
      {"DELETE", "/api/v1/environments/x/../target-1"},
      {"POST", "/api/v1/environments/target-1//extend"},
      {"GET", "/api/v1/environments/%2e%2e/environments"},
      {"POST", "/api/v1/environments%00"},
      {"POST", "/api/v1/environments/%"},
      {"POST", "http://127.0.0.1/api/v1/environments"},
      {"POST", "*"},
  };
  for (const auto& [method, target] : attempts) {
    for (const std::string& with : {std::string(), token}) {
      const std::string body = method == "POST" && target.find("extend") != std::string::npos
                                   ? R"({"by":"24h"})"
                                   : (method == "POST" ? create : "");
      const std::string answer = Exchange(port, Request(method, target, with, body));
      EXPECT_EQ(StatusOf(answer), 400)
          << method << " " << target << (with.empty() ? " without" : " with") << " a token:\n"
          << answer;
    }
  }
  // Nothing was created, extended or destroyed.
  const json list = ApiGet(ephd.url + "/api/v1/environments", token);
  ASSERT_EQ(list["items"].size(), 1u) << list.dump();
  const json after = ApiGet(ephd.url + "/api/v1/environments/target-1", token);
  EXPECT_EQ(after["state"], before["state"]);
  EXPECT_EQ(after["expires_at"], before["expires_at"]);
  // The canonical paths still work as ever, and still need the token.
  EXPECT_EQ(StatusOf(Exchange(port, Request("GET", "/api/v1/environments", ""))), 401);
  EXPECT_EQ(StatusOf(Exchange(port, Request("GET", "/api/v1/environments", token))), 200);
}

// Defect 3: with 1,024 descriptors and 1,100 idle connections the accept loop spun (96% CPU,
// ~900,000 log lines a second) and /healthz timed out. Now the longest-idle connection makes
// room, accept errors back off, and /readyz says a limit was hit.
TEST(ApiHostileTest, IdleConnectionsBeyondTheDescriptorLimitDoNotStarveTheApi) {
  RaiseOwnOpenFilesLimit();
  CustomEphd ephd({Tool("prlimit"), "--nofile=1024:1024"}, {});
  ASSERT_NE(ephd.port, 0);
  const pid_t pid = ephd.process->pid();
  std::vector<int> idle;
  for (int i = 0; i < 1100; ++i) {
    const int fd = Connect(ephd.port);
    ASSERT_GE(fd, 0) << "connection " << i;
    idle.push_back(fd);
  }
  const size_t log_before = ephd.process->Output().size();
  const int64_t cpu_before = CpuTicks(pid);
  const auto window_start = Steady::now();
  // A few seconds of ordinary use while the idle connections stay open.
  int answered = 0;
  for (int i = 0; i < 6; ++i) {
    const auto asked = Steady::now();
    const std::string answer = Exchange(ephd.port, Request("GET", "/healthz", ""), 5s);
    EXPECT_EQ(StatusOf(answer), 200) << "healthz " << i << ":\n" << answer;
    EXPECT_LT(Steady::now() - asked, 2s) << "healthz " << i << " was slow";
    if (StatusOf(answer) == 200) ++answered;
    std::this_thread::sleep_for(500ms);  // spreads the probes over the measuring window
  }
  const double seconds = std::chrono::duration<double>(Steady::now() - window_start).count();
  const double cpu = static_cast<double>(CpuTicks(pid) - cpu_before) /
                     static_cast<double>(sysconf(_SC_CLK_TCK));
  const std::string log = ephd.process->Output().substr(log_before);
  const auto log_lines = std::count(log.begin(), log.end(), '\n');
  EXPECT_EQ(answered, 6);
  EXPECT_LT(cpu / seconds, 0.3) << cpu << " s of CPU in " << seconds << " s";
  EXPECT_LT(log_lines, 50) << log.substr(0, 2000);
  const std::string ready = Exchange(ephd.port, Request("GET", "/readyz", ""), 5s);
  EXPECT_EQ(StatusOf(ready), 503) << ready;
  EXPECT_NE(ready.find("limit"), std::string::npos) << ready;
  for (int fd : idle) ::close(fd);
  ephd.process->Signal(SIGTERM);
  EXPECT_EQ(ephd.process->Wait(20s), 0) << ephd.process->Output().substr(0, 4000);
}

// Defect 4: every event stream's thread stayed unjoined until shutdown (500 open/close cycles:
// VmSize 181 MB → 4.28 GB), and max_streams was never enforced.
TEST(ApiHostileTest, EventStreamsReleaseTheirThreadsAndAreCapped) {
  auto open_stream = [](uint16_t port, const std::string& token) {
    const int fd = Connect(port);
    SendAll(fd, Request("GET", "/api/v1/events", token));
    return std::make_pair(fd, ReadFor(fd, 5s, ": connected"));
  };
  {
    // The default limit: 300 open/close cycles as fast as a client can make them.
    CustomEphd ephd({}, {});
    ASSERT_NE(ephd.port, 0);
    const pid_t pid = ephd.process->pid();
    const std::string token = TokenFor(ephd.state);
    auto cycle = [&] {
      auto [fd, got] = open_stream(ephd.port, token);
      EXPECT_NE(got.find(": connected"), std::string::npos) << got;
      ::close(fd);
    };
    for (int i = 0; i < 5; ++i) cycle();
    ASSERT_TRUE(WaitFor([&] { return ProcStatus(pid, "Threads") > 0; }, 5s));
    const int64_t vm_before = ProcStatus(pid, "VmSize");
    const int64_t threads_before = ProcStatus(pid, "Threads");
    for (int i = 0; i < 300; ++i) cycle();
    // The streams notice their readers have gone within a wait slice; their threads are joined.
    EXPECT_TRUE(WaitFor([&] { return ProcStatus(pid, "Threads") <= threads_before + 4; }, 30s))
        << ProcStatus(pid, "Threads") << " threads, " << threads_before << " before";
    const int64_t vm_after = ProcStatus(pid, "VmSize");
    EXPECT_LT(vm_after - vm_before, 200 * 1024) << vm_before << " kB → " << vm_after << " kB";
  }

  // EPH_MAX_STREAMS=4: at most four at once, the fifth is refused with 503 while four are open,
  // and a slot frees once a reader goes.
  CustomEphd ephd({}, {{"EPH_MAX_STREAMS", "4"}});
  ASSERT_NE(ephd.port, 0);
  const std::string token = TokenFor(ephd.state);
  std::vector<int> open;
  for (int i = 0; i < 4; ++i) {
    auto [fd, got] = open_stream(ephd.port, token);
    ASSERT_NE(got.find(": connected"), std::string::npos) << got;
    open.push_back(fd);
  }
  const std::string fifth = Exchange(ephd.port, Request("GET", "/api/v1/events", token), 5s);
  EXPECT_EQ(StatusOf(fifth), 503) << fifth;
  ::close(open.back());
  open.pop_back();
  EXPECT_TRUE(WaitFor(
      [&] {
        auto [fd, got] = open_stream(ephd.port, token);
        const bool ok = got.find(": connected") != std::string::npos;
        if (ok) open.push_back(fd); else ::close(fd);
        return ok;
      },
      20s));
  for (int fd : open) ::close(fd);
}

// The kernel's send queue of ephd's side of a connection (local port `server`, remote `client`),
// from /proc/net/tcp; -1 if not found.
int64_t ServerSendQueue(uint16_t server, uint16_t client) {
  std::ifstream in("/proc/net/tcp");
  std::string line;
  char local[64], remote[64];
  while (std::getline(in, line)) {
    unsigned slot = 0, state = 0;
    unsigned long tx = 0, rx = 0;
    if (std::sscanf(line.c_str(), " %u: %63s %63s %x %lx:%lx", &slot, local, remote, &state, &tx,
                    &rx) != 6) {
      continue;
    }
    const std::string l(local), r(remote);
    const auto port_of = [](const std::string& a) {
      return static_cast<uint16_t>(std::stoul(a.substr(a.find(':') + 1), nullptr, 16));
    };
    if (port_of(l) == server && port_of(r) == client) return static_cast<int64_t>(tx);
  }
  return -1;
}

// Defect 5: a client that stops reading its event stream held ephd's writer for ever, and
// SIGTERM did not stop ephd (still running after 45 s). Now each write has a deadline and
// shutdown tells streams to end.
TEST(ApiHostileTest, AReaderThatStopsReadingDoesNotBlockShutdown) {
  // On tmpfs, so that thousands of environments (and their events) are made in seconds.
  const std::string shm = "/dev/shm/eph-faults-" + std::to_string(getpid());
  std::filesystem::create_directories(shm);
  const std::string state = "sqlite:" + shm + "/eph.db";
  CustomEphd ephd({}, {}, state);
  ASSERT_NE(ephd.port, 0);
  const std::string token = TokenFor(state);
  const int stalled = Connect(ephd.port, 1024);
  ASSERT_GE(stalled, 0);
  SendAll(stalled, Request("GET", "/api/v1/events", token));
  ASSERT_NE(ReadFor(stalled, 5s, ": connected").find(": connected"), std::string::npos);
  sockaddr_in me{};
  socklen_t len = sizeof(me);
  getsockname(stalled, reinterpret_cast<sockaddr*>(&me), &len);
  const uint16_t client_port = ntohs(me.sin_port);

  // Make events until ephd's send queue for the stalled reader stops growing: the writer is
  // then blocked on a full buffer.
  int64_t last = -1;
  int unchanged = 0, made = 0;
  const auto deadline = Steady::now() + 120s;
  while (unchanged < 3 && made < 30000 && Steady::now() < deadline) {
    for (int i = 0; i < 100; ++i, ++made) {
      const std::string answer = Exchange(
          ephd.port, Request("POST", "/api/v1/environments", token,
                             R"({"project":"acme/shop","name":"stall-)" + std::to_string(made) +
                                 R"("})"));
      ASSERT_EQ(StatusOf(answer), 201) << answer;
    }
    const int64_t queue = ServerSendQueue(ephd.port, client_port);
    // Gone after having been full: ephd already gave up on the reader (its write deadline).
    if (queue < 0 && last > 0) break;
    unchanged = queue > 0 && queue == last ? unchanged + 1 : 0;
    last = queue;
  }
  if (unchanged < 3 && !(last > 0)) {
    FAIL() << "the stream never stalled after " << made << " environments";
  }

  const auto asked = Steady::now();
  ephd.process->Signal(SIGTERM);
  const auto code = ephd.process->Wait(20s);
  EXPECT_EQ(code, 0) << ephd.process->Output().substr(0, 4000);
  EXPECT_LT(Steady::now() - asked, 10s);
  ::close(stalled);
  std::filesystem::remove_all(shm);
}

// Defect 6: bodies were read whole before the token or signature was checked, with no bound:
// 40 concurrent 24 MB webhook posts with bad signatures took ephd's RSS to 997 MB.
TEST(ApiHostileTest, UnauthenticatedBodiesAreRefusedEarlyAndBounded) {
  CustomEphd ephd({}, {});
  ASSERT_NE(ephd.port, 0);
  const pid_t pid = ephd.process->pid();

  // What the header alone tells is answered before the body is sent at all.
  for (const std::string& head :
       {std::string("POST /api/v1/environments HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000"
                    "\r\n\r\n"),
        std::string("POST /api/v1/environments HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                    "eph_nosuchtoken\r\nContent-Length: 1000000\r\n\r\n"),
        std::string("POST /webhooks/github HTTP/1.1\r\nHost: x\r\nX-GitHub-Event: ping\r\n"
                    "X-GitHub-Delivery: d-1\r\nContent-Length: 1000000\r\n\r\n"),
        std::string("POST /webhooks/github HTTP/1.1\r\nHost: x\r\nX-GitHub-Event: ping\r\n"
                    "X-GitHub-Delivery: d-1\r\nX-Hub-Signature-256: sha1=abc\r\n"
                    "Content-Length: 1000000\r\n\r\n")}) {
    const int fd = Connect(ephd.port);
    SendAll(fd, head);
    const std::string answer = ReadFor(fd, 3s);
    EXPECT_EQ(StatusOf(answer), 401) << head << "→\n" << answer;
    ::close(fd);
  }

  const int64_t rss_before = ProcStatus(pid, "VmRSS");
  constexpr size_t kBody = size_t{24} * 1024 * 1024;
  const std::string chunk(64 * 1024, 'x');
  std::atomic<int> refused_busy{0}, refused_auth{0}, other{0};
  std::atomic<bool> done{false};
  int64_t rss_peak = rss_before;
  std::thread sampler([&] {
    while (!done.load()) {
      rss_peak = std::max(rss_peak, ProcStatus(pid, "VmRSS"));
      std::this_thread::sleep_for(20ms);
    }
  });
  std::vector<std::thread> senders;
  for (int i = 0; i < 40; ++i) {
    senders.emplace_back([&, i] {
      const int fd = Connect(ephd.port);
      if (fd < 0) {
        ++other;
        return;
      }
      const std::string head =
          "POST /webhooks/github HTTP/1.1\r\nHost: x\r\nX-GitHub-Event: pull_request\r\n"
          "X-GitHub-Delivery: big-" + std::to_string(i) + "\r\nX-Hub-Signature-256: sha256=" +
          std::string(64, '0') + "\r\nContent-Length: " + std::to_string(kBody) + "\r\n\r\n";
      // As curl does: stop sending once an answer has come (a refusal does not wait for the
      // body).
      bool sent = SendAll(fd, head);
      for (size_t off = 0; sent && off < kBody; off += chunk.size()) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 0) > 0) break;
        sent = SendAll(fd, chunk);
      }
      const int status = StatusOf(ReadFor(fd, 60s));
      if (status == 503) {
        ++refused_busy;
      } else if (status == 401) {
        ++refused_auth;
      } else {
        ++other;
      }
      ::close(fd);
    });
  }
  for (auto& t : senders) t.join();
  done = true;
  sampler.join();
  EXPECT_EQ(refused_busy + refused_auth + other, 40);
  EXPECT_EQ(other, 0) << "answers other than 401 and 503";
  EXPECT_GT(refused_auth, 0);
  // 100 MiB of bodies at most, plus their reading and hashing.
  EXPECT_LT(rss_peak - rss_before, 300 * 1024) << rss_before << " kB → " << rss_peak << " kB";
  EXPECT_EQ(StatusOf(Exchange(ephd.port, Request("GET", "/healthz", ""))), 200);
}

}  // namespace
}  // namespace eph::testing
