#include "pkg/forge/github/github_forge.h"

#include <algorithm>
#include <fstream>
#include <iterator>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "fmt/format.h"
#include "pkg/forge/github/source_archive.h"
#include "pkg/http/status_map.h"

namespace eph::forge::github {
namespace {

using nlohmann::json;

constexpr auto kTokenRenewBefore = std::chrono::minutes(5);
constexpr auto kMaxBlock = std::chrono::hours(1);
constexpr int kMaxPages = 100;

// "owner/repo", each part a GitHub name; anything else would let a caller reach other paths.
absl::Status CheckRepo(const std::string& repo) {
  const std::vector<std::string> parts = absl::StrSplit(repo, '/');
  auto name_ok = [](const std::string& s) {
    return !s.empty() && s != "." && s != ".." && std::all_of(s.begin(), s.end(), [](char c) {
      return absl::ascii_isalnum(c) || c == '-' || c == '_' || c == '.';
    });
  };
  if (parts.size() != 2 || !name_ok(parts[0]) || !name_ok(parts[1])) {
    return absl::InvalidArgumentError(fmt::format("\"{}\" is not an owner/repo name", repo));
  }
  return absl::OkStatus();
}

std::string PercentEncode(const std::string& s, bool keep_slash) {
  std::string out;
  for (unsigned char c : s) {
    if (absl::ascii_isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' ||
        (keep_slash && c == '/')) {
      out.push_back(static_cast<char>(c));
    } else {
      out += fmt::format("%{:02X}", c);
    }
  }
  return out;
}

std::string GitHubMessage(const http::Response& answer) {
  json body = json::parse(answer.body, nullptr, false);
  if (body.is_object() && body.contains("message") && body["message"].is_string()) {
    std::string message = body["message"].get<std::string>();
    if (body.contains("errors") && body["errors"].is_array() && !body["errors"].empty()) {
      message += ": " + body["errors"].dump();
    }
    return message;
  }
  return answer.body.substr(0, 200);
}

// The error for a non-2xx answer, by the one mapping with GitHub's overrides (a rate limit is
// Unavailable: calls resume after `wait`).
absl::Status StatusFor(const http::Response& answer, const std::string& what,
                       std::optional<std::chrono::seconds> wait) {
  const std::string detail = GitHubMessage(answer);
  const std::string message =
      wait ? fmt::format("GitHub rate limit hit by {}: no calls for {}s ({})", what, wait->count(),
                         detail)
           : fmt::format("GitHub {} answered {}: {}", what, answer.status, detail);
  return http::ErrorFor(http::Api::kGitHub,
                        {.status = answer.status, .message = detail, .rate_limited = wait.has_value()},
                        message);
}

// The `rel="next"` URL of a Link header, or "".
std::string NextLink(const std::string& link) {
  for (absl::string_view part : absl::StrSplit(link, ',')) {
    if (!absl::StrContains(part, "rel=\"next\"")) continue;
    const size_t open = part.find('<');
    const size_t close = part.find('>');
    if (open == absl::string_view::npos || close == absl::string_view::npos || close < open) {
      continue;
    }
    return std::string(part.substr(open + 1, close - open - 1));
  }
  return "";
}

std::string StringField(const json& object, const char* key) {
  auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : std::string();
}

CheckState CheckRunState(const json& run) {
  if (StringField(run, "status") != "completed") return CheckState::kPending;
  const std::string conclusion = StringField(run, "conclusion");
  if (conclusion == "success" || conclusion == "neutral" || conclusion == "skipped") {
    return CheckState::kSuccess;
  }
  return CheckState::kFailure;
}

CheckState CommitStatusState(const std::string& state) {
  if (state == "success") return CheckState::kSuccess;
  if (state == "failure" || state == "error") return CheckState::kFailure;
  return CheckState::kPending;
}

std::string TruncateUtf8(const std::string& s, size_t max_chars) {
  size_t chars = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) {
      if (chars == max_chars) return s.substr(0, i);
      ++chars;
    }
  }
  return s;
}

}  // namespace

