// Eph's preview policy on a normalised compose project (eph-compose's JSON, compose_loader.h):
// what a preview on a shared Docker host may run, mapped into ComposeFile, and every refusal at
// the file:line:column where the user wrote the key. docs/provider-docker.md has the table.
//
// Positions are found again in the original compose files with yaml-cpp's marks: the deepest
// match over all files and documents; a key that came from a merge key is placed at the `<<`
// that merged it, one from an extended file or a default at the deepest key that is written
// (the service's name).
//
// Thread-safety: pure functions.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "nlohmann/json.hpp"
#include "pkg/config/diagnostic.h"
#include "pkg/providers/docker/compose_file.h"

namespace eph::providers::docker {

struct ComposeText {
  std::string file;  // as the user names it (relative to the repository)
  std::string text;
};

// Maps `project` (eph-compose's output) into the model, appending a diagnostic to `diagnostics`
// for every key the policy refuses; the model only when there was none.
[[nodiscard]] std::optional<ComposeFile> MapComposeProject(
    const nlohmann::json& project, const std::vector<ComposeText>& sources,
    std::vector<config::Diagnostic>& diagnostics);

// eph-compose's {"message", "path"?, "line"?, "column"?} as a diagnostic in `sources`.
config::Diagnostic PlaceLoadError(const nlohmann::json& error,
                                  const std::vector<ComposeText>& sources);

}  // namespace eph::providers::docker
