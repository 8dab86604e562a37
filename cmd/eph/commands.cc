#include "cmd/eph/commands.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <functional>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>

#include "absl/strings/str_cat.h"
#include "cmd/eph/completion.h"
#include "cmd/eph/validate.h"
#include "pkg/client/client.h"
#include "pkg/config/duration.h"

namespace eph::cli {
namespace {

using nlohmann::json;

std::string Env(const char* name, const std::string& fallback = "") {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? v : fallback;
}

int ExitCodeFor(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kOk:
      return kOk;
    case absl::StatusCode::kUnavailable:
      return kUnreachable;
    case absl::StatusCode::kUnauthenticated:
    case absl::StatusCode::kPermissionDenied:
      return kAuth;
    case absl::StatusCode::kNotFound:
      return kNotFound;
    case absl::StatusCode::kInvalidArgument:
      return kUsage;
    default:
      return kFailure;
  }
}

int Fail(const absl::Status& s) {
  std::fprintf(stderr, "eph: %s\n", std::string(s.message()).c_str());
  return ExitCodeFor(s.code());
}

size_t TerminalWidth() {
  winsize ws{};
  if (isatty(STDOUT_FILENO) && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) {
    return ws.ws_col;
  }
  const std::string columns = Env("COLUMNS");
  return columns.empty() ? 120 : std::max(40, std::atoi(columns.c_str()));
}

// Prints rows as aligned columns; a line wider than the terminal is cut with a '~'.
void PrintTable(const std::vector<std::vector<std::string>>& rows) {
  if (rows.empty()) return;
  std::vector<size_t> widths(rows[0].size(), 0);
  for (const auto& row : rows) {
    for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  }
  const size_t width = TerminalWidth();
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      std::string cell = row[i];
      if (i + 1 < row.size()) cell.resize(widths[i] + 2, ' ');
      line += cell;
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    if (line.size() > width) line = line.substr(0, width - 1) + "~";
    std::cout << line << "\n";
  }
}

std::string Str(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return "";
  return it->is_string() ? it->get<std::string>() : it->dump();
}

// "2d 3h", "45m", "expired": how long until an RFC 3339 time, for the TTL column.
std::string Until(const std::string& rfc3339) {
  if (rfc3339.empty()) return "-";
  std::tm tm{};
  if (strptime(rfc3339.c_str(), "%Y-%m-%dT%H:%M:%S", &tm) == nullptr) return rfc3339;
  const auto at = std::chrono::system_clock::from_time_t(timegm(&tm));
  const auto left =
      std::chrono::duration_cast<std::chrono::seconds>(at - std::chrono::system_clock::now())
          .count();
  if (left <= 0) return "expired";
  const long long d = left / 86400, h = (left % 86400) / 3600, m = (left % 3600) / 60;
  if (d > 0) return absl::StrCat(d, "d ", h, "h");
  if (h > 0) return absl::StrCat(h, "h ", m, "m");
  return absl::StrCat(std::max(1LL, m), "m");
}

void PrintEnvironment(const json& env) {
  const char* keys[] = {"name", "project",  "pr",         "state",      "reason",
                        "url",  "provider", "created_at", "updated_at", "expires_at"};
  for (const char* k : keys) {
    std::string v = Str(env, k);
    if (std::string(k) == "pr" && v == "0") continue;
    if (std::string(k) == "expires_at" && !v.empty()) v += " (" + Until(v) + ")";
    if (!v.empty()) std::printf("%-11s %s\n", (std::string(k) + ":").c_str(), v.c_str());
  }
  if (env.contains("events") && env["events"].is_array() && !env["events"].empty()) {
    std::printf("history:\n");
    for (const auto& e : env["events"]) {
      const std::string from = Str(e, "from_state");
      std::printf("  %s  %s%s%s\n", Str(e, "at").c_str(),
                  from.empty() ? "" : (from + " -> ").c_str(), Str(e, "to_state").c_str(),
                  Str(e, "reason").empty() ? "" : ("  (" + Str(e, "reason") + ")").c_str());
    }
  }
}

