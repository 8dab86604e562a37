#include "pkg/forge/cached_forge.h"

#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <iterator>

namespace eph::forge {
namespace {

namespace fs = std::filesystem;

bool IsFullSha(const std::string& sha) {
  if (sha.size() != 40) return false;
  for (char c : sha) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) {
      return false;
    }
  }
  return true;
}

// Keys cannot collide: repo names hold no '\n', SHAs are hex.
std::string FileKey(const std::string& repo, const std::string& sha, const std::string& path) {
  return "f\n" + repo + "\n" + sha + "\n" + path;
}
std::string TreeKey(const std::string& repo, const std::string& sha) {
  return "t\n" + repo + "\n" + sha;
}

std::string Normal(const std::string& path) {
  return fs::path(path).lexically_normal().generic_string();
}

// The tree FetchSource just wrote, read back; nullopt if it cannot be read completely or is
// larger than `limit`.
std::optional<std::vector<CachedForge::TreeEntry>> ReadTree(const std::string& root,
                                                            size_t limit, size_t& bytes) {
  using Kind = CachedForge::TreeEntry::Kind;
  std::vector<CachedForge::TreeEntry> out;
  bytes = 0;
  std::error_code ec;
  fs::recursive_directory_iterator it(root, fs::directory_options::none, ec);
  if (ec) return std::nullopt;
  for (; it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) return std::nullopt;
    const fs::directory_entry& e = *it;
    CachedForge::TreeEntry entry;
    entry.path = fs::relative(e.path(), root, ec).generic_string();
    if (ec) return std::nullopt;
    const fs::file_status st = e.symlink_status(ec);
    if (ec) return std::nullopt;
    if (fs::is_symlink(st)) {
      entry.kind = Kind::kSymlink;
      entry.content = fs::read_symlink(e.path(), ec).string();
      if (ec) return std::nullopt;
    } else if (fs::is_directory(st)) {
      entry.kind = Kind::kDirectory;
    } else if (fs::is_regular_file(st)) {
      entry.kind = Kind::kFile;
      entry.executable = (st.permissions() & fs::perms::owner_exec) != fs::perms::none;
      std::ifstream in(e.path(), std::ios::binary);
      entry.content.assign(std::istreambuf_iterator<char>(in), {});
      if (!in.good() && !in.eof()) return std::nullopt;
    } else {
      return std::nullopt;  // nothing else comes out of a source archive
    }
    bytes += entry.path.size() + entry.content.size() + 64;
    if (bytes > limit) return std::nullopt;
    out.push_back(std::move(entry));
  }
  return out;
}

absl::Status WriteTree(const std::vector<CachedForge::TreeEntry>& tree, const std::string& root) {
  using Kind = CachedForge::TreeEntry::Kind;
  for (const CachedForge::TreeEntry& e : tree) {
    const fs::path path = fs::path(root) / e.path;
    std::error_code ec;
    switch (e.kind) {
      case Kind::kDirectory:
        fs::create_directories(path, ec);
        break;
      case Kind::kSymlink:
        fs::create_directories(path.parent_path(), ec);
        if (!ec) fs::create_symlink(e.content, path, ec);
        break;
      case Kind::kFile: {
        fs::create_directories(path.parent_path(), ec);
        if (ec) break;
        std::ofstream out(path, std::ios::binary | std::ios::trunc);
        out.write(e.content.data(), static_cast<std::streamsize>(e.content.size()));
        out.close();
        if (!out) return absl::InternalError("cannot write " + path.string());
        if (e.executable) {
          fs::permissions(path, fs::perms::owner_exec | fs::perms::group_exec |
                                    fs::perms::others_exec,
                          fs::perm_options::add, ec);
        }
        break;
      }
    }
    if (ec) return absl::InternalError("cannot write " + path.string() + ": " + ec.message());
  }
  return absl::OkStatus();
}

}  // namespace

CachedForge::CachedForge(Forge& inner, CachedForgeOptions options)
    : inner_(inner), options_(options) {}
CachedForge::~CachedForge() = default;

std::optional<CachedForge::Entry> CachedForge::Lookup(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(key);
  if (it == entries_.end()) {
    ++misses_;
    return std::nullopt;
  }
  ++hits_;
  lru_.splice(lru_.begin(), lru_, it->second.lru);
  return it->second;
}

