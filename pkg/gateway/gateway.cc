#include "pkg/gateway/gateway.h"

#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cerrno>
#include <condition_variable>
#include <deque>
#include <limits>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "pkg/base/listener_limits.h"
#include "pkg/gateway/http_wire.h"
#include "pkg/gateway/request_check.h"

namespace eph::gateway {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using SteadyClock = std::chrono::steady_clock;
using wire::Acceptor;
using wire::kAwait;
using wire::ReadHeader;
using wire::SerializeHeader;
using wire::Socket;
using wire::Task;
using wire::Timer;


namespace {

// One page per outcome, the same bytes whatever the request: a 404 must not tell one unknown
// name from another, nor an unknown environment from one that has no backend yet.
constexpr std::string_view kNotFoundPage =
    "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>404 Not Found</title></head>\n"
    "<body><h1>Not Found</h1><p>There is no preview environment at this address.</p></body>"
    "</html>\n";
constexpr std::string_view kBadGatewayPage =
    "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>502 Bad Gateway</title></head>\n"
    "<body><h1>Bad Gateway</h1><p>The preview environment is not answering. It may still be "
    "starting; try again in a moment.</p></body></html>\n";
constexpr std::string_view kGatewayTimeoutPage =
    "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>504 Gateway Timeout</title>"
    "</head>\n<body><h1>Gateway Timeout</h1><p>The preview environment did not answer in time."
    "</p></body></html>\n";
constexpr std::string_view kBadRequestPage =
    "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>400 Bad Request</title></head>\n"
    "<body><h1>Bad Request</h1></body></html>\n";
constexpr std::string_view kNotImplementedPage =
    "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>501 Not Implemented</title>"
    "</head>\n<body><h1>Not Implemented</h1></body></html>\n";
constexpr std::string_view kHeaderTooLargePage =
    "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>431 Request Header Fields Too "
    "Large</title></head>\n<body><h1>Request Header Fields Too Large</h1></body></html>\n";

constexpr std::string_view kServiceUnavailablePage =
    "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>503 Service Unavailable</title>"
    "</head>\n<body><h1>Service Unavailable</h1><p>Too many connections; try again in a moment."
    "</p></body></html>\n";

// Accept errors (out of descriptors, mostly) pause the accept loop, doubling from the minimum to
// the maximum while they last (and are logged through AcceptErrorLog).
constexpr auto kAcceptBackoffMin = std::chrono::milliseconds(10);
constexpr auto kAcceptBackoffMax = std::chrono::milliseconds(1'000);

// Per-connection relay buffer: bodies stream through it, so memory per connection is bounded.
constexpr size_t kRelayBufferBytes = size_t{32} * 1024;
// An error reply reads (and discards) at most this much of a request body to keep the client
// connection alive; a larger body closes it instead.
constexpr uint64_t kMaxDrainBytes = uint64_t{1024} * 1024;

// Bodies stream, so they need no limit. (Beast 1.74's body_limit(boost::none) compares
// `len > none`, which is always true: it rejects every body. Hence the largest value instead.)
constexpr uint64_t kNoBodyLimit = std::numeric_limits<uint64_t>::max();

using RequestParser = http::request_parser<http::buffer_body>;
using ResponseParser = http::response_parser<http::buffer_body>;

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool StartsWithNoCase(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && beast::iequals(s.substr(0, prefix.size()), prefix);
}

// Removes hop-by-hop fields: Connection and every field it names, Keep-Alive, TE, Trailer,
// Upgrade (unless the message is a websocket upgrade), Proxy-*. Framing fields stay: the
// serializer re-applies them on the next hop.
void StripHopByHop(http::fields& fields, bool keep_upgrade) {
  // One pass over the fields, erasing by position: a proxied request and its response each go
  // through here, and erasing by name costs a lookup per name whether it is there or not.
  std::vector<std::string> named;  // fields the Connection header names
  for (auto it = fields.begin(); it != fields.end();) {
    const http::field f = it->name();
    if (f == http::field::connection) {
      std::string_view value(it->value().data(), it->value().size());
      while (!value.empty()) {
        const size_t comma = value.find(',');
        std::string_view token = Trim(value.substr(0, comma));
        value = comma == std::string_view::npos ? std::string_view() : value.substr(comma + 1);
        if (token.empty() || beast::iequals(token, "content-length") ||
            beast::iequals(token, "transfer-encoding") || beast::iequals(token, "host") ||
            (keep_upgrade && beast::iequals(token, "upgrade"))) {
          continue;
        }
        named.emplace_back(token);
      }
    }
    const std::string_view name(it->name_string().data(), it->name_string().size());
    if (f == http::field::connection || f == http::field::keep_alive || f == http::field::te ||
        f == http::field::trailer || (!keep_upgrade && f == http::field::upgrade) ||
        StartsWithNoCase(name, "proxy-")) {
      it = fields.erase(it);
    } else {
      ++it;
    }
  }
  for (const auto& name : named) fields.erase(name);
}

bool HasToken(std::string_view list, std::string_view token) {
  while (!list.empty()) {
    const size_t comma = list.find(',');
    if (beast::iequals(Trim(list.substr(0, comma)), token)) return true;
    if (comma == std::string_view::npos) break;
    list = list.substr(comma + 1);
  }
  return false;
}

bool IsWebSocketUpgrade(const http::request_header<>& req) {
  if (req.method() != http::verb::get || req.version() < 11) return false;
  const auto [begin, end] = req.equal_range(http::field::connection);
  for (auto field = begin; field != end; ++field) {
    if (HasToken(std::string_view(field->value().data(), field->value().size()), "upgrade")) {
      return beast::iequals(req[http::field::upgrade], "websocket");
    }
  }
  return false;
}

enum class Relay { kOk, kReadFailed, kWriteFailed };

// A connection's one deadline. Arm() it before each step; the worker's sweep cancels the
// sockets' pending operations once it has passed, and `fired` tells a timeout from other
// errors. Cheaper than a timer per operation, which costs a timer-queue insert, a cancel and an
// extra handler for every read and write.
struct Deadline {
  void Arm(std::chrono::milliseconds timeout) {
    at = SteadyClock::now() + timeout;
    fired = false;
  }
  void Disarm() { at = SteadyClock::time_point::max(); }
  SteadyClock::time_point at = SteadyClock::time_point::max();
  bool fired = false;
  Socket* client = nullptr;
  Socket* backend = nullptr;
};

// Streams one message body from `from` (whose header `p` has parsed) to `to` through `buf`,
// writing the header first unless body bytes are already buffered (then header and first
// bytes go in one write). Chunked stays chunked; chunk boundaries may differ.
template <bool isRequest>
Task<Relay> RelayMessage(Socket& from, beast::flat_buffer& from_buffer,
                                    http::parser<isRequest, http::buffer_body>& p, Socket& to,
                                    http::serializer<isRequest, http::buffer_body>& sr, char* buf,
                                    Deadline& deadline, std::chrono::milliseconds read_timeout,
                                    std::chrono::milliseconds write_timeout) {
  beast::error_code ec;
  // Beast reads as much as the buffer's free capacity (at least 512 bytes): grow it once for a
  // body still to come, or a large body would trickle through in 512-byte reads.
  const auto length = p.content_length();
  if (!p.is_done() && from_buffer.capacity() < kRelayBufferBytes &&
      (!length || *length > from_buffer.size())) {
    from_buffer.reserve(kRelayBufferBytes);
  }
  if (!sr.is_header_done() && from_buffer.size() == 0 && !p.is_done()) {
    deadline.Arm(write_timeout);
    co_await http::async_write_header(to, sr, asio::redirect_error(kAwait, ec));
    if (ec) co_return Relay::kWriteFailed;
  }
  for (;;) {
    auto& body = p.get().body();
    if (!p.is_done()) {
      body.data = buf;
      body.size = kRelayBufferBytes;
      deadline.Arm(read_timeout);
      co_await http::async_read_some(from, from_buffer, p,
                                     asio::redirect_error(kAwait, ec));
      if (ec == http::error::need_buffer) ec = {};
      if (ec) co_return Relay::kReadFailed;
      const size_t n = kRelayBufferBytes - body.size;
      body.data = n > 0 ? buf : nullptr;
      body.size = n;
      body.more = !p.is_done();
    } else {
      body.data = nullptr;
      body.size = 0;
      body.more = false;
    }
    deadline.Arm(write_timeout);
    co_await http::async_write(to, sr, asio::redirect_error(kAwait, ec));
    if (ec == http::error::need_buffer) ec = {};
    if (ec) co_return Relay::kWriteFailed;
    if (sr.is_done()) co_return Relay::kOk;
  }
}

bool OutOfDescriptors(const beast::error_code& ec) {
  return ec == asio::error::no_descriptors || ec.value() == ENFILE;
}

bool ConnectionLost(const beast::error_code& ec) {
  return ec == http::error::end_of_stream || ec == asio::error::eof ||
         ec == asio::error::connection_reset || ec == asio::error::broken_pipe ||
         ec == http::error::partial_message;
}

// True if an idle pooled socket is still usable: the peer has not closed it and has sent
// nothing unsolicited.
bool StillOpen(Socket& socket) {
  char c;
  const ssize_t n = ::recv(socket.native_handle(), &c, 1, MSG_PEEK | MSG_DONTWAIT);
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

}  // namespace

int DefaultMaxConnections() { return ConnectionLimitFromOpenFiles(2); }

class Gateway::Impl {
 public:
  Impl(GatewayOptions options, BackendResolver resolver, ActivitySink activity, Clock& clock,
       MetricsRegistry* metrics)
      : options_(std::move(options)),
        resolver_(std::move(resolver)),
        activity_(std::move(activity)),
        clock_(clock),
        max_connections_(options_.max_connections > 0 ? options_.max_connections
                                                      : DefaultMaxConnections()),
        activity_pool_(1) {
    if (metrics != nullptr) {
      const std::string name = "eph_gateway_requests_total";
      const std::string help = "Requests received by the preview gateway, by result.";
      proxied_ = &metrics->GetCounter(name, help, R"(result="proxied")");
      not_found_ = &metrics->GetCounter(name, help, R"(result="not_found")");
      bad_gateway_ = &metrics->GetCounter(name, help, R"(result="bad_gateway")");
      timeout_ = &metrics->GetCounter(name, help, R"(result="timeout")");
      bad_request_ = &metrics->GetCounter(name, help, R"(result="bad_request")");
      connects_ = &metrics->GetCounter("eph_gateway_backend_connects_total",
                                       "New connections the gateway opened to backends.");
      websockets_ = &metrics->GetCounter("eph_gateway_websockets_total",
                                         "Websocket connections spliced by the gateway.");
    }
  }

  ~Impl() { Stop(); }

  absl::Status Start() {
    const int threads = std::max(options_.io_threads, 1);
    for (int i = 0; i < threads; ++i) workers_.push_back(std::make_unique<Worker>());
    acceptor_.emplace(workers_[0]->io);
    beast::error_code ec;
    const auto address = asio::ip::make_address(options_.host, ec);
    if (ec) return absl::InvalidArgumentError("gateway: bad listen host " + options_.host);
    const tcp::endpoint endpoint(address, options_.port);
    acceptor_->open(endpoint.protocol(), ec);
    if (!ec) acceptor_->set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_->bind(endpoint, ec);
    if (!ec) acceptor_->listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      return absl::UnavailableError("gateway: cannot listen on " + options_.host + ":" +
                                    std::to_string(options_.port) + ": " + ec.message());
    }
    port_ = acceptor_->local_endpoint().port();
    started_ = true;
    asio::co_spawn(workers_[0]->io, Accept(), asio::detached);
    for (auto& w : workers_) asio::co_spawn(w->io, Sweep(*w), asio::detached);
    for (auto& w : workers_) {
      Worker* worker = w.get();
      worker->thread = std::thread([worker] { worker->io.run(); });
    }
    return absl::OkStatus();
  }

  void Stop() {
    if (!started_ || stopped_.exchange(true)) return;
    stopping_ = true;
    asio::post(workers_[0]->io, [this] {
      beast::error_code ec;
      acceptor_->close(ec);
    });
    {
      std::unique_lock<std::mutex> lock(mu_);
      idle_cv_.wait_until(lock, SteadyClock::now() + options_.shutdown_grace,
                          [this] { return in_flight_.load() == 0; });
    }
    for (auto& w : workers_) w->io.stop();
    for (auto& w : workers_) {
      if (w->thread.joinable()) w->thread.join();
    }
    activity_pool_.join();
    // Destroys what is left (idle keep-alive connections, spliced websockets) while this
    // object is still whole.
    acceptor_.reset();
    workers_.clear();
  }

  uint16_t port() const { return port_; }
  int64_t in_flight() const { return in_flight_.load(); }
  int64_t connections() const { return connections_.load(); }
  int max_connections() const { return max_connections_; }

  absl::Status Saturation() const { return limits_.Saturation(clock_.Now()); }

 private:
  struct IdleConnection {
    Socket socket;
    SteadyClock::time_point since;
  };
  using PoolKey = std::pair<asio::ip::address, uint16_t>;

  // One per I/O thread. Connections accepted onto a worker stay on it, and so does its pool of
  // idle backend connections: only that thread touches them, so neither needs a lock.
  struct Worker {
    std::set<Deadline*> deadlines;  // of this thread's client connections; outlives io
    asio::io_context io{1};
    asio::executor_work_guard<asio::io_context::executor_type> guard{io.get_executor()};
    std::map<PoolKey, std::deque<IdleConnection>> idle;  // destroyed before io
    // The last backend host parsed, so a run of requests to one environment parses it once.
    std::string last_host;
    asio::ip::address last_address;
    std::thread thread;
  };

  // idle_since of a client connection busy with a request, and of one picked for eviction.
  static constexpr int64_t kBusy = 0;
  static constexpr int64_t kEvicting = -1;

  // A client connection being served.
  struct Client {
    explicit Client(Socket socket) : stream(std::move(socket)) {}
    Socket stream;
    Deadline deadline;
    beast::flat_buffer buffer;
    std::string ip;
    std::unique_ptr<char[]> relay;
    std::string head;  // a header being written by hand; its capacity is kept between requests
    bool upgraded = false;
    // Steady-clock nanoseconds since which the connection has waited for a request, kBusy, or
    // kEvicting. Written by its own thread and by the accept loop when it evicts.
    std::atomic<int64_t> idle_since{kBusy};
  };
  struct Registered {
    Client* client;
    Worker* worker;
  };

  struct SpliceState {
    SpliceState(Socket c, Socket b, std::string e, std::atomic<int64_t>& counter)
        : client(std::move(c)),
          backend(std::move(b)),
          watchdog(client.get_executor()),
          env(std::move(e)),
          connections(counter) {}
    ~SpliceState() { connections.fetch_sub(1); }
    SpliceState(const SpliceState&) = delete;
    SpliceState& operator=(const SpliceState&) = delete;
    void CloseBoth() {
      beast::error_code ignored;
      client.close(ignored);
      backend.close(ignored);
    }
    Socket client;
    Socket backend;
    Timer watchdog;
    std::string env;
    SteadyClock::time_point last = SteadyClock::now();
    int running = 2;
    std::atomic<int64_t>& connections;  // the gateway's count, which includes this splice
  };

  class InFlight {
   public:
    explicit InFlight(Impl& impl) : impl_(impl) { impl_.in_flight_.fetch_add(1); }
    ~InFlight() {
      if (impl_.in_flight_.fetch_sub(1) == 1 && impl_.stopping_.load()) {
        std::lock_guard<std::mutex> lock(impl_.mu_);
        impl_.idle_cv_.notify_all();
      }
    }
    InFlight(const InFlight&) = delete;
    InFlight& operator=(const InFlight&) = delete;

   private:
    Impl& impl_;
  };

  static void Inc(Counter* c) {
    if (c != nullptr) c->Inc();
  }

  // `check`: make sure the backend has not closed the connection (one syscall); callers that
  // can replay the request on failure skip it.
  std::optional<Socket> TakeIdle(Worker& w, const PoolKey& key, bool check) {
    auto it = w.idle.find(key);
    if (it == w.idle.end()) return std::nullopt;
    auto& idle = it->second;
    const auto oldest_allowed = SteadyClock::now() - options_.pool_idle_timeout;
    while (!idle.empty() && idle.front().since < oldest_allowed) idle.pop_front();
    while (!idle.empty()) {
      Socket socket = std::move(idle.back().socket);
      idle.pop_back();
      if (!check || StillOpen(socket)) return socket;
    }
    return std::nullopt;
  }

  void PutIdle(Worker& w, const PoolKey& key, Socket socket) {
    if (options_.max_idle_per_backend == 0 || stopping_) return;
    auto& idle = w.idle[key];
    const auto now = SteadyClock::now();
    while (!idle.empty() && (idle.size() >= options_.max_idle_per_backend ||
                             idle.front().since < now - options_.pool_idle_timeout)) {
      idle.pop_front();
    }
    idle.push_back(IdleConnection{std::move(socket), now});
  }

  void NoteActivity(std::string_view env) {
    if (!activity_) return;
    const TimePoint now = clock_.Now();
    {
      std::lock_guard<std::mutex> lock(activity_mu_);
      auto it = last_activity_.find(env);
      if (it == last_activity_.end()) {
        last_activity_.emplace(std::string(env), now);
      } else if (now - it->second < options_.activity_interval) {
        return;
      } else {
        it->second = now;
      }
    }
    asio::post(activity_pool_, [this, name = std::string(env), now] {
      try {
        activity_(name, now);
      } catch (const std::exception& e) {
        spdlog::error("gateway: activity sink for {} threw: {}", name, e.what());
      }
    });
  }

  // Enforces the deadlines of one worker's connections, a tick late at most.
  Task<void> Sweep(Worker& w) {
    const auto shortest = std::min({options_.read_timeout, options_.client_idle_timeout,
                                    options_.connect_timeout, options_.backend_timeout});
    const auto tick = std::clamp<std::chrono::milliseconds>(
        shortest / 8, std::chrono::milliseconds(5), std::chrono::milliseconds(250));
    Timer timer(w.io);
    beast::error_code ec;
    // Runs until the io_context stops, so deadlines still hold during Stop's grace period.
    for (;;) {
      timer.expires_after(tick);
      co_await timer.async_wait(asio::redirect_error(kAwait, ec));
      const auto now = SteadyClock::now();
      for (Deadline* d : w.deadlines) {
        // Cancelled again on every tick until re-armed: a cancel that lands between two steps
        // of a composed operation finds nothing pending and would otherwise be lost.
        if (d->at > now) continue;
        d->fired = true;
        if (d->client != nullptr) d->client->cancel(ec);
        if (d->backend != nullptr) d->backend->cancel(ec);
      }
    }
  }

  void NoteLimit(std::string what) { limits_.Note(std::move(what), clock_.Now()); }

  // Closes the client connection that has waited for a request the longest, if any; returns
  // whether one was picked. The close happens on the connection's own thread, a moment later.
  bool EvictIdle() {
    uint64_t id = 0;
    Worker* worker = nullptr;
    {
      std::lock_guard<std::mutex> lock(conns_mu_);
      Client* oldest = nullptr;
      int64_t oldest_since = std::numeric_limits<int64_t>::max();
      for (const auto& [conn_id, reg] : conns_) {
        const int64_t since = reg.client->idle_since.load(std::memory_order_relaxed);
        if (since > kBusy && since < oldest_since) {
          oldest = reg.client;
          oldest_since = since;
          id = conn_id;
          worker = reg.worker;
        }
      }
      // Picked once only; a connection whose request arrived meanwhile is left alone.
      if (oldest == nullptr ||
          !oldest->idle_since.compare_exchange_strong(oldest_since, kEvicting)) {
        return false;
      }
    }
    asio::post(worker->io, [this, id] {
      std::lock_guard<std::mutex> lock(conns_mu_);
      const auto it = conns_.find(id);
      if (it == conns_.end() || it->second.client->idle_since.load() != kEvicting) return;
      Client& c = *it->second.client;
      c.deadline.fired = true;
      beast::error_code ignored;
      c.stream.cancel(ignored);
    });
    return true;
  }

  // Answers a connection over the limit with a fixed 503 and closes it, without waiting.
  // The fresh socket's send buffer is empty, so the short write goes in whole or not at all.
  static void RefuseBusy(Socket& socket) {
    static const std::string kBusy =
        "HTTP/1.1 503 Service Unavailable\r\nServer: eph-gateway\r\n"
        "Content-Type: text/html; charset=utf-8\r\nCache-Control: no-store\r\n"
        "Retry-After: 1\r\nConnection: close\r\nContent-Length: " +
        std::to_string(kServiceUnavailablePage.size()) + "\r\n\r\n" +
        std::string(kServiceUnavailablePage);
    beast::error_code ec;
    socket.non_blocking(true, ec);
    socket.write_some(asio::buffer(kBusy.data(), kBusy.size()), ec);
    socket.shutdown(Socket::shutdown_send, ec);
    socket.close(ec);
  }

  Task<void> Accept() {
    size_t next = 0;
    auto backoff = std::chrono::duration_cast<SteadyClock::duration>(kAcceptBackoffMin);
    Timer pause(workers_[0]->io);
    while (!stopping_) {
      Worker& w = *workers_[next];
      beast::error_code ec;
      Socket socket =
          co_await acceptor_->async_accept(w.io, asio::redirect_error(kAwait, ec));
      if (ec) {
        if (stopping_ || ec == asio::error::operation_aborted) co_return;
        if (OutOfDescriptors(ec)) {
          NoteLimit("open-files limit reached (" + ec.message() + ")");
          EvictIdle();
        }
        accept_errors_.Log(ec.message(), SteadyClock::now());
        pause.expires_after(backoff);
        co_await pause.async_wait(asio::redirect_error(kAwait, ec));
        backoff = std::min<SteadyClock::duration>(backoff * 2, kAcceptBackoffMax);
        continue;
      }
      backoff = kAcceptBackoffMin;
      next = (next + 1) % workers_.size();
      if (connections_.load() >= max_connections_) {
        NoteLimit(absl::StrCat("connection limit ", max_connections_, " reached"));
        if (!EvictIdle()) {
          RefuseBusy(socket);
          continue;
        }
      }
      connections_.fetch_add(1);
      asio::co_spawn(w.io, Serve(w, std::move(socket)), asio::detached);
    }
  }

  Task<void> Serve(Worker& w, Socket socket) {
    Client c(std::move(socket));
    beast::error_code ec;
    c.stream.set_option(tcp::no_delay(true), ec);
    if (auto ep = c.stream.remote_endpoint(ec); !ec) c.ip = ep.address().to_string();
    c.deadline.client = &c.stream;
    w.deadlines.insert(&c.deadline);
    uint64_t id = 0;
    {
      std::lock_guard<std::mutex> lock(conns_mu_);
      id = ++next_conn_id_;
      conns_.emplace(id, Registered{&c, &w});
    }
    struct Unregister {
      ~Unregister() {
        w.deadlines.erase(&c.deadline);
        {
          std::lock_guard<std::mutex> lock(impl.conns_mu_);
          impl.conns_.erase(id);
        }
        // A spliced websocket still holds the connection; its SpliceState counts it down.
        if (!c.upgraded) impl.connections_.fetch_sub(1);
      }
      Impl& impl;
      Worker& w;
      Client& c;
      uint64_t id;
    } unregister{*this, w, c, id};
    bool first = true;
    while (!stopping_) {
      RequestParser parser;
      parser.header_limit(static_cast<uint32_t>(options_.max_header_bytes));
      parser.body_limit(kNoBodyLimit);
      c.deadline.Arm(first ? options_.read_timeout : options_.client_idle_timeout);
      c.idle_since.store(
          std::max<int64_t>(SteadyClock::now().time_since_epoch().count(), kBusy + 1));
      co_await ReadHeader(c.stream, c.buffer, parser, ec);
      // Evicted while the request arrived: the request wins.
      c.idle_since.store(kBusy);
      first = false;
      if (ec == http::error::header_limit) {
        Inc(bad_request_);
        co_await WritePage(c, 431, kHeaderTooLargePage, false, 11);
        break;
      }
      if (ec == http::error::end_of_stream || ec == asio::error::eof || c.deadline.fired ||
          ec == asio::error::operation_aborted || ec == asio::error::connection_reset) {
        break;
      }
      if (ec) {
        Inc(bad_request_);
        co_await WritePage(c, 400, kBadRequestPage, false, 11);
        break;
      }
      // Framing or routing a backend might read differently: refused, and the connection
      // closed, as the rest of its bytes can no longer be told apart from a next request.
      auto route = CheckRequest(parser.get().base());
      if (!route.ok()) {
        Inc(bad_request_);
        spdlog::debug("gateway: refused a request from {}: {}", c.ip,
                      std::string(route.status().message()));
        const unsigned status = HttpStatusFor(route.status());
        co_await WritePage(c, static_cast<int>(status),
                           status == 501 ? kNotImplementedPage : kBadRequestPage, false, 11);
        break;
      }
      InFlight guard(*this);
      if (!c.relay) c.relay = std::make_unique<char[]>(kRelayBufferBytes);
      const bool keep_alive = co_await Handle(w, c, parser, *route);
      if (!keep_alive || c.upgraded) break;
    }
    if (!c.upgraded) {
      beast::error_code ignored;
      c.stream.shutdown(Socket::shutdown_send, ignored);
    }
  }

  Task<bool> WritePage(Client& c, int status, std::string_view page, bool keep_alive,
                                  unsigned version) {
    http::response<http::string_body> res{static_cast<http::status>(status), version};
    res.set(http::field::server, "eph-gateway");
    res.set(http::field::content_type, "text/html; charset=utf-8");
    res.set(http::field::cache_control, "no-store");
    res.body() = std::string(page);
    res.keep_alive(keep_alive);
    res.prepare_payload();
    beast::error_code ec;
    c.deadline.Arm(options_.read_timeout);
    co_await http::async_write(c.stream, res, asio::redirect_error(kAwait, ec));
    co_return keep_alive && !ec;
  }

  // Writes a message's header, serialized by hand, and `body` after it, in one write.
  template <bool isRequest>
  Task<Relay> WriteHeader(Client& c, Socket& to, const http::header<isRequest>& h,
                          std::chrono::milliseconds timeout, std::string_view body = {}) {
    c.head.clear();
    SerializeHeader(c.head, h);
    const std::array<asio::const_buffer, 2> buffers{asio::buffer(c.head),
                                                   asio::buffer(body.data(), body.size())};
    beast::error_code ec;
    c.deadline.Arm(timeout);
    co_await asio::async_write(to, buffers, asio::redirect_error(kAwait, ec));
    co_return ec ? Relay::kWriteFailed : Relay::kOk;
  }

  // Replies with one of the fixed pages. The client connection stays open only if the request's
  // body (if any) can be read off cheaply first.
  Task<bool> ReplyPage(Client& c, RequestParser& parser, int status,
                                  std::string_view page, bool keep_alive, bool awaiting_continue) {
    if (!parser.is_done()) {
      if (awaiting_continue || parser.content_length().value_or(0) > kMaxDrainBytes) {
        keep_alive = false;
      } else {
        uint64_t drained = 0;
        beast::error_code ec;
        while (keep_alive && !parser.is_done()) {
          auto& body = parser.get().body();
          body.data = c.relay.get();
          body.size = kRelayBufferBytes;
          c.deadline.Arm(options_.read_timeout);
          co_await http::async_read_some(c.stream, c.buffer, parser,
                                         asio::redirect_error(kAwait, ec));
          if (ec == http::error::need_buffer) ec = {};
          drained += kRelayBufferBytes - body.size;
          if (ec || drained > kMaxDrainBytes) keep_alive = false;
        }
      }
    }
    co_return co_await WritePage(c, status, page, keep_alive, parser.get().version());
  }

  void RewriteRequest(http::request<http::buffer_body>& req, const Client& c,
                      const std::string& host, bool websocket, bool expect_continue) {
    StripHopByHop(req, websocket);
    if (websocket) req.set(http::field::connection, "Upgrade");
    if (expect_continue) req.erase(http::field::expect);  // the gateway answers 100 itself
    req.version(11);
    // One pass: the client's own forwarding fields are taken off (the chains kept), then ours
    // go on the end.
    std::string xff;
    std::string forwarded;
    for (auto it = req.begin(); it != req.end();) {
      const std::string_view name(it->name_string().data(), it->name_string().size());
      const bool is_xff = beast::iequals(name, "X-Forwarded-For");
      if (is_xff || (options_.add_forwarded_header && it->name() == http::field::forwarded)) {
        std::string& chain = is_xff ? xff : forwarded;
        if (!chain.empty()) chain += ", ";
        chain.append(it->value().data(), it->value().size());
        it = req.erase(it);
      } else if (beast::iequals(name, "X-Forwarded-Host") ||
                 beast::iequals(name, "X-Forwarded-Proto")) {
        it = req.erase(it);
      } else {
        ++it;
      }
    }
    req.insert("X-Forwarded-For", xff.empty() ? c.ip : xff + ", " + c.ip);
    req.insert("X-Forwarded-Host", host);
    req.insert("X-Forwarded-Proto", options_.forwarded_proto);
    if (options_.add_forwarded_header) {
      const bool v6 = c.ip.find(':') != std::string::npos;
      std::string element = v6 ? "for=\"[" + c.ip + "]\"" : "for=" + c.ip;
      element += ";host=\"" + host + "\";proto=" + options_.forwarded_proto;
      req.insert(http::field::forwarded, forwarded.empty() ? element : forwarded + ", " + element);
    }
  }

  // Proxies one request whose header has been read. Returns whether the client connection may
  // carry another request.
  Task<bool> Handle(Worker& w, Client& c, RequestParser& parser, RequestRoute& route) {
    auto& req = parser.get();
    if (route.host_replaced) {
      req.set(http::field::host, route.host);
      req.target(route.target);
    }
    const bool client_keep_alive = req.keep_alive();
    const unsigned version = req.version();
    const bool head = req.method() == http::verb::head;
    const bool has_body = !parser.is_done();
    const bool expect_continue =
        has_body && beast::iequals(req[http::field::expect], "100-continue");
    const std::string host = std::move(route.host);

    std::optional<std::string> env = EnvironmentFromHost(host, options_.base_domain);
    std::optional<Backend> backend;
    bool resolver_failed = false;
    if (env) {
      try {
        backend = resolver_(*env);
      } catch (const std::exception& e) {
        spdlog::error("gateway: resolver threw for {}: {}", *env, e.what());
        resolver_failed = true;
      }
    }
    if (resolver_failed) {
      Inc(bad_gateway_);
      co_return co_await ReplyPage(c, parser, 502, kBadGatewayPage, client_keep_alive,
                                   expect_continue);
    }
    if (!backend) {
      Inc(not_found_);
      co_return co_await ReplyPage(c, parser, 404, kNotFoundPage, client_keep_alive,
                                   expect_continue);
    }
    beast::error_code ec;
    if (backend->host.empty() || backend->host != w.last_host) {
      w.last_address = asio::ip::make_address(backend->host, ec);
      w.last_host = ec ? std::string() : backend->host;
    }
    const asio::ip::address address = w.last_address;
    if (ec) {
      spdlog::warn("gateway: environment {} has a backend host that is not an IP address: {}", *env,
                   backend->host);
      Inc(bad_gateway_);
      co_return co_await ReplyPage(c, parser, 502, kBadGatewayPage, client_keep_alive,
                                   expect_continue);
    }
    const PoolKey key{address, backend->port};
    NoteActivity(*env);
    const bool websocket = IsWebSocketUpgrade(req);
    // Only these may be sent twice if a reused connection dies under them (RFC 9110 9.2.2).
    const bool replayable = !has_body && req.method() != http::verb::post &&
                            req.method() != http::verb::patch &&
                            req.method() != http::verb::connect;
    RewriteRequest(req, c, host, websocket, expect_continue);

    // Send the request. A pooled connection can have been closed by the backend in the
    // meantime; a request without a body is then retried once on a fresh connection.
    std::optional<Socket> up;
    // The sweep must never touch `up` after it is gone.
    struct ForgetBackend {
      ~ForgetBackend() { d.backend = nullptr; }
      Deadline& d;
    } forget{c.deadline};
    beast::flat_buffer up_buffer;
    std::optional<ResponseParser> rp;
    bool sent_continue = false;
    for (int attempt = 0;; ++attempt) {
      bool reused = false;
      c.deadline.backend = nullptr;
      up.reset();
      up_buffer.consume(up_buffer.size());
      if (attempt == 0 && !websocket) {
        if (auto socket = TakeIdle(w, key, /*check=*/!replayable)) {
          up.emplace(std::move(*socket));
          reused = true;
        }
      }
      if (!up) {
        up.emplace(w.io);
        c.deadline.backend = &*up;
        c.deadline.Arm(options_.connect_timeout);
        co_await up->async_connect(tcp::endpoint(address, backend->port),
                                   asio::redirect_error(kAwait, ec));
        if (ec) {
          spdlog::debug("gateway: {} backend {}:{} unreachable: {}", *env, backend->host,
                        backend->port, ec.message());
          Inc(bad_gateway_);
          co_return co_await ReplyPage(c, parser, 502, kBadGatewayPage,
                                       client_keep_alive && !sent_continue, expect_continue);
        }
        up->set_option(tcp::no_delay(true), ec);
        Inc(connects_);
      }
      c.deadline.backend = &*up;
      const bool retryable = reused && replayable;
      http::request_serializer<http::buffer_body> sr{req};
      if (expect_continue && !sent_continue) {
        c.deadline.Arm(options_.backend_timeout);
        co_await http::async_write_header(*up, sr, asio::redirect_error(kAwait, ec));
        if (ec) {
          Inc(bad_gateway_);
          co_return co_await ReplyPage(c, parser, 502, kBadGatewayPage, false, true);
        }
        static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
        c.deadline.Arm(options_.read_timeout);
        co_await asio::async_write(c.stream, asio::buffer(kContinue.data(), kContinue.size()),
                                   asio::redirect_error(kAwait, ec));
        if (ec) co_return false;
        sent_continue = true;
      }
      const Relay sent =
          has_body ? co_await RelayMessage<true>(c.stream, c.buffer, parser, *up, sr,
                                                 c.relay.get(), c.deadline, options_.read_timeout,
                                                 options_.backend_timeout)
                   : co_await WriteHeader(c, *up, req, options_.backend_timeout);
      if (sent == Relay::kReadFailed) co_return false;  // the client went away mid-body
      if (sent == Relay::kWriteFailed) {
        if (retryable && attempt == 0) continue;
        Inc(bad_gateway_);
        co_return co_await ReplyPage(c, parser, 502, kBadGatewayPage,
                                     !has_body && client_keep_alive, false);
      }
      rp.emplace();
      rp->header_limit(static_cast<uint32_t>(options_.max_header_bytes));
      rp->body_limit(kNoBodyLimit);
      if (head) rp->skip(true);
      c.deadline.Arm(options_.backend_timeout);
      co_await ReadHeader(*up, up_buffer, *rp, ec);
      // 1xx interim responses (103 Early Hints, a stray 100) are passed on to HTTP/1.1 clients.
      while (!ec && rp->get().result_int() >= 100 && rp->get().result_int() < 200 &&
             rp->get().result() != http::status::switching_protocols) {
        if (version >= 11) {
          http::response<http::empty_body> interim{rp->get().result(), 11};
          for (const auto& field : rp->get()) interim.insert(field.name_string(), field.value());
          StripHopByHop(interim, false);
          c.deadline.Arm(options_.read_timeout);
          co_await http::async_write(c.stream, interim,
                                     asio::redirect_error(kAwait, ec));
          if (ec) co_return false;
        }
        rp.emplace();
        rp->header_limit(static_cast<uint32_t>(options_.max_header_bytes));
        rp->body_limit(kNoBodyLimit);
        if (head) rp->skip(true);
        c.deadline.Arm(options_.backend_timeout);
        co_await ReadHeader(*up, up_buffer, *rp, ec);
      }
      if (ec && c.deadline.fired) {
        Inc(timeout_);
        co_return co_await ReplyPage(c, parser, 504, kGatewayTimeoutPage, client_keep_alive, false);
      }
      if (ec) {
        if (retryable && attempt == 0 && ConnectionLost(ec)) continue;
        spdlog::debug("gateway: {} backend failed before responding: {}", *env, ec.message());
        Inc(bad_gateway_);
        co_return co_await ReplyPage(c, parser, 502, kBadGatewayPage, client_keep_alive, false);
      }
      break;
    }

    auto& res = rp->get();
    if (res.result() == http::status::switching_protocols) {
      if (!websocket) {
        Inc(bad_gateway_);
        co_return co_await ReplyPage(c, parser, 502, kBadGatewayPage, false, false);
      }
      StripHopByHop(res, true);
      res.set(http::field::connection, "Upgrade");
      http::response_serializer<http::buffer_body> sr{res};
      c.deadline.Arm(options_.read_timeout);
      co_await http::async_write_header(c.stream, sr,
                                        asio::redirect_error(kAwait, ec));
      if (ec) co_return false;
      Inc(proxied_);
      Inc(websockets_);
      co_await StartSplice(c, up_buffer, *up, *env);
      co_return false;
    }

    const bool backend_keep_alive = res.keep_alive();
    StripHopByHop(res, false);
    res.version(version);
    const bool body_follows = !rp->is_done();
    bool close_after = false;
    if (body_follows && !res.chunked() && !res.has_content_length()) {
      // Delimited by the backend closing: re-frame it so the client connection survives.
      if (version >= 11) {
        res.chunked(true);
      } else {
        close_after = true;
      }
    }
    if (version < 11 && res.chunked()) {
      res.chunked(false);
      close_after = true;
    }
    const bool keep_alive = client_keep_alive && !close_after && !stopping_;
    res.keep_alive(keep_alive);
    res.set(http::field::via, version >= 11 ? "1.1 eph-gateway" : "1.0 eph-gateway");

    const auto length = rp->content_length();
    if (body_follows && length && *length <= kRelayBufferBytes && up_buffer.size() >= *length) {
      // The whole body came with the header: parse it into the relay buffer here and send
      // header and body in one write.
      auto& body = res.body();
      body.data = c.relay.get();
      body.size = kRelayBufferBytes;
      up_buffer.consume(rp->put(up_buffer.data(), ec));
      if (ec == http::error::need_buffer) ec = {};
      if (ec || !rp->is_done()) {
        Inc(bad_gateway_);
        co_return co_await ReplyPage(c, parser, 502, kBadGatewayPage, false, false);
      }
      const size_t n = kRelayBufferBytes - body.size;
      if (co_await WriteHeader(c, c.stream, res, options_.read_timeout,
                               std::string_view(c.relay.get(), n)) != Relay::kOk) {
        co_return false;
      }
    } else if (!body_follows) {
      if (co_await WriteHeader(c, c.stream, res, options_.read_timeout) != Relay::kOk) {
        co_return false;
      }
    } else {
      http::response_serializer<http::buffer_body> sr{res};
      const Relay relayed =
          co_await RelayMessage<false>(*up, up_buffer, *rp, c.stream, sr, c.relay.get(), c.deadline,
                                       options_.backend_timeout, options_.read_timeout);
      if (relayed != Relay::kOk) {
        // The header is out: the only honest signal left is closing the connection.
        Inc(relayed == Relay::kReadFailed ? bad_gateway_ : nullptr);
        co_return false;
      }
    }
    Inc(proxied_);
    if (backend_keep_alive && rp->is_done() && up_buffer.size() == 0) {
      c.deadline.backend = nullptr;
      PutIdle(w, key, std::move(*up));
    }
    co_return keep_alive;
  }

  // Hands both sockets to a splice that copies bytes both ways until one side closes.
  Task<void> StartSplice(Client& c, beast::flat_buffer& up_buffer, Socket& up,
                                    const std::string& env) {
    beast::error_code ec;
    // Bytes that arrived behind the headers belong to the other side.
    if (up_buffer.size() > 0) {
      c.deadline.Arm(options_.read_timeout);
      co_await asio::async_write(c.stream, up_buffer.data(),
                                 asio::redirect_error(kAwait, ec));
      if (ec) co_return;
    }
    if (c.buffer.size() > 0) {
      c.deadline.Arm(options_.backend_timeout);
      co_await asio::async_write(up, c.buffer.data(),
                                 asio::redirect_error(kAwait, ec));
      if (ec) co_return;
    }
    c.upgraded = true;
    // From here the splice's own idle watchdog is in charge of both sockets.
    c.deadline.Disarm();
    c.deadline.client = nullptr;
    c.deadline.backend = nullptr;
    auto state =
        std::make_shared<SpliceState>(std::move(c.stream), std::move(up), env, connections_);
    auto ex = state->client.get_executor();
    asio::co_spawn(ex, Pump(state, true), asio::detached);
    asio::co_spawn(ex, Pump(state, false), asio::detached);
    asio::co_spawn(ex, Watch(state), asio::detached);
  }

  Task<void> Pump(std::shared_ptr<SpliceState> s, bool from_client) {
    Socket& from = from_client ? s->client : s->backend;
    Socket& to = from_client ? s->backend : s->client;
    std::array<char, size_t{16} * 1024> buf;
    beast::error_code ec;
    for (;;) {
      const size_t n = co_await from.async_read_some(asio::buffer(buf),
                                                     asio::redirect_error(kAwait, ec));
      if (ec) {
        if (ec == asio::error::eof) {
          // Half-close travels on; the other direction may still have bytes to deliver.
          beast::error_code ignored;
          to.shutdown(Socket::shutdown_send, ignored);
        } else {
          s->CloseBoth();
        }
        break;
      }
      s->last = SteadyClock::now();
      if (from_client) NoteActivity(s->env);
      co_await asio::async_write(to, asio::buffer(buf.data(), n),
                                 asio::redirect_error(kAwait, ec));
      if (ec) {
        s->CloseBoth();
        break;
      }
    }
    if (--s->running == 0) {
      s->CloseBoth();
      s->watchdog.cancel();
    }
  }

  Task<void> Watch(std::shared_ptr<SpliceState> s) {
    const auto idle = options_.websocket_idle_timeout;
    const auto period =
        std::max<std::chrono::milliseconds>(idle / 8, std::chrono::milliseconds(10));
    beast::error_code ec;
    while (s->running > 0) {
      s->watchdog.expires_after(period);
      co_await s->watchdog.async_wait(asio::redirect_error(kAwait, ec));
      if (s->running == 0) break;
      if (SteadyClock::now() - s->last >= idle) {
        s->CloseBoth();
        break;
      }
    }
  }

  GatewayOptions options_;
  BackendResolver resolver_;
  ActivitySink activity_;
  Clock& clock_;

  std::vector<std::unique_ptr<Worker>> workers_;
  std::optional<Acceptor> acceptor_;
  uint16_t port_ = 0;
  bool started_ = false;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> stopped_{false};
  std::atomic<int64_t> in_flight_{0};
  const int max_connections_;
  std::atomic<int64_t> connections_{0};
  // Every client connection being served (not spliced), for eviction.
  std::mutex conns_mu_;
  std::unordered_map<uint64_t, Registered> conns_;
  uint64_t next_conn_id_ = 0;  // guarded by conns_mu_
  LimitRecord limits_{"gateway"};          // the last limit hit, for Saturation()
  AcceptErrorLog accept_errors_{"gateway"};  // the accept loop's alone
  std::mutex mu_;
  std::condition_variable idle_cv_;

  std::mutex activity_mu_;
  std::map<std::string, TimePoint, std::less<>> last_activity_;
  asio::thread_pool activity_pool_;

  Counter* proxied_ = nullptr;
  Counter* not_found_ = nullptr;
  Counter* bad_gateway_ = nullptr;
  Counter* timeout_ = nullptr;
  Counter* bad_request_ = nullptr;
  Counter* connects_ = nullptr;
  Counter* websockets_ = nullptr;
};

Gateway::Gateway(GatewayOptions options, BackendResolver resolver, ActivitySink activity,
                 Clock& clock, MetricsRegistry* metrics)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(resolver), std::move(activity),
                                   clock, metrics)) {}
Gateway::~Gateway() = default;
absl::Status Gateway::Start() { return impl_->Start(); }
void Gateway::Stop() { impl_->Stop(); }
uint16_t Gateway::port() const { return impl_->port(); }
int64_t Gateway::in_flight() const { return impl_->in_flight(); }
int64_t Gateway::connections() const { return impl_->connections(); }
int Gateway::max_connections() const { return impl_->max_connections(); }
absl::Status Gateway::Saturation() const { return impl_->Saturation(); }

}  // namespace eph::gateway
