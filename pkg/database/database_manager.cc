#include "pkg/database/database_manager.h"

#include <libpq-fe.h>

#include <condition_variable>
#include <cstring>
#include <deque>
#include <fstream>
#include <functional>
#include <mutex>
#include <optional>
#include <pqxx/pqxx>
#include <thread>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "pkg/base/sha256.h"
#include "pkg/config/repo_path.h"
#include "pkg/database/sql_script.h"
#include "spdlog/spdlog.h"

namespace eph::database {
namespace {

using Clock = std::chrono::steady_clock;
using Params = std::map<std::string, std::string>;

constexpr absl::string_view kMarker = "eph:managed";
constexpr absl::string_view kEnvPrefix = "eph_env_";
constexpr absl::string_view kTemplatePrefix = "eph_tpl_";
constexpr absl::string_view kSparePrefix = "eph_spr_";
constexpr size_t kMaxIdentifier = 63;
constexpr uintmax_t kMaxScriptBytes = uintmax_t{1} << 30;
constexpr int64_t kMetaLockKey = 0x6570682E64626D74;  // "eph.dbmt"

// Debian's abseil has its own string_view.
absl::string_view S(std::string_view s) { return {s.data(), s.size()}; }

int64_t LockKey(std::string_view what) {
  const std::string hex = Sha256Hex(what).substr(0, 16);
  uint64_t v = 0;
  for (char c : hex)
    v = v * 16 + static_cast<uint64_t>(absl::ascii_isdigit(c) ? c - '0' : c - 'a' + 10);
  return static_cast<int64_t>(v);
}

std::string OneLine(std::string_view msg) {
  std::string out;
  for (absl::string_view part : absl::StrSplit(absl::string_view(msg.data(), msg.size()),
                                               absl::ByAnyChar("\n\t"), absl::SkipEmpty())) {
    part = absl::StripAsciiWhitespace(part);
    if (part.empty()) continue;
    if (!out.empty()) out += absl::ascii_ispunct(out.back()) ? " " : "; ";
    out.append(part.data(), part.size());
  }
  absl::StrReplaceAll({{"  ", " "}}, &out);
  return out;
}

std::string Scrub(std::string msg, const std::vector<std::string>& secrets) {
  for (const std::string& s : secrets) {
    if (s.size() >= 4) absl::StrReplaceAll({{s, "***"}}, &msg);
  }
  return msg;
}

std::string QuoteConninfoValue(std::string_view v) {
  std::string out = "'";
  for (char c : v) {
    if (c == '\'' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  out.push_back('\'');
  return out;
}

std::string Conninfo(const Params& params) {
  std::string out;
  for (const auto& [k, v] : params) {
    if (!out.empty()) out.push_back(' ');
    absl::StrAppend(&out, k, "=", QuoteConninfoValue(v));
  }
  return out;
}

std::string PercentEncode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (absl::ascii_isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xF]);
    }
  }
  return out;
}

bool IsDnsLabel(std::string_view s) {
  if (s.empty() || s.size() > 63 || s.front() == '-' || s.back() == '-') return false;
  for (char c : s) {
    if (!(absl::ascii_islower(c) || absl::ascii_isdigit(c) || c == '-')) return false;
  }
  return true;
}

// "eph:managed environment=foo project=bar" -> {environment: foo, project: bar, "": ...}.
std::optional<std::map<std::string, std::string>> ParseMarker(std::string_view comment) {
  std::vector<std::string> words =
      absl::StrSplit(absl::string_view(comment.data(), comment.size()), ' ', absl::SkipEmpty());
  if (words.empty() || words[0] != kMarker) return std::nullopt;
  std::map<std::string, std::string> out;
  for (size_t i = 1; i < words.size(); ++i) {
    const size_t eq = words[i].find('=');
    if (eq == std::string::npos) {
      out[words[i]] = "";
    } else {
      out[words[i].substr(0, eq)] = words[i].substr(eq + 1);
    }
  }
  return out;
}

// "owner/repo" (GitHub's characters) or a DNS label: it goes into markers split on spaces.
bool ValidProject(std::string_view project) {
  if (project.empty() || project.size() > 200) return false;
  for (char c : project) {
    if (!absl::ascii_isalnum(c) && c != '-' && c != '_' && c != '.' && c != '/') return false;
  }
  return true;
}

std::string EnvMarker(std::string_view environment, std::string_view project,
                      std::string_view installation, std::string_view instance) {
  std::string marker =
      absl::StrCat(kMarker, " environment=", S(environment), " project=", S(project));
  if (!instance.empty()) absl::StrAppend(&marker, " instance=", S(instance));
  if (!installation.empty()) absl::StrAppend(&marker, " installation=", S(installation));
  return marker;
}
std::string TemplateMarker(std::string_view project, std::string_view hash) {
  return absl::StrCat(kMarker, " template project=", S(project), " hash=", S(hash));
}
std::string SpareMarker(std::string_view project, std::string_view tpl,
                        std::string_view installation) {
  std::string marker = absl::StrCat(kMarker, " spare of=", S(tpl), " project=", S(project));
  if (!installation.empty()) absl::StrAppend(&marker, " installation=", S(installation));
  return marker;
}

// Translates the exception being handled into a Status.
absl::Status CurrentExceptionStatus(std::string_view context,
                                    const std::vector<std::string>& secrets) {
  auto msg = [&](const std::exception& e) {
    return Scrub(absl::StrCat(S(context), ": ", OneLine(e.what())), secrets);
  };
  try {
    throw;
  } catch (const pqxx::broken_connection& e) {
    return absl::UnavailableError(msg(e));
  } catch (const pqxx::sql_error& e) {
    const std::string& state = e.sqlstate();
    if (absl::StartsWith(state, "08") || absl::StartsWith(state, "53") ||
        absl::StartsWith(state, "57P") || absl::StartsWith(state, "40")) {
      return absl::UnavailableError(msg(e));
    }
    if (state == "55P03") return absl::DeadlineExceededError(msg(e));
    if (state == "42501") return absl::PermissionDeniedError(msg(e));
    return absl::InternalError(msg(e));
  } catch (const std::exception& e) {
    return absl::InternalError(msg(e));
  } catch (...) {
    return absl::InternalError(absl::StrCat(S(context), ": unknown exception"));
  }
}

// A script file, checked but not read: seeds of hundreds of MB are hashed on every Ensure and
// read into memory only to run them, one at a time.
struct Script {
  std::string path;            // as given, normalised
  std::filesystem::path file;  // resolved, inside the repository
  uintmax_t size = 0;          // bytes, as hashed
};

// Checks a script below `root`, refusing paths that leave it (also through symlinks).
absl::StatusOr<Script> LoadScript(const std::filesystem::path& root, absl::string_view given,
                                  absl::string_view what) {
  absl::StatusOr<std::string> normal =
      config::NormalizeRepoPath(std::string_view(given.data(), given.size()));
  if (!normal.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " `", given, "`: ", normal.status().message()));
  }
  std::error_code ec;
  const std::filesystem::path canonical_root = std::filesystem::canonical(root, ec);
  if (ec) {
    return absl::FailedPreconditionError(absl::StrCat("the repository checkout ", root.string(),
                                                      " is not readable: ", ec.message()));
  }
  const std::filesystem::path full = canonical_root / *normal;
  if (!std::filesystem::exists(full, ec)) {
    return absl::FailedPreconditionError(
        absl::StrCat(what, " `", *normal, "` does not exist in the repository"));
  }
  const std::filesystem::path resolved = std::filesystem::canonical(full, ec);
  if (ec) {
    return absl::FailedPreconditionError(
        absl::StrCat(what, " `", *normal, "` cannot be resolved: ", ec.message()));
  }
  const auto [root_end, unused] =
      std::mismatch(canonical_root.begin(), canonical_root.end(), resolved.begin(), resolved.end());
  if (root_end != canonical_root.end()) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, " `", *normal, "` leads (through a symbolic link) outside the repository"));
  }
  if (!std::filesystem::is_regular_file(resolved, ec)) {
    return absl::FailedPreconditionError(absl::StrCat(what, " `", *normal, "` is not a file"));
  }
  const uintmax_t size = std::filesystem::file_size(resolved, ec);
  if (ec || size > kMaxScriptBytes) {
    return absl::FailedPreconditionError(
        absl::StrCat(what, " `", *normal, ec ? "` cannot be read" : "` is over 1 GiB"));
  }
  if (!std::ifstream(resolved, std::ios::binary).good()) {
    return absl::FailedPreconditionError(absl::StrCat(what, " `", *normal, "` cannot be read"));
  }
  return Script{*normal, resolved, size};
}

// The script's text, all of it (to run it). FailedPrecondition if it changed since LoadScript.
absl::StatusOr<std::string> ReadScript(const Script& script) {
  std::ifstream in(script.file, std::ios::binary);
  std::string text(static_cast<size_t>(script.size), '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  if (!in || in.gcount() != static_cast<std::streamsize>(text.size()) ||
      in.peek() != std::char_traits<char>::eof()) {
    return absl::FailedPreconditionError(
        absl::StrCat("`", script.path, "` cannot be read, or changed while Eph read it"));
  }
  return text;
}

