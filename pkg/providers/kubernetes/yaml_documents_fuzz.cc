// libFuzzer target for ParseManifestDocuments on the kind of text it is given in production.
//
// The renderer only ever hands it the output of `kustomize build` (manifest_renderer.h): never
// the YAML a pull request wrote, because yaml-cpp 0.7 has malformed inputs of about a hundred
// bytes on which it allocates until memory runs out. So the fuzz input is read as JSON (a YAML
// subset, as kustomize's output is well-formed YAML), written out as manifest documents and
// parsed back: any JSON in, never a crash, and objects survive the round trip unchanged (numbers,
// booleans, nulls, strings that look like numbers or booleans, nesting). Built as a real fuzzer
// with -DEPH_FUZZ=ON (clang); in every build its seed corpus (testdata/yaml-fuzz-corpus) runs as an
// ordinary test.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "pkg/providers/kubernetes/yaml_documents.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using eph::providers::kubernetes::FormatManifestDocuments;
  using eph::providers::kubernetes::ParseManifestDocuments;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  nlohmann::json doc = nlohmann::json::parse(input, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return 0;
  std::vector<nlohmann::json> objects;
  if (doc.is_object()) objects.push_back(doc);
  if (doc.is_array()) {
    for (const nlohmann::json& o : doc) {
      if (o.is_object()) objects.push_back(o);
    }
  }
  // Strings that are not valid UTF-8 are replaced when written; kustomize never emits them.
  try {
    for (const nlohmann::json& o : objects) {
      (void)o.dump(-1, ' ', false, nlohmann::json::error_handler_t::strict);
    }
  } catch (const nlohmann::json::exception&) {
    return 0;
  }
  // A `kind: ...List` object with items is expanded by the parser; compare item by item then.
  std::vector<nlohmann::json> expected;
  for (const nlohmann::json& o : objects) {
    const auto kind = o.find("kind");
    const auto items = o.find("items");
    if (kind != o.end() && kind->is_string() && kind->get<std::string>().ends_with("List") &&
        items != o.end() && items->is_array()) {
      for (const nlohmann::json& item : *items) {
        if (!item.is_object()) return 0;  // refused by the parser, as it should be
        expected.push_back(item);
      }
      continue;
    }
    expected.push_back(o);
  }
  absl::StatusOr<std::vector<nlohmann::json>> parsed =
      ParseManifestDocuments(FormatManifestDocuments(objects), "fuzz", /*max_nodes=*/1'000'000);
  if (!parsed.ok()) return 0;  // e.g. nesting deeper than the parser allows
  if (*parsed != expected) std::abort();
  return 0;
}