absl::StatusOr<std::unique_ptr<GitHubForge>> GitHubForge::Create(GitHubForgeOptions options) {
  if (!options.app_id.empty() && options.token.empty() && options.private_key_pem.empty()) {
    if (options.private_key_file.empty()) {
      return absl::InvalidArgumentError(
          "EPH_GITHUB_APP_ID is set but EPH_GITHUB_PRIVATE_KEY_FILE (the App's PEM key) is not");
    }
    std::ifstream in(options.private_key_file, std::ios::binary);
    if (!in) {
      return absl::InvalidArgumentError(
          fmt::format("cannot read the GitHub App private key {}", options.private_key_file));
    }
    options.private_key_pem.assign(std::istreambuf_iterator<char>(in), {});
  }
  const bool pat = !options.token.empty();
  const bool app = !options.app_id.empty() || !options.private_key_pem.empty();
  if (pat == app) {
    return absl::InvalidArgumentError(
        "configure GitHub with either a token (EPH_GITHUB_TOKEN) or an App (EPH_GITHUB_APP_ID "
        "and EPH_GITHUB_PRIVATE_KEY_FILE), not both and not neither");
  }
  while (!options.api_url.empty() && options.api_url.back() == '/') options.api_url.pop_back();
  if (!absl::StartsWith(options.api_url, "https://") &&
      !absl::StartsWith(options.api_url, "http://")) {
    return absl::InvalidArgumentError(
        fmt::format("the GitHub API URL \"{}\" is not an http(s) URL", options.api_url));
  }
  std::unique_ptr<AppJwtSigner> signer;
  if (app) {
    auto created = AppJwtSigner::Create(options.app_id, options.private_key_pem);
    if (!created.ok()) return created.status();
    signer = std::move(*created);
  }
  return std::unique_ptr<GitHubForge>(new GitHubForge(std::move(options), std::move(signer)));
}

GitHubForge::GitHubForge(GitHubForgeOptions options, std::unique_ptr<AppJwtSigner> signer)
    : options_(std::move(options)),
      clock_(options_.clock != nullptr ? *options_.clock : SystemClock::Instance()),
      signer_(std::move(signer)) {}

std::optional<std::chrono::seconds> GitHubForge::NoteRateLimit(const http::Response& answer) {
  if (answer.status != 403 && answer.status != 429) return std::nullopt;
  const TimePoint now = clock_.Now();
  const std::string retry_after = http::HeaderOf(answer, "retry-after");
  const std::string remaining = http::HeaderOf(answer, "x-ratelimit-remaining");
  const std::string reset = http::HeaderOf(answer, "x-ratelimit-reset");
  std::lock_guard<std::mutex> lock(mu_);
  TimePoint until;
  int64_t n = 0;
  if (!retry_after.empty() && absl::SimpleAtoi(retry_after, &n)) {
    until = now + std::chrono::seconds(std::max<int64_t>(n, 1));
  } else if (remaining == "0" && absl::SimpleAtoi(reset, &n)) {
    until = std::max(TimePoint(std::chrono::seconds(n)), now) + std::chrono::seconds(1);
  } else if (answer.status == 429 ||
             absl::StrContains(absl::AsciiStrToLower(answer.body), "rate limit")) {
    // Secondary limit without a hint: GitHub asks for at least a minute, longer if it repeats.
    until = now + std::chrono::minutes(1) * (1 << std::min(secondary_strikes_, 4));
    ++secondary_strikes_;
  } else {
    return std::nullopt;  // an ordinary 403
  }
  until = std::min(until, now + kMaxBlock);
  blocked_until_ = std::max(blocked_until_, until);
  return std::chrono::duration_cast<std::chrono::seconds>(blocked_until_ - now);
}

