// `eph validate [FILE]`: checks an eph.yaml offline with the same parser ephd uses.
#pragma once

#include <string>

namespace eph::cli {

// Prints file:line:col diagnostics (or JSON) and returns kInvalidConfig, or prints a one-line
// summary and returns kOk.
int ValidateCommand(const std::string& file, bool as_json);

}  // namespace eph::cli
