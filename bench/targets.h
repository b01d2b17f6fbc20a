#pragma once
// Speed targets. Machines of one kind differ up to 3x, so every target is a
// ratio: a figure of examiso beside a reference measured in the same run (a
// peer, a floor, the same call without the thing being measured). Each
// benchmark states its targets; at the end they are printed, and with
// EXAMISO_BENCH_CHECK=1 (`./scripts/dev bench --check`) a missed one makes
// the benchmark exit non-zero.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <vector>

namespace examiso::bench {

struct Target {
  std::string name;
  double value = 0, reference = 0;
  double max_ratio = 0;  // value / reference must not exceed it
  std::string unit;
  bool met() const { return reference > 0 && value / reference <= max_ratio; }
};

inline std::mutex& targets_mutex() {
  static std::mutex m;
  return m;
}
inline std::vector<Target>& targets() {
  static std::vector<Target> t;
  return t;
}

// `value` (examiso's) beside `reference` (the same run's): met while
// value / reference <= max_ratio.
inline void target(std::string name, double value, double reference, double max_ratio, std::string unit) {
  std::lock_guard lock(targets_mutex());
  targets().push_back({std::move(name), value, reference, max_ratio, std::move(unit)});
}

// Prints every target; the exit code: non-zero when checking and one is missed.
inline int finish_targets() {
  std::lock_guard lock(targets_mutex());
  if (targets().empty()) return 0;
  const char* check = std::getenv("EXAMISO_BENCH_CHECK");
  const bool checking = check && std::string(check) == "1";
  int missed = 0;
  std::printf("\ntargets (value / reference in this run, and the ratio to meet):\n");
  for (const auto& t : targets()) {
    const double ratio = t.reference > 0 ? t.value / t.reference : 0;
    std::printf("  %-4s %-58s %10.3f / %10.3f %-6s = %6.2fx (at most %.2fx)\n", t.met() ? "ok" : "MISS",
                t.name.c_str(), t.value, t.reference, t.unit.c_str(), ratio, t.max_ratio);
    missed += !t.met();
  }
  if (missed && checking) std::printf("%d target(s) missed\n", missed);
  return checking && missed ? 1 : 0;
}

}  // namespace examiso::bench

// main() for a Google Benchmark binary with targets.
#define EXAMISO_BENCH_MAIN()                                   \
  int main(int argc, char** argv) {                            \
    benchmark::Initialize(&argc, argv);                        \
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1; \
    benchmark::RunSpecifiedBenchmarks();                       \
    benchmark::Shutdown();                                     \
    return examiso::bench::finish_targets();                   \
  }
