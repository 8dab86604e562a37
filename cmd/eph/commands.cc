#include "cmd/eph/commands.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "cmd/eph/validate.h"
#include "pkg/client/client.h"

namespace eph::cli {
namespace {

using nlohmann::json;

std::string Env(const char* name, const std::string& fallback = "") {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? v : fallback;
}

int Fail(const absl::Status& s) {
  std::fprintf(stderr, "eph: %s\n", std::string(s.message()).c_str());
  switch (s.code()) {
    case absl::StatusCode::kUnavailable: return kUnreachable;
    case absl::StatusCode::kUnauthenticated:
    case absl::StatusCode::kPermissionDenied: return kAuth;
    case absl::StatusCode::kNotFound: return kNotFound;
    case absl::StatusCode::kInvalidArgument: return kUsage;
    default: return kFailure;
  }
}

size_t TerminalWidth() {
  winsize ws{};
  if (isatty(STDOUT_FILENO) && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) {
    return ws.ws_col;
  }
  const std::string columns = Env("COLUMNS");
  return columns.empty() ? 120 : std::max(40, std::atoi(columns.c_str()));
}

// Prints rows as aligned columns; the last column is cut to fit the terminal.
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
    if (line.size() > width) line = line.substr(0, width - 1) + "~";
    std::cout << line << "\n";
  }
}

std::string Str(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return "";
  return it->is_string() ? it->get<std::string>() : it->dump();
}

void PrintEnvironment(const json& env) {
  const char* keys[] = {"name", "project", "pr", "state", "reason", "url", "created_at",
                        "updated_at", "expires_at"};
  for (const char* k : keys) {
    const std::string v = Str(env, k);
    if (!v.empty()) std::printf("%-11s %s\n", (std::string(k) + ":").c_str(), v.c_str());
  }
}

}  // namespace

int Run(int argc, char** argv) {
  CLI::App app{"eph: preview environments for pull requests"};
  app.require_subcommand(1);
  std::string server = Env("EPH_SERVER", "http://127.0.0.1:8080");
  std::string output = "table";
  app.add_option("--server", server, "ephd address (EPH_SERVER)");
  app.add_option("-o,--output", output, "table or json")->check(CLI::IsMember({"table", "json"}));

  auto* list = app.add_subcommand("list", "list environments");
  bool all = false;
  list->add_flag("--all", all, "include destroyed environments");

  std::string name;
  auto* status = app.add_subcommand("status", "show one environment");
  status->add_option("NAME", name)->required();

  auto* down = app.add_subcommand("down", "destroy an environment");
  down->add_option("NAME", name)->required();

  auto* open = app.add_subcommand("open", "print (and open) an environment's URL");
  open->add_option("NAME", name)->required();

  std::string file = "eph.yaml";
  auto* validate = app.add_subcommand("validate", "check an eph.yaml offline");
  validate->add_option("FILE", file, "path to eph.yaml (default ./eph.yaml)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? kOk : kUsage;
  }

  if (validate->parsed()) return ValidateCommand(file, output == "json");

  client::ApiClient api({.server = server, .token = Env("EPH_TOKEN")});
  const bool as_json = output == "json";

  if (list->parsed()) {
    auto body = api.Get(all ? "/api/v1/environments?all=true" : "/api/v1/environments");
    if (!body.ok()) return Fail(body.status());
    json j = json::parse(*body, nullptr, false);
    if (j.is_discarded()) return Fail(absl::InternalError("ephd sent a response that is not JSON"));
    if (as_json) {
      std::cout << j.dump(2) << "\n";
      return kOk;
    }
    std::vector<std::vector<std::string>> rows = {
        {"NAME", "PROJECT", "PR", "STATE", "EXPIRES", "URL"}};
    for (const auto& env : j.value("items", json::array())) {
      rows.push_back({Str(env, "name"), Str(env, "project"), Str(env, "pr"), Str(env, "state"),
                      Str(env, "expires_at"), Str(env, "url")});
    }
    if (rows.size() == 1) {
      std::cout << "No environments.\n";
      return kOk;
    }
    PrintTable(rows);
    return kOk;
  }

  const std::string path = "/api/v1/environments/" + client::EscapePathSegment(name);
  if (status->parsed() || open->parsed()) {
    auto body = api.Get(path);
    if (!body.ok()) return Fail(body.status());
    json j = json::parse(*body, nullptr, false);
    if (j.is_discarded()) return Fail(absl::InternalError("ephd sent a response that is not JSON"));
    if (open->parsed()) {
      const std::string url = Str(j, "url");
      if (url.empty()) return Fail(absl::FailedPreconditionError(name + " has no URL yet"));
      std::cout << url << "\n";
      if (isatty(STDOUT_FILENO) && Env("EPH_NO_BROWSER").empty()) {
        const std::string cmd = "xdg-open '" + url + "' >/dev/null 2>&1 &";
        if (std::system(cmd.c_str()) != 0) { /* printing the URL is enough */ }
      }
      return kOk;
    }
    if (as_json) {
      std::cout << j.dump(2) << "\n";
    } else {
      PrintEnvironment(j);
    }
    return kOk;
  }

  if (down->parsed()) {
    auto body = api.Delete(path);
    if (!body.ok()) return Fail(body.status());
    if (as_json) {
      std::cout << *body << "\n";
    } else {
      std::cout << name << ": destroying\n";
    }
    return kOk;
  }
  return kUsage;
}

}  // namespace eph::cli
