// ParseManifestDocuments: the Kubernetes objects in a multi-document YAML (or JSON) text, as JSON,
// the way kubectl reads them.
//
// The renderer only gives it the output of `kustomize build` (manifest_renderer.h), never text a
// pull request wrote: yaml-cpp 0.7, underneath, has malformed inputs of about a hundred bytes on
// which it allocates until memory runs out.
//
// Scalars are typed as sigs.k8s.io/yaml (go-yaml v2, YAML 1.1) types them, so a manifest means
// the same to Eph as to `kubectl apply`: quoted scalars are strings; plain ones are null (~, null,
// empty), booleans (true/false, yes/no, on/off, y/n in their usual capitalisations), integers
// (decimal, 0x hex, 0 octal, 0b binary, with '_' separators), floats, and otherwise strings.
// Merge keys (`<<: *anchor`) are honoured. Empty documents are skipped; `kind: List` (and
// `*List` kinds with `items`) are expanded into their items.
//
// Errors are InvalidArgument naming `source` with line and column, nothing throws, and a document
// whose aliases expand past `max_nodes` is refused instead of exhausting memory.
//
// Thread-safety: a pure function.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace eph::providers::kubernetes {

[[nodiscard]] absl::StatusOr<std::vector<nlohmann::json>> ParseManifestDocuments(
    std::string_view text, const std::string& source, size_t max_nodes = 8'000'000);

// One JSON document per object, separated by "---" lines: what a temporary kustomization or a
// benchmark reads back. JSON is YAML, so kustomize and kubectl take it as it is.
std::string FormatManifestDocuments(const std::vector<nlohmann::json>& objects);

}  // namespace eph::providers::kubernetes
