#include "pkg/forge/github/source_archive.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <filesystem>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "fmt/format.h"

namespace eph::forge::github {
namespace {

namespace fs = std::filesystem;
constexpr size_t kBlock = 512;

absl::Status Gunzip(const std::string& in, size_t limit, std::string& out) {
  z_stream z{};
  if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK) return absl::InternalError("inflateInit2 failed");
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  std::vector<char> buffer(1 << 16);
  int rc = Z_OK;
  while (rc != Z_STREAM_END) {
    z.next_out = reinterpret_cast<Bytef*>(buffer.data());
    z.avail_out = static_cast<uInt>(buffer.size());
    rc = inflate(&z, Z_NO_FLUSH);
    if (rc != Z_OK && rc != Z_STREAM_END) {
      inflateEnd(&z);
      return absl::InvalidArgumentError("the source archive is not valid gzip");
    }
    out.append(buffer.data(), buffer.size() - z.avail_out);
    if (out.size() > limit) {
      inflateEnd(&z);
      return absl::ResourceExhaustedError(
          fmt::format("the source archive unpacks to more than {} bytes", limit));
    }
    if (rc == Z_OK && z.avail_in == 0 && z.avail_out != 0) {
      inflateEnd(&z);
      return absl::InvalidArgumentError("the source archive is truncated");
    }
  }
  inflateEnd(&z);
  return absl::OkStatus();
}

std::string Field(const char* block, size_t offset, size_t length) {
  const char* start = block + offset;
  size_t n = 0;
  while (n < length && start[n] != '\0') ++n;
  return std::string(start, n);
}

bool ParseOctal(const std::string& text, uint64_t& value) {
  value = 0;
  bool any = false;
  for (char c : text) {
    if (c == ' ' || c == '\0') {
      if (any) break;
      continue;
    }
    if (c < '0' || c > '7') return false;
    value = value * 8 + static_cast<uint64_t>(c - '0');
    any = true;
  }
  return any;
}

// pax records "LEN key=value\n"; returns the value of `key`, or "".
std::string PaxValue(const std::string& data, const std::string& key) {
  size_t pos = 0;
  std::string found;
  while (pos < data.size()) {
    const size_t space = data.find(' ', pos);
    if (space == std::string::npos) break;
    size_t length = 0;
    if (!absl::SimpleAtoi(data.substr(pos, space - pos), &length) || length == 0 ||
        pos + length > data.size()) {
      break;
    }
    const std::string record = data.substr(space + 1, length - (space - pos) - 2);
    const size_t eq = record.find('=');
    if (eq != std::string::npos && record.substr(0, eq) == key) found = record.substr(eq + 1);
    pos += length;
  }
  return found;
}

// The entry's path below the archive's top-level directory, or an error for unsafe paths.
// Empty for the top-level directory itself.
absl::StatusOr<std::string> SafeRelative(const std::string& name) {
  if (name.empty() || name.front() == '/') {
    return absl::InvalidArgumentError(fmt::format("archive entry \"{}\" is absolute", name));
  }
  std::vector<std::string> parts;
  for (absl::string_view part : absl::StrSplit(name, '/', absl::SkipEmpty())) {
    if (part == "..") {
      return absl::InvalidArgumentError(fmt::format("archive entry \"{}\" contains ..", name));
    }
    if (part != ".") parts.emplace_back(part);
  }
  if (parts.size() <= 1) return std::string();
  std::string out = parts[1];
  for (size_t i = 2; i < parts.size(); ++i) out += "/" + parts[i];
  return out;
}

// Creates the parent directories of `rel` under `root`, refusing to pass through a symlink.
absl::Status MakeParents(const fs::path& root, const std::string& rel) {
  fs::path at = root;
  const fs::path parent = fs::path(rel).parent_path();
  for (const fs::path& part : parent) {
    at /= part;
    struct stat st;
    if (lstat(at.c_str(), &st) == 0) {
      if (S_ISLNK(st.st_mode)) {
        return absl::InvalidArgumentError(
            fmt::format("archive entry \"{}\" would be written through a symbolic link", rel));
      }
      if (!S_ISDIR(st.st_mode)) {
        return absl::InvalidArgumentError(fmt::format("archive entry \"{}\" is below a file", rel));
      }
    } else if (mkdir(at.c_str(), 0755) != 0) {
      return absl::InternalError(fmt::format("mkdir {}: {}", at.string(), strerror(errno)));
    }
  }
  return absl::OkStatus();
}

absl::Status RemoveExisting(const fs::path& path) {
  struct stat st;
  if (lstat(path.c_str(), &st) != 0) return absl::OkStatus();
  if (S_ISDIR(st.st_mode)) {
    return absl::InvalidArgumentError(
        fmt::format("archive entry {} replaces a directory", path.string()));
  }
  unlink(path.c_str());
  return absl::OkStatus();
}

absl::Status WriteFile(const fs::path& path, const char* data, size_t size, bool executable) {
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                      executable ? 0755 : 0644);
  if (fd < 0)
    return absl::InternalError(fmt::format("create {}: {}", path.string(), strerror(errno)));
  size_t done = 0;
  while (done < size) {
    const ssize_t n = write(fd, data + done, size - done);
    if (n < 0) {
      close(fd);
      return absl::InternalError(fmt::format("write {}: {}", path.string(), strerror(errno)));
    }
    done += static_cast<size_t>(n);
  }
  close(fd);
  return absl::OkStatus();
}

}  // namespace

