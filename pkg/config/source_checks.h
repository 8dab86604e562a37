// Checks on the raw text of an eph.yaml that run before yaml-cpp sees it.
//
// yaml-cpp accepts some inputs badly (a tab in indentation becomes "illegal map value" one line
// later), parses anything it is given however large, and recurses once per nesting level. These
// checks turn such inputs into clear, positioned diagnostics and guarantee the parser only ever
// sees text that is:
//   - at most kMaxConfigBytes long (a real eph.yaml is a few hundred bytes);
//   - valid UTF-8 without control characters YAML forbids (binary files stop here);
//   - indented with spaces only;
//   - nested at most kMaxNestingDepth levels deep, counting both flow brackets and block
//     indentation. The estimate errs on the side of counting too much; yaml-cpp's own guard
//     (it throws at a few hundred levels) remains as a second line of defence.
//
// Thread-safety: pure function of its inputs.
#ifndef EPH_PKG_CONFIG_SOURCE_CHECKS_H_
#define EPH_PKG_CONFIG_SOURCE_CHECKS_H_

#include <cstddef>

#include "pkg/config/diagnostic.h"
#include "pkg/config/source_text.h"

namespace eph::config {

inline constexpr size_t kMaxConfigBytes = size_t{1} << 20;  // 1 MiB
inline constexpr int kMaxNestingDepth = 64;

// Adds a diagnostic for each problem found. Returns true when the text is safe to parse.
bool CheckSourceText(const SourceText& source, DiagnosticCollector& diagnostics);

}  // namespace eph::config

#endif  // EPH_PKG_CONFIG_SOURCE_CHECKS_H_
