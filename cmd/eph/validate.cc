#include "cmd/eph/validate.h"

#include <iostream>
#include <nlohmann/json.hpp>

#include "cmd/eph/commands.h"
#include "pkg/config/config.h"

namespace eph::cli {

int ValidateCommand(const std::string& file, bool as_json) {
  const config::ValidationResult result = config::ValidateFile(file);
  if (as_json) {
    nlohmann::json out = {{"file", file}, {"valid", result.ok()}};
    nlohmann::json diags = nlohmann::json::array();
    for (const auto& d : result.diagnostics) {
      diags.push_back({{"file", d.file}, {"line", d.line}, {"column", d.column},
                       {"message", d.message}});
    }
    out["errors"] = diags;
    std::cout << out.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    return result.ok() ? kOk : kInvalidConfig;
  }
  if (!result.ok()) {
    std::cerr << config::FormatDiagnostics(result.diagnostics);
    if (!result.diagnostics.empty() &&
        config::FormatDiagnostics(result.diagnostics).back() != '\n') {
      std::cerr << "\n";
    }
    return kInvalidConfig;
  }
  std::cout << config::SummarizeConfig(*result.config, file) << "\n";
  return kOk;
}

}  // namespace eph::cli