// Adds `kind`, the script's path and size, and its content to `hasher`, reading it in pieces.
absl::Status HashScript(Sha256& hasher, absl::string_view kind, const Script& script) {
  hasher.Update(
      absl::StrCat(kind, " ", script.path.size(), " ", script.path, " ", script.size, " "));
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
  if (in.bad() || total != script.size) {
    return absl::FailedPreconditionError(
        absl::StrCat("`", script.path, "` cannot be read, or changed while Eph read it"));
  }
  hasher.Update("\n");
  return absl::OkStatus();
}

// ---- Running scripts as an environment's role, with libpq directly: pqxx 6.4 does not expose
// an error's statement position, which gives the failing line.

struct PgResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using Result = std::unique_ptr<PGresult, PgResultDeleter>;
struct PgConnDeleter {
  void operator()(PGconn* c) const { PQfinish(c); }
};
using Conn = std::unique_ptr<PGconn, PgConnDeleter>;

Conn ConnectRaw(const Params& params) {
  std::vector<const char*> keys, values;
  for (const auto& [k, v] : params) {
    keys.push_back(k.c_str());
    values.push_back(v.c_str());
  }
  keys.push_back(nullptr);
  values.push_back(nullptr);
  Conn conn(PQconnectdbParams(keys.data(), values.data(), 0));
  if (conn != nullptr)
    PQsetNoticeProcessor(
        conn.get(), [](void*, const char*) {}, nullptr);
  return conn;
}

// Cancels the running statement on `conn` once `deadline` passes.
class Watchdog {
 public:
  Watchdog(PGconn* conn, Clock::time_point deadline) : cancel_(PQgetCancel(conn)) {
    thread_ = std::thread([this, deadline] {
      std::unique_lock<std::mutex> lock(mu_);
      if (!cv_.wait_until(lock, deadline, [this] { return stop_; })) {
        fired_ = true;
        char err[256];
        if (cancel_ != nullptr) PQcancel(cancel_, err, sizeof err);
      }
    });
  }
  ~Watchdog() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_one();
    thread_.join();
    if (cancel_ != nullptr) PQfreeCancel(cancel_);
  }
  bool fired() {
    std::lock_guard<std::mutex> lock(mu_);
    return fired_;
  }

 private:
  PGcancel* cancel_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  bool fired_ = false;
  std::thread thread_;
};

std::string Field(const PGresult* r, int code) {
  const char* v = PQresultErrorField(r, code);
  return v == nullptr ? "" : v;
}

// Runs `scripts` in order on `params`' database. `label(script)` names a script in messages.
absl::Status RunScripts(const Params& params, const std::vector<Script>& scripts,
                        const std::function<std::string(const Script&)>& label,
                        Clock::time_point deadline, std::chrono::seconds timeout,
                        const std::vector<std::string>& secrets) {
  Conn conn = ConnectRaw(params);
  if (conn == nullptr || PQstatus(conn.get()) != CONNECTION_OK) {
    return absl::UnavailableError(
        Scrub(absl::StrCat("cannot connect to database ", params.at("dbname"), " as its role: ",
                           OneLine(conn == nullptr ? "out of memory" : PQerrorMessage(conn.get()))),
              secrets));
  }
  Watchdog watchdog(conn.get(), deadline);
  auto timed_out = [&](const Script& script, int line) {
    return absl::DeadlineExceededError(
        absl::StrCat(label(script), " line ", line,
                     ": the seed did not finish within its limit of ", timeout.count(), "s"));
  };
  for (const Script& script : scripts) {
    absl::StatusOr<std::string> text = ReadScript(script);
    if (!text.ok()) return text.status();
    absl::StatusOr<std::vector<SqlStatement>> statements = SplitSqlScript(*text);
    if (!statements.ok()) {
      return absl::FailedPreconditionError(
          absl::StrCat(label(script), " ", statements.status().message()));
    }
    bool wrap = true;
    for (const SqlStatement& s : *statements) {
      if (NeedsOwnTransaction(s)) wrap = false;
    }
    auto failure = [&](const PGresult* r, const SqlStatement& s) -> absl::Status {
      const int line = LineOfPosition(s, std::atoi(Field(r, PG_DIAG_STATEMENT_POSITION).c_str()));
      if (watchdog.fired() || Clock::now() >= deadline) return timed_out(script, line);
      std::string message =
          absl::StrCat(label(script), " line ", line, ": ", Field(r, PG_DIAG_SEVERITY), ": ",
                       OneLine(Field(r, PG_DIAG_MESSAGE_PRIMARY)));
      if (std::string detail = Field(r, PG_DIAG_MESSAGE_DETAIL); !detail.empty()) {
        absl::StrAppend(&message, " (", OneLine(detail), ")");
      }
      absl::StrAppend(&message, " [SQLSTATE ", Field(r, PG_DIAG_SQLSTATE), "]");
      return absl::FailedPreconditionError(Scrub(std::move(message), secrets));
    };
    auto exec = [&](const SqlStatement& s) -> absl::Status {
      Result r(PQexec(conn.get(), s.text.c_str()));
      if (r == nullptr) {
        return absl::UnavailableError(
            absl::StrCat(label(script), " line ", s.line,
                         ": lost the connection: ", OneLine(PQerrorMessage(conn.get()))));
      }
      ExecStatusType st = PQresultStatus(r.get());
      if (st == PGRES_COPY_IN) {
        const std::string& data = s.copy_data ? *s.copy_data : std::string();
        const bool sent =
            PQputCopyData(conn.get(), data.data(), static_cast<int>(data.size())) == 1 &&
            PQputCopyEnd(conn.get(), s.copy_data ? nullptr
                                                 : "COPY FROM STDIN needs its data "
                                                   "after the statement") == 1;
        if (!sent) {
          return absl::UnavailableError(
              absl::StrCat(label(script), " line ", s.line, ": lost the connection during COPY"));
        }
        absl::Status status;
        while (Result next{PQgetResult(conn.get())}) {
          if (PQresultStatus(next.get()) == PGRES_FATAL_ERROR && status.ok()) {
            status = failure(next.get(), s);
          }
        }
        return status;
      }
      if (st == PGRES_COPY_OUT) {
        char* buf = nullptr;
        while (PQgetCopyData(conn.get(), &buf, 0) > 0) PQfreemem(buf);
        while (Result next{PQgetResult(conn.get())}) {
        }
        return absl::OkStatus();
      }
      if (st == PGRES_FATAL_ERROR) return failure(r.get(), s);
      return absl::OkStatus();
    };
    auto exec_text = [&](std::string_view sql, int line) {
      SqlStatement s;
      s.text = std::string(sql);
      s.line = line;
      return exec(s);
    };

    const int last_line = statements->empty() ? 1 : statements->back().line;
    if (wrap) {
      if (absl::Status st = exec_text("BEGIN", 1); !st.ok()) return st;
    }
    for (const SqlStatement& s : *statements) {
      if (watchdog.fired() || Clock::now() >= deadline) return timed_out(script, s.line);
      if (absl::Status st = exec(s); !st.ok()) return st;
    }
    if (wrap) {
      if (absl::Status st = exec_text("COMMIT", last_line); !st.ok()) return st;
    } else if (PQtransactionStatus(conn.get()) != PQTRANS_IDLE) {
      return absl::FailedPreconditionError(
          absl::StrCat(label(script), " line ", last_line,
                       ": the script ends inside a transaction it opened (BEGIN without COMMIT)"));
    }
  }
  return absl::OkStatus();
}

// A SCRAM verifier for `password`, so the password itself never travels in a statement that a
// server with log_statement=ddl would log.
absl::StatusOr<std::string> ScramVerifier(const Params& admin, std::string_view role,
                                          std::string_view password) {
  Conn conn = ConnectRaw(admin);
  if (conn == nullptr || PQstatus(conn.get()) != CONNECTION_OK) {
    return absl::UnavailableError(
        absl::StrCat("cannot connect to PostgreSQL: ",
                     OneLine(conn == nullptr ? "out of memory" : PQerrorMessage(conn.get()))));
  }
  char* verifier = PQencryptPasswordConn(conn.get(), std::string(password).c_str(),
                                         std::string(role).c_str(), "scram-sha-256");
  if (verifier == nullptr) {
    return absl::InternalError(
        absl::StrCat("cannot hash a password: ", OneLine(PQerrorMessage(conn.get()))));
  }
  std::string out = verifier;
  PQfreemem(verifier);
  return out;
}

struct ObjectInfo {
  bool exists = false;
  bool commented = false;  // any comment at all, Eph's marker or not
  std::optional<std::map<std::string, std::string>> marker;
  // A database whose DROP was cut short (the server crashed or stopped `immediate` meanwhile):
  // PostgreSQL (15.4 and later) marks it invalid with datconnlimit -2. Nobody can connect to
  // it, ALTER DATABASE on it is FATAL for the session, and only DROP DATABASE finishes it.
  bool invalid = false;
};

ObjectInfo DatabaseInfo(pqxx::connection& conn, const std::string& name) {
  pqxx::nontransaction tx(conn);
  pqxx::result r = tx.exec_params(
      "SELECT coalesce(shobj_description(oid, 'pg_database'), ''), datconnlimit = -2 "
      "FROM pg_database WHERE datname = $1",
      name);
  ObjectInfo info;
  if (r.empty()) return info;
  info.exists = true;
  info.commented = !r[0][0].is_null() && *r[0][0].c_str() != '\0';
  info.marker = ParseMarker(r[0][0].c_str());
  info.invalid = r[0][1].as<bool>();
  return info;
}

