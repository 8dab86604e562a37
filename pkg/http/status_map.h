// The one mapping from an HTTP answer to an absl::Status, for every API Eph calls. The code is
// what callers decide on (STYLE.md "Errors", pkg/controller/retry_policy.h): Unavailable,
// DeadlineExceeded and ResourceExhausted are retried with backoff, Aborted re-reads, and
// InvalidArgument, FailedPrecondition, OutOfRange and Unimplemented are terminal. So the table
// answers one question per status: can a retry of the same request help?
//
// Base table (every API):
//   2xx, 304 Not Modified      OK             (304: the server already is in the asked state)
//   other 1xx/3xx              FailedPrecondition  a redirect not followed: the URL is wrong
//   400, 406, 413, 415, 422    InvalidArgument     the request is wrong
//   other 4xx                  InvalidArgument
//   401                        Unauthenticated
//   403                        PermissionDenied
//   404, 410 Gone              NotFound
//   405, 501                   Unimplemented       the server cannot do this at all
//   408                        DeadlineExceeded    retry
//   409, 412                   FailedPrecondition  the server's state conflicts; a user must act
//   416                        OutOfRange
//   429                        ResourceExhausted   retry later
//   500, 502, 503, 504, 5xx    Unavailable         retry: a server error is usually passing
//   anything else              Unknown
//
// Per-API overrides, applied before the base table:
//   Kubernetes   409 with reason AlreadyExists → AlreadyExists; other 409 (Conflict: a stale
//                resourceVersion) → Aborted, re-read; 410 (Expired/Gone watch) → Aborted, relist
//   GitHub       403 or 429 that carries rate-limit signals → Unavailable (calls resume after
//                the reset; not ResourceExhausted, which the reconciler treats as terminal for
//                a source fetch that is too large)
//   Docker       any error whose message shows a configuration problem (port already
//                allocated, address in use, executable or file not found) → FailedPrecondition
//   ephd         a body in ephd's error shape names its canonical code, which wins (the exact
//                inverse of pkg/server/errors.h); a 404 that is not ephd's own "no such
//                environment" → Unavailable: the address leads somewhere other than ephd's API
//
// Thread-safety: pure functions.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace eph::http {

enum class Api { kGeneric, kEphd, kGitHub, kKubernetes, kDockerEngine };

// What an answer says beyond its status, as far as an override needs it.
struct Answer {
  long status = 0;
  // The API's machine-readable reason: a Kubernetes Status reason ("AlreadyExists"), ephd's
  // error.code ("not_found"); "" if none.
  std::string_view reason;
  std::string_view message;   // the API's human-readable error message
  bool rate_limited = false;  // GitHub: the answer carries rate-limit signals
};

absl::StatusCode BaseCode(long http_status);
absl::StatusCode CodeFor(Api api, const Answer& answer);
// The error for an answer the caller could not use: CodeFor() with `message`, never OK (a
// success status where the caller wanted another, e.g. 304 where content was expected, is
// Unknown).
absl::Status ErrorFor(Api api, const Answer& answer, std::string message);

}  // namespace eph::http
