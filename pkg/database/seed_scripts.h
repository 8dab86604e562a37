// Seed and sanitising scripts: finding them in the repository checkout (never outside it, also
// not through a symbolic link), hashing their content (the key of a template and of "did the
// seed change"), and running them in order as the environment's (or template's) role, each in
// one transaction unless a statement forbids that, all within one deadline.
//
// Scripts are read when hashed and when run, never kept in memory between: seeds of hundreds of
// MB are hashed on every Ensure.
//
// Thread-safety: pure functions; RunScripts uses a connection and a watchdog thread of its own.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "pkg/database/conninfo.h"
#include "pkg/database/database_manager.h"

namespace eph::database {

// A script file, checked but not read.
struct Script {
  std::string kind;            // "seed script" or "sanitising script": how messages name it
  std::string path;            // as given, normalised
  std::filesystem::path file;  // resolved, inside the repository
  uintmax_t size = 0;          // bytes, as hashed
};

// What `spec` asks to run, checked, and the hash of its content.
struct Seed {
  std::vector<Script> scripts;  // none for kEmpty
  std::optional<Script> sanitizer;
  // Hex SHA-256 of every script's kind, path, size and content, length-prefixed so no two
  // different lists hash alike. "" when there are no scripts.
  std::string content_hash;

  // The scripts, then the sanitiser: what a template build runs.
  std::vector<Script> WithSanitizer() const;
};

// Checks and hashes the scripts of `spec` below `source_dir`. InvalidArgument for a path that
// leaves the repository, FailedPrecondition for a missing, unreadable or over-1-GiB script.
[[nodiscard]] absl::StatusOr<Seed> LoadSeed(const std::filesystem::path& source_dir,
                                            const DatabaseSpec& spec);

// Runs `scripts` in order on `params`' database (a role's, see RoleParams). Errors name the
// script and line: FailedPrecondition with PostgreSQL's message and SQLSTATE for a failing
// statement, DeadlineExceeded past `deadline` ("did not finish within its limit of <timeout>s"),
// Unavailable for the connection; every message scrubbed of `secrets`.
[[nodiscard]] absl::Status RunScripts(const ConnParams& params, const std::vector<Script>& scripts,
                                      std::chrono::steady_clock::time_point deadline,
                                      std::chrono::seconds timeout,
                                      const std::vector<std::string>& secrets);

}  // namespace eph::database
