// CachedForge: a Forge decorator that remembers what never changes, the content at a commit.
//
// A reconcile pass re-reads eph.yaml (ReadFile) and, when it applies, the repository's files
// (FetchSource) at the pull request's head commit; readiness passes and retries repeat both at
// the same SHA. Content at a full SHA is immutable, so both are answered from memory after the
// first read:
//  - ReadFile(repo, sha, path): the content, or NotFound (a file absent at a commit stays absent).
//    Also answered from a cached FetchSource tree of the same commit.
//  - FetchSource(repo, sha, dir): the tree written the first time (regular files with their
//    executable bit, directories, symbolic links) is read back and written again into later
//    directories. A tree larger than a quarter of the budget is not kept.
// Everything else (pull requests, checks, changed files, writes) passes straight through: it is
// live state. Errors other than NotFound are never cached.
//
// Bounded: least-recently-used entries are dropped once the cached bytes exceed `max_bytes`.
// Only full 40-hex-digit SHAs are cached (a branch name or a short SHA can move).
//
// Thread-safety: as the wrapped forge; the cache has its own lock, held only around lookups, so
// two threads missing the same key may both read through (harmless).
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "pkg/forge/forge.h"

namespace eph::forge {

struct CachedForgeOptions {
  size_t max_bytes = size_t{64} << 20;
};

class CachedForge final : public Forge {
 public:
  // `inner` must outlive this object.
  CachedForge(Forge& inner, CachedForgeOptions options = {});
  ~CachedForge() override;

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
  absl::Status FetchSource(const std::string& repo, const std::string& sha,
                           const std::string& dest_dir) override;
  absl::Status ReportConfigCheck(const ConfigCheck& check) override;
  absl::StatusOr<bool> CanWrite(const std::string& repo, const std::string& user) override;
  absl::StatusOr<int64_t> CreateDeployment(const DeploymentRequest& request) override;
  absl::Status SetDeploymentStatus(const std::string& repo, int64_t deployment_id,
                                   const DeploymentStatus& status) override;

  struct Stats {
    int64_t hits = 0;
    int64_t misses = 0;
    size_t bytes = 0;
    size_t entries = 0;
  };
  Stats stats() const;

  // One entry of a cached tree (public for the implementation's helpers).
  struct TreeEntry {
    enum class Kind { kDirectory, kFile, kSymlink };
    Kind kind = Kind::kFile;
    std::string path;     // relative to the tree's root
    std::string content;  // file content, or the link's target
    bool executable = false;
  };

 private:
  struct Entry {
    std::optional<std::string> file;  // ReadFile: content; nullopt: NotFound
    std::shared_ptr<const std::vector<TreeEntry>> tree;  // FetchSource
    size_t bytes = 0;
    std::list<std::string>::iterator lru;
  };

  std::optional<Entry> Lookup(const std::string& key);
  void Insert(const std::string& key, Entry entry);

  Forge& inner_;
  const CachedForgeOptions options_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, Entry> entries_;
  std::list<std::string> lru_;  // most recently used first
  size_t bytes_ = 0;
  int64_t hits_ = 0;
  int64_t misses_ = 0;
};

}  // namespace eph::forge
