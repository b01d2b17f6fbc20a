#include "services/environment/sandbox/cgroup.h"

#include <errno.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <set>
#include <sstream>
#include <stdexcept>
#include <cstring>
#include <thread>

#include "common/files.h"

namespace examiso::sandbox::cgroup {
namespace {

namespace fs = std::filesystem;
const fs::path kRoot = "/sys/fs/cgroup";
constexpr const char* kV1Controllers[] = {"memory", "pids", "cpu"};

void put(const fs::path& file, const std::string& value) {
  if (!write_file(file.string(), value))
    throw std::runtime_error("cannot write " + value + " to " + file.string() + ": " + strerror(errno));
}

// The directories of one cgroup: one per controller (v1) or one (v2).
std::vector<fs::path> dirs(const std::string& parent, const std::string& name) {
  if (unified()) return {kRoot / parent / name};
  std::vector<fs::path> out;
  for (const char* c : kV1Controllers) out.push_back(kRoot / c / parent / name);
  return out;
}

std::set<pid_t> members(const std::string& parent, const std::string& name) {
  std::set<pid_t> pids;
  for (const auto& d : dirs(parent, name)) {
    std::istringstream in(read_file(d / "cgroup.procs").value_or(""));
    for (pid_t p; in >> p;) pids.insert(p);
  }
  return pids;
}

}  // namespace

bool unified() {
  static const bool v2 = fs::exists(kRoot / "cgroup.controllers");
  return v2;
}

void limit_all(const std::string& parent, const Limits& limits) {
  if (unified()) {
    const fs::path p = kRoot / parent;
    fs::create_directories(p);
    write_file(kRoot / "cgroup.subtree_control", "+memory +pids +cpu");
    put(p / "memory.max", std::to_string(limits.memory_bytes));
    put(p / "pids.max", std::to_string(limits.pids));
    return;
  }
  for (const char* c : kV1Controllers) fs::create_directories(kRoot / c / parent);
  put(kRoot / "memory" / parent / "memory.limit_in_bytes", std::to_string(limits.memory_bytes));
  put(kRoot / "pids" / parent / "pids.max", std::to_string(limits.pids));
}

std::vector<std::string> create(const std::string& parent, const std::string& name, const Limits& limits) {
  std::vector<std::string> procs;
  if (unified()) {
    // Controllers must be enabled for the children of the root and of <parent>.
    const fs::path p = kRoot / parent;
    fs::create_directories(p);
    for (const fs::path& level : {kRoot, p}) {
      write_file(level / "cgroup.subtree_control", "+memory +pids +cpu");
    }
    const fs::path d = p / name;
    fs::create_directories(d);
    put(d / "memory.max", std::to_string(limits.memory_bytes));
    if (fs::exists(d / "memory.swap.max")) put(d / "memory.swap.max", "0");
    put(d / "pids.max", std::to_string(limits.pids));
    put(d / "cpu.max", std::to_string(limits.cpu_millis * 100) + " 100000");
    procs.push_back((d / "cgroup.procs").string());
    return procs;
  }
  const auto d = dirs(parent, name);
  for (const auto& dir : d) fs::create_directories(dir);
  put(d[0] / "memory.limit_in_bytes", std::to_string(limits.memory_bytes));
  if (fs::exists(d[0] / "memory.memsw.limit_in_bytes"))
    put(d[0] / "memory.memsw.limit_in_bytes", std::to_string(limits.memory_bytes));
  put(d[1] / "pids.max", std::to_string(limits.pids));
  put(d[2] / "cpu.cfs_period_us", "100000");
  put(d[2] / "cpu.cfs_quota_us", std::to_string(limits.cpu_millis * 100));
  for (const auto& dir : d) procs.push_back((dir / "cgroup.procs").string());
  return procs;
}

void kill_all(const std::string& parent, const std::string& name) {
  if (unified()) {
    const fs::path kill_file = kRoot / parent / name / "cgroup.kill";
    if (fs::exists(kill_file)) write_file(kill_file, "1");
  }
  for (int round = 0; round < 100; ++round) {
    const auto pids = members(parent, name);
    if (pids.empty()) return;
    for (pid_t p : pids) kill(p, SIGKILL);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

bool remove(const std::string& parent, const std::string& name) {
  bool gone = true;
  for (const auto& d : dirs(parent, name)) {
    std::error_code ec;
    if (!fs::exists(d, ec)) continue;
    if (rmdir(d.c_str()) != 0) gone = false;
  }
  return gone;
}

std::vector<int> processes(const std::string& parent, const std::string& name) {
  const auto pids = members(parent, name);
  return {pids.begin(), pids.end()};
}

std::vector<std::string> list(const std::string& parent) {
  std::set<std::string> names;
  const std::vector<fs::path> roots = unified() ? std::vector<fs::path>{kRoot / parent}
                                                : std::vector<fs::path>{kRoot / "memory" / parent,
                                                                        kRoot / "pids" / parent,
                                                                        kRoot / "cpu" / parent};
  for (const auto& r : roots) {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(r, ec))
      if (e.is_directory()) names.insert(e.path().filename().string());
  }
  return {names.begin(), names.end()};
}

int64_t memory_usage(const std::string& parent, const std::string& name) {
  const fs::path file = unified() ? kRoot / parent / name / "memory.current"
                                  : kRoot / "memory" / parent / name / "memory.usage_in_bytes";
  return read_number(file).value_or(0);
}

}  // namespace examiso::sandbox::cgroup
