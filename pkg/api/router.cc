#include "pkg/api/router.h"

#include "pkg/server/errors.h"

namespace eph::api {
namespace {

// The segments of a canonical path (server::ParseRequestTarget), exactly: "/a/b/" is
// {"a", "b", ""} and does not match "/a/b". Nothing is dropped or merged, so the router sees the
// very path the auth check saw.
std::vector<std::string> Split(const std::string& path) {
  std::vector<std::string> out;
  if (path.empty() || path == "/") return out;
  size_t i = path.front() == '/' ? 1 : 0;
  for (;;) {
    const size_t j = path.find('/', i);
    out.push_back(path.substr(i, j == std::string::npos ? std::string::npos : j - i));
    if (j == std::string::npos) break;
    i = j + 1;
  }
  return out;
}

bool Match(const std::vector<std::string>& pattern, const std::vector<std::string>& path,
           PathParams& params) {
  if (pattern.size() != path.size()) return false;
  for (size_t i = 0; i < pattern.size(); ++i) {
    const std::string& p = pattern[i];
    if (p.size() > 2 && p.front() == '{' && p.back() == '}') {
      params[p.substr(1, p.size() - 2)] = path[i];
    } else if (p != path[i]) {
      return false;
    }
  }
  return true;
}

}  // namespace

void Router::Add(const std::string& method, const std::string& pattern, RouteHandler handler) {
  routes_.push_back({method, Split(pattern), std::move(handler)});
}

bool Router::Dispatch(const server::HttpRequest& req, server::HttpResponse& res) const {
  const auto path = Split(req.path);
  bool path_known = false;
  std::string allowed;
  for (const auto& route : routes_) {
    PathParams params;
    if (!Match(route.segments, path, params)) continue;
    path_known = true;
    const bool method_ok =
        route.method == req.method || (req.method == "HEAD" && route.method == "GET");
    if (method_ok) {
      route.handler(req, res, params);
      return true;
    }
    allowed += allowed.empty() ? route.method : ", " + route.method;
  }
  if (path_known) {
    res.SetJson(405, server::ErrorJson("method_not_allowed",
                                       req.method + " is not allowed here; use " + allowed));
    res.headers["Allow"] = allowed;
    return true;
  }
  res.SetJson(404, server::ErrorJson("not_found", "no such endpoint: " + req.path));
  return false;
}

}  // namespace eph::api
