#include "pkg/config/diagnostic.h"

#include <algorithm>
#include <tuple>

#include "pkg/config/text.h"

namespace eph::config {

using text::Append;
using text::Cat;
using text::Escape;
using text::Join;

std::string FormatDiagnostic(const Diagnostic& diagnostic) {
  if (diagnostic.line <= 0) {
    return Cat(diagnostic.file, ": error: ", diagnostic.message);
  }
  return Cat(diagnostic.file, ":", diagnostic.line, ":", diagnostic.column,
             ": error: ", diagnostic.message);
}

std::string FormatDiagnostics(const std::vector<Diagnostic>& diagnostics) {
  std::string out;
  for (const Diagnostic& diagnostic : diagnostics) {
    Append(out, FormatDiagnostic(diagnostic), "\n");
  }
  return out;
}

void SortAndDeduplicate(std::vector<Diagnostic>& diagnostics) {
  std::stable_sort(diagnostics.begin(), diagnostics.end(),
                   [](const Diagnostic& a, const Diagnostic& b) {
                     return std::tie(a.file, a.line, a.column) < std::tie(b.file, b.line, b.column);
                   });
  // Duplicates share a position, so after the sort they sit within one run of equal positions;
  // compare against the whole run, not only the neighbour.
  std::vector<Diagnostic> unique;
  unique.reserve(diagnostics.size());
  size_t run_start = 0;
  for (Diagnostic& diagnostic : diagnostics) {
    if (!unique.empty()) {
      const Diagnostic& last = unique.back();
      if (std::tie(last.file, last.line, last.column) !=
          std::tie(diagnostic.file, diagnostic.line, diagnostic.column)) {
        run_start = unique.size();
      }
    }
    bool seen = std::any_of(unique.begin() + static_cast<std::ptrdiff_t>(run_start), unique.end(),
                            [&](const Diagnostic& d) { return d == diagnostic; });
    if (!seen) unique.push_back(std::move(diagnostic));
  }
  diagnostics = std::move(unique);
}

DiagnosticCollector::DiagnosticCollector(std::string file, const SourceText& source)
    : file_(std::move(file)), source_(source) {}

void DiagnosticCollector::AddAtOffset(size_t offset, std::string message) {
  Position position = source_.FromOffset(offset);
  Add(position.line, position.column, std::move(message));
}

void DiagnosticCollector::AddAtMark(int line0, int byte_column0, std::string message) {
  Position position = source_.FromMark(line0, byte_column0);
  Add(position.line, position.column, std::move(message));
}

void DiagnosticCollector::AddWholeFile(std::string message) { Add(0, 0, std::move(message)); }

void DiagnosticCollector::Add(int line, int column, std::string message) {
  if (full_) return;
  if (!seen_.emplace(line, column, message).second) return;
  if (diagnostics_.size() == kMaxDiagnostics) {
    diagnostics_.push_back(
        Diagnostic{file_, line, column, Cat("too many errors; stopped after ", kMaxDiagnostics)});
    full_ = true;
    return;
  }
  diagnostics_.push_back(Diagnostic{file_, line, column, std::move(message)});
}

std::vector<Diagnostic> DiagnosticCollector::Take() && {
  SortAndDeduplicate(diagnostics_);
  return std::move(diagnostics_);
}

}  // namespace eph::config
