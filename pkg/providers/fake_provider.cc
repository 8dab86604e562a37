#include "pkg/providers/fake_provider.h"

#include <algorithm>
#include <utility>

namespace eph::providers {

class FakeProvider::InFlight {
 public:
  InFlight(FakeProvider& fake, Method method, std::string environment)
      : fake_(fake), environment_(std::move(environment)) {
    CallHook hook;
    {
      std::lock_guard<std::mutex> lock(fake_.mu_);
      ++fake_.calls_[{method, environment_}];
      // ListOwned concerns no single environment: it is counted but never overlaps.
      if (!environment_.empty()) {
        const int now = ++fake_.in_flight_[environment_];
        fake_.max_concurrent_ = std::max(fake_.max_concurrent_, now);
      }
      hook = fake_.hook_;
    }
    if (hook) hook(method, environment_);
  }
  ~InFlight() {
    if (environment_.empty()) return;
    std::lock_guard<std::mutex> lock(fake_.mu_);
    --fake_.in_flight_[environment_];
  }
  InFlight(const InFlight&) = delete;
  InFlight& operator=(const InFlight&) = delete;

 private:
  FakeProvider& fake_;
  std::string environment_;
};

FakeProvider::FakeProvider(std::string name) : name_(std::move(name)) {}

ProviderInfo FakeProvider::Info() const { return {name_, "fake"}; }

std::optional<absl::Status> FakeProvider::TakeFailure(Method method) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& queue = failures_[method];
  if (queue.empty()) return std::nullopt;
  absl::Status status = std::move(queue.front());
  queue.pop_front();
  return status;
}

absl::StatusOr<ApplyResult> FakeProvider::Apply(const ApplyRequest& request) {
  InFlight in_flight(*this, Method::kApply, request.environment);
  if (auto failure = TakeFailure(Method::kApply)) return *failure;
  if (request.environment.empty()) return absl::InvalidArgumentError("environment is empty");
  std::lock_guard<std::mutex> lock(mu_);
  Record& record = records_[request.environment];
  record.request = request;
  record.phase = phase_after_apply_;
  record.message = phase_after_apply_ == Phase::kReady ? "" : "rolling out";
  record.component_lost = false;
  last_apply_[request.environment] = request;
  ApplyResult result{"fake/" + request.namespace_name, "applied", {"app"}};
  if (needs_reapply_ > 0) {
    --needs_reapply_;
    result.needs_reapply = true;
  }
  return result;
}

absl::StatusOr<Observation> FakeProvider::Observe(const EnvironmentRef& ref) {
  InFlight in_flight(*this, Method::kObserve, ref.environment);
  if (auto failure = TakeFailure(Method::kObserve)) return *failure;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = records_.find(ref.environment);
  if (it == records_.end()) return Observation{};
  Observation obs;
  obs.phase = it->second.phase;
  obs.message = it->second.message;
  obs.url = it->second.url;
  if (!it->second.component_lost) {
    obs.components.push_back({"app", it->second.phase, it->second.message});
  }
  return obs;
}

absl::StatusOr<DestroyResult> FakeProvider::Destroy(const EnvironmentRef& ref) {
  InFlight in_flight(*this, Method::kDestroy, ref.environment);
  if (auto failure = TakeFailure(Method::kDestroy)) return *failure;
  std::lock_guard<std::mutex> lock(mu_);
  if (destroy_pending_ > 0) {
    --destroy_pending_;
    return DestroyResult{false, "namespace is terminating"};
  }
  records_.erase(ref.environment);
  std::erase_if(foreign_, [&](const OwnedObject& o) { return o.environment == ref.environment; });
  return DestroyResult{true, ""};
}

