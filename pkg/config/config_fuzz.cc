// libFuzzer target for the eph.yaml parser: any bytes in, never a crash, hang or broken
// invariant out. Built as a real fuzzer with -DEPH_FUZZ=ON (clang), and in every build linked
// with fuzz_corpus_main.cc to replay the seed corpus as an ordinary test. To fuzz (clang):
//   cmake -S . -B /tmp/fuzzbuild -G Ninja -DCMAKE_CXX_COMPILER=clang++
//         -DCMAKE_C_COMPILER=clang -DEPH_FUZZ=ON && ninja -C /tmp/fuzzbuild config_fuzz
//   mkdir -p /tmp/corpus && /tmp/fuzzbuild/pkg/config/config_fuzz /tmp/corpus
//         test/config/fuzz-corpus -dict=pkg/config/config_fuzz.dict -max_len=8192 -timeout=10
// and copy inputs worth keeping into test/config/fuzz-corpus.
//
// Invariants checked (a violation aborts, which the fuzzer reports as a crash):
//   - a config is returned exactly when there are no diagnostics;
//   - every diagnostic has a message and a position inside the file (1-based);
//   - diagnostics are sorted by position;
//   - a returned config satisfies the documented guarantees (non-empty name, positive TTL,
//     something to deploy, seed scripts present for the seed strategy, normalised paths).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "pkg/config/config.h"
#include "pkg/config/repo_path.h"

namespace {

void Check(bool condition) {
  if (!condition) std::abort();
}

bool IsNormalized(const std::string& path) {
  absl::StatusOr<std::string> normalized = eph::config::NormalizeRepoPath(path);
  return normalized.ok() && *normalized == path;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  eph::config::ValidationResult result = eph::config::ParseConfig(text, "fuzz.yaml");

  Check(result.ok() == result.diagnostics.empty());
  int lines = 1;
  for (char c : text) lines += c == '\n' || c == '\r';
  for (size_t i = 0; i < result.diagnostics.size(); ++i) {
    const eph::config::Diagnostic& d = result.diagnostics[i];
    Check(!d.message.empty());
    Check(d.line >= 1 && d.line <= lines && d.column >= 1);
    Check(d.column <= static_cast<int>(size) + 1);
    if (i > 0) {
      const eph::config::Diagnostic& prev = result.diagnostics[i - 1];
      Check(prev.line < d.line || (prev.line == d.line && prev.column <= d.column));
    }
    Check(!eph::config::FormatDiagnostic(d).empty());
  }
  if (result.config) {
    const eph::config::ProjectConfig& config = *result.config;
    Check(!config.name.empty());
    Check(config.environment.ttl > absl::ZeroDuration());
    Check(config.kubernetes.has_value() || config.docker.has_value());
    if (config.kubernetes) {
      for (const std::string& path : config.kubernetes->manifests) Check(IsNormalized(path));
      for (const auto& release : config.kubernetes->helm) {
        Check(IsNormalized(release.chart));
        Check(!release.release_name.empty());
      }
    }
    for (const auto& instance : config.database.instances) {
      if (instance.strategy == eph::config::DatabaseTemplateStrategy::kSeed) {
        Check(!instance.seed_scripts.empty());
      }
      for (const std::string& script : instance.seed_scripts) Check(IsNormalized(script));
      Check(instance.seed_timeout > absl::ZeroDuration());
      if (!instance.sanitize_script.empty()) {
        Check(IsNormalized(instance.sanitize_script));
        Check(instance.strategy == eph::config::DatabaseTemplateStrategy::kClone);
        Check(!instance.seed_scripts.empty());
      }
    }
    Check(!eph::config::SummarizeConfig(config, "fuzz.yaml").empty());
  }
  return 0;
}
