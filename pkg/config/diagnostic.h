// Diagnostics: what `eph validate` prints and what a broken eph.yaml records on an environment.
//
// A Diagnostic names a file, a 1-based line and column and says what was expected, so that a
// user can jump straight to the problem. Columns count Unicode code points (not bytes), which is
// what editors show. Line 0 means the problem has no position (e.g. the file cannot be read).
//
// Rendering follows the compiler convention `file:line:col: error: message` so that editors and
// CI annotators pick the locations up without configuration.
//
// Thread-safety: plain values and pure functions; safe to use from any thread.
#ifndef EPH_PKG_CONFIG_DIAGNOSTIC_H_
#define EPH_PKG_CONFIG_DIAGNOSTIC_H_

#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "pkg/config/source_text.h"

namespace eph::config {

struct Diagnostic {
  std::string file;
  int line = 0;    // 1-based; 0: the whole file
  int column = 0;  // 1-based, in code points; 0 when line is 0
  std::string message;

  friend bool operator==(const Diagnostic&, const Diagnostic&) = default;
};

// "eph.yaml:7:8: error: unknown key `tll` in `environment`; did you mean `ttl`?"
// Without a position: "eph.yaml: error: cannot read file: No such file or directory".
std::string FormatDiagnostic(const Diagnostic& diagnostic);

// One formatted diagnostic per line, each ending in '\n'.
std::string FormatDiagnostics(const std::vector<Diagnostic>& diagnostics);

// Orders by file, line, column (stable for equal positions) and drops exact duplicates, which
// arise when a YAML alias makes the same node reachable from several places.
void SortAndDeduplicate(std::vector<Diagnostic>& diagnostics);

// Collects the diagnostics for one file while it is checked: converts positions through the
// file's SourceText, drops exact duplicates (a YAML alias makes one node reachable from many
// places) and stops after kMaxDiagnostics, so a pathological file yields a readable report
// instead of megabytes. Not thread-safe; one collector per check.
class DiagnosticCollector {
 public:
  static constexpr size_t kMaxDiagnostics = 100;

  // `source` must outlive the collector.
  DiagnosticCollector(std::string file, const SourceText& source);

  void AddAtOffset(size_t offset, std::string message);
  void AddAtMark(int line0, int byte_column0, std::string message);
  void AddWholeFile(std::string message);

  // True once the limit is reached; callers stop looking for more problems.
  bool full() const { return full_; }
  bool empty() const { return diagnostics_.empty(); }

  // The diagnostics sorted by position.
  std::vector<Diagnostic> Take() &&;

 private:
  void Add(int line, int column, std::string message);

  std::string file_;
  const SourceText& source_;
  std::vector<Diagnostic> diagnostics_;
  std::set<std::tuple<int, int, std::string>> seen_;
  bool full_ = false;
};

}  // namespace eph::config

#endif  // EPH_PKG_CONFIG_DIAGNOSTIC_H_
