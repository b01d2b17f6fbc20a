#pragma once
// A fresh cgroup per sandbox, capping its memory, processes and CPU. cgroup v1
// (a directory per controller) and v2 (one unified tree) are both supported;
// which one a machine has is detected.
#include <cstdint>
#include <string>
#include <vector>

namespace examiso::sandbox::cgroup {

struct Limits {
  int64_t memory_bytes = 0;
  int64_t pids = 0;
  int64_t cpu_millis = 0;  // 1000 = one core
};

bool unified();  // cgroup v2 only

// Caps <parent> itself (memory and processes; cpu_millis is not used): what
// all sandboxes together may take, whatever each one's own limits.
void limit_all(const std::string& parent, const Limits& limits);

// Creates <parent>/<name> with `limits`; returns the cgroup.procs files a
// process writes "0" into to join it. Throws std::runtime_error.
std::vector<std::string> create(const std::string& parent, const std::string& name, const Limits& limits);

// SIGKILLs every process in the cgroup until none is left (or ~2 s pass).
void kill_all(const std::string& parent, const std::string& name);

// Removes the cgroup; false while the kernel still holds it (exited
// processes stay charged for a moment), true when gone.
bool remove(const std::string& parent, const std::string& name);

// The processes in the cgroup now.
std::vector<int> processes(const std::string& parent, const std::string& name);

// Names of the cgroups under <parent>.
std::vector<std::string> list(const std::string& parent);

// Current memory use in bytes (0 if unknown).
int64_t memory_usage(const std::string& parent, const std::string& name);

}  // namespace examiso::sandbox::cgroup
