// Loads a pull request's compose project as Compose itself does, then applies Eph's preview
// policy to it.
//
// Loading is compose-go's (the Compose specification's reference loader), run as the
// eph-compose program (tools/compose): interpolation from Eph's variables and the repository's
// `.env` only (never ephd's environment), merge keys, `extends`, `env_file`, profiles, several
// documents per file. Its normalised JSON is then checked against what a preview on a shared
// Docker host may do (docs/provider-docker.md has the table) and mapped into ComposeFile. Every
// refusal is collected, not just the first, each at the file:line:column where the user wrote
// the key, found again in the original files with yaml-cpp's marks.
//
// Thread-safety: pure functions (LoadComposeProject runs one child process per call).
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "pkg/providers/docker/compose_file.h"
#include "pkg/providers/docker/compose_policy.h"
#include "pkg/providers/provider.h"

namespace eph::providers::docker {

struct ComposeProjectSource {
  std::string project_dir;         // the repository checkout at the head SHA
  std::vector<std::string> files;  // relative to project_dir, in override order
  std::vector<std::string> profiles;
  std::map<std::string, std::string> variables;  // Eph's, for interpolation
};

struct ComposeLoaderOptions {
  std::string compose_path;  // the eph-compose binary; empty: FindComposeTool()
  std::chrono::milliseconds timeout{30'000};
};

// eph-compose in the newest complete build of tools/compose/build
// (${EPH_CACHE_DIR:-$HOME/.cache/eph}/compose-*/bin), else on PATH; "" when neither has it.
// The cache comes first: it is the build of this checkout's pin, PATH may hold an older one.
std::string FindComposeTool();

// Loads and checks the project. InvalidArgument carrying every diagnostic (one per line,
// "file:line:col: error: message") when compose-go or the policy refuses it;
// FailedPrecondition when eph-compose cannot be found or run.
[[nodiscard]] absl::StatusOr<ComposeFile> LoadComposeProject(const ComposeProjectSource& source,
                                                             const ComposeLoaderOptions& options);

// The same for one Apply: the repository is request.source_dir, or request.sources written to a
// temporary directory (removed again) when the request carries the files themselves.
[[nodiscard]] absl::StatusOr<ComposeFile> LoadComposeProject(const ApplyRequest& request,
                                                             ComposeProjectSource source,
                                                             const ComposeLoaderOptions& options);

}  // namespace eph::providers::docker