ObjectInfo RoleInfo(pqxx::connection& conn, const std::string& name) {
  pqxx::nontransaction tx(conn);
  pqxx::result r = tx.exec_params(
      "SELECT coalesce(shobj_description(oid, 'pg_authid'), '') FROM pg_roles WHERE rolname = $1",
      name);
  ObjectInfo info;
  if (r.empty()) return info;
  info.exists = true;
  info.commented = !r[0][0].is_null() && *r[0][0].c_str() != '\0';
  info.marker = ParseMarker(r[0][0].c_str());
  return info;
}

// Whether this installation's bookkeeping names `name` as the object of the environment's
// `instance`. The row is written before the role and the database are created, and each gets
// its marker comment in a statement after its CREATE: an object without any comment that the
// row names was made by a call cut short between the two (ephd killed, the server stopped).
bool BookkeepingNames(pqxx::connection& conn, const std::string& environment,
                      const std::string& instance, const std::string& name,
                      const std::string& installation) {
  pqxx::nontransaction tx(conn);
  return !tx.exec_params(
                "SELECT 1 FROM eph_meta.environments WHERE environment = $1 AND instance = $2 "
                "AND object_name = $3 AND installation = $4",
                environment, instance, name, installation)
              .empty();
}

// Whether the object's marker names this environment's database of `instance` ("" when none).
bool MarksInstance(const ObjectInfo& info, const std::string& environment,
                   const std::string& instance) {
  if (!info.marker) return false;
  const auto env = info.marker->find("environment");
  const auto inst = info.marker->find("instance");
  return env != info.marker->end() && env->second == environment &&
         (inst == info.marker->end() ? std::string() : inst->second) == instance;
}

void Exec(pqxx::connection& conn, const std::string& sql) {
  pqxx::nontransaction tx(conn);
  tx.exec(sql);
}

std::string Quote(pqxx::connection& conn, const std::string& s) {
  pqxx::nontransaction tx(conn);
  return tx.quote(s);
}
std::string QuoteName(pqxx::connection& conn, const std::string& s) {
  pqxx::nontransaction tx(conn);
  return tx.quote_name(s);
}

// Sets lock_timeout so a wait for an advisory lock ends by `deadline`; DeadlineExceeded if it
// has passed.
absl::Status LockBy(pqxx::connection& conn, absl::string_view fn, int64_t key,
                    Clock::time_point deadline, absl::string_view what) {
  const auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  if (left <= 0) return absl::DeadlineExceededError(absl::StrCat("timed out waiting for ", what));
  try {
    Exec(conn, absl::StrCat("SET lock_timeout = ", left));
    Exec(conn, absl::StrCat("SELECT ", fn, "(", key, ")"));
    Exec(conn, "SET lock_timeout = 0");
  } catch (const pqxx::sql_error& e) {
    if (e.sqlstate() == "55P03") {
      return absl::DeadlineExceededError(absl::StrCat("timed out waiting for ", what));
    }
    throw;
  }
  return absl::OkStatus();
}

// `fn`: pg_try_advisory_lock or pg_try_advisory_lock_shared.
bool TryLock(pqxx::connection& conn, int64_t key, absl::string_view fn = "pg_try_advisory_lock") {
  pqxx::nontransaction tx(conn);
  return tx.exec(absl::StrCat("SELECT ", fn, "(", key, ")"))[0][0].as<bool>();
}
void Unlock(pqxx::connection& conn, absl::string_view fn, int64_t key) {
  Exec(conn, absl::StrCat("SELECT ", fn, "(", key, ")"));
}

// SQL for the name of the newest ready template of the project `project_sql` evaluates to:
// the one new environments of that project clone, which old templates and spares are judged by.
std::string NewestTemplateSql(std::string_view project_sql) {
  return absl::StrCat("(SELECT n.name FROM eph_meta.templates n WHERE n.project = ", S(project_sql),
                      " AND n.state = 'ready' ORDER BY n.updated_at DESC, n.name LIMIT 1)");
}

const char* CopyClause(CloneCopy copy) {
  switch (copy) {
    case CloneCopy::kWalLog:
      return " STRATEGY WAL_LOG";
    case CloneCopy::kFileCopy:
      return " STRATEGY FILE_COPY";
    case CloneCopy::kServerDefault:
      break;
  }
  return "";
}

}  // namespace

struct DatabaseManager::Impl {
  DatabaseManagerOptions options;
  Params admin;  // libpq parameters of the admin connection
  std::vector<std::string> admin_secrets;
  std::mutex meta_mu;
  bool meta_ready = false;
  DatabaseManager* self = nullptr;

  // The spare maker: one background thread, started by the first refill request.
  std::mutex spare_mu;
  std::condition_variable spare_cv;
  std::deque<std::pair<std::string, std::string>> refills;  // (project, template)
  bool refilling = false;
  bool stopping = false;
  std::thread spare_thread;

  void StopSpares() {
    {
      std::lock_guard<std::mutex> lock(spare_mu);
      stopping = true;
    }
    spare_cv.notify_all();
    if (spare_thread.joinable()) spare_thread.join();
  }
  bool Stopping() {
    std::lock_guard<std::mutex> lock(spare_mu);
    return stopping;
  }

  void QueueRefill(const std::string& project, const std::string& tpl) {
    std::lock_guard<std::mutex> lock(spare_mu);
    if (stopping) return;
    for (const auto& queued : refills) {
      if (queued.second == tpl) return;
    }
    refills.emplace_back(project, tpl);
    if (!spare_thread.joinable()) spare_thread = std::thread([this] { RefillLoop(); });
    spare_cv.notify_all();
  }

  void RefillLoop() {
    std::unique_lock<std::mutex> lock(spare_mu);
    while (true) {
      spare_cv.wait(lock, [this] { return stopping || !refills.empty(); });
      if (stopping) break;
      const auto [project, tpl] = refills.front();
      refills.pop_front();
      refilling = true;
      lock.unlock();
      Refill(project, tpl);
      lock.lock();
      refilling = false;
      spare_cv.notify_all();
    }
    refilling = false;
    spare_cv.notify_all();
  }

  bool WaitForSpares(std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(spare_mu);
    return spare_cv.wait_for(lock, timeout, [this] { return refills.empty() && !refilling; });
  }

  // Makes spares of `tpl` until there are `clone_spares` of it (counting every process's), as
  // long as it is its project's newest ready template. One refiller per template at a time.
  void Refill(const std::string& project, const std::string& tpl) {
    try {
      std::unique_ptr<pqxx::connection> conn = Connect();
      EnsureMeta(*conn);
      if (!TryLock(*conn, LockKey(absl::StrCat("eph.spares:", tpl)))) return;  // another does
      const int64_t tpl_key = LockKey(absl::StrCat("eph.tpl:", tpl));
      while (!Stopping()) {
        bool wanted = false;
        {
          pqxx::nontransaction tx(*conn);
          pqxx::result r = tx.exec_params(
              absl::StrCat("SELECT ", NewestTemplateSql("$1"),
                           " = $2, "
                           "(SELECT count(*) FROM eph_meta.spares WHERE template = $2) < $3"),
              project, tpl, options.clone_spares);
          wanted = !r[0][0].is_null() && r[0][0].as<bool>() && r[0][1].as<bool>();
        }
        if (!wanted) break;
        // Shared, as a clone holds it: the template is not dropped or rebuilt while copied.
        if (!TryLock(*conn, tpl_key, "pg_try_advisory_lock_shared")) break;
        try {
          if (DatabaseInfo(*conn, tpl).exists) MakeSpare(*conn, project, tpl);
        } catch (...) {
          Unlock(*conn, "pg_advisory_unlock_shared", tpl_key);
          throw;
        }
        Unlock(*conn, "pg_advisory_unlock_shared", tpl_key);
      }
      // Closing the connection releases the refill lock.
    } catch (...) {
      const absl::Status st =
          CurrentExceptionStatus(absl::StrCat("making a spare of template ", tpl), admin_secrets);
      // No retry loop: the next clone of the project asks again.
      spdlog::warn("database: {}", std::string(st.message()));
    }
  }

