#include "pkg/gateway/http_wire.h"

#include <gtest/gtest.h>

#include <boost/asio.hpp>
#include <boost/beast/http.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace eph::gateway::wire {
namespace {

// What Beast's serializer writes for a header.
template <bool isRequest, class Fields>
std::string BeastHeader(const http::header<isRequest, Fields>& h) {
  std::ostringstream os;
  os << h;
  return os.str();
}

template <bool isRequest>
std::string Ours(const http::header<isRequest>& h) {
  std::string out = "stale";  // appended to, so a caller's buffer is reused
  out.clear();
  SerializeHeader(out, h);
  return out;
}

TEST(HttpWireTest, HeadersAreWrittenAsBeastWritesThem) {
  http::request<http::empty_body> get{http::verb::get, "/a/b?c=d&e", 11};
  get.set(http::field::host, "shop.preview.localhost");
  get.set("X-Forwarded-For", "127.0.0.1, 10.0.0.1");
  get.insert("X-Dup", "1");
  get.insert("X-Dup", "2");
  get.keep_alive(false);
  EXPECT_EQ(Ours(get.base()), BeastHeader(get.base()));

  http::request<http::empty_body> purge;
  purge.method_string("PURGE");
  purge.target("*");
  purge.version(10);
  EXPECT_EQ(Ours(purge.base()), BeastHeader(purge.base()));
  EXPECT_EQ(Ours(purge.base()), "PURGE * HTTP/1.0\r\n\r\n");

  for (unsigned code : {200u, 204u, 299u, 404u, 502u, 599u}) {
    for (unsigned version : {10u, 11u}) {
      http::response<http::empty_body> res{static_cast<http::status>(code), version};
      res.set(http::field::server, "backend");
      res.chunked(true);
      EXPECT_EQ(Ours(res.base()), BeastHeader(res.base())) << code << " " << version;
    }
  }
}

// Headers as the gateway sees them: parsed off the wire, with the peer's own reason phrase,
// method and field spellings.
TEST(HttpWireTest, ParsedHeadersAreWrittenAsBeastWritesThem) {
  for (const char* raw : {
           "HTTP/1.1 200 Okay Then\r\nContent-Length: 0\r\nx-lower: v\r\n\r\n",
           "HTTP/1.1 299 \r\nContent-Length: 0\r\n\r\n",
           "HTTP/1.0 503 Service Unavailable\r\nRetry-After: 5\r\nRetry-After: 6\r\n\r\n",
       }) {
    http::response_parser<http::buffer_body> p;
    beast::error_code ec;
    p.put(asio::buffer(std::string_view(raw)), ec);
    ASSERT_FALSE(ec) << raw << ": " << ec.message();
    ASSERT_TRUE(p.is_header_done()) << raw;
    EXPECT_EQ(Ours(p.get().base()), BeastHeader(p.get().base())) << raw;
  }
  for (const char* raw : {"GET /x HTTP/1.1\r\nHost: a\r\nAccept:  */*  \r\n\r\n",
                          "BREW /pot HTTP/1.1\r\nHost: a\r\n\r\n"}) {
    http::request_parser<http::buffer_body> p;
    beast::error_code ec;
    p.put(asio::buffer(std::string_view(raw)), ec);
    ASSERT_FALSE(ec) << raw << ": " << ec.message();
    EXPECT_EQ(Ours(p.get().base()), BeastHeader(p.get().base())) << raw;
  }
}

struct ReadResult {
  beast::error_code ec;
  std::string header;  // as Beast writes the parsed header, if one was read
  size_t left = 0;     // bytes the buffer holds past the header
};

// Sends `chunks` (closing after them if `close`) to a reader over a loopback connection and
// returns what it made of them: ours (`beast_reader` false) or Beast's async_read_header.
ReadResult ReadOverSocket(const std::vector<std::string>& chunks, bool close, bool beast_reader) {
  asio::io_context io;
  Acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  const auto endpoint = acceptor.local_endpoint();
  std::thread writer([&] {
    asio::io_context wio;
    tcp::socket s(wio);
    s.connect(endpoint);
    for (const auto& chunk : chunks) {
      asio::write(s, asio::buffer(chunk));
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    if (close) {
      s.shutdown(tcp::socket::shutdown_send);
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
  });
  ReadResult result;
  asio::co_spawn(
      io,
      [&]() -> Task<void> {
        Socket s = co_await acceptor.async_accept(kAwait);
        beast::flat_buffer buffer;
        http::request_parser<http::buffer_body> p;
        p.header_limit(64);
        if (beast_reader) {
          co_await http::async_read_header(s, buffer, p,
                                           asio::redirect_error(kAwait, result.ec));
        } else {
          co_await ReadHeader(s, buffer, p, result.ec);
        }
        if (!result.ec) result.header = BeastHeader(p.get().base());
        result.left = buffer.size();
      },
      asio::detached);
  io.run_for(std::chrono::seconds(5));
  writer.join();
  return result;
}

TEST(HttpWireTest, HeadersAreReadAsBeastReadsThem) {
  struct Case {
    std::vector<std::string> chunks;
    bool close;
  };
  const std::vector<Case> cases = {
      {{"GET / HTTP/1.1\r\nHost: a\r\n\r\n"}, false},
      {{"GET / HT", "TP/1.1\r\nHo", "st: a\r", "\n\r\n"}, false},      // split anywhere
      {{"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc"}, false},  // body left
      {{}, true},                                                    // closed before a byte
      {{"GET / HTTP/1.1\r\nHost: a\r\n"}, true},                     // closed mid-header
      {{"GET /" + std::string(100, 'x') + " HTTP/1.1\r\n\r\n"}, false},  // over the limit
      {{"GET / HTTP/1.1\r\nBad Field: x\r\n\r\n"}, false},           // malformed
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    const ReadResult beast = ReadOverSocket(cases[i].chunks, cases[i].close, true);
    const ReadResult ours = ReadOverSocket(cases[i].chunks, cases[i].close, false);
    EXPECT_EQ(ours.ec, beast.ec) << "case " << i << ": " << ours.ec.message() << " vs "
                                 << beast.ec.message();
    EXPECT_EQ(ours.header, beast.header) << "case " << i;
    EXPECT_EQ(ours.left, beast.left) << "case " << i;
  }
}

}  // namespace
}  // namespace eph::gateway::wire