absl::StatusOr<json> ParseJson(const absl::StatusOr<std::string>& body) {
  if (!body.ok()) return body.status();
  json j = json::parse(*body, nullptr, false);
  if (j.is_discarded()) {
    return absl::InternalError(
        "the server sent a response that is not JSON: does --server (EPH_SERVER) point at an "
        "ephd API?");
  }
  return j;
}

std::string Clock() {
  const std::time_t t = std::time(nullptr);
  char buf[16];
  std::strftime(buf, sizeof(buf), "%H:%M:%S", std::localtime(&t));
  return buf;
}

// Polls the environment until it is ready (0), failed or gone (1), or `timeout` passes (1).
// Each state change is a line; on a terminal a spinner with the elapsed time shows it is alive.
int WaitUntilReady(client::ApiClient& api, const std::string& name, absl::Duration interval,
                   absl::Duration timeout, bool as_json) {
  FILE* progress = as_json ? stderr : stdout;
  const bool tty = isatty(fileno(progress));
  const auto start = std::chrono::steady_clock::now();
  const auto deadline = start + absl::ToChronoMilliseconds(timeout);
  const std::string path = "/api/v1/environments/" + client::EscapePathSegment(name);
  std::string last_state;
  static const char kSpinner[] = "|/-\\";
  int tick = 0;
  for (;;) {
    auto env = ParseJson(api.Get(path));
    if (tty) std::fprintf(progress, "\r\033[K");
    if (!env.ok()) return Fail(env.status());
    const std::string state = Str(*env, "state");
    if (state != last_state) {
      const std::string reason = Str(*env, "reason");
      std::fprintf(progress, "%s  %s%s\n", Clock().c_str(), state.c_str(),
                   reason.empty() ? "" : ("  (" + reason + ")").c_str());
      last_state = state;
      std::fflush(progress);
    }
    if (state == "ready") {
      if (as_json) {
        std::cout << env->dump(2) << "\n";
      } else {
        std::printf("%s is ready: %s\n", name.c_str(), Str(*env, "url").c_str());
      }
      return kOk;
    }
    if (state == "failed" || state == "destroying" || state == "destroyed") {
      if (as_json) std::cout << env->dump(2) << "\n";
      std::fprintf(stderr, "eph: %s is %s%s\n", name.c_str(), state.c_str(),
                   Str(*env, "reason").empty() ? "" : (": " + Str(*env, "reason")).c_str());
      return kFailure;
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      std::fprintf(stderr, "eph: timed out after %s waiting for %s; it is still %s\n",
                   config::DurationString(timeout).c_str(), name.c_str(), state.c_str());
      return kFailure;
    }
    if (tty) {
      const auto elapsed =
          std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - start)
              .count();
      std::fprintf(progress, "%c waiting for %s (%s, %llds)", kSpinner[tick++ % 4], name.c_str(),
                   state.c_str(), static_cast<long long>(elapsed));
      std::fflush(progress);
    }
    std::this_thread::sleep_for(absl::ToChronoMilliseconds(interval));
  }
}

// The command a user typed, if it is not one of `app`'s: CLI11 would say only "A subcommand is
// required". Skips the global options (and their values) that may come before it.
std::optional<std::string> UnknownCommand(int argc, char** argv, const CLI::App& app) {
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--server" || arg == "-o" || arg == "--output") {
      ++i;
      continue;
    }
    if (arg.empty() || arg[0] == '-') continue;
    for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; })) {
      if (sub->get_name() == arg) return std::nullopt;
    }
    return arg;
  }
  return std::nullopt;
}

std::string CommandNames(const CLI::App& app) {
  std::string out;
  for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; })) {
    absl::StrAppend(&out, out.empty() ? "" : ", ", sub->get_name());
  }
  return out;
}