  // Called with the template's shared lock held.
  void MakeSpare(pqxx::connection& conn, const std::string& project, const std::string& tpl) {
    const auto started = Clock::now();
    const std::string name =
        absl::StrCat(kSparePrefix, Sha256Hex(project).substr(0, 12), "_", options.random->Hex(8));
    {
      pqxx::nontransaction tx(conn);
      tx.exec_params(
          "INSERT INTO eph_meta.spares (name, template, project, installation, state) "
          "VALUES ($1, $2, $3, $4, 'making')",
          name, tpl, project, options.installation);
    }
    const std::string qname = QuoteName(conn, name);
    try {
      // Nobody may connect to a spare: renaming it needs it unused.
      Exec(conn, absl::StrCat("CREATE DATABASE ", qname, " TEMPLATE ", QuoteName(conn, tpl),
                              " ALLOW_CONNECTIONS false", CopyClause(options.clone_copy)));
      Exec(conn, absl::StrCat("COMMENT ON DATABASE ", qname, " IS ",
                              Quote(conn, SpareMarker(project, tpl, options.installation))));
      Exec(conn, absl::StrCat("REVOKE ALL ON DATABASE ", qname, " FROM PUBLIC"));
      pqxx::nontransaction tx(conn);
      tx.exec_params(
          "UPDATE eph_meta.spares SET state = 'ready', updated_at = now() WHERE name = $1", name);
    } catch (...) {
      try {
        DropSpare(conn, name);
      } catch (...) {
        // The sweep finds it by its row or its marker.
      }
      throw;
    }
    self->spares_made_.fetch_add(1);
    spdlog::info(
        "database: spare {} of template {} ready in {} ms", name, tpl,
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started).count());
  }

  // Renames a ready spare of `tpl` to `name`, owned by role `name`, in one transaction that also
  // deletes its row: two clones never take the same spare, and a dropped spare is never taken.
  // False when there is none (or it cannot be used): the caller copies the template.
  bool TakeSpare(pqxx::connection& conn, const std::string& tpl, const std::string& name) {
    std::string spare;
    try {
      pqxx::work tx(conn);
      pqxx::result r = tx.exec_params(
          "SELECT name FROM eph_meta.spares WHERE template = $1 AND state = 'ready' "
          "ORDER BY updated_at, name LIMIT 1 FOR UPDATE SKIP LOCKED",
          tpl);
      if (r.empty()) return false;
      spare = r[0][0].c_str();
      tx.exec_params("DELETE FROM eph_meta.spares WHERE name = $1", spare);
      pqxx::result d = tx.exec_params(
          "SELECT coalesce(shobj_description(oid, 'pg_database'), '') FROM pg_database "
          "WHERE datname = $1",
          spare);
      std::optional<std::map<std::string, std::string>> marker;
      if (!d.empty()) marker = ParseMarker(d[0][0].c_str());
      if (!marker || !marker->count("spare") || (*marker)["of"] != tpl) {
        tx.commit();  // forget a row whose database is gone or not a spare of this template
        spdlog::warn("database: spare {} of template {} is missing; copying the template", spare,
                     tpl);
        return false;
      }
      tx.exec(absl::StrCat("ALTER DATABASE ", conn.quote_name(spare), " RENAME TO ",
                           conn.quote_name(name)));
      tx.exec(absl::StrCat("ALTER DATABASE ", conn.quote_name(name), " OWNER TO ",
                           conn.quote_name(name)));
      tx.commit();
    } catch (const pqxx::sql_error& e) {
      spdlog::warn(
          "database: spare {} of template {} could not be taken ({}); copying the template", spare,
          tpl, OneLine(e.what()));
      return false;
    }
    self->spares_taken_.fetch_add(1);
    spdlog::debug("database: {} is spare {} of template {}", name, spare, tpl);
    return true;
  }

  // Deletes a spare's row (waiting for a clone taking it) and, if that was still there, drops
  // the database.
  void DropSpare(pqxx::connection& conn, const std::string& name) {
    {
      pqxx::work tx(conn);
      tx.exec_params("DELETE FROM eph_meta.spares WHERE name = $1", name);
      tx.commit();
    }
    const ObjectInfo info = DatabaseInfo(conn, name);
    if (info.exists && info.marker && info.marker->count("spare")) {
      Exec(conn, absl::StrCat("DROP DATABASE IF EXISTS ", QuoteName(conn, name), " WITH (FORCE)"));
    }
  }

  // Drops spares of `project` (all projects when empty) that no clone will take: those of a
  // template that is not its project's newest ready one, and half-made ones nobody is making.
  void DropStaleSpares(pqxx::connection& conn, const std::string& project) {
    pqxx::result r;
    {
      pqxx::nontransaction tx(conn);
      r = tx.exec_params(
          absl::StrCat("SELECT s.name, s.template, s.state FROM eph_meta.spares s "
                       "WHERE ($1 = '' OR s.project = $1) AND (s.state <> 'ready' OR "
                       "s.template IS DISTINCT FROM ",
                       NewestTemplateSql("s.project"), ")"),
          project);
    }
    for (const pqxx::row& row : r) {
      const std::string name = row[0].c_str();
      if (std::string_view(row[2].c_str()) != "ready") {
        // Being made while its template's refill lock is held.
        const int64_t key = LockKey(absl::StrCat("eph.spares:", row[1].c_str()));
        if (!TryLock(conn, key)) continue;
        Unlock(conn, "pg_advisory_unlock", key);
      }
      DropSpare(conn, name);
      spdlog::info("database: dropped spare {} of template {}", name, row[1].c_str());
    }
  }

  std::unique_ptr<pqxx::connection> Connect(const std::string& dbname = "") const {
    Params p = admin;
    if (!dbname.empty()) p["dbname"] = dbname;
    auto conn = std::make_unique<pqxx::connection>(Conninfo(p));
    Exec(*conn, "SET client_min_messages TO WARNING");
    return conn;
  }

  Params RoleParams(const std::string& role, const std::string& password,
                    const std::string& dbname) const {
    Params p = admin;
    p["user"] = role;
    p["password"] = password;
    p["dbname"] = dbname;
    p["application_name"] = "ephd-seed";
    return p;
  }

  void EnsureMeta(pqxx::connection& conn) {
    std::lock_guard<std::mutex> lock(meta_mu);
    if (meta_ready) return;
    pqxx::work tx(conn);
    tx.exec(absl::StrCat("SELECT pg_advisory_xact_lock(", kMetaLockKey, ")"));
    tx.exec("CREATE SCHEMA IF NOT EXISTS eph_meta");
    tx.exec("REVOKE ALL ON SCHEMA eph_meta FROM PUBLIC");
    tx.exec(
        "CREATE TABLE IF NOT EXISTS eph_meta.environments ("
        " environment text PRIMARY KEY, project text NOT NULL, object_name text NOT NULL,"
        " password text NOT NULL, seed_hash text NOT NULL DEFAULT '',"
        " template text NOT NULL DEFAULT '', ready boolean NOT NULL DEFAULT false,"
        " updated_at timestamptz NOT NULL DEFAULT now())");
    // Which installation of Eph the environment belongs to (several may share a server).
    tx.exec(
        "ALTER TABLE eph_meta.environments "
        "ADD COLUMN IF NOT EXISTS installation text NOT NULL DEFAULT ''");
    // Several databases per environment: one row per (environment, instance).
    tx.exec(
        "ALTER TABLE eph_meta.environments ADD COLUMN IF NOT EXISTS instance text NOT NULL "
        "DEFAULT ''");
    if (tx.exec("SELECT cardinality(conkey) FROM pg_constraint WHERE conrelid = "
                "'eph_meta.environments'::regclass AND contype = 'p'")[0][0]
            .as<int>() == 1) {
      tx.exec(
          "ALTER TABLE eph_meta.environments DROP CONSTRAINT environments_pkey, "
          "ADD PRIMARY KEY (environment, instance)");
    }
    tx.exec(
        "CREATE TABLE IF NOT EXISTS eph_meta.templates ("
        " name text PRIMARY KEY, project text NOT NULL, content_hash text NOT NULL,"
        " state text NOT NULL, error text NOT NULL DEFAULT '',"
        " updated_at timestamptz NOT NULL DEFAULT now())");
    // Spares: copies of a template made ahead of time (state making -> ready; a clone that
    // takes one deletes its row in the transaction that renames it).
    tx.exec(
        "CREATE TABLE IF NOT EXISTS eph_meta.spares ("
        " name text PRIMARY KEY, template text NOT NULL, project text NOT NULL,"
        " installation text NOT NULL DEFAULT '', state text NOT NULL,"
        " updated_at timestamptz NOT NULL DEFAULT now())");
    tx.exec("REVOKE ALL ON eph_meta.environments, eph_meta.templates, eph_meta.spares FROM PUBLIC");
    tx.commit();
    meta_ready = true;
  }

  Credentials MakeCredentials(const std::string& name, const std::string& password) const {
    Credentials c;
    c.host = !options.app_host.empty() ? options.app_host
             : admin.count("host")     ? admin.at("host")
             : admin.count("hostaddr") ? admin.at("hostaddr")
                                       : "localhost";
    int port = 5432;
    if (options.app_port > 0) {
      port = options.app_port;
    } else if (admin.count("port")) {
      (void)absl::SimpleAtoi(admin.at("port"), &port);
    }
    c.port = port;
    c.dbname = name;
    c.user = name;
    c.password = password;
    const bool socket = absl::StartsWith(c.host, "/");
    const bool ipv6 = absl::StrContains(c.host, ":");
    const std::string url_host = socket ? "" : ipv6 ? absl::StrCat("[", c.host, "]") : c.host;
    c.database_url =
        absl::StrCat("postgresql://", PercentEncode(c.user), ":", PercentEncode(c.password), "@",
                     url_host, ":", c.port, "/", PercentEncode(c.dbname));
    if (socket) absl::StrAppend(&c.database_url, "?host=", PercentEncode(c.host));
    if (!options.app_sslmode.empty()) {
      absl::StrAppend(&c.database_url, socket ? "&" : "?", "sslmode=", options.app_sslmode);
      c.env["PGSSLMODE"] = options.app_sslmode;
    }
    c.env["DATABASE_URL"] = c.database_url;
    c.env["PGHOST"] = c.host;
    c.env["PGPORT"] = absl::StrCat(c.port);
    c.env["PGDATABASE"] = c.dbname;
    c.env["PGUSER"] = c.user;
    c.env["PGPASSWORD"] = c.password;
    return c;
  }

  // Creates (or resets the password of) a login role of Eph's.
  absl::Status CreateRole(pqxx::connection& conn, const std::string& role,
                          const std::string& password, const std::string& marker) {
    absl::StatusOr<std::string> verifier = ScramVerifier(admin, role, password);
    if (!verifier.ok()) return verifier.status();
    const std::string qrole = QuoteName(conn, role);
    const ObjectInfo info = RoleInfo(conn, role);
    if (info.exists) {
      Exec(conn,
           absl::StrCat("ALTER ROLE ", qrole, " WITH LOGIN PASSWORD ", Quote(conn, *verifier)));
    } else {
      Exec(conn, absl::StrCat("CREATE ROLE ", qrole,
                              " WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE "
                              "NOREPLICATION NOBYPASSRLS PASSWORD ",
                              Quote(conn, *verifier)));
    }
    Exec(conn, absl::StrCat("COMMENT ON ROLE ", qrole, " IS ", Quote(conn, marker)));
    return absl::OkStatus();
  }

  // Stops the sessions of a database and a role of Eph's and drops them. Either may be absent.
  void DropObjects(pqxx::connection& conn, const std::string& dbname, const std::string& role) {
    if (!role.empty() && RoleInfo(conn, role).exists) {
      Exec(conn, absl::StrCat("ALTER ROLE ", QuoteName(conn, role), " NOLOGIN"));
    }
    const ObjectInfo db = dbname.empty() ? ObjectInfo{} : DatabaseInfo(conn, dbname);
    if (db.exists) {
      const std::string qdb = QuoteName(conn, dbname);
      // An invalid database (an earlier drop cut short) has no sessions and refuses ALTER:
      // straight to DROP.
      if (!db.invalid) {
        Exec(conn, absl::StrCat("REVOKE CONNECT ON DATABASE ", qdb, " FROM PUBLIC"));
        Exec(conn, absl::StrCat("ALTER DATABASE ", qdb, " WITH ALLOW_CONNECTIONS false"));
        pqxx::nontransaction tx(conn);
        tx.exec_params(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = $1 AND pid <> pg_backend_pid()",
            dbname);
      }
      Exec(conn, absl::StrCat("DROP DATABASE IF EXISTS ", qdb, " WITH (FORCE)"));
    }
    if (!role.empty() && RoleInfo(conn, role).exists) {
      const std::string qrole = QuoteName(conn, role);
      {
        pqxx::nontransaction tx(conn);
        tx.exec_params(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE usename = $1 AND pid <> pg_backend_pid()",
            role);
      }
      // Privileges or temporary objects in the admin's database would block DROP ROLE.
      Exec(conn, absl::StrCat("DROP OWNED BY ", qrole));
      Exec(conn, absl::StrCat("DROP ROLE IF EXISTS ", qrole));
    }
  }

  // Creates database `name` (owned by role `name`) and fills it per `spec`. Returns the
  // template used, if any.
  absl::StatusOr<std::string> CreateAndFill(pqxx::connection& conn, const EnsureRequest& req,
                                            const std::string& name, const std::string& password,
                                            const std::vector<Script>& scripts,
                                            const std::optional<Script>& sanitizer,
                                            const std::string& content_hash,
                                            Clock::time_point deadline) {
    const std::string qname = QuoteName(conn, name);
    const std::vector<std::string> secrets = {password};
    std::string tpl;
    if (req.database.strategy == SeedStrategy::kClone) {
      absl::StatusOr<std::string> got = EnsureTemplate(conn, req.project, content_hash, scripts,
                                                       sanitizer, deadline, req.database.timeout);
      if (!got.ok()) return got.status();
      tpl = *got;
      // The shared template lock is held from here until the clone is the environment's: the
      // template (and its role, which owns the copied objects until the hand-over below) cannot
      // be dropped or rebuilt meanwhile.
      const int64_t key = LockKey(absl::StrCat("eph.tpl:", tpl));
      try {
        const bool took = TakeSpare(conn, tpl, name);
        if (!took) {
          Exec(conn, absl::StrCat("CREATE DATABASE ", qname, " TEMPLATE ", QuoteName(conn, tpl),
                                  " OWNER ", qname, CopyClause(options.clone_copy)));
        }
        Exec(conn, absl::StrCat("COMMENT ON DATABASE ", qname, " IS ",
                                Quote(conn, EnvMarker(req.environment, req.project,
                                                      options.installation, req.instance))));
        Exec(conn, absl::StrCat("REVOKE ALL ON DATABASE ", qname, " FROM PUBLIC"));
        if (took) Exec(conn, absl::StrCat("ALTER DATABASE ", qname, " ALLOW_CONNECTIONS true"));
        // The template's objects belong to the template's role: hand them to the environment's.
        // DROP OWNED also revokes the template role's grants on shared objects (the template
        // database's ACL), which concurrent clones would update at once ("tuple concurrently
        // updated"): one clone at a time per template does this step, serialised on the admin
        // connection (advisory locks are per database, and each clone is its own database).
        const int64_t owner_key = LockKey(absl::StrCat("eph.tpl-owner:", tpl));
        Exec(conn, absl::StrCat("SELECT pg_advisory_lock(", owner_key, ")"));
        try {
          std::unique_ptr<pqxx::connection> in_db = Connect(name);
          const std::string qtpl = QuoteName(*in_db, tpl);
          Exec(*in_db, absl::StrCat("REASSIGN OWNED BY ", qtpl, " TO ", qname));
          Exec(*in_db, absl::StrCat("DROP OWNED BY ", qtpl));
        } catch (...) {
          Unlock(conn, "pg_advisory_unlock", owner_key);
          throw;
        }
        Unlock(conn, "pg_advisory_unlock", owner_key);
      } catch (...) {
        Unlock(conn, "pg_advisory_unlock_shared", key);
        throw;
      }
      Unlock(conn, "pg_advisory_unlock_shared", key);
      return tpl;
    }
    Exec(conn, absl::StrCat("CREATE DATABASE ", qname, " OWNER ", qname));
    Exec(conn, absl::StrCat("COMMENT ON DATABASE ", qname, " IS ",
                            Quote(conn, EnvMarker(req.environment, req.project,
                                                  options.installation, req.instance))));
    Exec(conn, absl::StrCat("REVOKE ALL ON DATABASE ", qname, " FROM PUBLIC"));
    if (req.database.strategy == SeedStrategy::kSeed) {
      self->seeds_run_.fetch_add(1);
      absl::Status st = RunScripts(
          RoleParams(name, password, name), scripts,
          [](const Script& s) { return absl::StrCat("seed script ", s.path); }, deadline,
          req.database.timeout, secrets);
      if (!st.ok()) return st;
    }
    return tpl;
  }

  struct TemplateRow {
    std::string state;
    std::string error;
  };
  std::optional<TemplateRow> ReadTemplate(pqxx::connection& conn, const std::string& tpl) {
    pqxx::nontransaction tx(conn);
    pqxx::result r =
        tx.exec_params("SELECT state, error FROM eph_meta.templates WHERE name = $1", tpl);
    if (r.empty()) return std::nullopt;
    return TemplateRow{r[0][0].c_str(), r[0][1].c_str()};
  }

  // Returns the template's name with its shared advisory lock held (so it cannot be dropped or
  // rebuilt until the caller has cloned it); builds it first when needed.
  absl::StatusOr<std::string> EnsureTemplate(pqxx::connection& conn, const std::string& project,
                                             const std::string& hash,
                                             const std::vector<Script>& scripts,
                                             const std::optional<Script>& sanitizer,
                                             Clock::time_point deadline,
                                             std::chrono::seconds timeout) {
    const std::string tpl = TemplateName(project, hash);
    const int64_t key = LockKey(absl::StrCat("eph.tpl:", tpl));
    const std::string waiting = absl::StrCat("template database ", tpl);
    for (int attempt = 0; attempt < 3; ++attempt) {
      if (absl::Status st = LockBy(conn, "pg_advisory_lock_shared", key, deadline, waiting);
          !st.ok()) {
        return st;
      }
      std::optional<TemplateRow> row = ReadTemplate(conn, tpl);
      if (row && row->state == "ready" && DatabaseInfo(conn, tpl).exists) return tpl;
      Unlock(conn, "pg_advisory_unlock_shared", key);
      if (row && row->state == "failed") return absl::FailedPreconditionError(row->error);

      if (absl::Status st = LockBy(conn, "pg_advisory_lock", key, deadline, waiting); !st.ok()) {
        return st;
      }
      absl::Status built = absl::OkStatus();
      try {
        row = ReadTemplate(conn, tpl);
        if (row && row->state == "failed") {
          built = absl::FailedPreconditionError(row->error);
        } else if (!(row && row->state == "ready" && DatabaseInfo(conn, tpl).exists)) {
          built = BuildTemplate(conn, project, hash, tpl, scripts, sanitizer, deadline, timeout);
        }
      } catch (...) {
        Unlock(conn, "pg_advisory_unlock", key);
        throw;
      }
      Unlock(conn, "pg_advisory_unlock", key);
      if (!built.ok()) return built;
    }
    return absl::AbortedError(
        absl::StrCat("template database ", tpl, " was dropped while being cloned; retry"));
  }

  // Called with the template's exclusive lock held.
  absl::Status BuildTemplate(pqxx::connection& conn, const std::string& project,
                             const std::string& hash, const std::string& tpl,
                             const std::vector<Script>& scripts,
                             const std::optional<Script>& sanitizer, Clock::time_point deadline,
                             std::chrono::seconds timeout) {
    const auto started = Clock::now();
    spdlog::info("database: building template {} for project {}", tpl, project);
    {
      pqxx::nontransaction tx(conn);
      tx.exec_params(
          "INSERT INTO eph_meta.templates (name, project, content_hash, state) "
          "VALUES ($1, $2, $3, 'building') ON CONFLICT (name) DO UPDATE "
          "SET state = 'building', error = '', updated_at = now()",
          tpl, project, hash);
    }
    // Leftovers of an interrupted build (ours by marker only).
    const ObjectInfo old_db = DatabaseInfo(conn, tpl);
    const ObjectInfo old_role = RoleInfo(conn, tpl);
    if ((old_db.exists && !old_db.marker) || (old_role.exists && !old_role.marker)) {
      return absl::FailedPreconditionError(absl::StrCat(
          "a database or role named ", tpl, " exists and is not Eph's; not touching it"));
    }
    DropObjects(conn, tpl, tpl);

    const std::string password = options.random->Hex(24);
    const std::vector<std::string> secrets = {password};
    const std::string marker = TemplateMarker(project, hash);
    if (absl::Status st = CreateRole(conn, tpl, password, marker); !st.ok()) return st;
    const std::string qtpl = QuoteName(conn, tpl);
    Exec(conn, absl::StrCat("CREATE DATABASE ", qtpl));
    Exec(conn, absl::StrCat("COMMENT ON DATABASE ", qtpl, " IS ", Quote(conn, marker)));
    Exec(conn, absl::StrCat("REVOKE ALL ON DATABASE ", qtpl, " FROM PUBLIC"));
    Exec(conn, absl::StrCat("GRANT CONNECT, TEMPORARY ON DATABASE ", qtpl, " TO ", qtpl));
    {
      std::unique_ptr<pqxx::connection> in_db = Connect(tpl);
      Exec(*in_db, absl::StrCat("ALTER SCHEMA public OWNER TO ", qtpl));
    }
    std::vector<Script> all = scripts;
    if (sanitizer) all.push_back(*sanitizer);
    const std::string sanitizer_path = sanitizer ? sanitizer->path : "";
    absl::Status st = RunScripts(
        RoleParams(tpl, password, tpl), all,
        [&](const Script& s) {
          return absl::StrCat(
              s.path == sanitizer_path && &s == &all.back() ? "sanitising script " : "seed script ",
              s.path);
        },
        deadline, timeout, secrets);
    if (!st.ok()) {
      spdlog::warn("database: template {} for project {} failed: {}", tpl, project,
                   std::string(st.message()));
      DropObjects(conn, tpl, tpl);
      pqxx::nontransaction tx(conn);
      if (st.code() == absl::StatusCode::kFailedPrecondition) {
        // Same content, same failure: waiters get this error instead of building again.
        tx.exec_params(
            "UPDATE eph_meta.templates SET state = 'failed', error = $2, updated_at = now() "
            "WHERE name = $1",
            tpl, std::string(st.message()));
      } else {
        tx.exec_params("DELETE FROM eph_meta.templates WHERE name = $1", tpl);
      }
      return st;
    }
    // Nobody connects to a template: CREATE DATABASE ... TEMPLATE fails while anyone does.
    Exec(conn, absl::StrCat("ALTER ROLE ", qtpl, " NOLOGIN"));
    Exec(conn, absl::StrCat("ALTER DATABASE ", qtpl, " WITH ALLOW_CONNECTIONS false"));
    {
      pqxx::nontransaction tx(conn);
      tx.exec_params("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1",
                     tpl);
      tx.exec_params(
          "UPDATE eph_meta.templates SET state = 'ready', updated_at = now() WHERE name = $1", tpl);
    }
    self->template_builds_.fetch_add(1);
    spdlog::info(
        "database: template {} for project {} ready in {} ms", tpl, project,
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started).count());
    return absl::OkStatus();
  }

  // Drops templates of `project` (all projects when empty) that are not ready and not being
  // built, or ready but neither the newest of their project nor recorded by any environment.
  void DropUnusedTemplates(pqxx::connection& conn, const std::string& project) {
    DropStaleSpares(conn, project);
    pqxx::result r;
    {
      pqxx::nontransaction tx(conn);
      r = tx.exec_params(
          absl::StrCat(
              "SELECT t.name, t.state, t.project, "
              "  EXISTS (SELECT 1 FROM eph_meta.environments e WHERE e.template = t.name), "
              "  t.name = ",
              NewestTemplateSql("t.project"),
              " FROM eph_meta.templates t WHERE $1 = '' OR t.project = $1"),
          project);
    }
    for (const pqxx::row& row : r) {
      const std::string name = row[0].c_str();
      const std::string state = row[1].c_str();
      const bool used = row[3].as<bool>();
      const bool newest = !row[4].is_null() && row[4].as<bool>();
      if (state == "ready" && (used || newest)) continue;
      if (state == "failed" && !project.empty()) continue;  // only the sweep forgets failures
      const int64_t key = LockKey(absl::StrCat("eph.tpl:", name));
      if (!TryLock(conn, key)) continue;  // being built or cloned
      try {
        const ObjectInfo db = DatabaseInfo(conn, name);
        const ObjectInfo role = RoleInfo(conn, name);
        if ((!db.exists || db.marker) && (!role.exists || role.marker)) {
          DropObjects(conn, name, name);
          pqxx::nontransaction tx(conn);
          tx.exec_params("DELETE FROM eph_meta.templates WHERE name = $1", name);
          spdlog::info("database: dropped unused template {} of project {}", name, row[2].c_str());
        }
      } catch (...) {
        Unlock(conn, "pg_advisory_unlock", key);
        throw;
      }
      Unlock(conn, "pg_advisory_unlock", key);
    }
  }

  // Drops one instance's database and role of an environment; the caller holds its lock.
  absl::Status DropInstance(pqxx::connection& conn, const std::string& environment,
                            const std::string& instance) {
    const std::string name = ObjectName(environment, instance);
    const ObjectInfo db = DatabaseInfo(conn, name);
    const ObjectInfo role = RoleInfo(conn, name);
    const bool interrupted =
        BookkeepingNames(conn, environment, instance, name, options.installation);
    auto ours = [&](const ObjectInfo& info) {
      return MarksInstance(info, environment, instance) || (interrupted && !info.commented);
    };
    std::string problems;
    if (db.exists && !ours(db)) {
      absl::StrAppend(&problems, "database ", name, " exists but is not Eph's; ");
    }
    if (role.exists && !ours(role)) {
      absl::StrAppend(&problems, "role ", name, " exists but is not Eph's; ");
    }
    DropObjects(conn, db.exists && ours(db) ? name : "", role.exists && ours(role) ? name : "");
    {
      pqxx::nontransaction tx(conn);
      tx.exec_params("DELETE FROM eph_meta.environments WHERE environment = $1 AND instance = $2",
                     environment, instance);
    }
    if (!problems.empty()) {
      return absl::FailedPreconditionError(
          absl::StrCat("environment ", environment, ": ", problems, "left untouched"));
    }
    return absl::OkStatus();
  }

  // Drops every instance's database and role of an environment: those its bookkeeping lists and
  // those whose marker names it (a call interrupted before its row was written).
  absl::Status DropEnvironment(pqxx::connection& conn, const std::string& environment) {
    std::set<std::string> instances = {""};
    {
      pqxx::nontransaction tx(conn);
      for (const pqxx::row& row : tx.exec_params(
               "SELECT instance FROM eph_meta.environments WHERE environment = $1", environment)) {
        instances.insert(row[0].c_str());
      }
      const std::string prefix = absl::StrCat(kMarker, " environment=", environment, " ");
      for (const pqxx::row& row :
           tx.exec_params("SELECT shobj_description(oid, 'pg_database') FROM pg_database "
                          "WHERE starts_with(shobj_description(oid, 'pg_database'), $1) UNION ALL "
                          "SELECT shobj_description(oid, 'pg_authid') FROM pg_roles "
                          "WHERE starts_with(shobj_description(oid, 'pg_authid'), $1)",
                          prefix)) {
        std::optional<std::map<std::string, std::string>> marker = ParseMarker(row[0].c_str());
        if (marker && (*marker)["environment"] == environment) {
          instances.insert((*marker)["instance"]);
        }
      }
    }
    absl::Status first;
    for (const std::string& instance : instances) {
      first.Update(DropInstance(conn, environment, instance));
    }
    return first;
  }
};

