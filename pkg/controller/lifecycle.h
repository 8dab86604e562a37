// The rules of an environment's life that more than one caller applies: its URL, its
// namespace, how far it may be extended, what keep, redeploy and destroy change. The intents
// (intents.h, used by the API) and the reconciler's `/eph` comment commands both apply these,
// so a rule is written once.
//
// Thread-safety: plain values and pure functions.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "pkg/base/clock.h"
#include "pkg/base/random.h"
#include "pkg/names/names.h"
#include "pkg/state/store.h"

namespace eph::controller {

// Where environments live and for how long, as ephd is configured.
struct LifecyclePolicy {
  // Environments are served at <name>.<base_domain> (EPH_BASE_DOMAIN); eph.yaml's
  // environment.base_domain overrides it per project once the reconciler has read it.
  std::string base_domain = "localhost";
  // The public URL; {host} is "<name>.<base_domain>". ephd's own gateway on a plain-HTTP port
  // makes it e.g. "http://{host}:8081".
  std::string url_template = "https://{host}";
  std::string namespace_prefix = "eph-";  // provider namespace = prefix + name
  // The lifetime of an environment created by hand (eph.yaml's ttl applies to the others).
  Duration default_ttl = std::chrono::hours(72);
};

// An environment expires at most this far ahead: a year is a generous preview, and longer is
// a typo (`keep` removes the TTL). Also keeps repeated extensions from overflowing the clock.
inline constexpr Duration kMaxExpiryAhead = std::chrono::hours(24 * 366);

// A name no environment ever had (names are unique forever), made by names::MakeName from
// `inputs`; the store's error if it cannot be asked.
absl::StatusOr<std::string> NewEnvironmentName(state::Store& store, Random& random,
                                               const names::NameInputs& inputs,
                                               const names::NameOptions& options);

// `url_template` with every {host} replaced by `host`.
std::string EnvironmentUrl(std::string_view url_template, std::string_view host);

// The namespace the environment's objects live in: the one recorded, else prefix + name.
std::string NamespaceOf(const state::Environment& env, std::string_view prefix);

// The one extend policy. Moves `env.expires_at` by `by` (from now if already past).
// FailedPrecondition when the environment is destroyed or being destroyed, has no TTL, or
// would then expire more than kMaxExpiryAhead from now; InvalidArgument for `by` < 0 (zero
// changes nothing).
// `env` is unchanged on error.
absl::Status Extend(state::Environment& env, Duration by, TimePoint now);

// Removes the TTL. FailedPrecondition when the environment is not live.
absl::Status Keep(state::Environment& env);

// Deploys again. A live environment's next pass applies its commit even when unchanged, and
// tries a commit that failed terminally again; a destroyed one no longer keeps its pull request
// from getting a new environment at the same commit. FailedPrecondition while it is being
// destroyed.
absl::Status Redeploy(state::Environment& env, TimePoint now);

// Starts destroying a live environment: `destroying` with `reason`. False when it is already
// destroyed or being destroyed (nothing to do).
bool StartDestroy(state::Environment& env, const std::string& reason, TimePoint now);

}  // namespace eph::controller