absl::StatusOr<absl::Duration> PositiveDuration(const std::string& flag, const std::string& text) {
  auto d = config::ParseDuration(text);
  if (!d.ok()) return absl::InvalidArgumentError(flag + ": " + std::string(d.status().message()));
  if (*d <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(flag + " must be more than 0s");
  }
  return *d;
}

// What the command line said: every option of every command, filled in by CLI11.
struct Options {
  std::string server = Env("EPH_SERVER", "http://127.0.0.1:8080");
  std::string output = "table";
  bool all = false;  // list
  std::string name;  // status, down, open, extend, logs
  // up
  std::string repo;
  int64_t pr = 0;
  bool wait = false;
  std::string timeout = "15m";
  std::string interval = "2s";
  std::string by;  // extend
  // logs
  bool follow = false;
  std::string component;
  std::string file = "eph.yaml";  // validate
  std::string shell;              // completion
};

// The subcommands, to see which one was given.
struct Commands {
  CLI::App* list;
  CLI::App* status;
  CLI::App* down;
  CLI::App* open;
  CLI::App* up;
  CLI::App* extend;
  CLI::App* logs;
  CLI::App* validate;
  CLI::App* completion;
};

Commands AddCommands(CLI::App& app, Options& o) {
  app.require_subcommand(1);
  // Global flags work anywhere, as with kubectl and gh: `eph list -o json` as `eph -o json list`.
  // Set before the subcommands are added, which inherit it.
  app.fallthrough();
  app.add_option("--server", o.server, "ephd address (EPH_SERVER)");
  app.add_option("-o,--output", o.output, "table or json")->check(CLI::IsMember({"table", "json"}));
  app.footer(
      "The API token comes from EPH_TOKEN. Exit status: 0 ok, 1 failure, 2 usage, 3 ephd "
      "unreachable, 4 token missing or refused, 5 no such environment, 6 invalid eph.yaml.");
  Commands c{};
  c.list = app.add_subcommand("list", "list environments");
  c.list->add_flag("--all", o.all, "include destroyed environments");

  c.status = app.add_subcommand("status", "show one environment and its history");
  c.status->add_option("NAME", o.name, "environment name")->required();
  c.down = app.add_subcommand("down", "destroy an environment");
  c.down->add_option("NAME", o.name, "environment name")->required();
  c.open = app.add_subcommand("open", "print (and open) an environment's URL");
  c.open->add_option("NAME", o.name, "environment name")->required();

  c.up = app.add_subcommand("up", "create the environment of a pull request");
  c.up->add_option("--repo", o.repo, "repository, OWNER/REPO")->required();
  c.up->add_option("--pr", o.pr, "pull request number")->required()->check(CLI::PositiveNumber);
  c.up->add_flag("--wait", o.wait, "wait until it is ready (or failed), showing progress");
  c.up->add_option("--timeout", o.timeout, "with --wait: give up after this long")
      ->capture_default_str();
  c.up->add_option("--interval", o.interval, "with --wait: how often to look")
      ->capture_default_str();

  c.extend = app.add_subcommand("extend", "give an environment more time to live");
  c.extend->add_option("NAME", o.name, "environment name")->required();
  c.extend->add_option("--by", o.by, "how much longer, e.g. 4h, 24h, 3d")->required();

  c.logs = app.add_subcommand("logs", "print an environment's logs");
  c.logs->add_option("NAME", o.name, "environment name")->required();
  c.logs->add_flag("-f,--follow", o.follow, "keep printing new lines");
  c.logs->add_option("--component", o.component, "only this component (Deployment / service)");

  c.validate = app.add_subcommand("validate", "check an eph.yaml offline");
  c.validate->add_option("FILE", o.file, "path to eph.yaml (default ./eph.yaml)");

  c.completion = app.add_subcommand("completion", "print a shell completion script");
  c.completion->add_option("SHELL", o.shell, "bash or zsh")
      ->required()
      ->check(CLI::IsMember({"bash", "zsh"}));
  c.completion->footer(
      "bash: source <(eph completion bash)   zsh: eph completion zsh > \"${fpath[1]}/_eph\"");

  // One line, like every other error of eph's, instead of CLI11's two.
  app.failure_message([](const CLI::App*, const CLI::Error& e) {
    return absl::StrCat("eph: ", e.what(), " (see eph --help)\n");
  });
  return c;
}

