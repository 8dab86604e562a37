#include "pkg/providers/docker/start_probe.h"

#include <algorithm>
#include <utility>

#include "absl/time/time.h"
#include "fmt/format.h"
#include "pkg/providers/docker/container_spec.h"

namespace eph::providers::docker {

using nlohmann::json;

namespace {

// A field of the engine's JSON; null when `o` is no object or lacks it.
json At(const json& o, const char* key) {
  return o.is_object() && o.contains(key) ? o[key] : json();
}

// A number field of the engine's JSON, 0 when missing or not a number.
int64_t Nanos(const json& o, const char* key) {
  return o.is_object() && o.contains(key) && o[key].is_number_integer() ? o[key].get<int64_t>() : 0;
}

std::string Text(const json& o, const char* key) {
  return o.is_object() && o.contains(key) && o[key].is_string() ? o[key].get<std::string>() : "";
}

// The engine's default check timeout (30s) when the compose file names none.
constexpr int64_t kDefaultTimeoutNanos = 30'000'000'000;

}  // namespace

std::optional<StartProbe> StartProbeOf(const json& container, const std::string& environment) {
  const json config = At(container, "Config");
  const std::string label = Text(At(config, "Labels"), kStartIntervalLabel);
  const json health = At(config, "Healthcheck");
  if (label.empty() || !health.is_object() || Nanos(health, "StartInterval") > 0) {
    return std::nullopt;
  }
  int64_t interval = 0;
  for (const char c : label) {
    if (c < '0' || c > '9' || interval > (INT64_MAX - 9) / 10) return std::nullopt;
    interval = interval * 10 + (c - '0');
  }
  const json test = At(health, "Test");
  if (interval == 0 || !test.is_array() || test.size() < 2 || !test[0].is_string()) {
    return std::nullopt;
  }
  StartProbe probe;
  for (size_t i = 1; i < test.size(); ++i) {
    if (!test[i].is_string()) return std::nullopt;
    probe.command.push_back(test[i].get<std::string>());
  }
  if (test[0] == "CMD-SHELL") {
    probe.command = {"/bin/sh", "-c", probe.command[0]};  // the engine's shell on Linux
  } else if (test[0] != "CMD") {
    return std::nullopt;
  }
  absl::Time started;
  std::string err;
  if (!absl::ParseTime(absl::RFC3339_full, Text(At(container, "State"), "StartedAt"), &started,
                       &err)) {
    return std::nullopt;
  }
  probe.container_id = Text(container, "Id");
  probe.environment = environment;
  probe.started = absl::ToChronoTime(started);
  probe.start_interval = std::chrono::nanoseconds(interval);
  probe.start_period = std::chrono::nanoseconds(Nanos(health, "StartPeriod"));
  const int64_t timeout = Nanos(health, "Timeout");
  probe.timeout = std::chrono::nanoseconds(timeout > 0 ? timeout : kDefaultTimeoutNanos);
  return probe;
}

absl::StatusOr<int> ExecCheck(const EngineClient& engine, const StartProbe& probe) {
  const json create = {{"Cmd", probe.command}, {"AttachStdout", true}, {"AttachStderr", true}};
  absl::StatusOr<EngineResponse> made =
      engine.Post(fmt::format("/containers/{}/exec", probe.container_id), create.dump());
  if (!made.ok()) return made.status();
  if (made->status != 201) return ErrorFromResponse(*made, "starting a healthcheck");
  const std::string exec = Text(json::parse(made->body, nullptr, false), "Id");
  EngineRequest start;
  start.method = "POST";
  start.path = fmt::format("/exec/{}/start", exec);
  start.body = R"({"Detach":false,"Tty":false})";
  start.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(probe.timeout);
  // Attached, the answer lasts as long as the command; its output is not needed.
  start.on_body = [](std::string_view) { return true; };
  absl::StatusOr<EngineResponse> ran = engine.Perform(start);
  if (!ran.ok()) return ran.status();
  if (ran->status != 200) return ErrorFromResponse(*ran, "running a healthcheck");
  absl::StatusOr<EngineResponse> ended = engine.Get(fmt::format("/exec/{}/json", exec));
  if (!ended.ok()) return ended.status();
  if (ended->status != 200) return ErrorFromResponse(*ended, "reading a healthcheck's result");
  const json result = json::parse(ended->body, nullptr, false);
  if (At(result, "Running") != json(false) || !At(result, "ExitCode").is_number_integer()) {
    return absl::DeadlineExceededError("the healthcheck did not end");
  }
  return result["ExitCode"].get<int>();
}

StartProber::StartProber(const Clock& clock, Runner runner, Options options)
    : clock_(clock), runner_(std::move(runner)), options_(options) {}

StartProber::~StartProber() {
  thread_.request_stop();
  if (thread_.joinable()) thread_.join();
}

void StartProber::Track(StartProbe probe) {
  const TimePoint now = clock_.Now();
  if (now >= probe.started + probe.start_period) return;
  std::lock_guard<std::mutex> lock(mu_);
  const std::string id = probe.container_id;  // a copy: `probe` is moved below
  if (passed_.count(id) > 0 || tracked_.count(id) > 0) return;
  if (tracked_.size() >= options_.max_tracked) return;
  const TimePoint first = std::max(now, probe.started + probe.start_interval);
  tracked_.emplace(id, Entry{std::move(probe), first});
  changed_ = true;
  if (options_.background && !thread_.joinable()) {
    thread_ = std::jthread([this](std::stop_token stop) { Loop(stop); });
  }
  wake_.notify_all();
}

bool StartProber::Passed(const std::string& container_id) const {
  std::lock_guard<std::mutex> lock(mu_);
  return passed_.count(container_id) > 0;
}

void StartProber::Forget(const std::string& container_id) {
  std::lock_guard<std::mutex> lock(mu_);
  tracked_.erase(container_id);
  if (passed_.erase(container_id) > 0) {
    passed_order_.erase(std::find(passed_order_.begin(), passed_order_.end(), container_id));
  }
}

size_t StartProber::Tracked() const {
  std::lock_guard<std::mutex> lock(mu_);
  return tracked_.size();
}

uint64_t StartProber::AddSink(ChangeSink sink) {
  std::lock_guard<std::mutex> lock(sinks_mu_);
  sinks_.emplace(next_sink_, std::move(sink));
  return next_sink_++;
}

void StartProber::RemoveSink(uint64_t id) {
  // Announce holds the lock while it calls, so no call is left running after this returns.
  std::lock_guard<std::mutex> lock(sinks_mu_);
  sinks_.erase(id);
}

std::optional<TimePoint> StartProber::RunDue() {
  std::vector<StartProbe> due;
  {
    const TimePoint now = clock_.Now();
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& entry : tracked_) {
      if (entry.second.next <= now) due.push_back(entry.second.probe);
    }
  }
  for (const StartProbe& probe : due) {
    // The engine's exec is called without the lock: a slow check must not block Observe.
    const absl::StatusOr<int> code = runner_(probe);
    if (Record(probe.container_id, code, clock_.Now())) Announce(probe.environment);
  }
  std::lock_guard<std::mutex> lock(mu_);
  std::optional<TimePoint> next;
  for (const auto& entry : tracked_) {
    if (!next || entry.second.next < *next) next = entry.second.next;
  }
  return next;
}

