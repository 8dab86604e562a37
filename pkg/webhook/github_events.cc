#include "pkg/webhook/github_events.h"

#include <nlohmann/json.hpp>

namespace eph::webhook {
namespace {

using nlohmann::json;

std::string StringAt(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

int64_t NumberAt(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_number_integer() ? it->get<int64_t>() : 0;
}

// A person's new comment on a pull request: its id, author and text. Edits, deletions and
// bots' comments (Eph's own included) are not: bots never command Eph.
void DecodeComment(const json& payload, ForgeEvent& r) {
  if (r.action != "created" || r.pull_requests.empty()) return;
  const auto comment = payload.find("comment");
  if (comment == payload.end() || !comment->is_object()) return;
  const auto user = comment->find("user");
  if (user == comment->end() || !user->is_object() || StringAt(*user, "type") == "Bot") return;
  const int64_t id = NumberAt(*comment, "id");
  const std::string author = StringAt(*user, "login");
  const auto text = comment->find("body");
  if (id <= 0 || author.empty() || text == comment->end() || !text->is_string()) return;
  r.kind = state::kDeliveryComment;
  r.comment_id = id;
  r.author = author;
  r.text = text->get<std::string>();
}

}  // namespace

absl::StatusOr<ForgeEvent> DecodeGitHubEvent(const std::string& event, const std::string& body) {
  json payload = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (payload.is_discarded() || !payload.is_object()) {
    return absl::InvalidArgumentError("request body is not a JSON object");
  }
  ForgeEvent r;
  r.action = StringAt(payload, "action");
  if (auto repo = payload.find("repository"); repo != payload.end() && repo->is_object()) {
    r.repo = StringAt(*repo, "full_name");
  }
  auto add = [&](int64_t n) {
    if (n > 0) r.pull_requests.push_back(n);
  };
  if (event == "pull_request" || event == "pull_request_review") {
    r.kind = state::kDeliveryPullRequest;
    if (auto pr = payload.find("pull_request"); pr != payload.end() && pr->is_object()) {
      add(NumberAt(*pr, "number"));
    } else {
      add(NumberAt(payload, "number"));
    }
  } else if (event == "issue_comment") {
    // Comments on plain issues are not Eph's business; on pull requests they may be commands.
    if (auto issue = payload.find("issue"); issue != payload.end() && issue->is_object() &&
                                            issue->contains("pull_request")) {
      add(NumberAt(*issue, "number"));
    }
    DecodeComment(payload, r);
  } else if (event == "check_suite" || event == "check_run" || event == "status") {
    r.kind = state::kDeliveryChecks;
    auto holder = payload.find(event);
    if (holder != payload.end() && holder->is_object()) {
      if (auto prs = holder->find("pull_requests"); prs != holder->end() && prs->is_array()) {
        for (const auto& pr : *prs) {
          if (pr.is_object()) add(NumberAt(pr, "number"));
        }
      }
    }
  } else if (event == "installation" || event == "installation_repositories") {
    r.kind = state::kDeliveryInstallation;
  } else if (event == "push") {
    r.kind = state::kDeliveryPush;
  }
  // `status` events carry only a commit SHA; the periodic resync (and later a SHA index) picks
  // up the pull requests it concerns.
  return r;
}

}  // namespace eph::webhook
