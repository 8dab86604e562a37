#include "pkg/database/seed_scripts.h"

#include <algorithm>
#include <fstream>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "pkg/base/sha256.h"
#include "pkg/config/repo_path.h"
#include "pkg/database/pg_connection.h"
#include "pkg/database/pg_status.h"
#include "pkg/database/sql_script.h"

namespace eph::database {
namespace {

using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

constexpr uintmax_t kMaxScriptBytes = uintmax_t{1} << 30;

// Debian's abseil has its own string_view.
absl::string_view S(std::string_view s) { return {s.data(), s.size()}; }

absl::Status ChangedWhileRead(const Script& script) {
  return absl::FailedPreconditionError(
      absl::StrCat("`", script.path, "` cannot be read, or changed while Eph read it"));
}

// `normal` below the canonical `root`, resolved; refuses a path that leaves it (also through a
// symbolic link).
absl::StatusOr<fs::path> Resolve(const fs::path& root, const std::string& normal,
                                 const std::string& what) {
  std::error_code ec;
  const fs::path canonical_root = fs::canonical(root, ec);
  if (ec) {
    return absl::FailedPreconditionError(absl::StrCat("the repository checkout ", root.string(),
                                                      " is not readable: ", ec.message()));
  }
  const fs::path full = canonical_root / normal;
  if (!fs::exists(full, ec)) {
    return absl::FailedPreconditionError(
        absl::StrCat(what, " `", normal, "` does not exist in the repository"));
  }
  const fs::path resolved = fs::canonical(full, ec);
  if (ec) {
    return absl::FailedPreconditionError(
        absl::StrCat(what, " `", normal, "` cannot be resolved: ", ec.message()));
  }
  const auto [root_end, unused] =
      std::mismatch(canonical_root.begin(), canonical_root.end(), resolved.begin(), resolved.end());
  if (root_end != canonical_root.end()) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, " `", normal, "` leads (through a symbolic link) outside the repository"));
  }
  return resolved;
}

// Checks a script below `root`: inside it, a readable regular file of at most 1 GiB.
absl::StatusOr<Script> LoadScript(const fs::path& root, const std::string& given,
                                  const std::string& what) {
  absl::StatusOr<std::string> normal = config::NormalizeRepoPath(given);
  if (!normal.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " `", given, "`: ", normal.status().message()));
  }
  absl::StatusOr<fs::path> resolved = Resolve(root, *normal, what);
  if (!resolved.ok()) return resolved.status();
  std::error_code ec;
  if (!fs::is_regular_file(*resolved, ec)) {
    return absl::FailedPreconditionError(absl::StrCat(what, " `", *normal, "` is not a file"));
  }
  const uintmax_t size = fs::file_size(*resolved, ec);
  if (ec || size > kMaxScriptBytes) {
    return absl::FailedPreconditionError(
        absl::StrCat(what, " `", *normal, ec ? "` cannot be read" : "` is over 1 GiB"));
  }
  if (!std::ifstream(*resolved, std::ios::binary).good()) {
    return absl::FailedPreconditionError(absl::StrCat(what, " `", *normal, "` cannot be read"));
  }
  return Script{what, *normal, *resolved, size};
}

// The script's text, all of it (to run it). FailedPrecondition if it changed since LoadScript.
absl::StatusOr<std::string> ReadScript(const Script& script) {
  std::ifstream in(script.file, std::ios::binary);
  std::string text(static_cast<size_t>(script.size), '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  if (!in || in.gcount() != static_cast<std::streamsize>(text.size()) ||
      in.peek() != std::char_traits<char>::eof()) {
    return ChangedWhileRead(script);
  }
  return text;
}

// Adds `kind`, the script's path and size, and its content to `hasher`, reading it in pieces.
absl::Status HashScript(Sha256& hasher, std::string_view kind, const Script& script) {
  hasher.Update(
      absl::StrCat(S(kind), " ", script.path.size(), " ", script.path, " ", script.size, " "));
  std::ifstream in(script.file, std::ios::binary);
  std::string buffer(1 << 20, '\0');
  uintmax_t total = 0;
  while (in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    const std::streamsize got = in.gcount();
    if (got <= 0) break;
    hasher.Update(std::string_view(buffer.data(), static_cast<size_t>(got)));
    total += static_cast<uintmax_t>(got);
  }
  if (in.bad() || total != script.size) return ChangedWhileRead(script);
  hasher.Update("\n");
  return absl::OkStatus();
}

// Runs scripts on one connection, statement by statement, until the deadline.
class ScriptRunner {
 public:
  ScriptRunner(ScriptConnection& conn, Clock::time_point deadline, std::chrono::seconds timeout,
               const std::vector<std::string>& secrets)
      : conn_(conn),
        watchdog_(conn, deadline),
        deadline_(deadline),
        timeout_(timeout),
        secrets_(secrets) {}

