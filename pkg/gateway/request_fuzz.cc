// libFuzzer target for the gateway's request parsing: raw bytes through Beast's request parser
// (header limit as the gateway sets it), then CheckRequest. Never a crash, and whatever
// CheckRequest lets through is framed and routed one way only:
// - a Transfer-Encoding that passed is the one Beast decodes as chunked (no smuggled body);
// - the target sent on is origin-form (or "*" for OPTIONS), the host one clean authority;
// - an absolute-form target and its Host field select the same environment.
// Built as a real fuzzer with -DEPH_FUZZ=ON (clang); in every build its seed corpus
// (pkg/gateway/testdata/fuzz-corpus) runs as an ordinary test (request_fuzz_corpus_test.cc).
#include <boost/asio/buffer.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <string_view>

#include "pkg/gateway/request_check.h"

namespace http = boost::beast::http;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  http::request_parser<http::buffer_body> parser;
  parser.header_limit(64 * 1024);  // GatewayOptions::max_header_bytes' default
  parser.body_limit(std::numeric_limits<uint64_t>::max());
  boost::beast::error_code ec;
  parser.put(boost::asio::buffer(data, size), ec);
  if (ec || !parser.is_header_done()) return 0;
  const auto& header = parser.get().base();
  const auto route = eph::gateway::CheckRequest(header);
  if (!route.ok()) {
    const unsigned status = eph::gateway::HttpStatusFor(route.status());
    if (status != 400 && status != 501) std::abort();
    return 0;
  }
  if (header.count(http::field::transfer_encoding) > 0 && !parser.chunked()) std::abort();
  if (header.count(http::field::transfer_encoding) > 0 &&
      header.count(http::field::content_length) > 0) {
    std::abort();
  }
  if (header.count(http::field::host) > 1) std::abort();
  const std::string_view target = route->target;
  if (target != "*" && (target.empty() || target.front() != '/')) std::abort();
  if (target == "*" && header.method() != http::verb::options) std::abort();
  if (route->host.find_first_of(" \t\r\n/@?#") != std::string::npos) std::abort();
  // Whichever of target and Host a later hop routes by, it reaches the same environment.
  const auto env = eph::gateway::EnvironmentFromHost(route->host, "preview.localhost");
  if (route->host_replaced && header.count(http::field::host) == 1) {
    const auto& host = header[http::field::host];
    const auto by_host =
        eph::gateway::EnvironmentFromHost({host.data(), host.size()}, "preview.localhost");
    if (by_host != env) std::abort();
  }
  return 0;
}