// Parses the command line; an exit code when it was wrong (or asked for help), else nothing.
std::optional<int> Parse(CLI::App& app, int argc, char** argv) {
  if (std::optional<std::string> unknown = UnknownCommand(argc, argv, app)) {
    std::fprintf(stderr, "eph: unknown command \"%s\"; the commands are %s (see eph --help)\n",
                 unknown->c_str(), CommandNames(app).c_str());
    return kUsage;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (dynamic_cast<const CLI::RequiredError*>(&e) != nullptr && app.get_subcommands().empty()) {
      std::fprintf(stderr, "eph: a command is required: %s (see eph --help)\n",
                   CommandNames(app).c_str());
      return kUsage;
    }
    const int rc = app.exit(e);
    return rc == 0 ? kOk : kUsage;
  }
  return std::nullopt;
}

// Prints a JSON answer as it is (-o json) or through `table`.
int Print(const json& j, bool as_json, const std::function<void(const json&)>& table) {
  if (as_json) {
    std::cout << j.dump(2) << "\n";
  } else {
    table(j);
  }
  return kOk;
}

int ListCommand(client::ApiClient& api, const Options& o, bool as_json) {
  auto j = ParseJson(api.Get(o.all ? "/api/v1/environments?all=true" : "/api/v1/environments"));
  if (!j.ok()) return Fail(j.status());
  return Print(*j, as_json, [](const json& answer) {
    std::vector<std::vector<std::string>> rows = {{"NAME", "PROJECT", "PR", "STATE", "TTL", "URL"}};
    for (const auto& env : answer.value("items", json::array())) {
      const std::string pr_text = Str(env, "pr");
      rows.push_back({Str(env, "name"), Str(env, "project"), pr_text == "0" ? "-" : "#" + pr_text,
                      Str(env, "state"), Until(Str(env, "expires_at")), Str(env, "url")});
    }
    if (rows.size() == 1) {
      std::cout << "No environments.\n";
      return;
    }
    PrintTable(rows);
  });
}

int UpCommand(client::ApiClient& api, const Options& o, bool as_json) {
  absl::Duration wait_timeout, wait_interval;
  if (o.wait) {
    auto t = PositiveDuration("--timeout", o.timeout);
    if (!t.ok()) return Fail(t.status());
    auto i = PositiveDuration("--interval", o.interval);
    if (!i.ok()) return Fail(i.status());
    wait_timeout = *t;
    wait_interval = *i;
  }
  const json request = {{"project", o.repo}, {"pr", o.pr}};
  auto created = ParseJson(api.Post("/api/v1/environments", request.dump()));
  if (!created.ok()) return Fail(created.status());
  const std::string created_name = Str(*created, "name");
  const std::string pr_text = absl::StrCat(o.repo, "#", o.pr);
  if (!o.wait) {
    return Print(*created, as_json, [&](const json& env) {
      std::printf("%s: %s (%s)\n", created_name.c_str(), Str(env, "state").c_str(),
                  pr_text.c_str());
      std::printf("url: %s\n", Str(env, "url").c_str());
    });
  }
  if (!as_json) {
    std::printf("Creating %s for %s\n", created_name.c_str(), pr_text.c_str());
    std::fflush(stdout);
  }
  return WaitUntilReady(api, created_name, wait_interval, wait_timeout, as_json);
}

