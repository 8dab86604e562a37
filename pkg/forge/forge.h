// Forge: the code host (GitHub now, GitLab later) as the reconciler sees it.
//
// Reads give the live state the reconciler converges on: a pull request, a file at a commit,
// the checks at a commit. Writes tell people what happened: one sticky comment per environment
// and a deployment with statuses. Nothing here is called from the webhook handler; webhooks only
// say "look again at this pull request".
//
// Contract:
//  - `repo` is "owner/repo". Pull requests are addressed by number, commits by full SHA.
//  - Errors are canonical: NotFound (no such pull request / file at that commit), Unavailable
//    (network, 5xx, rate limit: retried with backoff), PermissionDenied / Unauthenticated (the
//    token or app installation lacks access), InvalidArgument (a request the forge rejects).
//  - Writes are idempotent where the forge allows it: UpsertComment finds its comment by the
//    hidden marker and edits it, so retries never produce a second comment.
//
// Thread-safety: implementations must be safe to call from many threads at once.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace eph::forge {

enum class PullRequestState { kOpen, kClosed, kMerged };
std::string_view PullRequestStateName(PullRequestState state);

struct PullRequest {
  std::string repo;  // "owner/repo" (the base repository)
  int64_t number = 0;
  PullRequestState state = PullRequestState::kOpen;
  std::vector<std::string> labels;
  std::string head_sha;
  std::string head_branch;
  std::string base_branch;
  // The base repository's default branch, whose eph.yaml holds the project's policy (issue 16):
  // what a pull request cannot choose for itself. Empty when the forge did not say.
  std::string default_branch;
  bool draft = false;
  bool from_fork = false;  // head repository differs from the base repository
  std::string author;
};

enum class CheckState { kPending, kSuccess, kFailure };
std::string_view CheckStateName(CheckState state);

// One check run or commit status. When a check ran more than once the forge reports the latest.
// Neutral and skipped conclusions count as success, everything unfinished as pending, and
// cancelled, timed out, action required and error as failure.
struct CheckResult {
  std::string name;
  CheckState state = CheckState::kPending;
};

enum class DeploymentState { kInProgress, kSuccess, kFailure, kInactive };
std::string_view DeploymentStateName(DeploymentState state);

struct DeploymentRequest {
  std::string repo;
  std::string ref;          // the commit SHA deployed
  std::string environment;  // the Eph environment name
  std::string description;
  bool transient = true;  // GitHub `transient_environment`
};

// One problem in a file at a commit, shown by the forge at that line (GitHub: a check-run
// annotation). Lines are 1-based; 0 means the whole file (shown at line 1).
struct CheckAnnotation {
  std::string path;
  int start_line = 0;
  int end_line = 0;  // 0: same as start_line
  std::string message;
};

// Eph's own check at a commit (GitHub: the check run named "eph"): whether eph.yaml is valid.
struct ConfigCheck {
  std::string repo;
  std::string sha;
  bool ok = true;
  std::string title;    // one line
  std::string summary;  // Markdown
  std::vector<CheckAnnotation> annotations;
};

struct DeploymentStatus {
  DeploymentState state = DeploymentState::kInProgress;
  std::string environment_url;  // set with kSuccess
  std::string description;      // short; forges truncate (GitHub: 140 characters)
};

class Forge {
 public:
  virtual ~Forge() = default;

  // NotFound if the pull request does not exist.
  virtual absl::StatusOr<PullRequest> GetPullRequest(const std::string& repo, int64_t number) = 0;

  // The repository's open pull requests (for the resync, which finds labelled pull requests
  // whose webhook was lost). At most a few thousand, newest first.
  virtual absl::StatusOr<std::vector<PullRequest>> ListOpenPullRequests(const std::string& repo) = 0;

  // The commit `branch` points at now. NotFound when the branch does not exist. Never cached: a
  // branch moves.
  virtual absl::StatusOr<std::string> ResolveBranch(const std::string& repo,
                                                    const std::string& branch) = 0;

  // The raw content of `path` (relative to the repository root) at commit `sha`. NotFound when
  // the file does not exist at that commit.
  virtual absl::StatusOr<std::string> ReadFile(const std::string& repo, const std::string& sha,
                                               const std::string& path) = 0;

  // Check runs and commit statuses at `sha`, one per name. A name not listed has not reported.
  virtual absl::StatusOr<std::vector<CheckResult>> ListChecks(const std::string& repo,
                                                              const std::string& sha) = 0;

  // Paths (relative to the repository root) the pull request changes, for `triggers[].paths`.
  virtual absl::StatusOr<std::vector<std::string>> ListChangedFiles(const std::string& repo,
                                                                    int64_t number) = 0;

  // Creates or edits the pull request comment containing `marker` (an HTML comment such as
  // "<!-- eph:environment=my-app-gentle-stream-42 -->", invisible when rendered) so that its
  // body is `body`. `body` must contain `marker`.
  virtual absl::Status UpsertComment(const std::string& repo, int64_t number,
                                     const std::string& marker, const std::string& body) = 0;

  // Writes the repository's files at commit `sha` into `dest_dir` (an existing, empty
  // directory), paths relative to the repository root, for rendering. NotFound when the commit
  // does not exist; InvalidArgument when the archive is unsafe to unpack (paths or links
  // leaving the directory), ResourceExhausted when it is too large.
  virtual absl::Status FetchSource(const std::string& repo, const std::string& sha,
                                   const std::string& dest_dir) = 0;

  // Creates Eph's check at `check.sha`, completed with success or failure and the annotations.
  // Unimplemented when the forge cannot show checks with these credentials (GitHub: only Apps
  // may create check runs); callers then rely on the comment alone.
  virtual absl::Status ReportConfigCheck(const ConfigCheck& check) = 0;

  // Whether `user` may push to the repository (GitHub: admin, maintain or write permission), the
  // bar for `/eph` commands. False for users without access; errors only when the forge cannot
  // answer.
  virtual absl::StatusOr<bool> CanWrite(const std::string& repo, const std::string& user) = 0;

  // Returns the new deployment's id.
  virtual absl::StatusOr<int64_t> CreateDeployment(const DeploymentRequest& request) = 0;
  virtual absl::Status SetDeploymentStatus(const std::string& repo, int64_t deployment_id,
                                           const DeploymentStatus& status) = 0;
};

}  // namespace eph::forge