absl::Status ExtractTarGz(const std::string& tar_gz, const std::string& dest_dir,
                          const ArchiveLimits& limits) {
  std::string tar;
  if (auto s = Gunzip(tar_gz, limits.max_unpacked_bytes, tar); !s.ok()) return s;
  std::error_code ec;
  const fs::path root = fs::canonical(dest_dir, ec);
  if (ec) return absl::InternalError(fmt::format("{}: {}", dest_dir, ec.message()));
  std::vector<std::string> links;
  std::string long_name;
  std::string long_link;
  size_t entries = 0;
  size_t pos = 0;
  while (pos + kBlock <= tar.size()) {
    const char* header = tar.data() + pos;
    if (std::all_of(header, header + kBlock, [](char c) { return c == '\0'; })) break;
    if (++entries > limits.max_entries) {
      return absl::ResourceExhaustedError(
          fmt::format("the source archive has more than {} entries", limits.max_entries));
    }
    uint64_t size = 0;
    if (!ParseOctal(Field(header, 124, 12), size) || pos + kBlock + size > tar.size()) {
      return absl::InvalidArgumentError("the source archive has a corrupt tar header");
    }
    const char type = header[156];
    const char* data = header + kBlock;
    pos += kBlock + (size + kBlock - 1) / kBlock * kBlock;
    if (type == 'g') continue;  // pax global header (GitHub's: the commit SHA)
    if (type == 'L') {
      long_name = Field(data, 0, size);
      continue;
    }
    if (type == 'x') {
      long_name = PaxValue(std::string(data, size), "path");
      long_link = PaxValue(std::string(data, size), "linkpath");
      continue;
    }
    std::string name = long_name;
    const std::string link_name = long_link.empty() ? Field(header, 157, 100) : long_link;
    long_name.clear();
    long_link.clear();
    if (name.empty()) {
      const std::string prefix = Field(header, 345, 155);
      name = Field(header, 0, 100);
      if (!prefix.empty() && absl::StartsWith(Field(header, 257, 6), "ustar")) {
        name = prefix + "/" + name;
      }
    }
    auto rel = SafeRelative(name);
    if (!rel.ok()) return rel.status();
    if (rel->empty()) continue;
    if (auto s = MakeParents(root, *rel); !s.ok()) return s;
    const fs::path target = root / *rel;
    uint64_t mode = 0;
    ParseOctal(Field(header, 100, 8), mode);
    switch (type) {
      case '0':
      case '\0':
      case '7': {
        if (auto s = RemoveExisting(target); !s.ok()) return s;
        if (auto s = WriteFile(target, data, size, (mode & 0111) != 0); !s.ok()) return s;
        break;
      }
      case '5': {
        struct stat st;
        if (lstat(target.c_str(), &st) == 0) {
          if (!S_ISDIR(st.st_mode)) {
            return absl::InvalidArgumentError(
                fmt::format("archive entry \"{}\" is a directory over a file or link", *rel));
          }
        } else if (mkdir(target.c_str(), 0755) != 0) {
          return absl::InternalError(fmt::format("mkdir {}: {}", target.string(), strerror(errno)));
        }
        break;
      }
      case '2': {
        const std::string& link_target = link_name;
        const fs::path resolved = (fs::path(*rel).parent_path() / link_target).lexically_normal();
        if (link_target.empty() || link_target.front() == '/' ||
            absl::StartsWith(resolved.string(), "..")) {
          return absl::InvalidArgumentError(
              fmt::format("archive entry \"{}\" is a symbolic link leaving the repository ({})",
                          *rel, link_target));
        }
        if (auto s = RemoveExisting(target); !s.ok()) return s;
        if (symlink(link_target.c_str(), target.c_str()) != 0) {
          return absl::InternalError(
              fmt::format("symlink {}: {}", target.string(), strerror(errno)));
        }
        links.push_back(*rel);
        break;
      }
      default:
        return absl::InvalidArgumentError(fmt::format(
            "archive entry \"{}\" has type '{}' (hard links and devices are refused)", *rel, type));
    }
  }
  // Links through links can still point out (a → ".", b → "a/.."): check them on disk.
  for (const std::string& rel : links) {
    const fs::path real = fs::weakly_canonical(root / rel, ec);
    const std::string r = real.string();
    if (ec || !(r == root.string() || absl::StartsWith(r, root.string() + "/"))) {
      fs::remove(root / rel, ec);
      return absl::InvalidArgumentError(
          fmt::format("archive entry \"{}\" is a symbolic link leaving the repository", rel));
    }
  }
  return absl::OkStatus();
}

}  // namespace eph::forge::github
