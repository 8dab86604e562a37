#include "pkg/forge/fake_forge.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <utility>

namespace eph::forge {

std::optional<absl::Status> FakeForge::Begin(Method method) {
  ++calls_[method];
  auto& queue = failures_[method];
  if (queue.empty()) return std::nullopt;
  absl::Status status = std::move(queue.front());
  queue.pop_front();
  return status;
}

PullRequest* FakeForge::FindPr(const std::string& repo, int64_t number) {
  auto it = prs_.find({repo, number});
  return it == prs_.end() ? nullptr : &it->second;
}

absl::StatusOr<PullRequest> FakeForge::GetPullRequest(const std::string& repo, int64_t number) {
  std::lock_guard<std::mutex> lock(mu_);
  if (auto failure = Begin(Method::kGetPullRequest)) return *failure;
  const PullRequest* pr = FindPr(repo, number);
  if (pr == nullptr) {
    return absl::NotFoundError(repo + "#" + std::to_string(number) + " does not exist");
  }
  return *pr;
}

absl::StatusOr<std::vector<PullRequest>> FakeForge::ListOpenPullRequests(const std::string& repo) {
  std::lock_guard<std::mutex> lock(mu_);
  if (auto failure = Begin(Method::kListOpenPullRequests)) return *failure;
  std::vector<PullRequest> out;
  for (const auto& [key, pr] : prs_) {
    if (pr.repo == repo && pr.state == PullRequestState::kOpen) out.push_back(pr);
  }
  std::sort(out.begin(), out.end(),
            [](const PullRequest& a, const PullRequest& b) { return a.number > b.number; });
  return out;
}

absl::StatusOr<std::string> FakeForge::ReadFile(const std::string& repo, const std::string& sha,
                                                const std::string& path) {
  std::lock_guard<std::mutex> lock(mu_);
  if (auto failure = Begin(Method::kReadFile)) return *failure;
  auto it = files_.find({repo, sha, path});
  if (it == files_.end()) {
    return absl::NotFoundError(path + " does not exist at " + repo + "@" + sha);
  }
  return it->second;
}

absl::StatusOr<std::string> FakeForge::ResolveBranch(const std::string& repo,
                                                     const std::string& branch) {
  std::lock_guard<std::mutex> lock(mu_);
  if (auto failure = Begin(Method::kResolveBranch)) return *failure;
  auto it = branches_.find({repo, branch});
  if (it == branches_.end()) return absl::NotFoundError("no branch " + branch + " in " + repo);
  return it->second;
}

void FakeForge::SetBranch(const std::string& repo, const std::string& branch,
                          const std::string& sha) {
  std::lock_guard<std::mutex> lock(mu_);
  branches_[{repo, branch}] = sha;
}

absl::Status FakeForge::FetchSource(const std::string& repo, const std::string& sha,
                                    const std::string& dest_dir) {
  std::lock_guard<std::mutex> lock(mu_);
  if (auto failure = Begin(Method::kFetchSource)) return *failure;
  bool any = false;
  for (const auto& [key, content] : files_) {
    if (std::get<0>(key) != repo || std::get<1>(key) != sha) continue;
    any = true;
    const std::filesystem::path path = std::filesystem::path(dest_dir) / std::get<2>(key);
    std::error_code ec;
    std::filesystem::create_directories(path.parent_path(), ec);
    std::ofstream out(path, std::ios::binary);
    out << content;
    if (!out) return absl::InternalError("cannot write " + path.string());
  }
  if (!any) return absl::NotFoundError("no commit " + sha + " in " + repo);
  return absl::OkStatus();
}

absl::StatusOr<bool> FakeForge::CanWrite(const std::string& repo, const std::string& user) {
  std::lock_guard<std::mutex> lock(mu_);
  if (auto failure = Begin(Method::kCanWrite)) return *failure;
  return writers_.count({repo, user}) > 0;
}

void FakeForge::GrantWrite(const std::string& repo, const std::string& user) {
  std::lock_guard<std::mutex> lock(mu_);
  writers_.insert({repo, user});
}

absl::Status FakeForge::ReportConfigCheck(const ConfigCheck& check) {
  std::lock_guard<std::mutex> lock(mu_);
  if (auto failure = Begin(Method::kReportConfigCheck)) return *failure;
  config_checks_.push_back(check);
  return absl::OkStatus();
}

std::vector<ConfigCheck> FakeForge::ConfigChecks(const std::string& repo,
                                                 const std::string& sha) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<ConfigCheck> out;
  for (const ConfigCheck& c : config_checks_) {
    if (c.repo == repo && c.sha == sha) out.push_back(c);
  }
  return out;
}

