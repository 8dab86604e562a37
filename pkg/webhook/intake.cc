#include "pkg/webhook/intake.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>

#include "absl/strings/str_cat.h"
#include "pkg/server/errors.h"
#include "pkg/webhook/github_events.h"
#include "pkg/webhook/signature.h"
#include "pkg/workkey/work_key.h"

namespace eph::webhook {
namespace {

void CountDelivery(MetricsRegistry& metrics, const std::string& outcome) {
  metrics
      .GetCounter("eph_webhook_deliveries_total", "Webhook deliveries by outcome",
                  absl::StrCat("forge=\"github\",outcome=\"", outcome, "\""))
      .Inc();
}

IntakeResult Refused(absl::Status status) { return {std::move(status)}; }

// Delivery ids are opaque to Eph but become primary keys: keep them printable and bounded.
bool ValidDeliveryId(const std::string& id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    if (c < 0x21 || c > 0x7e) return false;
  }
  return true;
}

}  // namespace

WebhookIntake::WebhookIntake(state::Store& store, const Clock& clock, MetricsRegistry& metrics,
                             std::string github_secret)
    : store_(store), clock_(clock), metrics_(metrics), github_secret_(std::move(github_secret)) {}

int IntakeResult::HttpStatus() const {
  if (!status.ok()) return server::HttpStatusFor(status.code());
  return outcome == Outcome::kDuplicate ? 200 : 202;
}

std::string IntakeResult::BodyJson() const {
  if (!status.ok()) {
    return server::ErrorJson(server::ErrorCodeName(status.code()), std::string(status.message()));
  }
  switch (outcome) {
    case Outcome::kAccepted:
      return R"({"status":"accepted"})";
    case Outcome::kRecorded:
      return R"({"status":"recorded"})";
    case Outcome::kDuplicate:
      return R"({"status":"duplicate"})";
  }
  return R"({"status":"accepted"})";
}

absl::Status WebhookIntake::CheckGitHubHeaders(const std::string& signature) {
  auto count = [this](const std::string& outcome) { CountDelivery(metrics_, outcome); };
  if (github_secret_.empty()) {
    count("not_configured");
    return absl::UnavailableError(
        "ephd has no GitHub webhook secret (set EPH_GITHUB_WEBHOOK_SECRET)");
  }
  if (signature.empty()) {
    count("unsigned");
    return absl::UnauthenticatedError("missing X-Hub-Signature-256 header");
  }
  constexpr std::string_view kPrefix = "sha256=";
  const bool well_formed =
      signature.size() == kPrefix.size() + 64 && signature.compare(0, kPrefix.size(), kPrefix) == 0 &&
      std::all_of(signature.begin() + kPrefix.size(), signature.end(),
                  [](char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; });
  if (!well_formed) {
    count("bad_signature");
    return absl::UnauthenticatedError("X-Hub-Signature-256 does not match the body");
  }
  return absl::OkStatus();
}

IntakeResult WebhookIntake::HandleGitHub(const std::string& event, const std::string& delivery_id,
                                         const std::string& signature, const std::string& body) {
  auto count = [this](const std::string& outcome) { CountDelivery(metrics_, outcome); };
  if (absl::Status refused = CheckGitHubHeaders(signature); !refused.ok()) {
    return Refused(refused);
  }
  if (!VerifyGitHub(github_secret_, body, signature)) {
    count("bad_signature");
    return Refused(absl::UnauthenticatedError("X-Hub-Signature-256 does not match the body"));
  }
  if (event.empty()) {
    count("invalid");
    return Refused(absl::InvalidArgumentError("missing X-GitHub-Event header"));
  }
  if (!ValidDeliveryId(delivery_id)) {
    count("invalid");
    return Refused(absl::InvalidArgumentError(
        "missing or malformed X-GitHub-Delivery header (1-128 printable characters)"));
  }
  absl::StatusOr<ForgeEvent> routing = DecodeGitHubEvent(event, body);
  if (!routing.ok()) {
    count("invalid");
    return Refused(absl::InvalidArgumentError(std::string(routing.status().message())));
  }

  state::Delivery d;
  d.id = delivery_id;
  d.forge = "github";
  d.event = event;
  d.action = routing->action;
  d.repo = routing->repo;
  d.pr_number = routing->pull_requests.empty() ? 0 : routing->pull_requests.front();
  d.body = body;
  d.received_at = clock_.Now();
  d.kind = routing->kind;
  d.comment_id = routing->comment_id;
  d.author = routing->author;
  d.text = routing->text;
  std::optional<std::string> key;
  if (!routing->repo.empty() && !routing->pull_requests.empty()) {
    key = PullRequestKey(routing->repo, routing->pull_requests.front());
  }
  auto inserted = store_.RecordDelivery(d, key);
  if (!inserted.ok()) {
    count("store_error");
    spdlog::warn("webhook: delivery={} event={} not stored: {}", delivery_id, event,
                 std::string(inserted.status().message()));
    // 503 makes GitHub (or an operator's redelivery) try again; nothing was acknowledged.
    return Refused(absl::UnavailableError("state store unavailable; delivery not accepted"));
  }
  if (!*inserted) {
    count("duplicate");
    return {absl::OkStatus(), IntakeResult::Outcome::kDuplicate};
  }
  // A check suite can concern several pull requests; the first key rode in the delivery's
  // transaction, the rest are enqueued now (and the periodic resync backs them up).
  for (size_t i = 1; i < routing->pull_requests.size(); ++i) {
    auto s = store_.Enqueue(PullRequestKey(routing->repo, routing->pull_requests[i]), clock_.Now());
    if (!s.ok()) spdlog::warn("webhook: delivery={} extra enqueue failed: {}", delivery_id,
                   std::string(s.message()));
  }
  count(key ? "accepted" : "recorded");
  spdlog::info("webhook: delivery={} event={} action={} repo={} prs={}", delivery_id, event,
               routing->action, routing->repo, routing->pull_requests.size());
  if (key && on_enqueued_) on_enqueued_();
  return {absl::OkStatus(),
          key ? IntakeResult::Outcome::kAccepted : IntakeResult::Outcome::kRecorded};
}

}  // namespace eph::webhook
