#include "test/github/standin_process.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <regex>

#include "absl/time/time.h"
#include "pkg/http/http_client.h"
#include "test/support/testbed.h"

namespace eph::testing {

using namespace std::chrono_literals;

StandInProcess::StandInProcess(std::vector<std::string> extra_args) {
  dir_ = MakeTempDir("standin");
  std::vector<std::string> argv = {
      EPH_NODE, SourceDir() + "/test/github/standin.mjs", "--port", "0", "--token", kStandInToken};
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  child_ = std::make_unique<ChildProcess>(argv, std::map<std::string, std::string>{}, dir_);
  auto port = child_->WaitForOutput(std::regex("listening on http://127\\.0\\.0\\.1:(\\d+)"), 30s);
  if (!port.has_value()) {
    ADD_FAILURE() << "the GitHub stand-in did not start:\n" << child_->Output();
    return;
  }
  url_ = "http://127.0.0.1:" + *port;
}

StandInProcess::~StandInProcess() {
  if (child_ && child_->started()) {
    child_->Signal(SIGTERM);
    child_->Wait(10s);
  }
}

nlohmann::json StandInProcess::Request(const std::string& method, const std::string& path,
                                       const nlohmann::json& body, bool allow_error) {
  http::Request exchange;
  exchange.method = method;
  exchange.url = url_ + path;
  exchange.headers = {"User-Agent: eph-test", "Content-Type: application/json"};
  if (!body.is_null()) exchange.body = body.dump();
  auto answer = http::Perform(exchange);
  if (!answer.ok()) {
    ADD_FAILURE() << method << " " << path << ": " << answer.status();
    return nullptr;
  }
  if (!allow_error && (answer->status < 200 || answer->status >= 300)) {
    ADD_FAILURE() << method << " " << path << " answered " << answer->status << ": "
                  << answer->body;
  }
  return nlohmann::json::parse(answer->body, nullptr, false);
}

nlohmann::json StandInProcess::Requests(int64_t since) {
  return Request("GET", "/_standin/requests?since=" + std::to_string(since));
}

TimePoint StandInProcess::Now() {
  nlohmann::json state = Request("GET", "/_standin/state");
  absl::Time t;
  std::string error;
  if (!state.is_object() ||
      !absl::ParseTime(absl::RFC3339_full, state.value("now", ""), &t, &error)) {
    ADD_FAILURE() << "no clock in the stand-in's state";
    return TimePoint{};
  }
  return std::chrono::time_point_cast<Duration>(absl::ToChronoTime(t));
}

void StandInProcess::AdvanceClock(std::chrono::seconds by) {
  Request("POST", "/_standin/clock", {{"advance_seconds", by.count()}});
}

}  // namespace eph::testing