absl::StatusOr<std::string> GitHubForge::InstallationToken(const std::string& repo) {
  std::lock_guard<std::mutex> mint(mint_mu_);
  int64_t installation = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = installation_by_repo_.find(repo);
    if (it != installation_by_repo_.end()) {
      installation = it->second;
      auto token = tokens_.find(installation);
      if (token != tokens_.end() && clock_.Now() < token->second.expires_at - kTokenRenewBefore) {
        return token->second.token;
      }
    }
  }
  if (installation == 0) {
    auto found = CallJson("GET", "/repos/" + repo + "/installation", nullptr, repo, Auth::kApp);
    if (!found.ok()) {
      if (absl::IsNotFound(found.status())) {
        return absl::FailedPreconditionError(
            fmt::format("the GitHub App is not installed on {}: install it there first", repo));
      }
      return found.status();
    }
    if (!found->contains("id") || !(*found)["id"].is_number_integer()) {
      return absl::UnavailableError("GitHub's installation answer has no id");
    }
    installation = (*found)["id"].get<int64_t>();
    std::lock_guard<std::mutex> lock(mu_);
    installation_by_repo_[repo] = installation;
    auto token = tokens_.find(installation);
    if (token != tokens_.end() && clock_.Now() < token->second.expires_at - kTokenRenewBefore) {
      return token->second.token;
    }
  }
  auto minted = CallJson("POST", fmt::format("/app/installations/{}/access_tokens", installation),
                         nullptr, repo, Auth::kApp);
  if (!minted.ok()) return minted.status();
  const std::string token = StringField(*minted, "token");
  absl::Time expires;
  std::string error;
  if (token.empty() ||
      !absl::ParseTime(absl::RFC3339_full, StringField(*minted, "expires_at"), &expires, &error)) {
    return absl::UnavailableError("GitHub's access-token answer has no token or expiry");
  }
  std::lock_guard<std::mutex> lock(mu_);
  tokens_[installation] =
      CachedToken{token, std::chrono::time_point_cast<Duration>(absl::ToChronoTime(expires))};
  return token;
}

void GitHubForge::DropInstallationToken(const std::string& repo) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = installation_by_repo_.find(repo);
  if (it != installation_by_repo_.end()) tokens_.erase(it->second);
  installation_by_repo_.erase(repo);
}

absl::StatusOr<std::string> GitHubForge::AuthorizationFor(const std::string& repo, Auth auth) {
  if (signer_ == nullptr) return "Authorization: Bearer " + options_.token;
  if (auth == Auth::kApp) {
    auto jwt = signer_->Sign(clock_.Now());
    if (!jwt.ok()) return jwt.status();
    return "Authorization: Bearer " + *jwt;
  }
  auto token = InstallationToken(repo);
  if (!token.ok()) return token.status();
  return "Authorization: Bearer " + *token;
}

absl::StatusOr<http::Response> GitHubForge::Call(const std::string& method,
                                                 const std::string& target, const json* body,
                                                 const std::string& repo, Auth auth,
                                                 size_t max_bytes) {
  const std::string what = fmt::format("{} {}", method, target);
  {
    std::lock_guard<std::mutex> lock(mu_);
    const TimePoint now = clock_.Now();
    if (now < blocked_until_) {
      const auto wait = std::chrono::duration_cast<std::chrono::seconds>(blocked_until_ - now);
      return absl::UnavailableError(fmt::format(
          "GitHub rate limit: {} not sent, calls resume in {}s", what, wait.count() + 1));
    }
  }
  auto authorization = AuthorizationFor(repo, auth);
  if (!authorization.ok()) return authorization.status();
  http::Request request{
      .method = method,
      .url = absl::StartsWith(target, "http") ? target : options_.api_url + target,
      .headers = {"Accept: application/vnd.github+json", "X-GitHub-Api-Version: 2022-11-28",
                  "User-Agent: " + options_.user_agent, *authorization},
      .timeout = options_.timeout,
      .max_response_bytes = max_bytes,
      // The tarball endpoint answers 302; libcurl does not resend Authorization to another host.
      .max_redirects = 5};
  if (body != nullptr) {
    request.body = body->dump();
    request.headers.push_back("Content-Type: application/json");
  }
  auto answer = http::Perform(request);
  if (!answer.ok()) return http::Prefixed(answer.status(), "GitHub");
  if (answer->status >= 200 && answer->status < 300) {
    std::lock_guard<std::mutex> lock(mu_);
    secondary_strikes_ = 0;
    return answer;
  }
  const std::optional<std::chrono::seconds> wait = NoteRateLimit(*answer);
  if (answer->status == 401 && signer_ != nullptr && auth == Auth::kRepository) {
    DropInstallationToken(repo);  // revoked or expired early: mint a new one next time
  }
  return StatusFor(*answer, what, wait);
}

