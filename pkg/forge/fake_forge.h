// FakeForge: an in-memory Forge. A TEST DOUBLE standing in for GitHub, which cannot run here.
//
// Tests set the world (pull requests, files per commit, checks per commit, changed files),
// inject failures (FailNext(kGetPullRequest, absl::UnavailableError(...))), and inspect what Eph
// wrote: the sticky comments (one per marker, with an edit count) and deployments with every
// status they were given. Behaves like the real thing where the reconciler depends on it:
// NotFound for a missing pull request or file, UpsertComment keyed by marker.
//
// Thread-safety: every method is safe to call from any thread.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <set>
#include <mutex>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "pkg/forge/forge.h"

namespace eph::forge {

class FakeForge final : public Forge {
 public:
  enum class Method {
    kGetPullRequest,
    kReadFile,
    kListChecks,
    kListChangedFiles,
    kUpsertComment,
    kCreateDeployment,
    kSetDeploymentStatus,
    kFetchSource,
    kReportConfigCheck,
    kCanWrite,
    kListOpenPullRequests,
    kResolveBranch,
  };

  struct Comment {
    std::string marker;
    std::string body;
    int64_t edits = 0;  // times the body was changed after creation
  };

  struct Deployment {
    int64_t id = 0;
    DeploymentRequest request;
    std::vector<DeploymentStatus> statuses;  // oldest first
  };

  absl::StatusOr<PullRequest> GetPullRequest(const std::string& repo, int64_t number) override;
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
  // Writes the files set for (repo, sha) with SetFile; NotFound if there are none.
  absl::Status FetchSource(const std::string& repo, const std::string& sha,
                           const std::string& dest_dir) override;
  absl::Status ReportConfigCheck(const ConfigCheck& check) override;
  absl::StatusOr<bool> CanWrite(const std::string& repo, const std::string& user) override;
  absl::StatusOr<int64_t> CreateDeployment(const DeploymentRequest& request) override;
  absl::Status SetDeploymentStatus(const std::string& repo, int64_t deployment_id,
                                   const DeploymentStatus& status) override;

  // --- the world ---
  void SetPullRequest(const PullRequest& pr);
  void SetState(const std::string& repo, int64_t number, PullRequestState state);
  void AddLabel(const std::string& repo, int64_t number, const std::string& label);
  void RemoveLabel(const std::string& repo, int64_t number, const std::string& label);
  void SetDraft(const std::string& repo, int64_t number, bool draft);
  // A new head commit whose files are those of the previous head (change them with SetFile).
  void Push(const std::string& repo, int64_t number, const std::string& new_sha);
  void SetFile(const std::string& repo, const std::string& sha, const std::string& path,
               std::string content);
  // `branch` of `repo` points at `sha` (ResolveBranch answers NotFound for a branch never set).
  void SetBranch(const std::string& repo, const std::string& branch, const std::string& sha);
  void RemoveFile(const std::string& repo, const std::string& sha, const std::string& path);
  void SetCheck(const std::string& repo, const std::string& sha, const std::string& name,
                CheckState state);
  void SetChangedFiles(const std::string& repo, int64_t number, std::vector<std::string> files);
  // `user` may push to `repo` (CanWrite answers true); nobody may until granted.
  void GrantWrite(const std::string& repo, const std::string& user);
  // The next call of `method` fails with `status` (queued: one entry per call).
  void FailNext(Method method, absl::Status status);

  // --- what Eph did ---
  std::vector<Comment> Comments(const std::string& repo, int64_t number) const;
  std::optional<Comment> CommentWithMarker(const std::string& repo, int64_t number,
                                           const std::string& marker) const;
  std::vector<Deployment> Deployments(const std::string& repo) const;
  // Config checks reported for (repo, sha), oldest first.
  std::vector<ConfigCheck> ConfigChecks(const std::string& repo, const std::string& sha) const;

  int64_t Calls(Method method) const;
  // Calls of the write methods (comments and deployments) so far.
  int64_t Writes() const;

 private:
  using PrKey = std::pair<std::string, int64_t>;
  using FileKey = std::tuple<std::string, std::string, std::string>;  // repo, sha, path

  // Counts the call and pops a scripted failure; caller holds mu_.
  std::optional<absl::Status> Begin(Method method);
  PullRequest* FindPr(const std::string& repo, int64_t number);

  mutable std::mutex mu_;
  std::map<PrKey, PullRequest> prs_;
  std::map<FileKey, std::string> files_;
  std::map<std::pair<std::string, std::string>, std::string> branches_;  // (repo, branch) -> sha
  std::map<std::pair<std::string, std::string>, std::map<std::string, CheckState>> checks_;
  std::map<PrKey, std::vector<std::string>> changed_files_;
  std::map<PrKey, std::vector<Comment>> comments_;
  std::map<std::string, std::vector<Deployment>> deployments_;
  std::vector<ConfigCheck> config_checks_;
  std::set<std::pair<std::string, std::string>> writers_;  // (repo, user)
  int64_t next_deployment_id_ = 1000;
  std::map<Method, std::deque<absl::Status>> failures_;
  std::map<Method, int64_t> calls_;
};

}  // namespace eph::forge
