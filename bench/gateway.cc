// gateway_bench: the pieces of bench/gateway.sh (issue 7's gateway benchmark).
//
//   gateway_bench backend --port P [--threads 1] [--body-bytes 64]
//       A small, fast static HTTP/1.1 server: every request gets the same 200 with keep-alive.
//       It is the backend both proxies forward to.
//   gateway_bench gateway --port P --backend-port B [--threads 1]
//       Eph's gateway (pkg/gateway) in-process, every environment name routed to 127.0.0.1:B.
//   gateway_bench probe --target NAME=PORT... [--host H] [--rate 1000] [--seconds 10]
//                       [--connections 16]
//       Open-loop latency probe: requests are scheduled at a fixed rate per target over
//       keep-alive connections, and each latency is measured from its scheduled send time (so a
//       stall is not hidden by the requests it delays). All targets run in the same window,
//       interleaved. Prints one line per target: p50/p99/p99.9/max in microseconds.
//
// `backend` and `gateway` print "listening on 127.0.0.1:PORT" and run until SIGINT/SIGTERM.
// Everything binds to and connects to 127.0.0.1 only.
#include "pkg/gateway/gateway.h"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "pkg/base/clock.h"

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using SteadyClock = std::chrono::steady_clock;

void WaitForSignal() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  int sig = 0;
  sigwait(&set, &sig);
}

