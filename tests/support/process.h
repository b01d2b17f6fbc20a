#pragma once
// Running the real binaries from tests: one-shot commands (CLIs) and daemons.
#include <sys/types.h>

#include <chrono>
#include <map>
#include <string>
#include <vector>

namespace examiso::testing {

using Env = std::map<std::string, std::string>;

// build/bin/<name>
std::string bin(const std::string& name);

struct CommandResult {
  int exit_code = -1;  // 128+N when killed by signal N
  std::string out;
  std::string err;
};

// Runs argv[0] (a path, or a name found in build/bin, then PATH) with `env`
// added to this process's environment; kills it after `timeout`.
CommandResult run(const std::vector<std::string>& argv, const Env& env = {},
                  std::chrono::milliseconds timeout = std::chrono::seconds(30), const std::string& input = "");

// Runs a bash script with build/bin first on PATH, as a user would type it.
CommandResult run_shell(const std::string& script, const Env& env = {},
                        std::chrono::milliseconds timeout = std::chrono::seconds(30));

// A long-running process (a service under test); stopped with SIGTERM, then
// SIGKILL, when destroyed. Its stderr is kept for failure messages.
class Daemon final {
 public:
  Daemon(std::vector<std::string> argv, const Env& env);
  ~Daemon();
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  pid_t pid() const { return pid_; }
  bool running();
  void signal(int sig);
  // Waits for exit; returns the exit code (128+N for signal N) or -1 on timeout.
  int wait(std::chrono::milliseconds timeout);
  // SIGTERM, wait, SIGKILL if needed; returns the exit code.
  int stop();
  std::string log() const;

 private:
  std::vector<std::string> argv_;
  std::string log_path_;
  pid_t pid_ = -1;
  int status_ = -1;
};

// A number from /proc/<pid>/status, e.g. "Threads" or "VmRSS" (in kB); 0 if absent.
long proc_status(pid_t pid, const std::string& field);

// A TCP port on 127.0.0.1 that was free a moment ago.
int free_port();

// Waits until the gRPC server at `address` reports SERVING on its health service.
bool wait_serving(const std::string& address, std::chrono::milliseconds timeout = std::chrono::seconds(10));

// A fresh temporary directory, removed with its contents when destroyed.
class TempDir final {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace examiso::testing
