// Rendering: turns a validated eph.yaml into what a provider's Apply gets: the provider to use,
// its section of the config as JSON, and the image tags with their templates expanded.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "pkg/config/config.h"
#include "pkg/providers/provider.h"

namespace eph::controller {

struct RenderInputs {
  std::string repo;  // "owner/repo"
  int64_t pr_number = 0;
  std::string sha;
  std::string branch;
};

struct RenderedSpec {
  std::string provider;     // "kubernetes" or "docker"
  std::string config_json;  // {"kubernetes": {...}, "database": {...}} (or "docker")
  std::vector<providers::ImageTag> images;
  // eph.yaml's `environment.variables` with their templates expanded. Plain values: they may be
  // shown (unlike secrets, which are not rendered here).
  std::map<std::string, std::string> variables;
};

// The provider eph.yaml asks for: "kubernetes" if it has that section, else "docker".
std::string ProviderFor(const config::ProjectConfig& config);

// InvalidArgument (terminal: the user's eph.yaml must change) when a template cannot be
// expanded, e.g. `newTag: "pr-{pr_number}"` or a variable's `"pr-{pr_number}"` on an
// environment without a pull request.
absl::StatusOr<RenderedSpec> RenderSpec(const config::ProjectConfig& config,
                                        const RenderInputs& inputs);

}  // namespace eph::controller
