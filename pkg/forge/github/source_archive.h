// Unpacking a repository archive (GitHub's tarball endpoint: gzip'd tar, pax headers, every
// entry under one top-level directory) into a directory, for rendering an environment.
//
// Contract: the archive is outside input, so nothing in it may write outside `dest_dir`:
//  - the top-level directory is stripped; a path that is absolute, contains `..`, or would be
//    written through a symbolic link is InvalidArgument, and nothing more is written;
//  - symbolic links are kept only when they resolve inside `dest_dir` (checked lexically when
//    created and again on disk at the end); hard links and device files are refused;
//  - the unpacked size and the number of entries are bounded (ResourceExhausted beyond).
// Regular files keep their executable bit; ownership and times are not restored.
//
// Thread-safety: a pure function; distinct `dest_dir`s may be filled concurrently.
#pragma once

#include <cstddef>
#include <string>

#include "absl/status/status.h"

namespace eph::forge::github {

struct ArchiveLimits {
  size_t max_unpacked_bytes = size_t{512} << 20;
  size_t max_entries = 100'000;
};

// `dest_dir` must exist; it should be empty.
absl::Status ExtractTarGz(const std::string& tar_gz, const std::string& dest_dir,
                          const ArchiveLimits& limits = {});

}  // namespace eph::forge::github