absl::StatusOr<json> GitHubForge::CallJson(const std::string& method, const std::string& target,
                                           const json* body, const std::string& repo, Auth auth) {
  auto answer = Call(method, target, body, repo, auth);
  if (!answer.ok()) return answer.status();
  json parsed = json::parse(answer->body, nullptr, false);
  if (parsed.is_discarded()) {
    return absl::UnavailableError(
        fmt::format("GitHub answered {} {} with a body that is not JSON", method, target));
  }
  return parsed;
}

absl::Status GitHubForge::ForEachPage(const std::string& first, const std::string& repo,
                                      const std::function<absl::Status(const json&)>& on_page) {
  std::string next = first;
  for (int page = 0; !next.empty(); ++page) {
    if (page == kMaxPages) {
      return absl::ResourceExhaustedError(
          fmt::format("GitHub list {} has more than {} pages", first, kMaxPages));
    }
    auto answer = Call("GET", next, nullptr, repo);
    if (!answer.ok()) return answer.status();
    json parsed = json::parse(answer->body, nullptr, false);
    if (parsed.is_discarded()) {
      return absl::UnavailableError(fmt::format("GitHub answered {} with non-JSON", next));
    }
    if (auto s = on_page(parsed); !s.ok()) return s;
    next = NextLink(http::HeaderOf(*answer, "link"));
    // Follow links only back to the same API, so a forged Link cannot carry the token away.
    if (!next.empty() && !absl::StartsWith(next, options_.api_url + "/")) next.clear();
  }
  return absl::OkStatus();
}

namespace {

// A pull request as GET /pulls/{n} and GET /pulls (the "simple" form) describe it.
absl::StatusOr<PullRequest> PullRequestFromJson(const std::string& repo, const json& pr) {
  try {
    PullRequest out;
    out.repo = repo;
    out.number = pr.at("number").get<int64_t>();
    const bool merged = pr.value("merged", false) || !pr.value("merged_at", json()).is_null();
    out.state = merged                               ? PullRequestState::kMerged
                : StringField(pr, "state") == "open" ? PullRequestState::kOpen
                                                     : PullRequestState::kClosed;
    for (const json& label : pr.value("labels", json::array())) {
      if (label.is_object()) out.labels.push_back(StringField(label, "name"));
    }
    const json& head = pr.at("head");
    const json& base = pr.at("base");
    out.head_sha = StringField(head, "sha");
    out.head_branch = StringField(head, "ref");
    out.base_branch = StringField(base, "ref");
    out.draft = pr.value("draft", false);
    const json head_repo = head.value("repo", json());
    const json base_repo = base.value("repo", json());
    if (base_repo.is_object()) out.default_branch = StringField(base_repo, "default_branch");
    // A deleted head repository (null) is a fork whose owner went away.
    out.from_fork = !head_repo.is_object() || !base_repo.is_object() ||
                    StringField(head_repo, "full_name") != StringField(base_repo, "full_name");
    if (pr.contains("user") && pr["user"].is_object())
      out.author = StringField(pr["user"], "login");
    if (out.head_sha.empty())
      return absl::UnavailableError("GitHub's pull request has no head SHA");
    return out;
  } catch (const json::exception& e) {
    return absl::UnavailableError(fmt::format(
        "GitHub's pull request in {} is not in the expected shape: {}", repo, e.what()));
  }
}

}  // namespace

absl::StatusOr<PullRequest> GitHubForge::GetPullRequest(const std::string& repo, int64_t number) {
  if (auto s = CheckRepo(repo); !s.ok()) return s;
  auto got = CallJson("GET", fmt::format("/repos/{}/pulls/{}", repo, number), nullptr, repo);
  if (!got.ok()) return got.status();
  absl::StatusOr<PullRequest> pr = PullRequestFromJson(repo, *got);
  if (pr.ok() && pr->number != number) {
    return absl::UnavailableError(fmt::format("GitHub answered {}#{} with pull request {}", repo,
                                              number, pr->number));
  }
  return pr;
}

