#include "pkg/base/metrics.h"

#include <fmt/format.h>

#include <algorithm>

namespace eph {

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {
  std::sort(bounds_.begin(), bounds_.end());
}

void Histogram::Observe(double v) {
  const size_t i = static_cast<size_t>(
      std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin());
  std::lock_guard<std::mutex> lock(mu_);
  ++counts_[i];
  sum_ += v;
  ++count_;
}

Histogram::Snapshot Histogram::Take() const {
  std::lock_guard<std::mutex> lock(mu_);
  Snapshot s;
  s.bounds = bounds_;
  int64_t running = 0;
  for (int64_t c : counts_) {
    running += c;
    s.cumulative.push_back(running);
  }
  s.sum = sum_;
  s.count = count_;
  return s;
}

Counter& MetricsRegistry::GetCounter(const std::string& name, const std::string& help,
                                     const std::string& labels) {
  std::lock_guard<std::mutex> lock(mu_);
  Family& f = families_[name];
  f.help = help;
  f.type = "counter";
  auto& slot = f.counters[labels];
  if (!slot) slot = std::make_unique<Counter>();
  return *slot;
}

Histogram& MetricsRegistry::GetHistogram(const std::string& name, const std::string& help,
                                         std::vector<double> bounds, const std::string& labels) {
  std::lock_guard<std::mutex> lock(mu_);
  Family& f = families_[name];
  f.help = help;
  f.type = "histogram";
  auto& slot = f.histograms[labels];
  if (!slot) slot = std::make_unique<Histogram>(std::move(bounds));
  return *slot;
}

void MetricsRegistry::AddGauge(const std::string& name, const std::string& help,
                               std::function<double()> read, const std::string& labels) {
  AddRead(name, help, "gauge", std::move(read), labels);
}

void MetricsRegistry::AddCounterFunc(const std::string& name, const std::string& help,
                                     std::function<double()> read, const std::string& labels) {
  AddRead(name, help, "counter", std::move(read), labels);
}

void MetricsRegistry::AddRead(const std::string& name, const std::string& help, const char* type,
                              std::function<double()> read, const std::string& labels) {
  std::lock_guard<std::mutex> lock(mu_);
  Family& f = families_[name];
  f.help = help;
  f.type = type;
  f.reads[labels] = std::move(read);
}

namespace {
std::string Braced(const std::string& labels, const std::string& extra = "") {
  if (labels.empty() && extra.empty()) return "";
  if (labels.empty()) return "{" + extra + "}";
  if (extra.empty()) return "{" + labels + "}";
  return "{" + labels + "," + extra + "}";
}
}  // namespace

std::string MetricsRegistry::RenderPrometheus() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::string out;
  for (const auto& [name, f] : families_) {
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, f.help, name, f.type);
    for (const auto& [labels, c] : f.counters) {
      out += fmt::format("{}{} {}\n", name, Braced(labels), c->Value());
    }
    for (const auto& [labels, read] : f.reads) {
      out += fmt::format("{}{} {}\n", name, Braced(labels), read());
    }
    for (const auto& [labels, h] : f.histograms) {
      const auto s = h->Take();
      for (size_t i = 0; i < s.bounds.size(); ++i) {
        out += fmt::format("{}_bucket{} {}\n", name,
                           Braced(labels, fmt::format("le=\"{}\"", s.bounds[i])), s.cumulative[i]);
      }
      out += fmt::format("{}_bucket{} {}\n", name, Braced(labels, "le=\"+Inf\""),
                         s.cumulative.back());
      out += fmt::format("{}_sum{} {}\n{}_count{} {}\n", name, Braced(labels), s.sum, name,
                         Braced(labels), s.count);
    }
  }
  return out;
}

}  // namespace eph
