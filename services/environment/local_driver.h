#pragma once
// The `local` driver: one namespace sandbox per environment on this machine,
// held by its own keeper process (examiso-sandbox) so that shells survive
// clients and restarts of this service.
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "services/environment/driver.h"

namespace examiso::environment {

struct LocalDriverOptions {
  std::string state_dir;      // per-environment directories
  std::string cgroup_parent;  // e.g. examiso
  std::string keeper_binary;  // examiso-sandbox
  size_t replay_bytes = 64 * 1024;
  int64_t max_sandboxes = 1000;  // on this machine at once; past it a create is refused
  // What all sandboxes together may take (their parent cgroup): memory (0:
  // 90% of this machine's) and processes.
  int64_t sandboxes_memory_bytes = 0;
  int64_t sandboxes_pids = 32768;
  double output_rate = 0;  // a terminal's output, bytes a second (the keeper's --output-rate); 0: no limit
};

class LocalDriver final : public SandboxDriver {
 public:
  explicit LocalDriver(LocalDriverOptions options);
  ~LocalDriver() override;

  std::string name() const override { return "local"; }
  void create(const EnvironmentSpec& spec, std::chrono::steady_clock::time_point deadline) override;
  bool alive(const std::string& environment_id) override;
  bool pools() const override { return true; }
  void claim(const std::string& environment_id, const std::string& name) override;
  void destroy(const std::string& environment_id) override;
  std::vector<std::string> list() override;
  std::unique_ptr<Terminal> attach(const std::string& environment_id, uint16_t cols, uint16_t rows) override;
  std::unique_ptr<Terminal> open_observer(const std::string& environment_id) override;

  // Host memory charged to the sandbox (its cgroup).
  int64_t memory_usage(const std::string& environment_id) const;

 private:
  std::string dir(const std::string& environment_id) const;
  static std::unique_ptr<Terminal> connect_to(const std::string& socket_path);
  std::optional<pid_t> keeper(const std::string& environment_id) const;
  void retry_removals();

  LocalDriverOptions o_;
  std::mutex create_mutex_;  // counting sandboxes and making one's directory are one step
  std::mutex mutex_;
  std::set<std::string> pending_cgroups_;  // still held by the kernel a moment after a kill
  std::mutex keepers_mutex_;
  std::map<std::string, int> keepers_;  // pidfds of keepers seen alive, by environment id
  std::atomic<bool> stop_{false};
  std::thread remover_;
};

}  // namespace examiso::environment