  absl::Status Run(const Script& script) {
    absl::StatusOr<std::string> text = ReadScript(script);
    if (!text.ok()) return text.status();
    absl::StatusOr<std::vector<SqlStatement>> statements = SplitSqlScript(*text);
    if (!statements.ok()) {
      return absl::FailedPreconditionError(
          absl::StrCat(Label(script), " ", statements.status().message()));
    }
    const bool wrap = std::none_of(statements->begin(), statements->end(), NeedsOwnTransaction);
    const int last_line = statements->empty() ? 1 : statements->back().line;
    if (wrap) {
      if (absl::Status st = Exec(script, Statement("BEGIN", 1)); !st.ok()) return st;
    }
    for (const SqlStatement& s : *statements) {
      if (Late()) return TimedOut(script, s.line);
      if (absl::Status st = Exec(script, s); !st.ok()) return st;
    }
    if (wrap) return Exec(script, Statement("COMMIT", last_line));
    if (conn_.InTransaction()) {
      return absl::FailedPreconditionError(
          absl::StrCat(Label(script), " line ", last_line,
                       ": the script ends inside a transaction it opened (BEGIN without COMMIT)"));
    }
    return absl::OkStatus();
  }

 private:
  static std::string Label(const Script& script) {
    return absl::StrCat(script.kind, " ", script.path);
  }
  static SqlStatement Statement(std::string text, int line) {
    SqlStatement s;
    s.text = std::move(text);
    s.line = line;
    return s;
  }
  bool Late() { return watchdog_.fired() || Clock::now() >= deadline_; }

  absl::Status TimedOut(const Script& script, int line) const {
    return absl::DeadlineExceededError(
        absl::StrCat(Label(script), " line ", line,
                     ": the seed did not finish within its limit of ", timeout_.count(), "s"));
  }

  absl::Status Exec(const Script& script, const SqlStatement& s) {
    StatementResult r = conn_.Run(s.text, s.copy_data);
    if (!r.connection.ok()) {
      return absl::UnavailableError(Scrub(
          absl::StrCat(Label(script), " line ", s.line, ": ", r.connection.message()), secrets_));
    }
    if (!r.refused) return absl::OkStatus();
    const ServerError& e = *r.refused;
    const int line = LineOfPosition(s, e.position);
    if (Late()) return TimedOut(script, line);
    std::string message =
        absl::StrCat(Label(script), " line ", line, ": ", e.severity, ": ", e.message);
    if (!e.detail.empty()) absl::StrAppend(&message, " (", e.detail, ")");
    absl::StrAppend(&message, " [SQLSTATE ", e.sqlstate, "]");
    return absl::FailedPreconditionError(Scrub(std::move(message), secrets_));
  }

  ScriptConnection& conn_;
  StatementWatchdog watchdog_;
  const Clock::time_point deadline_;
  const std::chrono::seconds timeout_;
  const std::vector<std::string>& secrets_;
};

}  // namespace

std::vector<Script> Seed::WithSanitizer() const {
  std::vector<Script> all = scripts;
  if (sanitizer) all.push_back(*sanitizer);
  return all;
}

absl::StatusOr<Seed> LoadSeed(const fs::path& source_dir, const DatabaseSpec& spec) {
  Seed seed;
  Sha256 hasher;
  bool hashed = false;
  if (spec.strategy != SeedStrategy::kEmpty) {
    for (const std::string& path : spec.scripts) {
      absl::StatusOr<Script> s = LoadScript(source_dir, path, "seed script");
      if (!s.ok()) return s.status();
      if (absl::Status st = HashScript(hasher, "script", *s); !st.ok()) return st;
      hashed = true;
      seed.scripts.push_back(*std::move(s));
    }
  }
  if (!spec.sanitize_script.empty()) {
    absl::StatusOr<Script> s = LoadScript(source_dir, spec.sanitize_script, "sanitising script");
    if (!s.ok()) return s.status();
    if (absl::Status st = HashScript(hasher, "sanitize", *s); !st.ok()) return st;
    hashed = true;
    seed.sanitizer = *std::move(s);
  }
  seed.content_hash = hashed ? hasher.HexDigest() : "";
  return seed;
}

absl::Status RunScripts(const ConnParams& params, const std::vector<Script>& scripts,
                        Clock::time_point deadline, std::chrono::seconds timeout,
                        const std::vector<std::string>& secrets) {
  absl::StatusOr<std::unique_ptr<ScriptConnection>> conn = ScriptConnection::Open(params);
  if (!conn.ok()) {
    return absl::UnavailableError(
        Scrub(absl::StrCat("cannot connect to database ", params.at("dbname"),
                           " as its role: ", conn.status().message()),
              secrets));
  }
  ScriptRunner runner(**conn, deadline, timeout, secrets);
  for (const Script& script : scripts) {
    if (absl::Status st = runner.Run(script); !st.ok()) return st;
  }
  return absl::OkStatus();
}

}  // namespace eph::database
