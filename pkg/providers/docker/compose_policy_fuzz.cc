// libFuzzer target for the preview policy and its position lookup: both read text a pull request
// controls (the compose file, through yaml-cpp, to place diagnostics; the project JSON that
// eph-compose makes of it). The input is used as both: as the compose file's text, and, when it
// parses as JSON, as the project. Any input must give a model or diagnostics, never a crash or a
// hang; a diagnostic's position lies inside the file; an accepted model keeps its promises
// (StartOrder lists each service once, after its dependencies). Built as a real fuzzer with
// -DEPH_FUZZ=ON (clang); in every build its seed corpus (testdata/compose-policy-fuzz-corpus)
// runs as an ordinary test.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <string>

#include "pkg/providers/docker/compose_policy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace docker = eph::providers::docker;
  const std::string input(reinterpret_cast<const char*>(data), size);
  const std::vector<docker::ComposeText> sources = {{"fuzz.yml", input}};
  nlohmann::json project = nlohmann::json::parse(input, nullptr, false);
  if (project.is_discarded()) {
    // Not JSON: a fixed project whose refusals are looked up in the input as YAML.
    project = {{"services", {{"web", {{"image", "x"}, {"privileged", true}}}}}};
  }
  std::vector<eph::config::Diagnostic> diagnostics;
  std::optional<docker::ComposeFile> file =
      docker::MapComposeProject(project, sources, diagnostics);
  diagnostics.push_back(docker::PlaceLoadError(
      {{"message", "m"}, {"path", "services.web.ports.0"}, {"line", 3}}, sources));
  for (const eph::config::Diagnostic& d : diagnostics) {
    if (d.line < 0 || d.column < 0 || d.message.empty()) std::abort();
  }
  if (!file) return 0;
  if (diagnostics.size() != 1) std::abort();  // only the load error added above
  std::map<std::string, size_t> position;
  const auto order = file->StartOrder();
  if (order.size() != file->services.size()) std::abort();
  for (size_t i = 0; i < order.size(); ++i) {
    if (!position.emplace(order[i]->name, i).second) std::abort();
  }
  return 0;
}