DatabaseSpec SpecFromConfig(const config::DatabaseInstance& instance) {
  DatabaseSpec spec;
  switch (instance.strategy) {
    case config::DatabaseTemplateStrategy::kEmpty:
      spec.strategy = SeedStrategy::kEmpty;
      break;
    case config::DatabaseTemplateStrategy::kSeed:
      spec.strategy = SeedStrategy::kSeed;
      break;
    case config::DatabaseTemplateStrategy::kClone:
      spec.strategy = SeedStrategy::kClone;
      break;
  }
  spec.scripts = instance.seed_scripts;
  spec.on_seed_change = instance.on_seed_change == config::DatabaseSeedChange::kReseed
                            ? OnSeedChange::kReseed
                            : OnSeedChange::kKeep;
  spec.sanitize_script = instance.sanitize_script;
  spec.timeout = std::max(std::chrono::seconds(1),
                          std::chrono::seconds(absl::ToInt64Seconds(instance.seed_timeout)));
  return spec;
}

DatabaseManager::DatabaseManager(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {
  impl_->self = this;
}
DatabaseManager::~DatabaseManager() {
  impl_->StopSpares();  // before the counters the spare maker updates go
}

bool DatabaseManager::WaitForSpares(std::chrono::milliseconds timeout) {
  return impl_->WaitForSpares(timeout);
}

absl::StatusOr<std::unique_ptr<DatabaseManager>> DatabaseManager::Create(
    DatabaseManagerOptions options) {
  if (options.random == nullptr) options.random = &SecureRandom::Instance();
  for (char c : options.installation) {
    if (!absl::ascii_isalnum(c) && c != '-') {
      return absl::InvalidArgumentError(absl::StrCat(
          "the installation id `", options.installation, "` may hold letters, digits and '-' only"));
    }
  }
  auto impl = std::make_unique<Impl>();
  char* err = nullptr;
  PQconninfoOption* parsed = PQconninfoParse(options.admin_url.c_str(), &err);
  if (parsed == nullptr) {
    std::string message = err == nullptr ? "out of memory" : OneLine(err);
    if (err != nullptr) PQfreemem(err);
    return absl::InvalidArgumentError(
        absl::StrCat("the admin connection for databases is not a valid PostgreSQL URL: ",
                     Scrub(message, {options.admin_url})));
  }
  for (PQconninfoOption* o = parsed; o->keyword != nullptr; ++o) {
    if (o->val != nullptr && *o->val != '\0') impl->admin[o->keyword] = o->val;
  }
  PQconninfoFree(parsed);
  if (!impl->admin.count("connect_timeout")) {
    impl->admin["connect_timeout"] = absl::StrCat(options.connect_timeout.count());
  }
  // Bounded connects, and keepalives so a silently dead server ends a seed in about a minute.
  for (const auto& [key, value] : std::initializer_list<std::pair<const char*, const char*>>{
           {"application_name", "ephd-database"},
           {"keepalives_idle", "30"},
           {"keepalives_interval", "10"},
           {"keepalives_count", "3"}}) {
    if (!impl->admin.count(key)) impl->admin[key] = value;
  }
  if (impl->admin.count("password")) impl->admin_secrets.push_back(impl->admin.at("password"));
  impl->options = std::move(options);
  return std::unique_ptr<DatabaseManager>(new DatabaseManager(std::move(impl)));
}

std::string DatabaseManager::ObjectName(std::string_view environment, std::string_view instance) {
  std::string name(kEnvPrefix);
  auto append = [&](std::string_view part) {
    for (char c : part) name.push_back(absl::ascii_isalnum(c) ? absl::ascii_tolower(c) : '_');
  };
  append(environment);
  if (!instance.empty()) {
    // Always hashed: "__" could also come from an environment name with "--".
    name += "__";
    append(instance);
    const std::string hash = Sha256Hex(absl::StrCat(S(environment), "/", S(instance))).substr(0, 8);
    return absl::StrCat(name.substr(0, std::min(name.size(), kMaxIdentifier - 9)), "_", hash);
  }
  if (name.size() > kMaxIdentifier || !IsDnsLabel(environment)) {
    // Distinct environments keep distinct names when cut (or when mapped lossily).
    const std::string hash = Sha256Hex(environment).substr(0, 8);
    name = absl::StrCat(name.substr(0, std::min(name.size(), kMaxIdentifier - 9)), "_", hash);
  }
  return name;
}

std::string DatabaseManager::TemplateName(std::string_view project, std::string_view content_hash) {
  return absl::StrCat(kTemplatePrefix, Sha256Hex(project).substr(0, 12), "_",
                      S(content_hash.substr(0, 16)));
}

absl::StatusOr<EnsureResult> DatabaseManager::Ensure(const EnsureRequest& req) {
  if (!IsDnsLabel(req.environment)) {
    return absl::InvalidArgumentError(absl::StrCat("environment name `", req.environment,
                                                   "` is not a DNS label (a-z, 0-9, '-', <= 63)"));
  }
  if (!ValidProject(req.project)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "project `", req.project, "` is not a repository (owner/repo) or a DNS label"));
  }
  if (!req.instance.empty() && !IsDnsLabel(req.instance)) {
    return absl::InvalidArgumentError(absl::StrCat("database instance name `", req.instance,
                                                   "` is not a DNS label (a-z, 0-9, '-', <= 63)"));
  }
  const DatabaseSpec& spec = req.database;
  if (spec.timeout.count() <= 0) {
    return absl::InvalidArgumentError("the database seed timeout must be positive");
  }
  if (spec.strategy != SeedStrategy::kEmpty && spec.scripts.empty()) {
    return absl::InvalidArgumentError("the `seed` and `clone` strategies need seed scripts");
  }
  if (!spec.sanitize_script.empty() && spec.strategy != SeedStrategy::kClone) {
    return absl::InvalidArgumentError("a sanitising script only applies to `strategy: clone`");
  }
  // Read every script before touching the server: bad paths fail fast and nothing is made.
  // The content hash covers each script's path and text, length-prefixed so no two different
  // lists of scripts hash alike; streamed from the files (none is held in memory for this).
  std::vector<Script> scripts;
  std::optional<Script> sanitizer;
  Sha256 hasher;
  bool hashed = false;
  auto hash = [&](absl::string_view kind, const Script& s) {
    hashed = true;
    return HashScript(hasher, kind, s);
  };
  if (spec.strategy != SeedStrategy::kEmpty) {
    for (const std::string& path : spec.scripts) {
      absl::StatusOr<Script> s = LoadScript(req.source_dir, path, "seed script");
      if (!s.ok()) return s.status();
      if (absl::Status st = hash("script", *s); !st.ok()) return st;
      scripts.push_back(*std::move(s));
    }
  }
  if (!spec.sanitize_script.empty()) {
    absl::StatusOr<Script> s =
        LoadScript(req.source_dir, spec.sanitize_script, "sanitising script");
    if (!s.ok()) return s.status();
    if (absl::Status st = hash("sanitize", *s); !st.ok()) return st;
    sanitizer = *std::move(s);
  }
  const std::string content_hash = hashed ? hasher.HexDigest() : "";
  const auto deadline = Clock::now() + spec.timeout;
  const std::string name = ObjectName(req.environment, req.instance);
  const char* strategy_name = spec.strategy == SeedStrategy::kSeed    ? "seed"
                              : spec.strategy == SeedStrategy::kClone ? "clone"
                                                                      : "empty";

  std::vector<std::string> secrets = impl_->admin_secrets;
  std::unique_ptr<pqxx::connection> conn;
  try {
    conn = impl_->Connect();
    impl_->EnsureMeta(*conn);
    if (absl::Status st =
            LockBy(*conn, "pg_advisory_lock", LockKey(absl::StrCat("eph.env:", req.environment)),
                   deadline, absl::StrCat("another operation on environment ", req.environment));
        !st.ok()) {
      return st;
    }
    struct Row {
      std::string password, seed_hash;
      bool ready;
    };
    std::optional<Row> row;
    {
      pqxx::nontransaction tx(*conn);
      pqxx::result r = tx.exec_params(
          "SELECT password, seed_hash, ready FROM eph_meta.environments "
          "WHERE environment = $1 AND instance = $2",
          req.environment, req.instance);
      if (!r.empty()) row = Row{r[0][0].c_str(), r[0][1].c_str(), r[0][2].as<bool>()};
    }
    if (row) secrets.push_back(row->password);
    const ObjectInfo db = DatabaseInfo(*conn, name);
    const ObjectInfo role = RoleInfo(*conn, name);
    const bool interrupted =
        BookkeepingNames(*conn, req.environment, req.instance, name, impl_->options.installation);
    auto ours = [&](const ObjectInfo& info) {
      if (interrupted && !info.commented) return true;
      if (!MarksInstance(info, req.environment, req.instance)) return false;
      // Another installation's environment of the same name is not ours either.
      const auto installation = info.marker->find("installation");
      return installation == info.marker->end() || installation->second.empty() ||
             installation->second == impl_->options.installation;
    };
    if ((db.exists && !ours(db)) || (role.exists && !ours(role))) {
      return absl::FailedPreconditionError(
          absl::StrCat("a database or role named ", name,
                       " exists on the shared PostgreSQL server and is not "
                       "Eph's (no `eph:managed environment=",
                       req.environment, "` comment); not touching it"));
    }

    EnsureResult result;
    result.seed_hash = content_hash;
    if (row && row->ready && db.exists && role.exists) {
      result.credentials = impl_->MakeCredentials(name, row->password);
      if (row->seed_hash == content_hash) {
        result.outcome = EnsureOutcome::kUnchanged;
        return result;
      }
      if (spec.on_seed_change == OnSeedChange::kKeep) {
        spdlog::info("database: seed of environment {} changed; keeping its data as configured",
                     req.environment);
        result.outcome = EnsureOutcome::kKeptData;
        result.seed_hash = row->seed_hash;
        return result;
      }
      spdlog::info("database: seed of environment {} changed; reseeding {}", req.environment, name);
      impl_->DropObjects(*conn, name, "");
      result.outcome = EnsureOutcome::kReseeded;
    } else {
      result.outcome = EnsureOutcome::kCreated;
    }

    const std::string password = row ? row->password : impl_->options.random->Hex(24);
    secrets.push_back(password);
    {
      pqxx::nontransaction tx(*conn);
      tx.exec_params(
          "INSERT INTO eph_meta.environments "
          "(environment, project, object_name, password, installation, instance) "
          "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (environment, instance) DO UPDATE "
          "SET ready = false, updated_at = now()",
          req.environment, req.project, name, password, impl_->options.installation, req.instance);
    }
    if (result.outcome == EnsureOutcome::kCreated) {
      if (db.exists) impl_->DropObjects(*conn, name, "");  // half-made by an interrupted call
      if (absl::Status st = impl_->CreateRole(
              *conn, name, password,
              EnvMarker(req.environment, req.project, impl_->options.installation, req.instance));
          !st.ok()) {
        return st;
      }
    }
    const auto started = Clock::now();
    absl::StatusOr<std::string> tpl = absl::InternalError("unreached");
    try {
      tpl = impl_->CreateAndFill(*conn, req, name, password, scripts, sanitizer, content_hash,
                                 deadline);
    } catch (...) {
      tpl = CurrentExceptionStatus(
          absl::StrCat("creating the database of environment ", req.environment), secrets);
    }
    if (!tpl.ok()) {
      spdlog::warn("database: environment {} failed ({}): {}; dropping its database and role",
                   req.environment, strategy_name,
                   Scrub(std::string(tpl.status().message()), secrets));
      absl::Status dropped = impl_->DropInstance(*conn, req.environment, req.instance);
      if (!dropped.ok()) {
        spdlog::warn("database: cleaning up environment {}: {}", req.environment,
                     std::string(dropped.message()));
      }
      return absl::Status(tpl.status().code(), Scrub(std::string(tpl.status().message()), secrets));
    }
    {
      pqxx::nontransaction tx(*conn);
      tx.exec_params(
          "UPDATE eph_meta.environments SET ready = true, seed_hash = $2, template = $3, "
          "updated_at = now() WHERE environment = $1 AND instance = $4",
          req.environment, content_hash, *tpl, req.instance);
    }
    spdlog::info(
        "database: {} {} for environment {} ({}) in {} ms",
        result.outcome == EnsureOutcome::kReseeded ? "reseeded" : "created", name, req.environment,
        strategy_name,
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started).count());
    if (spec.strategy == SeedStrategy::kClone) {
      impl_->DropUnusedTemplates(*conn, req.project);
      if (impl_->options.clone_spares > 0) impl_->QueueRefill(req.project, *tpl);
    }
    result.credentials = impl_->MakeCredentials(name, password);
    return result;
  } catch (...) {
    return CurrentExceptionStatus(absl::StrCat("database of environment ", req.environment),
                                  secrets);
  }
}

