// Prometheus text-format metrics for `dsv3 serve`: counters, gauges read at scrape time,
// and fixed-bucket histograms. Thread-safe; written by request handlers and the engine.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <tuple>
#include <mutex>
#include <string>
#include <vector>

namespace dsv3::server {

class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {}
  void observe(double v);
  //! Appends the _bucket / _sum / _count lines of `name`.
  void render(const std::string& name, std::string& out) const;

 private:
  mutable std::mutex mu_;
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;  // per bucket (not cumulative); last is +Inf
  double sum_ = 0;
  uint64_t count_ = 0;
};

class Metrics {
 public:
  Metrics();
  //! Counts a finished HTTP request by endpoint and status code.
  void request(const std::string& endpoint, int status);
  void add(const std::string& counter, uint64_t n);
  Histogram& histogram(const std::string& name);
  //! Gauges are sampled when /metrics is read; `monotonic` ones are reported as counters
  //! (a cumulative figure kept elsewhere, e.g. the expert-parallel traffic).
  void gauge(const std::string& name, const std::string& help, std::function<double()> read, bool monotonic = false);
  std::string render() const;

 private:
  mutable std::mutex mu_;
  std::map<std::pair<std::string, int>, uint64_t> requests_;
  std::map<std::string, uint64_t> counters_;
  std::map<std::string, std::unique_ptr<Histogram>> histograms_;
  std::vector<std::tuple<std::string, std::string, std::function<double()>, bool>> gauges_;
};

}  // namespace dsv3::server
