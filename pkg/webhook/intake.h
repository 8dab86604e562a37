// WebhookIntake: the whole of what happens when a forge calls POST /webhooks/github.
//
// Contract (from the engine issue): verify the signature (401 if missing or wrong), refuse
// malformed JSON (400), commit the delivery to the store together with the work key it implies
// (repository + pull request) BEFORE answering 2xx, answer 200 with no new work for a repeated
// X-GitHub-Delivery, record events Eph does not act on and answer 2xx. It never calls the forge or
// a provider: the reconciler does that, from the queue. Bodies above the size limit never reach
// here (the HTTP server answers 413).
//
// Thread-safety: Handle may be called from many threads at once.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "pkg/base/clock.h"
#include "pkg/base/metrics.h"
#include "pkg/state/store.h"
#include "pkg/webhook/forge_event.h"

namespace eph::webhook {

// What became of a delivery. Refusals are absl::Status codes; server/errors.h, the one place
// where a status becomes an HTTP answer, maps them (no secret configured and a store that is
// down: Unavailable → 503; a bad or missing signature: Unauthenticated → 401; a malformed
// delivery: InvalidArgument → 400).
struct IntakeResult {
  enum class Outcome {
    kAccepted,   // stored, and its pull request's key queued
    kRecorded,   // stored; concerns no pull request
    kDuplicate,  // seen before (same delivery id): nothing done
  };
  absl::Status status;  // OK, or why the delivery was refused (nothing was stored)
  Outcome outcome = Outcome::kAccepted;

  // 202 accepted/recorded, 200 duplicate, or the error's status from server/errors.h.
  int HttpStatus() const;
  // {"status":"accepted"|"recorded"|"duplicate"} or the error body from server/errors.h.
  std::string BodyJson() const;
};

class WebhookIntake {
 public:
  WebhookIntake(state::Store& store, const Clock& clock, MetricsRegistry& metrics,
                std::string github_secret);

  // Called after a delivery with work is committed (wakes the queue workers).
  void SetOnEnqueued(std::function<void()> on_enqueued) { on_enqueued_ = std::move(on_enqueued); }

  IntakeResult HandleGitHub(const std::string& event, const std::string& delivery_id,
                            const std::string& signature, const std::string& body);

  // What HandleGitHub would refuse from the signature header alone, before the body is read:
  // no secret configured (Unavailable), no signature or one that is not "sha256=" and 64 hex
  // digits (Unauthenticated). OK when the body must be read to decide.
  absl::Status CheckGitHubHeaders(const std::string& signature);

 private:
  state::Store& store_;
  const Clock& clock_;
  MetricsRegistry& metrics_;
  std::string github_secret_;
  std::function<void()> on_enqueued_;
};

}  // namespace eph::webhook