absl::Status FakeProvider::Logs(const LogsRequest& request, const LogSink& sink) {
  InFlight in_flight(*this, Method::kLogs, request.environment);
  if (auto failure = TakeFailure(Method::kLogs)) return *failure;
  std::vector<LogLine> lines;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!records_.contains(request.environment)) {
      return absl::NotFoundError("environment " + request.environment + " does not exist");
    }
    auto it = logs_.find(request.environment);
    if (it != logs_.end()) lines = it->second;
  }
  for (const LogLine& line : lines) {
    if (!request.component.empty() && line.component != request.component) continue;
    if (!sink(line)) break;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<OwnedObject>> FakeProvider::ListOwned() {
  InFlight in_flight(*this, Method::kListOwned, "");
  if (auto failure = TakeFailure(Method::kListOwned)) return *failure;
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<OwnedObject> out;
  for (const auto& [environment, record] : records_) {
    const auto installation = record.request.labels.find(kInstallationLabel);
    out.push_back({"Namespace", record.request.namespace_name, "", environment,
                   installation == record.request.labels.end() ? "" : installation->second});
  }
  out.insert(out.end(), foreign_.begin(), foreign_.end());
  return out;
}

void FakeProvider::FailNext(Method method, absl::Status status) {
  std::lock_guard<std::mutex> lock(mu_);
  failures_[method].push_back(std::move(status));
}

void FakeProvider::SetNeedsReapply(int n) {
  std::lock_guard<std::mutex> lock(mu_);
  needs_reapply_ = n;
}

void FakeProvider::SetPhaseAfterApply(Phase phase) {
  std::lock_guard<std::mutex> lock(mu_);
  phase_after_apply_ = phase;
}

void FakeProvider::SetPhase(const std::string& environment, Phase phase, std::string message) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = records_.find(environment);
  if (it == records_.end()) return;
  it->second.phase = phase;
  it->second.message = std::move(message);
}

void FakeProvider::LoseComponent(const std::string& environment) {
  std::lock_guard<std::mutex> lock(mu_);
  records_[environment].component_lost = true;
}

void FakeProvider::SetUrl(const std::string& environment, std::string url) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = records_.find(environment);
  if (it != records_.end()) it->second.url = std::move(url);
}

absl::StatusOr<DatabaseServer> FakeProvider::EnsureDatabaseServer(
    const DatabaseServerRequest& request) {
  InFlight in_flight(*this, Method::kEnsureDatabaseServer, request.environment);
  if (auto failure = TakeFailure(Method::kEnsureDatabaseServer)) return *failure;
  std::lock_guard<std::mutex> lock(mu_);
  database_servers_[request.environment] = request;
  DatabaseServer out;
  if (database_server_pending_ > 0) {
    --database_server_pending_;
    out.message = "database `" + request.name + "`: starting";
    return out;
  }
  out.ready = true;
  out.admin_url = kFakeDatabaseAdminUrl;
  out.app_host = request.name;
  out.app_port = 5432;
  return out;
}

void FakeProvider::SetDatabaseServerPending(int n) {
  std::lock_guard<std::mutex> lock(mu_);
  database_server_pending_ = n;
}

std::optional<DatabaseServerRequest> FakeProvider::LastDatabaseServer(
    const std::string& environment) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = database_servers_.find(environment);
  if (it == database_servers_.end()) return std::nullopt;
  return it->second;
}

void FakeProvider::SetDestroyPending(int n) {
  std::lock_guard<std::mutex> lock(mu_);
  destroy_pending_ = n;
}

void FakeProvider::AddForeignObject(OwnedObject object) {
  std::lock_guard<std::mutex> lock(mu_);
  foreign_.push_back(std::move(object));
}

void FakeProvider::SetLogs(const std::string& environment, std::vector<LogLine> lines) {
  std::lock_guard<std::mutex> lock(mu_);
  logs_[environment] = std::move(lines);
}

void FakeProvider::SetCallHook(CallHook hook) {
  std::lock_guard<std::mutex> lock(mu_);
  hook_ = std::move(hook);
}

int64_t FakeProvider::Calls(Method method) const {
  std::lock_guard<std::mutex> lock(mu_);
  int64_t total = 0;
  for (const auto& [key, n] : calls_) {
    if (key.first == method) total += n;
  }
  return total;
}

int64_t FakeProvider::Calls(Method method, const std::string& environment) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = calls_.find({method, environment});
  return it == calls_.end() ? 0 : it->second;
}

std::set<std::string> FakeProvider::Existing() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::set<std::string> out;
  for (const auto& [environment, record] : records_) out.insert(environment);
  return out;
}

bool FakeProvider::Exists(const std::string& environment) const {
  std::lock_guard<std::mutex> lock(mu_);
  return records_.contains(environment);
}

std::optional<ApplyRequest> FakeProvider::LastApply(const std::string& environment) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = last_apply_.find(environment);
  if (it == last_apply_.end()) return std::nullopt;
  return it->second;
}

int FakeProvider::MaxConcurrentPerEnvironment() const {
  std::lock_guard<std::mutex> lock(mu_);
  return max_concurrent_;
}

}  // namespace eph::providers
