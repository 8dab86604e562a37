// libFuzzer target for ParseComposeFile: the compose file comes from a pull request, so any text
// must give a ComposeFile or InvalidArgument, never a crash, a hang or another code. An accepted
// file also keeps the parser's promises: every service has an image, StartOrder() lists each
// service once and after everything it depends on, mounts name declared volumes, and every
// published port is a real port. Built as a real fuzzer with -DEPH_FUZZ=ON (clang); in every
// build its seed corpus (testdata/compose-fuzz-corpus) runs as an ordinary test.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <string_view>

#include "pkg/providers/docker/compose_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using eph::providers::docker::ComposeFile;
  using eph::providers::docker::ComposeService;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<ComposeFile> file = eph::providers::docker::ParseComposeFile(input, "fuzz.yml");
  if (!file.ok()) {
    if (!absl::IsInvalidArgument(file.status())) std::abort();
    return 0;
  }
  if (file->services.empty()) std::abort();
  std::map<std::string, size_t> position;
  const std::vector<const ComposeService*> order = file->StartOrder();
  if (order.size() != file->services.size()) std::abort();
  for (size_t i = 0; i < order.size(); ++i) {
    if (!position.emplace(order[i]->name, i).second) std::abort();
  }
  for (const ComposeService& s : file->services) {
    if (s.image.empty()) std::abort();
    for (const std::string& d : s.depends_on) {
      if (position.count(d) == 0 || position[d] >= position[s.name]) std::abort();
    }
    for (const auto& m : s.volumes) {
      if (std::find(file->volumes.begin(), file->volumes.end(), m.volume) == file->volumes.end()) {
        std::abort();
      }
    }
    for (const auto& p : s.ports) {
      if (p.container_port < 1 || p.container_port > 65535 || p.host_port < 0 ||
          p.host_port > 65535) {
        std::abort();
      }
    }
  }
  return 0;
}
