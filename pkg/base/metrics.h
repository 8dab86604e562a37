// Metrics: a small Prometheus registry (counters, gauges, histograms with fixed buckets) rendered
// in the text exposition format at /metrics. Metric objects live as long as the registry and are
// updated lock-free; rendering takes a snapshot.
//
// Thread-safety: everything is safe to call from any thread.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace eph {

class Counter {
 public:
  void Inc(int64_t by = 1) { value_.fetch_add(by, std::memory_order_relaxed); }
  int64_t Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> value_{0};
};

class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void Observe(double v);
  struct Snapshot {
    std::vector<double> bounds;
    std::vector<int64_t> cumulative;  // one per bound, then +Inf
    double sum = 0;
    int64_t count = 0;
  };
  Snapshot Take() const;

 private:
  std::vector<double> bounds_;
  mutable std::mutex mu_;
  std::vector<int64_t> counts_;  // per bucket, last is +Inf
  double sum_ = 0;
  int64_t count_ = 0;
};

class MetricsRegistry {
 public:
  // `labels` is rendered as given inside braces, e.g. R"(event="pull_request")"; the same
  // name+labels always returns the same object.
  Counter& GetCounter(const std::string& name, const std::string& help,
                      const std::string& labels = "");
  Histogram& GetHistogram(const std::string& name, const std::string& help,
                          std::vector<double> bounds, const std::string& labels = "");
  // A gauge read at render time.
  void AddGauge(const std::string& name, const std::string& help,
                std::function<double()> read, const std::string& labels = "");
  // A counter kept elsewhere (it must only grow), read at render time.
  void AddCounterFunc(const std::string& name, const std::string& help,
                      std::function<double()> read, const std::string& labels = "");

  std::string RenderPrometheus() const;

 private:
  struct Family {
    std::string help;
    std::string type;
    std::map<std::string, std::unique_ptr<Counter>> counters;
    std::map<std::string, std::unique_ptr<Histogram>> histograms;
    std::map<std::string, std::function<double()>> reads;  // gauges and counters read at render
  };
  void AddRead(const std::string& name, const std::string& help, const char* type,
               std::function<double()> read, const std::string& labels);

  mutable std::mutex mu_;
  std::map<std::string, Family> families_;
};

}  // namespace eph
