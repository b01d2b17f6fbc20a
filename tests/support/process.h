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
  // A daemon that ended on its own or after stop() with anything but 0,
  // unless a test killed it on purpose (signal(SIGKILL)): a crash or a
  // sanitizer's report, which the test must not miss. True once.
  bool failed_unexpectedly();
  const std::string& name() const { return argv_.front(); }

 private:
  std::vector<std::string> argv_;
  std::string log_path_;
  pid_t pid_ = -1;
  int status_ = -1;
  bool killed_on_purpose_ = false;
  bool keep_log_ = false;
  bool reported_ = false;
};

// A number from /proc/<pid>/status, e.g. "Threads" or "VmRSS" (in kB); 0 if absent.
long proc_status(pid_t pid, const std::string& field);

// A TCP port on 127.0.0.1 that was free a moment ago, below the kernel's
// ephemeral range (so no outgoing connection takes it before its daemon
// binds it), never the same twice in one test binary.
int free_port();

// Whatever ends this test binary (a failed assertion, a crash, ctest's timeout
// and its SIGKILL), what it started ends with it: a guardian process, started
// with the first process the binary runs, waits for the binary to go, then
// kills every process it started (they carry EXAMISO_TEST_RUN=<its pid>, and
// PostgreSQL with them), every keeper of a sandbox directory it was told of,
// and removes the directories it was told of.
void guard_sandboxes(const std::string& dir);
void guard_directory(const std::string& dir);
void guard_cgroup(const std::string& name);  // under each controller of /sys/fs/cgroup

// Waits until `service` (identity, lifecycle, ...) at `address` reports SERVING on its health service.
bool wait_serving(const std::string& address, const std::string& service,
                  std::chrono::milliseconds timeout = std::chrono::seconds(10));

// This test binary's internal TLS certificates (scripts/internal-certs: one
// per role, and its CA), made at the first call: every process it starts gets
// EXAMISO_GRPC_TLS_DIR (unless told otherwise), and its own channels
// (make_channel) speak as `operator`, or as the role they name.
// EXAMISO_TEST_PLAINTEXT_GRPC=1: "" (no TLS), for benchmarks' comparisons.
const std::string& internal_tls_dir();

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
