#include "pkg/providers/provider.h"

#include <algorithm>
#include <mutex>
#include <utility>

namespace eph::providers {

std::string_view PhaseName(Phase phase) {
  switch (phase) {
    case Phase::kAbsent:
      return "absent";
    case Phase::kProgressing:
      return "progressing";
    case Phase::kReady:
      return "ready";
    case Phase::kFailed:
      return "failed";
  }
  return "unknown";
}

absl::StatusOr<DatabaseServer> Provider::EnsureDatabaseServer(const DatabaseServerRequest&) {
  return absl::FailedPreconditionError(
      "the " + Info().name +
      " provider cannot run a database server inside the environment yet; use the shared "
      "server (database.instances[].placement: shared, the default)");
}

absl::Status Provider::WatchChanges(const ChangeSink&, std::stop_token) {
  return absl::UnimplementedError("the " + Info().name + " provider has no change stream");
}

struct ProviderRegistry::State {
  mutable std::mutex mu;
  std::map<std::string, ProviderFactory, std::less<>> factories;
  std::map<std::string, std::unique_ptr<Provider>, std::less<>> enabled;
};

ProviderRegistry::ProviderRegistry() : state_(std::make_unique<State>()) {}
ProviderRegistry::~ProviderRegistry() = default;

absl::Status ProviderRegistry::RegisterFactory(const std::string& name, ProviderFactory factory) {
  if (name.empty() || !factory) {
    return absl::InvalidArgumentError("provider factory needs a name and a function");
  }
  std::lock_guard<std::mutex> lock(state_->mu);
  if (!state_->factories.emplace(name, std::move(factory)).second) {
    return absl::AlreadyExistsError("provider factory '" + name + "' is already registered");
  }
  return absl::OkStatus();
}

absl::Status ProviderRegistry::Enable(const std::string& name, const ProviderSettings& settings) {
  ProviderFactory factory;
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    auto it = state_->factories.find(name);
    if (it == state_->factories.end()) {
      return absl::NotFoundError("no provider called '" + name + "' is built into this ephd");
    }
    if (state_->enabled.contains(name)) {
      return absl::AlreadyExistsError("provider '" + name + "' is already enabled");
    }
    factory = it->second;
  }
  // The factory may connect somewhere; never under the lock.
  absl::StatusOr<std::unique_ptr<Provider>> provider = factory(settings);
  if (!provider.ok()) return provider.status();
  if (*provider == nullptr) return absl::InternalError("provider factory returned nothing");
  std::lock_guard<std::mutex> lock(state_->mu);
  if (!state_->enabled.emplace(name, std::move(*provider)).second) {
    return absl::AlreadyExistsError("provider '" + name + "' is already enabled");
  }
  return absl::OkStatus();
}

absl::Status ProviderRegistry::Add(std::unique_ptr<Provider> provider) {
  if (provider == nullptr) return absl::InvalidArgumentError("provider is null");
  std::string name = provider->Info().name;
  if (name.empty()) return absl::InvalidArgumentError("provider has no name");
  std::lock_guard<std::mutex> lock(state_->mu);
  if (!state_->enabled.emplace(name, std::move(provider)).second) {
    return absl::AlreadyExistsError("provider '" + name + "' is already enabled");
  }
  return absl::OkStatus();
}

Provider* ProviderRegistry::Find(std::string_view name) const {
  std::lock_guard<std::mutex> lock(state_->mu);
  auto it = state_->enabled.find(name);
  return it == state_->enabled.end() ? nullptr : it->second.get();
}

std::vector<Provider*> ProviderRegistry::Enabled() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  std::vector<Provider*> out;
  for (const auto& [name, provider] : state_->enabled) out.push_back(provider.get());
  return out;
}

std::vector<std::string> ProviderRegistry::EnabledNames() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  std::vector<std::string> out;
  for (const auto& [name, provider] : state_->enabled) out.push_back(name);
  return out;
}

std::vector<std::string> ProviderRegistry::AvailableNames() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  std::vector<std::string> out;
  for (const auto& [name, factory] : state_->factories) out.push_back(name);
  return out;
}

absl::Status RegisterBuiltinProviders(ProviderRegistry& registry) {
  // Each built-in provider adds one RegisterFactory call here. The Kubernetes and Docker
  // providers are delivered by their own issues, so there is none yet.
  (void)registry;
  return absl::OkStatus();
}

}  // namespace eph::providers