absl::StatusOr<std::vector<CheckResult>> FakeForge::ListChecks(const std::string& repo,
                                                               const std::string& sha) {
  std::lock_guard<std::mutex> lock(mu_);
  if (auto failure = Begin(Method::kListChecks)) return *failure;
  std::vector<CheckResult> out;
  auto it = checks_.find({repo, sha});
  if (it == checks_.end()) return out;
  for (const auto& [name, state] : it->second) out.push_back({name, state});
  return out;
}

absl::StatusOr<std::vector<std::string>> FakeForge::ListChangedFiles(const std::string& repo,
                                                                     int64_t number) {
  std::lock_guard<std::mutex> lock(mu_);
  if (auto failure = Begin(Method::kListChangedFiles)) return *failure;
  if (FindPr(repo, number) == nullptr) {
    return absl::NotFoundError(repo + "#" + std::to_string(number) + " does not exist");
  }
  auto it = changed_files_.find({repo, number});
  if (it == changed_files_.end()) return std::vector<std::string>{};
  return it->second;
}

absl::Status FakeForge::UpsertComment(const std::string& repo, int64_t number,
                                      const std::string& marker, const std::string& body) {
  std::lock_guard<std::mutex> lock(mu_);
  if (auto failure = Begin(Method::kUpsertComment)) return *failure;
  if (marker.empty() || body.find(marker) == std::string::npos) {
    return absl::InvalidArgumentError("comment body must contain its marker");
  }
  if (FindPr(repo, number) == nullptr) {
    return absl::NotFoundError(repo + "#" + std::to_string(number) + " does not exist");
  }
  auto& comments = comments_[{repo, number}];
  for (Comment& c : comments) {
    if (c.marker != marker) continue;
    if (c.body != body) {
      c.body = body;
      ++c.edits;
    }
    return absl::OkStatus();
  }
  comments.push_back({marker, body, 0});
  return absl::OkStatus();
}

absl::StatusOr<int64_t> FakeForge::CreateDeployment(const DeploymentRequest& request) {
  std::lock_guard<std::mutex> lock(mu_);
  if (auto failure = Begin(Method::kCreateDeployment)) return *failure;
  if (request.ref.empty() || request.environment.empty()) {
    return absl::InvalidArgumentError("a deployment needs a ref and an environment");
  }
  Deployment d;
  d.id = next_deployment_id_++;
  d.request = request;
  deployments_[request.repo].push_back(d);
  return d.id;
}

absl::Status FakeForge::SetDeploymentStatus(const std::string& repo, int64_t deployment_id,
                                            const DeploymentStatus& status) {
  std::lock_guard<std::mutex> lock(mu_);
  if (auto failure = Begin(Method::kSetDeploymentStatus)) return *failure;
  for (Deployment& d : deployments_[repo]) {
    if (d.id != deployment_id) continue;
    d.statuses.push_back(status);
    return absl::OkStatus();
  }
  return absl::NotFoundError("no deployment " + std::to_string(deployment_id) + " in " + repo);
}

void FakeForge::SetPullRequest(const PullRequest& pr) {
  std::lock_guard<std::mutex> lock(mu_);
  prs_[{pr.repo, pr.number}] = pr;
}