absl::Status DatabaseManager::Drop(std::string_view environment_view) {
  const std::string environment(environment_view);
  try {
    std::unique_ptr<pqxx::connection> conn = impl_->Connect();
    impl_->EnsureMeta(*conn);
    if (absl::Status st =
            LockBy(*conn, "pg_advisory_lock", LockKey(absl::StrCat("eph.env:", environment)),
                   Clock::now() + std::chrono::minutes(10),
                   absl::StrCat("another operation on environment ", environment));
        !st.ok()) {
      return st;
    }
    std::string project;
    {
      pqxx::nontransaction tx(*conn);
      pqxx::result r = tx.exec_params(
          "SELECT project FROM eph_meta.environments WHERE environment = $1 LIMIT 1", environment);
      if (!r.empty()) project = r[0][0].c_str();
    }
    absl::Status st = impl_->DropEnvironment(*conn, environment);
    spdlog::info("database: dropped the databases and roles of environment {}", environment);
    if (!project.empty()) impl_->DropUnusedTemplates(*conn, project);
    return st;
  } catch (...) {
    return CurrentExceptionStatus(
        absl::StrCat("dropping the database of environment ", environment), impl_->admin_secrets);
  }
}

absl::StatusOr<std::vector<OwnedObject>> DatabaseManager::ListOwned() {
  try {
    std::unique_ptr<pqxx::connection> conn = impl_->Connect();
    pqxx::nontransaction tx(*conn);
    pqxx::result r = tx.exec(
        "SELECT 'database', datname, shobj_description(oid, 'pg_database') FROM pg_database "
        "WHERE shobj_description(oid, 'pg_database') LIKE 'eph:managed %' "
        "UNION ALL "
        "SELECT 'role', rolname, shobj_description(oid, 'pg_authid') FROM pg_roles "
        "WHERE shobj_description(oid, 'pg_authid') LIKE 'eph:managed %' ORDER BY 1, 2");
    std::vector<OwnedObject> out;
    for (const pqxx::row& row : r) {
      OwnedObject o;
      o.kind = row[0].c_str();
      o.name = row[1].c_str();
      auto marker = ParseMarker(row[2].c_str());
      if (!marker) continue;
      if (marker->count("spare")) {
        if (o.kind != "database" || !absl::StartsWith(o.name, kSparePrefix)) continue;
        if (!impl_->options.installation.empty() &&
            (*marker)["installation"] != impl_->options.installation) {
          continue;
        }
        o.kind = "spare";
        o.project = (*marker)["project"];
        o.of = (*marker)["of"];
      } else if (marker->count("template")) {
        if (!absl::StartsWith(o.name, kTemplatePrefix)) continue;
        o.kind = o.kind == "database" ? "template" : "template-role";
        o.project = (*marker)["project"];
      } else {
        o.environment = (*marker)["environment"];
        o.instance = (*marker)["instance"];
        o.project = (*marker)["project"];
        if (o.environment.empty() || o.name != ObjectName(o.environment, o.instance)) continue;
        // Another installation's (or unstamped, when this one is named): never swept by us.
        if (!impl_->options.installation.empty() &&
            (*marker)["installation"] != impl_->options.installation) {
          continue;
        }
      }
      out.push_back(std::move(o));
    }
    return out;
  } catch (...) {
    return CurrentExceptionStatus("listing Eph's databases", impl_->admin_secrets);
  }
}

