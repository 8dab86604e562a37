// ManifestRenderer: turns the `kubernetes:` section of eph.yaml and a checkout of the repository
// into the list of Kubernetes objects to apply, with the real tools.
//
//  - each `manifests` path (relative to the checkout):
//      a directory with kustomization.yaml / kustomization.yml / Kustomization
//                                    -> `kustomize build DIR` (the pinned kustomize binary)
//      a directory with Chart.yaml   -> `helm template NAME DIR --namespace NS`
//      another directory             -> its *.yaml, *.yml and *.json files, in name order
//                                       (not recursive, as `kubectl apply -f DIR`)
//      a file                        -> read as it is (multi-document YAML or JSON)
//  - each `helm` release -> `helm template RELEASE CHART --namespace NS -f VALUES... --set K=V...`
//  - then one last `kustomize build` over everything: a temporary kustomization whose resources
//    are the rendered texts and whose `images:` list holds the image overrides (tags already
//    expanded). Its output is the result. So the image tags are real kustomize image overrides,
//    and the YAML a pull request wrote (plain files, Helm templates) is parsed by kustomize in a
//    child process, never by Eph's own YAML reader.
//
// Safety (the checkout comes from a pull request): paths must stay inside the checkout, symlinks
// included; kustomizations are checked recursively before kustomize runs, so their resources,
// bases, components, patches and generator files must stay inside the checkout too, and remote
// (URL / git) resources are refused. The tools run without a shell (argv), in their own process
// group, with a time limit and an output-size limit (the whole render shares both), and their
// stderr goes into the error message.
//
// Errors: InvalidArgument for anything wrong with the repository's manifests (shown to the user,
// who must change them): unsafe or missing paths, a tool failing, a render over the size limit,
// invalid YAML. DeadlineExceeded when the render takes longer than the limit. FailedPrecondition
// when a tool Eph needs is not installed (an operator problem).
//
// Thread-safety: Render may be called from many threads at once; each call uses its own
// temporary directory.
#pragma once

#include <chrono>
#include <cstddef>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "pkg/providers/provider.h"

namespace eph::providers::kubernetes {

struct HelmReleaseSpec {
  std::string chart;                // path of the chart directory, relative to the checkout
  std::vector<std::string> values;  // values files, relative to the checkout, applied in order
  std::string release_name;         // empty: the chart directory's name
  std::map<std::string, std::string> set;
};

struct RenderRequest {
  std::string source_dir;  // the checkout
  std::vector<std::string> manifests;
  std::vector<HelmReleaseSpec> helm;
  std::vector<ImageTag> images;
  std::string namespace_name;  // helm's --namespace
};

// The `kubernetes` section of ApplyRequest::config_json (the whole document
// {"kubernetes": {...}, ...} or the section itself) as a RenderRequest without source_dir,
// images and namespace. InvalidArgument if it is malformed.
[[nodiscard]] absl::StatusOr<RenderRequest> ParseKubernetesSection(const std::string& config_json);

struct RendererOptions {
  std::string kustomize_path;                 // empty: FindTool("kustomize")
  std::string helm_path;                      // empty: FindTool("helm")
  std::chrono::milliseconds timeout{60'000};  // for the whole render
  size_t max_output_bytes = 20u << 20;        // for the whole render
  std::string temp_dir;                       // parent of temporary directories; empty: $TMPDIR
};

// `name` on PATH, else in the newest complete build of tools/k8s/build
// (${EPH_CACHE_DIR:-$HOME/.cache/eph}/k8s-*/bin). Empty when not found.
std::string FindTool(const std::string& name);

class ManifestRenderer {
 public:
  explicit ManifestRenderer(RendererOptions options);

  [[nodiscard]] absl::StatusOr<std::vector<nlohmann::json>> Render(
      const RenderRequest& request) const;

  const RendererOptions& options() const { return options_; }

 private:
  RendererOptions options_;
};

}  // namespace eph::providers::kubernetes