void FakeForge::SetState(const std::string& repo, int64_t number, PullRequestState state) {
  std::lock_guard<std::mutex> lock(mu_);
  if (PullRequest* pr = FindPr(repo, number)) pr->state = state;
}

void FakeForge::AddLabel(const std::string& repo, int64_t number, const std::string& label) {
  std::lock_guard<std::mutex> lock(mu_);
  PullRequest* pr = FindPr(repo, number);
  if (pr == nullptr) return;
  if (std::find(pr->labels.begin(), pr->labels.end(), label) == pr->labels.end()) {
    pr->labels.push_back(label);
  }
}

void FakeForge::RemoveLabel(const std::string& repo, int64_t number, const std::string& label) {
  std::lock_guard<std::mutex> lock(mu_);
  if (PullRequest* pr = FindPr(repo, number)) std::erase(pr->labels, label);
}

void FakeForge::SetDraft(const std::string& repo, int64_t number, bool draft) {
  std::lock_guard<std::mutex> lock(mu_);
  if (PullRequest* pr = FindPr(repo, number)) pr->draft = draft;
}

void FakeForge::Push(const std::string& repo, int64_t number, const std::string& new_sha) {
  std::lock_guard<std::mutex> lock(mu_);
  PullRequest* pr = FindPr(repo, number);
  if (pr == nullptr) return;
  std::vector<std::pair<FileKey, std::string>> copies;
  for (const auto& [key, content] : files_) {
    if (std::get<0>(key) == repo && std::get<1>(key) == pr->head_sha) {
      copies.push_back({{repo, new_sha, std::get<2>(key)}, content});
    }
  }
  for (auto& [key, content] : copies) files_[key] = std::move(content);
  pr->head_sha = new_sha;
}

void FakeForge::SetFile(const std::string& repo, const std::string& sha, const std::string& path,
                        std::string content) {
  std::lock_guard<std::mutex> lock(mu_);
  files_[{repo, sha, path}] = std::move(content);
}

void FakeForge::RemoveFile(const std::string& repo, const std::string& sha,
                           const std::string& path) {
  std::lock_guard<std::mutex> lock(mu_);
  files_.erase({repo, sha, path});
}

void FakeForge::SetCheck(const std::string& repo, const std::string& sha, const std::string& name,
                         CheckState state) {
  std::lock_guard<std::mutex> lock(mu_);
  checks_[{repo, sha}][name] = state;
}

void FakeForge::SetChangedFiles(const std::string& repo, int64_t number,
                                std::vector<std::string> files) {
  std::lock_guard<std::mutex> lock(mu_);
  changed_files_[{repo, number}] = std::move(files);
}

void FakeForge::FailNext(Method method, absl::Status status) {
  std::lock_guard<std::mutex> lock(mu_);
  failures_[method].push_back(std::move(status));
}

std::vector<FakeForge::Comment> FakeForge::Comments(const std::string& repo, int64_t number) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = comments_.find({repo, number});
  if (it == comments_.end()) return {};
  return it->second;
}

std::optional<FakeForge::Comment> FakeForge::CommentWithMarker(const std::string& repo,
                                                               int64_t number,
                                                               const std::string& marker) const {
  for (const Comment& c : Comments(repo, number)) {
    if (c.marker == marker) return c;
  }
  return std::nullopt;
}

std::vector<FakeForge::Deployment> FakeForge::Deployments(const std::string& repo) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = deployments_.find(repo);
  if (it == deployments_.end()) return {};
  return it->second;
}

int64_t FakeForge::Calls(Method method) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = calls_.find(method);
  return it == calls_.end() ? 0 : it->second;
}

int64_t FakeForge::Writes() const {
  return Calls(Method::kUpsertComment) + Calls(Method::kCreateDeployment) +
         Calls(Method::kSetDeploymentStatus);
}

}  // namespace eph::forge