bool StartProber::Record(const std::string& id, const absl::StatusOr<int>& code, TimePoint at) {
  std::lock_guard<std::mutex> lock(mu_);
  const auto it = tracked_.find(id);
  if (it == tracked_.end()) return false;  // forgotten while its check ran
  if (code.ok() && *code == 0) {
    tracked_.erase(it);
    passed_[id] = at;
    passed_order_.push_back(id);
    if (passed_order_.size() > options_.max_passed) {
      passed_.erase(passed_order_.front());
      passed_order_.pop_front();
    }
    return true;
  }
  const StartProbe& probe = it->second.probe;
  it->second.next = at + probe.start_interval;
  if (absl::IsNotFound(code.status()) || absl::IsFailedPrecondition(code.status()) ||
      it->second.next >= probe.started + probe.start_period) {
    tracked_.erase(it);
  }
  return false;
}

void StartProber::Announce(const std::string& environment) {
  std::lock_guard<std::mutex> lock(sinks_mu_);
  for (const auto& sink : sinks_) sink.second(EnvironmentChange{environment});
}

void StartProber::Loop(std::stop_token stop) {
  while (!stop.stop_requested()) {
    const std::optional<TimePoint> next = RunDue();
    std::unique_lock<std::mutex> lock(mu_);
    if (changed_) {
      changed_ = false;
      continue;
    }
    // The wait is real time; the due times are on the injected clock, which is the system
    // clock wherever this thread runs.
    auto woken = [this] { return changed_; };
    if (next) {
      wake_.wait_for(lock, stop, *next - clock_.Now(), woken);
    } else {
      wake_.wait(lock, stop, woken);
    }
    changed_ = false;
  }
}

}  // namespace eph::providers::docker