int OpenCommand(const json& env, const std::string& name, bool as_json) {
  const std::string url = Str(env, "url");
  if (url.empty()) return Fail(absl::FailedPreconditionError(name + " has no URL yet"));
  if (as_json) {
    std::cout << json{{"name", name}, {"url", url}}.dump(2) << "\n";
    return kOk;
  }
  std::cout << url << "\n";
  if (isatty(STDOUT_FILENO) && Env("EPH_NO_BROWSER").empty()) {
    const std::string cmd = "xdg-open '" + url + "' >/dev/null 2>&1 &";
    if (std::system(cmd.c_str()) != 0) { /* printing the URL is enough */
    }
  }
  return kOk;
}

int ExtendCommand(client::ApiClient& api, const std::string& path, const Options& o,
                  bool as_json) {
  auto d = PositiveDuration("--by", o.by);
  if (!d.ok()) return Fail(d.status());
  const json request = {{"by", o.by}};
  auto j = ParseJson(api.Post(path + "/extend", request.dump()));
  if (!j.ok()) return Fail(j.status());
  return Print(*j, as_json, [&](const json& env) {
    const std::string expires = Str(env, "expires_at");
    std::printf("%s now expires at %s (in %s)\n", o.name.c_str(), expires.c_str(),
                Until(expires).c_str());
  });
}

int LogsCommand(client::ApiClient& api, const std::string& path, const Options& o) {
  std::string query = "?follow=" + std::string(o.follow ? "true" : "false");
  if (!o.component.empty()) query += "&component=" + client::EscapePathSegment(o.component);
  absl::Status s = api.Stream(path + "/logs" + query, [](std::string_view chunk) {
    const bool ok = std::fwrite(chunk.data(), 1, chunk.size(), stdout) == chunk.size();
    std::fflush(stdout);
    return ok;
  });
  return s.ok() ? kOk : Fail(s);
}

// The commands that talk to ephd.
int RunApiCommand(const Commands& c, const Options& o, bool as_json) {
  const std::string token = Env("EPH_TOKEN");
  if (token.empty()) {
    std::fprintf(stderr,
                 "eph: no API token: set EPH_TOKEN (an admin creates one with `ephd token create "
                 "--name NAME --scope write`)\n");
    return kAuth;
  }
  client::ApiClient api({.server = o.server, .token = token});
  if (c.list->parsed()) return ListCommand(api, o, as_json);
  if (c.up->parsed()) return UpCommand(api, o, as_json);

  const std::string path = "/api/v1/environments/" + client::EscapePathSegment(o.name);
  if (c.status->parsed() || c.open->parsed()) {
    auto j = ParseJson(api.Get(path));
    if (!j.ok()) return Fail(j.status());
    if (c.open->parsed()) return OpenCommand(*j, o.name, as_json);
    return Print(*j, as_json, PrintEnvironment);
  }
  if (c.down->parsed()) {
    auto j = ParseJson(api.Delete(path));
    if (!j.ok()) return Fail(j.status());
    return Print(*j, as_json,
                 [&](const json& env) { std::cout << o.name << ": " << Str(env, "state") << "\n"; });
  }
  if (c.extend->parsed()) return ExtendCommand(api, path, o, as_json);
  if (c.logs->parsed()) return LogsCommand(api, path, o);
  return kUsage;
}

}  // namespace

int Run(int argc, char** argv) {
  CLI::App app{"eph: preview environments for pull requests"};
  Options o;
  const Commands c = AddCommands(app, o);
  if (std::optional<int> rc = Parse(app, argc, argv)) return *rc;
  const bool as_json = o.output == "json";
  if (c.validate->parsed()) return ValidateCommand(o.file, as_json);
  if (c.completion->parsed()) {
    std::cout << CompletionScript(o.shell);
    return kOk;
  }
  return RunApiCommand(c, o, as_json);
}

}  // namespace eph::cli