absl::StatusOr<std::vector<PullRequest>> GitHubForge::ListOpenPullRequests(
    const std::string& repo) {
  if (auto s = CheckRepo(repo); !s.ok()) return s;
  std::vector<PullRequest> out;
  absl::Status listed = ForEachPage(
      fmt::format("{}/repos/{}/pulls?state=open&sort=created&direction=desc&per_page=100",
                  options_.api_url, repo),
      repo, [&](const json& page) -> absl::Status {
        for (const json& item : page.is_array() ? page : json::array()) {
          absl::StatusOr<PullRequest> pr = PullRequestFromJson(repo, item);
          if (!pr.ok()) return pr.status();
          out.push_back(*std::move(pr));
        }
        return absl::OkStatus();
      });
  if (!listed.ok()) return listed;
  return out;
}

absl::StatusOr<std::string> GitHubForge::ResolveBranch(const std::string& repo,
                                                       const std::string& branch) {
  if (auto s = CheckRepo(repo); !s.ok()) return s;
  if (branch.empty()) return absl::InvalidArgumentError("an empty branch name");
  // The git reference API: a small answer, where GET /branches/{branch} sends the whole commit.
  auto got = CallJson("GET",
                      fmt::format("/repos/{}/git/ref/heads/{}", repo, PercentEncode(branch, true)),
                      nullptr, repo);
  if (!got.ok()) return got.status();
  const std::string sha = got->is_object() && got->contains("object") && (*got)["object"].is_object()
                              ? StringField((*got)["object"], "sha")
                              : "";
  if (sha.empty()) {
    return absl::UnavailableError(
        fmt::format("GitHub's reference to {} in {} names no commit", branch, repo));
  }
  return sha;
}

absl::StatusOr<std::string> GitHubForge::ReadFile(const std::string& repo, const std::string& sha,
                                                  const std::string& path) {
  if (auto s = CheckRepo(repo); !s.ok()) return s;
  if (path.empty() || path.front() == '/') {
    return absl::InvalidArgumentError(fmt::format("\"{}\" is not a repository path", path));
  }
  auto got = CallJson("GET",
                      fmt::format("/repos/{}/contents/{}?ref={}", repo, PercentEncode(path, true),
                                  PercentEncode(sha, false)),
                      nullptr, repo);
  if (!got.ok()) return got.status();
  if (!got->is_object() || StringField(*got, "type") != "file") {
    return absl::NotFoundError(fmt::format("{} at {} in {} is not a file", path, sha, repo));
  }
  if (StringField(*got, "encoding") != "base64") {
    return absl::FailedPreconditionError(fmt::format(
        "{} at {} in {} is too large to read through the contents API", path, sha, repo));
  }
  std::string encoded = StringField(*got, "content");
  encoded.erase(
      std::remove_if(encoded.begin(), encoded.end(), [](char c) { return absl::ascii_isspace(c); }),
      encoded.end());
  std::string decoded;
  if (!absl::Base64Unescape(encoded, &decoded)) {
    return absl::UnavailableError(fmt::format("GitHub's content of {} is not base64", path));
  }
  return decoded;
}

absl::StatusOr<std::vector<CheckResult>> GitHubForge::ListChecks(const std::string& repo,
                                                                 const std::string& sha) {
  if (auto s = CheckRepo(repo); !s.ok()) return s;
  std::map<std::string, CheckState> by_name;
  const std::string commit = PercentEncode(sha, false);
  auto combined = ForEachPage(
      fmt::format("{}/repos/{}/commits/{}/status?per_page=100", options_.api_url, repo, commit),
      repo, [&](const json& page) {
        for (const json& status : page.value("statuses", json::array())) {
          by_name[StringField(status, "context")] = CommitStatusState(StringField(status, "state"));
        }
        return absl::OkStatus();
      });
  if (!combined.ok()) return combined;
  // filter=latest: one run per name, the most recent, as a re-run replaces the verdict.
  auto runs =
      ForEachPage(fmt::format("{}/repos/{}/commits/{}/check-runs?filter=latest&per_page=100",
                              options_.api_url, repo, commit),
                  repo, [&](const json& page) {
                    for (const json& run : page.value("check_runs", json::array())) {
                      const std::string name = StringField(run, "name");
                      if (name == options_.own_check_name) continue;
                      by_name[name] = CheckRunState(run);
                    }
                    return absl::OkStatus();
                  });
  if (!runs.ok()) return runs;
  std::vector<CheckResult> out;
  for (const auto& [name, state] : by_name) out.push_back(CheckResult{name, state});
  return out;
}

