#pragma once
// Latency percentiles for benchmarks that must meet a p99 target.
#include <absl/synchronization/mutex.h>
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <vector>

namespace examiso::bench {

// Benchmark clients are gRPC clients too: without Abseil's per-lock cycle
// detection (on in Debian's build), as the services run.
inline const bool kNoDeadlockDetection = [] {
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  return true;
}();

class Latencies {
 public:
  void add(std::chrono::nanoseconds d) { samples_.push_back(d.count() / 1000.0); }

  // Adds p50/p99/p999 (microseconds) as counters of the benchmark.
  void report(benchmark::State& state) {
    if (samples_.empty()) return;
    std::sort(samples_.begin(), samples_.end());
    const auto at = [&](double q) { return samples_[std::min(samples_.size() - 1, size_t(q * samples_.size()))]; };
    state.counters["p50_us"] = at(0.50);
    state.counters["p99_us"] = at(0.99);
    state.counters["p999_us"] = at(0.999);
    state.counters["max_us"] = samples_.back();
  }

 private:
  std::vector<double> samples_;
};

}  // namespace examiso::bench
