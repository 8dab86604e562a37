// `ephd token`: API tokens managed in the state store, without a running ephd.
//
// Thread-safety: call from main's thread.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "cmd/ephd/settings.h"

namespace eph::daemon {

// `ephd token create|list|revoke`: manages API tokens directly in the state store (no running
// ephd needed). Adds the subcommands to `app`; RunTokenCommand runs the parsed one and returns
// the exit status, or -1 if no token command was given.
struct TokenCommand {
  CLI::App* token = nullptr;
  CLI::App* create = nullptr;
  CLI::App* list = nullptr;
  CLI::App* revoke = nullptr;
  std::string name;
  std::string scope = "read";
  std::string output = "table";
};
void AddTokenCommands(CLI::App& app, TokenCommand& command);
int RunTokenCommand(const TokenCommand& command, const DaemonConfig& config);


}  // namespace eph::daemon
