#pragma once
// One-shot commands in a sandbox (the exam's setup script): started inside the
// sandbox's cgroups, output collected, killed at the deadline.
#include <chrono>
#include <string>
#include <vector>

namespace examiso::sandbox {

struct RunResult {
  int exit_code = -1;  // 128+N for signal N; -1 when killed at the deadline
  std::string output;  // stdout and stderr, at most 64 KiB
};

RunResult run_in_cgroups(const std::vector<std::string>& argv, const std::vector<std::string>& cgroup_procs,
                         std::chrono::steady_clock::time_point deadline);

}  // namespace examiso::sandbox
