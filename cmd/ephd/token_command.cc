#include "cmd/ephd/token_command.h"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdio>

#include "absl/strings/str_cat.h"
#include "cmd/ephd/settings.h"
#include "pkg/api/tokens.h"
#include "pkg/base/clock.h"
#include "pkg/base/random.h"
#include "pkg/state/store.h"

namespace eph::daemon {

void AddTokenCommands(CLI::App& app, TokenCommand& command) {
  command.token = app.add_subcommand("token", "manage API tokens (in the state store)");
  command.token->require_subcommand(1);
  // --state, --config and the other settings may follow the subcommand.
  command.token->fallthrough();
  command.create = command.token->add_subcommand(
      "create", "create a token and print its secret (shown only this once)");
  command.create->add_option("--name", command.name, "a name for the token, e.g. who uses it")
      ->required();
  command.create->add_option("--scope", command.scope, "read (GET only) or write")
      ->check(CLI::IsMember({"read", "write"}));
  command.create->fallthrough();
  command.list = command.token->add_subcommand("list", "list tokens (never their secrets)");
  command.list->add_option("-o,--output", command.output, "table or json")
      ->check(CLI::IsMember({"table", "json"}));
  command.list->fallthrough();
  command.revoke = command.token->add_subcommand("revoke", "revoke a token by name");
  command.revoke->add_option("--name", command.name, "the token's name")->required();
  command.revoke->fallthrough();
}

int RunTokenCommand(const TokenCommand& command, const DaemonConfig& config) {
  if (command.token == nullptr || !command.token->parsed()) return -1;
  // Keep the store's own logging off stdout: `token create` prints the secret there.
  spdlog::set_default_logger(spdlog::stderr_color_mt("ephd-token"));
  spdlog::set_level(spdlog::level::warn);
  const std::string state_url = AbsoluteStateUrl(config.state);
  auto store = state::OpenStore(state_url);
  if (!store.ok()) {
    std::fprintf(stderr, "ephd: state store %s: %s\n", state::RedactStoreUrl(state_url).c_str(),
                 std::string(store.status().message()).c_str());
    return 1;
  }
  const TimePoint now = SystemClock::Instance().Now();
  if (command.create->parsed()) {
    state::ApiToken token;
    token.name = command.name;
    token.scope = command.scope == "write" ? state::TokenScope::kWrite : state::TokenScope::kRead;
    const std::string secret = api::GenerateTokenSecret(SecureRandom::Instance());
    token.hash = api::HashToken(secret);
    token.created_at = now;
    auto created = (*store)->CreateToken(token);
    if (!created.ok()) {
      std::fprintf(stderr, "ephd: token %s: %s\n", command.name.c_str(),
                   std::string(created.status().message()).c_str());
      return created.status().code() == absl::StatusCode::kAlreadyExists ? 2 : 1;
    }
    std::printf("Created %s token \"%s\". Its secret is shown only now; use it as EPH_TOKEN:\n",
                command.scope.c_str(), command.name.c_str());
    std::printf("%s\n", secret.c_str());
    return 0;
  }
  if (command.list->parsed()) {
    auto tokens = (*store)->ListTokens();
    if (!tokens.ok()) {
      std::fprintf(stderr, "ephd: %s\n", std::string(tokens.status().message()).c_str());
      return 1;
    }
    if (command.output == "json") {
      std::string out = "[";
      for (size_t i = 0; i < tokens->size(); ++i) {
        const auto& t = (*tokens)[i];
        out += absl::StrCat(i ? "," : "", "{\"name\":\"", t.name, "\",\"scope\":\"",
                            t.scope == state::TokenScope::kWrite ? "write" : "read",
                            "\",\"created_at\":\"", FormatRfc3339(t.created_at),
                            "\",\"revoked_at\":",
                            t.revoked_at ? "\"" + FormatRfc3339(*t.revoked_at) + "\"" : "null",
                            "}");
      }
      std::printf("%s]\n", out.c_str());
      return 0;
    }
    if (tokens->empty()) {
      std::printf("No tokens. Create one: ephd token create --name NAME --scope read|write\n");
      return 0;
    }
    size_t width = 4;
    for (const auto& t : *tokens) width = std::max(width, t.name.size());
    std::printf("%-*s  %-5s  %-24s  %s\n", static_cast<int>(width), "NAME", "SCOPE", "CREATED",
                "REVOKED");
    for (const auto& t : *tokens) {
      std::printf("%-*s  %-5s  %-24s  %s\n", static_cast<int>(width), t.name.c_str(),
                  t.scope == state::TokenScope::kWrite ? "write" : "read",
                  FormatRfc3339(t.created_at).c_str(),
                  t.revoked_at ? FormatRfc3339(*t.revoked_at).c_str() : "-");
    }
    return 0;
  }
  if (command.revoke->parsed()) {
    absl::Status s = (*store)->RevokeToken(command.name, now);
    if (!s.ok()) {
      std::fprintf(stderr, "ephd: token %s: %s\n", command.name.c_str(),
                   std::string(s.message()).c_str());
      return s.code() == absl::StatusCode::kNotFound ? 5 : 1;
    }
    std::printf("Revoked token \"%s\".\n", command.name.c_str());
    return 0;
  }
  return 2;
}

}  // namespace eph::daemon