void CachedForge::Insert(const std::string& key, Entry entry) {
  std::lock_guard<std::mutex> lock(mu_);
  if (entries_.count(key) > 0) return;  // another thread was first
  lru_.push_front(key);
  entry.lru = lru_.begin();
  bytes_ += entry.bytes;
  entries_.emplace(key, std::move(entry));
  while (bytes_ > options_.max_bytes && !lru_.empty()) {
    auto victim = entries_.find(lru_.back());
    bytes_ -= victim->second.bytes;
    entries_.erase(victim);
    lru_.pop_back();
  }
}

CachedForge::Stats CachedForge::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return {hits_, misses_, bytes_, entries_.size()};
}

absl::StatusOr<std::string> CachedForge::ReadFile(const std::string& repo, const std::string& sha,
                                                  const std::string& path) {
  if (!IsFullSha(sha)) return inner_.ReadFile(repo, sha, path);
  const std::string key = FileKey(repo, sha, path);
  if (std::optional<Entry> hit = Lookup(key)) {
    if (!hit->file) return absl::NotFoundError(path + " not found at commit " + sha);
    return *hit->file;
  }
  if (std::optional<Entry> tree = Lookup(TreeKey(repo, sha))) {
    const std::string wanted = Normal(path);
    for (const TreeEntry& e : *tree->tree) {
      if (e.kind == TreeEntry::Kind::kFile && e.path == wanted) return e.content;
    }
    // Not a regular file of the tree (absent, or a link): ask the forge, which knows best.
  }
  absl::StatusOr<std::string> read = inner_.ReadFile(repo, sha, path);
  if (read.ok() || read.status().code() == absl::StatusCode::kNotFound) {
    Entry entry;
    if (read.ok()) entry.file = *read;
    entry.bytes = key.size() + (read.ok() ? read->size() : 0) + 64;
    if (entry.bytes <= options_.max_bytes / 4) Insert(key, std::move(entry));
  }
  return read;
}

absl::Status CachedForge::FetchSource(const std::string& repo, const std::string& sha,
                                      const std::string& dest_dir) {
  if (!IsFullSha(sha)) return inner_.FetchSource(repo, sha, dest_dir);
  const std::string key = TreeKey(repo, sha);
  if (std::optional<Entry> hit = Lookup(key)) return WriteTree(*hit->tree, dest_dir);
  absl::Status fetched = inner_.FetchSource(repo, sha, dest_dir);
  if (!fetched.ok()) return fetched;
  size_t bytes = 0;
  std::optional<std::vector<TreeEntry>> tree = ReadTree(dest_dir, options_.max_bytes / 4, bytes);
  if (tree) {
    Entry entry;
    entry.tree = std::make_shared<const std::vector<TreeEntry>>(std::move(*tree));
    entry.bytes = bytes + key.size();
    Insert(key, std::move(entry));
  }
  return absl::OkStatus();
}

absl::StatusOr<PullRequest> CachedForge::GetPullRequest(const std::string& repo, int64_t number) {
  return inner_.GetPullRequest(repo, number);
}
absl::StatusOr<std::vector<PullRequest>> CachedForge::ListOpenPullRequests(
    const std::string& repo) {
  return inner_.ListOpenPullRequests(repo);
}
absl::StatusOr<std::vector<CheckResult>> CachedForge::ListChecks(const std::string& repo,
                                                                 const std::string& sha) {
  return inner_.ListChecks(repo, sha);
}
absl::StatusOr<std::vector<std::string>> CachedForge::ListChangedFiles(const std::string& repo,
                                                                       int64_t number) {
  return inner_.ListChangedFiles(repo, number);
}
absl::Status CachedForge::UpsertComment(const std::string& repo, int64_t number,
                                        const std::string& marker, const std::string& body) {
  return inner_.UpsertComment(repo, number, marker, body);
}
absl::Status CachedForge::ReportConfigCheck(const ConfigCheck& check) {
  return inner_.ReportConfigCheck(check);
}
absl::StatusOr<std::string> CachedForge::ResolveBranch(const std::string& repo,
                                                       const std::string& branch) {
  return inner_.ResolveBranch(repo, branch);
}
absl::StatusOr<bool> CachedForge::CanWrite(const std::string& repo, const std::string& user) {
  return inner_.CanWrite(repo, user);
}
absl::StatusOr<int64_t> CachedForge::CreateDeployment(const DeploymentRequest& request) {
  return inner_.CreateDeployment(request);
}
absl::Status CachedForge::SetDeploymentStatus(const std::string& repo, int64_t deployment_id,
                                              const DeploymentStatus& status) {
  return inner_.SetDeploymentStatus(repo, deployment_id, status);
}

}  // namespace eph::forge
