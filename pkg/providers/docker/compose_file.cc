#include "pkg/providers/docker/compose_file.h"

#include <functional>
#include <set>

namespace eph::providers::docker {

const ComposeService* ComposeFile::Find(std::string_view service) const {
  for (const ComposeService& s : services) {
    if (s.name == service) return &s;
  }
  return nullptr;
}

std::vector<const ComposeService*> ComposeFile::StartOrder() const {
  std::vector<const ComposeService*> out;
  std::set<std::string> placed;
  std::function<void(const ComposeService&)> place = [&](const ComposeService& s) {
    if (!placed.insert(s.name).second) return;
    for (const std::string& d : s.depends_on) {
      if (const ComposeService* dep = Find(d); dep != nullptr) place(*dep);
    }
    out.push_back(&s);
  };
  for (const ComposeService& s : services) place(s);
  return out;
}

}  // namespace eph::providers::docker