absl::StatusOr<std::vector<std::string>> GitHubForge::ListChangedFiles(const std::string& repo,
                                                                       int64_t number) {
  if (auto s = CheckRepo(repo); !s.ok()) return s;
  std::vector<std::string> out;
  auto listed = ForEachPage(
      fmt::format("{}/repos/{}/pulls/{}/files?per_page=100", options_.api_url, repo, number), repo,
      [&](const json& page) {
        for (const json& file : page.is_array() ? page : json::array()) {
          out.push_back(StringField(file, "filename"));
          // A rename changes the old path too.
          if (std::string previous = StringField(file, "previous_filename"); !previous.empty()) {
            out.push_back(previous);
          }
        }
        return absl::OkStatus();
      });
  if (!listed.ok()) return listed;
  return out;
}

absl::Status GitHubForge::UpsertComment(const std::string& repo, int64_t number,
                                        const std::string& marker, const std::string& body) {
  if (auto s = CheckRepo(repo); !s.ok()) return s;
  if (marker.empty() || !absl::StrContains(body, marker)) {
    return absl::InvalidArgumentError("the comment body does not contain its marker");
  }
  int64_t existing = 0;
  bool same = false;
  auto listed = ForEachPage(
      fmt::format("{}/repos/{}/issues/{}/comments?per_page=100", options_.api_url, repo, number),
      repo, [&](const json& page) {
        for (const json& comment : page.is_array() ? page : json::array()) {
          const std::string text = StringField(comment, "body");
          if (existing == 0 && absl::StrContains(text, marker) &&
              comment.value("id", json()).is_number_integer()) {
            existing = comment["id"].get<int64_t>();
            same = text == body;
          }
        }
        return absl::OkStatus();
      });
  if (!listed.ok()) return listed;
  if (same) return absl::OkStatus();  // nothing to change: spare the call and the notification
  const json payload = {{"body", body}};
  if (existing != 0) {
    return Call("PATCH", fmt::format("/repos/{}/issues/comments/{}", repo, existing), &payload,
                repo)
        .status();
  }
  return Call("POST", fmt::format("/repos/{}/issues/{}/comments", repo, number), &payload, repo)
      .status();
}

absl::Status GitHubForge::FetchSource(const std::string& repo, const std::string& sha,
                                      const std::string& dest_dir) {
  if (auto s = CheckRepo(repo); !s.ok()) return s;
  if (sha.empty()) return absl::InvalidArgumentError("no commit to fetch");
  auto archive = Call("GET", fmt::format("/repos/{}/tarball/{}", repo, PercentEncode(sha, false)),
                      nullptr, repo, Auth::kRepository, options_.max_source_bytes);
  if (!archive.ok()) return archive.status();
  absl::Status extracted = ExtractTarGz(archive->body, dest_dir);
  if (!extracted.ok()) {
    return absl::Status(extracted.code(), fmt::format("the source of {} at {}: {}", repo, sha,
                                                      std::string(extracted.message())));
  }
  return absl::OkStatus();
}

