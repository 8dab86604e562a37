// Pulling a compose service's image through the Docker engine (POST /images/create) with the
// credential ephd's operator configured for its registry (pkg/providers/registry_auth.h), and
// turning the engine's answer into a reason a pull request's author can act on.
//
// The engine reports a failure either as the HTTP status of the answer (when it fails before it
// starts streaming) or as an `errorDetail` line in a 200 JSON stream; both are read. Failures:
//   FailedPrecondition "image REF not found in registry HOST"
//   FailedPrecondition "unauthorized for registry HOST (no credentials configured)"
//   FailedPrecondition "unauthorized for registry HOST (credentials rejected)"
//   Unavailable        "registry HOST unreachable: <the engine's message>"
//   Unavailable        "pulling image REF from registry HOST failed: <the engine's message>"
// The first three are terminal for the reconciler (recorded on the environment and shown in the
// PR comment until the next push); an unreachable registry is retried with backoff.
//
// Thread-safety: pure functions, and PullImage only uses the (thread-safe) EngineClient.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "pkg/providers/docker/engine_client.h"
#include "pkg/providers/registry_auth.h"

namespace eph::providers::docker {

// `image` with ":latest" added when it names neither a tag nor a digest: the engine pulls every
// tag of a bare repository name.
std::string PullReference(std::string_view image);

// The Status for a failed pull of `reference` from `host`, from the engine's HTTP status
// (200 for an errorDetail inside the stream) and message. `sent_credentials`: whether a
// credential for `host` went with the request.
absl::Status PullFailure(const std::string& reference, const std::string& host,
                         bool sent_credentials, long http_status, const std::string& message);

// The errorDetail message of a pull's JSON stream ("" when it reports none).
std::string PullStreamError(std::string_view stream);

// Pulls `image` (PullReference of it) with auth's credential for its registry, if any.
absl::Status PullImage(const EngineClient& engine, const RegistryAuth& auth,
                       const std::string& image);

}  // namespace eph::providers::docker
