// GitHubForge: the Forge on GitHub's REST API (api.github.com or GitHub Enterprise Server at
// https://HOST/api/v3), as a personal-access-token user or as a GitHub App installation.
//
// Contract (beyond Forge's):
//  - Every request carries `Accept: application/vnd.github+json`, `X-GitHub-Api-Version:
//    2022-11-28` and a User-Agent.
//  - App mode: a JWT (RS256, see app_jwt.h) finds the repository's installation and mints its
//    access token; tokens are cached per installation and renewed five minutes before they
//    expire, so steady work costs no extra calls. A 401 drops the cached token.
//  - Rate limits: a 403/429 with `x-ratelimit-remaining: 0`, `retry-after` or GitHub's
//    secondary-limit message blocks the whole client until the reset (secondary limits without
//    `retry-after` back off 1, 2, 4 … 15 minutes). While blocked every call fails at once with
//    Unavailable, without a request, so the reconciler's per-key backoff does the waiting and
//    no thread sleeps and no storm follows the reset.
//  - HTTP statuses map to canonical codes: 401 Unauthenticated, 403 PermissionDenied, 404
//    NotFound, 409 FailedPrecondition, 422 InvalidArgument, 5xx and transport failures
//    Unavailable. Messages name the call and carry GitHub's own message.
//
// Thread-safety: safe to call from many threads at once.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "nlohmann/json.hpp"
#include "pkg/base/clock.h"
#include "pkg/forge/forge.h"
#include "pkg/forge/github/app_jwt.h"
#include "pkg/http/http_client.h"

namespace eph::forge::github {

struct GitHubForgeOptions {
  std::string api_url = "https://api.github.com";  // GHES: https://HOST/api/v3
  std::string token;                               // PAT mode
  std::string app_id;                              // App mode, with private_key_pem
  std::string private_key_pem;
  std::string private_key_file;  // App mode: where to read private_key_pem from, if empty
  std::string user_agent = "eph";
  std::string own_check_name = "eph";  // Eph's own check run, never waited on
  const Clock* clock = nullptr;        // default: SystemClock
  std::chrono::milliseconds timeout{30'000};
  size_t max_source_bytes = size_t{256} << 20;  // a repository archive, compressed
};

class GitHubForge final : public Forge {
 public:
  // InvalidArgument when neither or both of token and App are configured, or the key is missing,
  // unreadable or bad.
  static absl::StatusOr<std::unique_ptr<GitHubForge>> Create(GitHubForgeOptions options);

  absl::StatusOr<PullRequest> GetPullRequest(const std::string& repo, int64_t number) override;
  // GET /repos/{repo}/pulls?state=open, 100 per page.
  absl::StatusOr<std::vector<PullRequest>> ListOpenPullRequests(const std::string& repo) override;
  absl::StatusOr<std::string> ResolveBranch(const std::string& repo,
                                            const std::string& branch) override;
  absl::StatusOr<std::string> ReadFile(const std::string& repo, const std::string& sha,
                                       const std::string& path) override;
  absl::StatusOr<std::vector<CheckResult>> ListChecks(const std::string& repo,
                                                      const std::string& sha) override;
  absl::StatusOr<std::vector<std::string>> ListChangedFiles(const std::string& repo,
                                                            int64_t number) override;
  absl::Status UpsertComment(const std::string& repo, int64_t number, const std::string& marker,
                             const std::string& body) override;
  // The tarball endpoint (a redirect to codeload, followed), unpacked by ExtractTarGz.
  absl::Status FetchSource(const std::string& repo, const std::string& sha,
                           const std::string& dest_dir) override;
  // A check run named own_check_name; annotations beyond 50 (GitHub's limit per request) are
  // added by updating the run. Unimplemented with a token (GitHub: Apps only), without a call.
  absl::Status ReportConfigCheck(const ConfigCheck& check) override;
  absl::StatusOr<bool> CanWrite(const std::string& repo, const std::string& user) override;
  absl::StatusOr<int64_t> CreateDeployment(const DeploymentRequest& request) override;
  absl::Status SetDeploymentStatus(const std::string& repo, int64_t deployment_id,
                                   const DeploymentStatus& status) override;

 private:
  enum class Auth { kRepository, kApp };
  struct CachedToken {
    std::string token;
    TimePoint expires_at;
  };

  explicit GitHubForge(GitHubForgeOptions options, std::unique_ptr<AppJwtSigner> signer);

  // One API call. `target` is a path under the API URL ("/repos/…") or an absolute URL (a
  // pagination link). `repo` selects the installation token in App mode.
  absl::StatusOr<http::Response> Call(const std::string& method, const std::string& target,
                                  const nlohmann::json* body, const std::string& repo,
                                  Auth auth = Auth::kRepository, size_t max_bytes = 64 << 20);
  absl::StatusOr<nlohmann::json> CallJson(const std::string& method, const std::string& target,
                                          const nlohmann::json* body, const std::string& repo,
                                          Auth auth = Auth::kRepository);
  // GETs `first` and every `rel="next"` page after it, handing each parsed page to `on_page`.
  absl::Status ForEachPage(const std::string& first, const std::string& repo,
                           const std::function<absl::Status(const nlohmann::json&)>& on_page);
  absl::StatusOr<std::string> AuthorizationFor(const std::string& repo, Auth auth);
  absl::StatusOr<std::string> InstallationToken(const std::string& repo);
  // Records a rate limit the answer signals; how long calls now wait, or nullopt for an
  // ordinary answer.
  std::optional<std::chrono::seconds> NoteRateLimit(const http::Response& answer);
  void DropInstallationToken(const std::string& repo);

  const GitHubForgeOptions options_;
  const Clock& clock_;
  const std::unique_ptr<AppJwtSigner> signer_;

  std::mutex mu_;  // guards the members below
  TimePoint blocked_until_{};
  int secondary_strikes_ = 0;
  std::map<std::string, int64_t> installation_by_repo_;
  std::map<int64_t, CachedToken> tokens_;
  std::mutex mint_mu_;  // one token mint at a time, so concurrent callers share it
};

}  // namespace eph::forge::github
