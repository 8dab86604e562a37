// CheckRequest: the gateway's framing and routing rules for one parsed request header, kept apart
// from the proxy so that it can be unit-tested and fuzzed on its own (pkg/gateway/request_fuzz.cc).
//
// Beast's parser accepts some requests a proxy must not pass on, because the backend may frame
// or route them differently from the gateway (request smuggling, RFC 9112 §6.3 and §11.2):
// - more than one Host field, or none in HTTP/1.1 (RFC 9112 §3.2);
// - a Transfer-Encoding that is not exactly one field `chunked`: Beast treats an unknown coding
//   as "no body", so the body would be parsed as the next request;
// - Transfer-Encoding together with Content-Length, or several Content-Length values;
// - request targets other than origin-form, absolute-form, `OPTIONS *` (RFC 9112 §3.2).
// An absolute-form target routes by its authority, which replaces Host (RFC 9112 §3.2.2); the
// backend gets the origin-form path. A Host field naming another authority (other than by case
// or the scheme's default port) is refused rather than ignored: a hop that routes by Host would
// send the request elsewhere.
//
// Errors (the gateway answers and closes the connection, as framing can no longer be trusted):
// InvalidArgument → 400, Unimplemented → 501 (a transfer coding the gateway does not know, or
// CONNECT: the gateway is no forward proxy). HttpStatusFor maps them.
//
// EnvironmentFromHost then maps the routing host to an environment name.
//
// Thread-safety: pure functions.
#pragma once

#include <boost/beast/http/fields.hpp>
#include <boost/beast/http/message.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace eph::gateway {

struct RequestRoute {
  std::string host;            // the authority that routes the request, as sent (may carry a port)
  std::string target;          // what to send the backend: origin-form, or "*" for OPTIONS *
  bool host_replaced = false;  // absolute-form: `host` must replace the Host field
};

absl::StatusOr<RequestRoute> CheckRequest(
    const boost::beast::http::request_header<boost::beast::http::fields>& header);

// The environment name a Host header selects, or nullopt if the host is not
// `<name>.<base_domain>[:port]` with one DNS label as name. Case-insensitive; returns lower case.
std::optional<std::string> EnvironmentFromHost(std::string_view host, std::string_view base_domain);

// The status the gateway answers a CheckRequest error with: 400 or 501.
unsigned HttpStatusFor(const absl::Status& status);

}  // namespace eph::gateway