absl::StatusOr<bool> GitHubForge::CanWrite(const std::string& repo, const std::string& user) {
  if (auto s = CheckRepo(repo); !s.ok()) return s;
  if (user.empty()) return false;
  auto answer = CallJson(
      "GET",
      fmt::format("/repos/{}/collaborators/{}/permission", repo, PercentEncode(user, false)),
      nullptr, repo);
  // 404: not a collaborator (or no such user); either way, no write access.
  if (!answer.ok()) {
    if (answer.status().code() == absl::StatusCode::kNotFound) return false;
    return answer.status();
  }
  // `permission` is the legacy level (maintain shows as write, triage as read); role_name the
  // role itself.
  const std::string permission = answer->value("permission", "");
  const std::string role = answer->value("role_name", "");
  return permission == "admin" || permission == "write" || role == "admin" ||
         role == "maintain" || role == "write";
}

absl::Status GitHubForge::ReportConfigCheck(const ConfigCheck& check) {
  if (auto s = CheckRepo(check.repo); !s.ok()) return s;
  if (signer_ == nullptr) {
    return absl::UnimplementedError(
        "GitHub lets only Apps create check runs; with a token the "
        "pull-request comment carries the errors");
  }
  constexpr size_t kPerRequest = 50;  // GitHub's limit of annotations per request
  auto output = [&](size_t from) {
    json annotations = json::array();
    for (size_t i = from; i < check.annotations.size() && i < from + kPerRequest; ++i) {
      const CheckAnnotation& a = check.annotations[i];
      const int start = std::max(a.start_line, 1);
      annotations.push_back({{"path", a.path},
                             {"start_line", start},
                             {"end_line", std::max(a.end_line, start)},
                             {"annotation_level", "failure"},
                             {"message", TruncateUtf8(a.message, 64 * 1024)}});
    }
    return json{{"title", TruncateUtf8(check.title, 1000)},
                {"summary", TruncateUtf8(check.summary, 65535)},
                {"annotations", annotations}};
  };
  const json create = {{"name", options_.own_check_name},
                       {"head_sha", check.sha},
                       {"status", "completed"},
                       {"conclusion", check.ok ? "success" : "failure"},
                       {"output", output(0)}};
  auto created =
      CallJson("POST", fmt::format("/repos/{}/check-runs", check.repo), &create, check.repo);
  if (!created.ok()) return created.status();
  if (!created->value("id", json()).is_number_integer()) {
    return absl::UnavailableError("GitHub's check-run answer has no id");
  }
  const int64_t id = (*created)["id"].get<int64_t>();
  for (size_t from = kPerRequest; from < check.annotations.size(); from += kPerRequest) {
    const json update = {{"output", output(from)}};
    auto updated =
        Call("PATCH", fmt::format("/repos/{}/check-runs/{}", check.repo, id), &update, check.repo);
    if (!updated.ok()) return updated.status();
  }
  return absl::OkStatus();
}

absl::StatusOr<int64_t> GitHubForge::CreateDeployment(const DeploymentRequest& request) {
  if (auto s = CheckRepo(request.repo); !s.ok()) return s;
  const json payload = {
      {"ref", request.ref},
      {"environment", request.environment},
      {"description", TruncateUtf8(request.description, 140)},
      // Eph decides when to deploy (wait_for_checks); GitHub must not refuse over red checks,
      // nor merge the base branch into the pull request.
      {"required_contexts", json::array()},
      {"auto_merge", false},
      {"transient_environment", request.transient},
      {"production_environment", false},
  };
  auto created =
      CallJson("POST", fmt::format("/repos/{}/deployments", request.repo), &payload, request.repo);
  if (!created.ok()) return created.status();
  if (!created->value("id", json()).is_number_integer()) {
    return absl::UnavailableError(
        fmt::format("GitHub created no deployment: {}", StringField(*created, "message")));
  }
  return (*created)["id"].get<int64_t>();
}

absl::Status GitHubForge::SetDeploymentStatus(const std::string& repo, int64_t deployment_id,
                                              const DeploymentStatus& status) {
  if (auto s = CheckRepo(repo); !s.ok()) return s;
  json payload = {{"state", std::string(DeploymentStateName(status.state))},
                  {"description", TruncateUtf8(status.description, 140)}};
  if (!status.environment_url.empty()) payload["environment_url"] = status.environment_url;
  return Call("POST", fmt::format("/repos/{}/deployments/{}/statuses", repo, deployment_id),
              &payload, repo)
      .status();
}

}  // namespace eph::forge::github
