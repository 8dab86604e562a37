// `eph completion bash|zsh`: shell completion scripts for eph's commands and flags. Environment
// names complete from `eph -o json list` at the time of completion (silently nothing when ephd
// is unreachable or EPH_TOKEN is unset).
#pragma once

#include <string>

namespace eph::cli {

// The script for `shell` ("bash" or "zsh"); empty for anything else.
std::string CompletionScript(const std::string& shell);

}  // namespace eph::cli
