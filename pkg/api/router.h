// Router: maps (method, path pattern) to handlers. Patterns are literal segments and `{name}`
// captures, e.g. /api/v1/environments/{name}/logs. A known path with an unknown method is 405,
// an unknown path 404, both as JSON errors.
//
// Thread-safety: build it once, then Dispatch from any thread.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "pkg/server/http.h"

namespace eph::api {

using PathParams = std::map<std::string, std::string>;
using RouteHandler =
    std::function<void(const server::HttpRequest&, server::HttpResponse&, const PathParams&)>;

class Router {
 public:
  void Add(const std::string& method, const std::string& pattern, RouteHandler handler);
  // Returns false if no route matched the path (the response is then a 404 or 405).
  bool Dispatch(const server::HttpRequest& req, server::HttpResponse& res) const;

 private:
  struct Route {
    std::string method;
    std::vector<std::string> segments;
    RouteHandler handler;
  };
  std::vector<Route> routes_;
};

}  // namespace eph::api