absl::StatusOr<std::vector<std::string>> DatabaseManager::SweepOrphans(
    const std::set<std::string>& live) {
  absl::StatusOr<std::vector<OwnedObject>> owned = ListOwned();
  if (!owned.ok()) return owned.status();
  std::set<std::string> orphans;
  for (const OwnedObject& o : *owned) {
    if (!o.environment.empty() && !live.count(o.environment)) orphans.insert(o.environment);
  }
  try {
    std::unique_ptr<pqxx::connection> conn = impl_->Connect();
    impl_->EnsureMeta(*conn);
    {
      pqxx::nontransaction tx(*conn);
      for (const pqxx::row& row :
           tx.exec_params("SELECT environment FROM eph_meta.environments "
                          "WHERE $1 = '' OR installation = $1",
                          impl_->options.installation)) {
        if (!live.count(row[0].c_str())) orphans.insert(row[0].c_str());
      }
    }
    std::vector<std::string> dropped;
    absl::Status first_error;
    for (const std::string& env : orphans) {
      if (absl::Status st = Drop(env); !st.ok()) {
        spdlog::warn("database: sweeping environment {}: {}", env, std::string(st.message()));
        first_error.Update(st);
        continue;
      }
      dropped.push_back(env);
    }
    // Template objects without bookkeeping (an interrupted build) are adopted, then dropped.
    for (const OwnedObject& o : *owned) {
      if (o.kind != "template" && o.kind != "template-role") continue;
      pqxx::nontransaction tx(*conn);
      tx.exec_params(
          "INSERT INTO eph_meta.templates (name, project, content_hash, state) "
          "VALUES ($1, $2, '', 'orphaned') ON CONFLICT (name) DO NOTHING",
          o.name, o.project);
    }
    // Spare databases without a row (a maker that died between CREATE and its bookkeeping's
    // cleanup) are dropped; DropUnusedTemplates drops stale rows and their databases.
    for (const OwnedObject& o : *owned) {
      if (o.kind != "spare") continue;
      bool known = false;
      {
        pqxx::nontransaction tx(*conn);
        known = !tx.exec_params("SELECT 1 FROM eph_meta.spares WHERE name = $1", o.name).empty();
      }
      if (!known) {
        impl_->DropSpare(*conn, o.name);
        spdlog::info("database: dropped spare {} that had no bookkeeping", o.name);
      }
    }
    impl_->DropUnusedTemplates(*conn, "");
    if (!first_error.ok() && dropped.empty()) return first_error;
    return dropped;
  } catch (...) {
    return CurrentExceptionStatus("sweeping Eph's databases", impl_->admin_secrets);
  }
}

}  // namespace eph::database
