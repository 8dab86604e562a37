// StandInProcess: the GitHub stand-in (standin.mjs) as a child process for one test, on port 0,
// with a small client for its control API (/_standin/). See docs/github-standin.md.
//
// Thread-safety: one owner thread.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "nlohmann/json.hpp"
#include "pkg/base/clock.h"
#include "test/support/process.h"

namespace eph::testing {

inline constexpr char kStandInToken[] = "ghp_standin_test_token";

class StandInProcess {
 public:
  // Starts `node standin.mjs --port 0 --token kStandInToken` plus `extra_args`; records a test
  // failure (and url() is empty) when it does not come up.
  explicit StandInProcess(std::vector<std::string> extra_args = {});
  ~StandInProcess();

  const std::string& url() const { return url_; }

  // A control or API request; records a failure on a non-2xx answer unless `allow_error`.
  nlohmann::json Request(const std::string& method, const std::string& path,
                         const nlohmann::json& body = nullptr, bool allow_error = false);

  nlohmann::json Violations() { return Request("GET", "/_standin/violations"); }
  nlohmann::json State() { return Request("GET", "/_standin/state"); }
  // API requests logged so far (not control calls).
  nlohmann::json Requests(int64_t since = 0);
  // The stand-in's clock, so a FakeClock can keep time with it (JWTs and token expiry).
  TimePoint Now();
  void AdvanceClock(std::chrono::seconds by);

 private:
  std::string dir_;
  std::unique_ptr<ChildProcess> child_;
  std::string url_;
};

}  // namespace eph::testing