void BlockSignals() {
  // Blocked before any thread starts, so only sigwait sees them.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

// --- backend -------------------------------------------------------------------------------

asio::awaitable<void> ServeStatic(tcp::socket socket, const std::string& response) {
  beast::error_code ec;
  socket.set_option(tcp::no_delay(true), ec);
  std::string in;
  std::vector<char> buf(size_t{16} * 1024);
  for (;;) {
    const size_t n = co_await socket.async_read_some(asio::buffer(buf),
                                                     asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return;
    in.append(buf.data(), n);
    // GET requests without bodies: one response per complete header block (pipelining works).
    size_t replies = 0;
    size_t pos;
    while ((pos = in.find("\r\n\r\n")) != std::string::npos) {
      in.erase(0, pos + 4);
      ++replies;
    }
    if (replies == 0) continue;
    std::string out;
    out.reserve(response.size() * replies);
    for (size_t i = 0; i < replies; ++i) out += response;
    co_await asio::async_write(socket, asio::buffer(out),
                               asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return;
  }
}

int RunBackend(uint16_t port, int threads, size_t body_bytes) {
  const std::string body(body_bytes, 'x');
  const std::string response =
      "HTTP/1.1 200 OK\r\nServer: bench\r\nContent-Type: text/plain\r\n"
      "Content-Length: " +
      std::to_string(body.size()) + "\r\n\r\n" + body;
  std::vector<std::unique_ptr<asio::io_context>> ios;
  for (int i = 0; i < std::max(threads, 1); ++i)
    ios.push_back(std::make_unique<asio::io_context>(1));
  tcp::acceptor acceptor(*ios[0], tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  acceptor.listen(asio::socket_base::max_listen_connections);
  std::printf("listening on 127.0.0.1:%u\n", acceptor.local_endpoint().port());
  std::fflush(stdout);
  asio::co_spawn(
      *ios[0],
      [&]() -> asio::awaitable<void> {
        size_t next = 0;
        for (;;) {
          auto& io = *ios[next++ % ios.size()];
          beast::error_code ec;
          tcp::socket s =
              co_await acceptor.async_accept(io, asio::redirect_error(asio::use_awaitable, ec));
          if (ec) co_return;
          asio::co_spawn(io, ServeStatic(std::move(s), response), asio::detached);
        }
      },
      asio::detached);
  std::vector<std::thread> workers;
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> guards;
  for (auto& io : ios) {
    guards.push_back(asio::make_work_guard(*io));
    workers.emplace_back([&io] { io->run(); });
  }
  WaitForSignal();
  for (auto& io : ios) io->stop();
  for (auto& t : workers) t.join();
  return 0;
}

// --- gateway -------------------------------------------------------------------------------

int RunGateway(uint16_t port, uint16_t backend_port, int threads) {
  eph::gateway::GatewayOptions options;
  options.port = port;
  options.io_threads = threads;
  eph::gateway::Gateway gateway(
      options,
      [backend_port](std::string_view) {
        return std::optional<eph::gateway::Backend>(
            eph::gateway::Backend{"127.0.0.1", backend_port});
      },
      [](std::string_view, eph::TimePoint) {}, eph::SystemClock::Instance());
  const absl::Status started = gateway.Start();
  if (!started.ok()) {
    std::fprintf(stderr, "gateway_bench: %s\n", started.ToString().c_str());
    return 1;
  }
  std::printf("listening on 127.0.0.1:%u\n", gateway.port());
  std::fflush(stdout);
  WaitForSignal();
  gateway.Stop();
  return 0;
}

// --- probe ---------------------------------------------------------------------------------

struct ProbeState {
  SteadyClock::time_point start;
  std::chrono::nanoseconds period;
  int64_t total = 0;
  int64_t next = 0;
  int64_t errors = 0;
  std::vector<int64_t> latencies_ns;
};

asio::awaitable<void> ProbeConnection(ProbeState& st, uint16_t port, std::string host) {
  auto ex = co_await asio::this_coro::executor;
  beast::tcp_stream stream(ex);
  beast::flat_buffer buffer;
  beast::error_code ec;
  bool connected = false;
  http::request<http::empty_body> req{http::verb::get, "/", 11};
  req.set(http::field::host, host);
  req.set(http::field::user_agent, "gateway_bench");
  asio::steady_timer timer(ex);
  while (st.next < st.total) {
    const int64_t i = st.next++;
    const auto scheduled = st.start + st.period * i;
    timer.expires_at(scheduled);
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (!connected) {
      stream.expires_after(std::chrono::seconds(5));
      co_await stream.async_connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port),
                                    asio::redirect_error(asio::use_awaitable, ec));
      if (ec) {
        ++st.errors;
        stream.close();
        continue;
      }
      stream.socket().set_option(tcp::no_delay(true), ec);
      connected = true;
    }
    stream.expires_after(std::chrono::seconds(5));
    co_await http::async_write(stream, req, asio::redirect_error(asio::use_awaitable, ec));
    http::response<http::string_body> res;
    if (!ec)
      co_await http::async_read(stream, buffer, res, asio::redirect_error(asio::use_awaitable, ec));
    if (ec || res.result_int() != 200) {
      ++st.errors;
      stream.close();
      buffer.consume(buffer.size());
      connected = false;
      continue;
    }
    st.latencies_ns.push_back((SteadyClock::now() - scheduled).count());
  }
}

// Probes every target in the same window, interleaved (target k's requests are offset by
// k/targets of a period), so noise from a shared machine lands on all of them alike.
int RunProbe(const std::vector<std::string>& targets, const std::string& host, int rate,
             int seconds, int connections) {
  asio::io_context io(1);
  std::vector<std::string> names;
  std::vector<std::unique_ptr<ProbeState>> states;
  const auto period = std::chrono::nanoseconds(1'000'000'000LL / std::max(rate, 1));
  const auto start = SteadyClock::now() + std::chrono::milliseconds(200);
  for (size_t k = 0; k < targets.size(); ++k) {
    const size_t eq = targets[k].find('=');
    if (eq == std::string::npos) {
      std::fprintf(stderr, "gateway_bench: --target wants NAME=PORT, got %s\n", targets[k].c_str());
      return 2;
    }
    names.push_back(targets[k].substr(0, eq));
    const auto port = static_cast<uint16_t>(std::stoi(targets[k].substr(eq + 1)));
    auto st = std::make_unique<ProbeState>();
    st->period = period;
    st->total = static_cast<int64_t>(rate) * seconds;
    st->start = start + period * static_cast<int64_t>(k) / static_cast<int64_t>(targets.size());
    st->latencies_ns.reserve(static_cast<size_t>(st->total));
    for (int c = 0; c < connections; ++c) {
      asio::co_spawn(io, ProbeConnection(*st, port, host), asio::detached);
    }
    states.push_back(std::move(st));
  }
  io.run();
  int64_t errors = 0;
  for (size_t k = 0; k < states.size(); ++k) {
    auto& v = states[k]->latencies_ns;
    std::sort(v.begin(), v.end());
    auto pct = [&](double p) -> double {
      if (v.empty()) return 0;
      const size_t idx =
          std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())));
      return static_cast<double>(v[idx]) / 1000.0;
    };
    std::printf("%s requests=%zu errors=%lld p50_us=%.1f p99_us=%.1f p999_us=%.1f max_us=%.1f\n",
                names[k].c_str(), v.size(), static_cast<long long>(states[k]->errors), pct(0.50),
                pct(0.99), pct(0.999), v.empty() ? 0.0 : static_cast<double>(v.back()) / 1000.0);
    errors += states[k]->errors;
  }
  return errors == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"gateway_bench: backend, gateway and latency probe for bench/gateway.sh"};
  app.require_subcommand(1);

  uint16_t backend_port = 0;
  int backend_threads = 1;
  size_t body_bytes = 64;
  auto* backend = app.add_subcommand("backend", "fast static HTTP/1.1 server");
  backend->add_option("--port", backend_port, "listen port (0: any)");
  backend->add_option("--threads", backend_threads, "I/O threads");
  backend->add_option("--body-bytes", body_bytes, "response body size");

  uint16_t gateway_port = 0;
  uint16_t gateway_backend = 0;
  int gateway_threads = 1;
  auto* gateway = app.add_subcommand("gateway", "Eph's gateway in-process");
  gateway->add_option("--port", gateway_port, "listen port (0: any)");
  gateway->add_option("--backend-port", gateway_backend, "backend port")->required();
  gateway->add_option("--threads", gateway_threads, "I/O threads");

  std::vector<std::string> probe_targets;
  std::string probe_host = "bench.preview.localhost";
  int rate = 1000;
  int seconds = 10;
  int connections = 16;
  auto* probe = app.add_subcommand("probe", "open-loop latency at a fixed request rate");
  probe->add_option("--target", probe_targets, "NAME=PORT on 127.0.0.1 (repeatable)")->required();
  probe->add_option("--host", probe_host, "Host header");
  probe->add_option("--rate", rate, "requests per second");
  probe->add_option("--seconds", seconds, "duration");
  probe->add_option("--connections", connections, "keep-alive connections");

  CLI11_PARSE(app, argc, argv);
  BlockSignals();
  if (backend->parsed()) return RunBackend(backend_port, backend_threads, body_bytes);
  if (gateway->parsed()) return RunGateway(gateway_port, gateway_backend, gateway_threads);
  return RunProbe(probe_targets, probe_host, rate, seconds, connections);
}
