#pragma once
// The gateway's own HTTP/1 wire steps for its common path: reading a header and writing one.
// They do what Beast's http::async_read_header and serializer do, with fewer layers, and are
// tested against them (http_wire_test.cc). Bodies that stream still go through Beast.

#include <utility>  // first: Boost 1.74's awaitable.hpp uses std::exchange without it

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/read_size.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <chrono>
#include <string>
#include <string_view>

namespace eph::gateway {

namespace wire {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using SteadyClock = std::chrono::steady_clock;
using tcp = asio::ip::tcp;

// Every socket, timer and coroutine of the gateway runs on one worker's io_context: naming its
// executor type, instead of the type-erased any_io_executor default, saves a type-erased copy
// and call on every operation of the request path.
using Executor = asio::io_context::executor_type;
using Socket = asio::basic_stream_socket<tcp, Executor>;
using Acceptor = asio::basic_socket_acceptor<tcp, Executor>;
using Timer = asio::basic_waitable_timer<SteadyClock, asio::wait_traits<SteadyClock>, Executor>;
template <typename T>
using Task = asio::awaitable<T, Executor>;
constexpr asio::use_awaitable_t<Executor> kAwait;

// Reads until `p` has a whole header, as http::async_read_header does (the same errors:
// end_of_stream when the peer closed before a byte, partial_message when it closed mid-header,
// header_limit, buffer_overflow), without the layers of composed operations around each read:
// the request path spends fewer instructions in the loop than in Beast's wrapper.
template <bool isRequest>
Task<void> ReadHeader(Socket& from, beast::flat_buffer& buffer,
                      http::parser<isRequest, http::buffer_body>& p, beast::error_code& ec) {
  ec = {};
  for (;;) {
    if (buffer.size() > 0) {
      const size_t used = p.put(buffer.data(), ec);
      buffer.consume(used);
      if (ec == http::error::need_more) {
        ec = {};
      } else if (ec || p.is_header_done()) {
        co_return;
      }
    }
    const size_t size = beast::read_size(buffer, 65536);
    if (size == 0) {
      ec = http::error::buffer_overflow;
      co_return;
    }
    const size_t n = co_await from.async_read_some(buffer.prepare(size),
                                                   asio::redirect_error(kAwait, ec));
    if (ec == asio::error::eof) {
      if (!p.got_some()) {
        ec = http::error::end_of_stream;
      } else {
        p.put_eof(ec);
        if (!ec) ec = http::error::partial_message;  // a header cannot end at EOF
      }
      co_return;
    }
    if (ec) co_return;
    buffer.commit(n);
  }
}

// Appends `h` as Beast's serializer would write it: the start line, then every field as stored.
// The fields already carry what keep_alive() and chunked() set, so nothing else is added.
template <bool isRequest>
void SerializeHeader(std::string& out, const http::header<isRequest>& h) {
  const unsigned version = h.version();
  const char http_version[] = {'H', 'T', 'T', 'P', '/', static_cast<char>('0' + version / 10 % 10),
                               '.', static_cast<char>('0' + version % 10)};
  const std::string_view v(http_version, sizeof http_version);
  using namespace std::string_view_literals;
  if constexpr (isRequest) {
    out.append(h.method_string()).append(" "sv).append(h.target()).append(" "sv).append(v);
  } else {
    const unsigned code = h.result_int();
    const char digits[] = {static_cast<char>('0' + code / 100 % 10),
                           static_cast<char>('0' + code / 10 % 10),
                           static_cast<char>('0' + code % 10), ' '};
    std::string_view reason = h.reason();
    if (reason.empty()) reason = http::obsolete_reason(h.result());
    out.append(v).append(" "sv).append(digits, 4).append(reason);
  }
  out.append("\r\n"sv);
  for (const auto& field : h) {
    out.append(field.name_string()).append(": "sv).append(field.value()).append("\r\n"sv);
  }
  out.append("\r\n"sv);
}

}  // namespace wire
}  // namespace eph::gateway
