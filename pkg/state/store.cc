#include "pkg/state/store.h"

#include <array>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "pkg/state/postgres_store.h"
#include "pkg/state/sqlite_store.h"

namespace eph::state {
namespace {

constexpr std::array<std::pair<EnvState, std::string_view>, 8> kStateNames = {{
    {EnvState::kPending, "pending"},
    {EnvState::kProvisioning, "provisioning"},
    {EnvState::kReady, "ready"},
    {EnvState::kUpdating, "updating"},
    {EnvState::kDestroying, "destroying"},
    {EnvState::kDestroyed, "destroyed"},
    {EnvState::kFailed, "failed"},
    {EnvState::kSleeping, "sleeping"},
}};

}  // namespace

std::string_view EnvStateName(EnvState s) {
  for (const auto& [state, name] : kStateNames) {
    if (state == s) return name;
  }
  return "unknown";
}

std::optional<EnvState> ParseEnvState(std::string_view name) {
  for (const auto& [state, state_name] : kStateNames) {
    if (state_name == name) return state;
  }
  return std::nullopt;
}

bool IsLive(EnvState s) { return s != EnvState::kDestroyed; }

absl::StatusOr<std::unique_ptr<Store>> OpenStore(const std::string& url) {
  const std::string lower = absl::AsciiStrToLower(url.substr(0, url.find(':') + 1));
  if (lower == "sqlite:") {
    std::string path = url.substr(lower.size());
    // sqlite:///abs/path and sqlite://rel/path are accepted as spellings of sqlite:PATH.
    if (absl::StartsWith(path, "//")) path = path.substr(2);
    if (path.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "state URL '", url, "' names no file; use sqlite:PATH, e.g. sqlite:eph-data/eph.db"));
    }
    return OpenSqliteStore(path);
  }
  if (absl::StartsWithIgnoreCase(url, "postgres://") ||
      absl::StartsWithIgnoreCase(url, "postgresql://")) {
    return OpenPostgresStore(url);
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unsupported state URL '", RedactStoreUrl(url),
                   "': use sqlite:PATH or postgres://USER:PASSWORD@HOST:PORT/DATABASE"));
}

std::string RedactStoreUrl(const std::string& url) {
  std::string out = url;
  // scheme://user:password@host...: the userinfo ends at the last '@' before the query.
  const size_t scheme_end = out.find("://");
  if (scheme_end != std::string::npos) {
    const size_t authority = scheme_end + 3;
    const size_t query = out.find('?', authority);
    const size_t at = out.rfind('@', query == std::string::npos ? std::string::npos : query);
    if (at != std::string::npos && at > authority) {
      const size_t colon = out.find(':', authority);
      if (colon != std::string::npos && colon < at) {
        out.replace(colon + 1, at - colon - 1, "***");
      }
    }
  }
  // password=... as a URI query parameter or a conninfo keyword.
  constexpr std::string_view kKey = "password=";
  size_t pos = 0;
  while ((pos = absl::AsciiStrToLower(out).find(kKey, pos)) != std::string::npos) {
    const bool at_boundary =
        pos == 0 || out[pos - 1] == '?' || out[pos - 1] == '&' || out[pos - 1] == ' ';
    const size_t value = pos + kKey.size();
    if (!at_boundary) {
      pos = value;
      continue;
    }
    size_t end = out.find_first_of("& ", value);
    if (end == std::string::npos) end = out.size();
    out.replace(value, end - value, "***");
    pos = value + 3;
  }
  return out;
}

void ExportDeliveryCommitMetrics(Store& store, MetricsRegistry& metrics) {
  metrics.AddCounterFunc("eph_delivery_commit_groups_total",
                         "Group transactions that committed received webhook deliveries.",
                         [&store] { return static_cast<double>(store.DeliveryCommits().groups); });
  metrics.AddCounterFunc(
      "eph_delivery_commit_deliveries_total", "Deliveries committed in group transactions.",
      [&store] { return static_cast<double>(store.DeliveryCommits().deliveries); });
  metrics.AddCounterFunc(
      "eph_delivery_commit_retried_alone_total",
      "Deliveries committed one by one after their group transaction failed.",
      [&store] { return static_cast<double>(store.DeliveryCommits().retried_alone); });
  metrics.AddGauge("eph_delivery_commit_waiting", "Deliveries waiting for a commit slot now.",
                   [&store] { return static_cast<double>(store.DeliveryCommits().waiting); });
}

}  // namespace eph::state
