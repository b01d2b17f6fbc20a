#include "tests/support/process.h"

#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "common/grpc_server.h"
#include "common/internal_tls.h"
#include "grpc/health/v1/health.grpc.pb.h"

extern char** environ;

namespace examiso::testing {
namespace {

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The guardian (see guard_sandboxes): it reads stdin until this binary is
// gone, then ends what it left. $1: this binary's pid; $2: the ledger.
constexpr const char* kGuardian = R"SH(
cat >/dev/null
for pass in 1 2; do
  for p in /proc/[0-9]*; do
    if { tr '\0' '\n' < "$p/environ"; } 2>/dev/null | grep -qx "EXAMISO_TEST_RUN=$1"; then kill -9 "${p#/proc/}" 2>/dev/null; fi
  done
done
[ -f "$2" ] || exit 0
while read -r kind path; do
  if [ "$kind" = sandboxes ]; then
    for f in "$path"/*/control/keeper.pid; do [ -f "$f" ] && kill -9 "$(cat "$f")" 2>/dev/null; done
  fi
done < "$2"
sleep 0.2
while read -r kind path; do
  if [ "$kind" = cgroup ]; then
    for c in memory pids cpu ''; do
      [ -d "/sys/fs/cgroup/$c/$path" ] && find "/sys/fs/cgroup/$c/$path" -depth -type d -exec rmdir {} \; 2>/dev/null
    done
  else
    rm -rf "$path"
  fi
done < "$2"
rm -f "$2"
)SH";

std::string ledger_path() { return "/tmp/examiso-test-guard-" + std::to_string(getpid()); }

// Started once, with the first process this binary runs; its stdin is a pipe
// whose other end only this binary holds (closed on exec everywhere else).
void start_guardian() {
  static std::once_flag once;
  std::call_once(once, [] {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) return;
    std::vector<std::string> argv{"/bin/sh", "-c", kGuardian, "examiso-test-guardian", std::to_string(getpid()),
                                  ledger_path()};
    std::vector<char*> c_argv;
    for (auto& a : argv) c_argv.push_back(a.data());
    c_argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, fds[0], 0);
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID);  // out of reach of a kill of this binary's group
    pid_t pid = -1;
    posix_spawn(&pid, "/bin/sh", &actions, &attr, c_argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    close(fds[0]);  // fds[1] stays open, unread, until this binary ends
  });
}

void guard(const std::string& kind, const std::string& path) {
  start_guardian();
  static std::mutex mutex;
  std::lock_guard lock(mutex);
  std::ofstream(ledger_path(), std::ios::app) << kind << " " << path << "\n";
}

std::vector<std::string> merged_env(const Env& extra) {
  Env all;
  for (char** e = environ; *e; ++e) {
    std::string kv(*e);
    const auto eq = kv.find('=');
    if (eq != std::string::npos) all[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  all["EXAMISO_GRPC_TLS_DIR"] = internal_tls_dir();
  for (const auto& [k, v] : extra) all[k] = v;
  all["EXAMISO_TEST_RUN"] = std::to_string(getpid());
  std::vector<std::string> out;
  for (const auto& [k, v] : all) out.push_back(k + "=" + v);
  return out;
}

std::vector<char*> c_strings(std::vector<std::string>& items) {
  std::vector<char*> out;
  for (auto& s : items) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

std::string resolve(const std::string& name) {
  if (name.find('/') != std::string::npos) return name;
  const std::string local = bin(name);
  return std::filesystem::exists(local) ? local : name;
}

pid_t spawn(std::vector<std::string> argv, const Env& env, const std::string& in_path, const std::string& out_path,
            const std::string& err_path) {
  start_guardian();
  argv[0] = resolve(argv[0]);
  auto env_strings = merged_env(env);
  auto c_argv = c_strings(argv);
  auto c_env = c_strings(env_strings);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, in_path.c_str(), O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_addopen(&actions, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  // Children start with default signal handling and nothing blocked.
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);
  pid_t pid = -1;
  const int rc = posix_spawnp(&pid, c_argv[0], &actions, &attr, c_argv.data(), c_env.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) throw std::runtime_error("cannot start " + argv[0] + ": " + strerror(rc));
  return pid;
}

int decode(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

// Polls for the child's exit; -1 (still running) after `timeout`.
int wait_for(pid_t pid, std::chrono::milliseconds timeout, int* raw_status) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid) {
      *raw_status = status;
      return decode(status);
    }
    if (std::chrono::steady_clock::now() >= deadline) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

}  // namespace

std::string bin(const std::string& name) { return std::string(EXAMISO_BIN_DIR) + "/" + name; }

void guard_sandboxes(const std::string& dir) { guard("sandboxes", dir); }
void guard_directory(const std::string& dir) { guard("dir", dir); }
void guard_cgroup(const std::string& name) { guard("cgroup", name); }

TempDir::TempDir() {
  std::string templ = (std::filesystem::temp_directory_path() / "examiso-test-XXXXXX").string();
  if (!mkdtemp(templ.data())) throw std::runtime_error("mkdtemp failed");
  path_ = templ;
  guard_directory(path_);
}

TempDir::~TempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

const std::string& internal_tls_dir() {
  static TempDir dir;
  static std::once_flag once;
  static const std::string plaintext;
  // Benchmarks compare: EXAMISO_TEST_PLAINTEXT_GRPC=1 runs everything without TLS.
  if (const char* p = std::getenv("EXAMISO_TEST_PLAINTEXT_GRPC"); p && std::string(p) == "1") return plaintext;
  std::call_once(once, [] {
    const std::string make = std::string(EXAMISO_SOURCE_DIR) + "/scripts/internal-certs " + dir.path();
    if (std::system(make.c_str()) != 0) throw std::runtime_error("cannot make certificates: " + make);
    internal_tls::configure_dir(dir.path(), "operator");
  });
  return dir.path();
}

CommandResult run(const std::vector<std::string>& argv, const Env& env, std::chrono::milliseconds timeout,
                  const std::string& input) {
  TempDir dir;
  const std::string in = dir.path() + "/in", out = dir.path() + "/out", err = dir.path() + "/err";
  std::ofstream(in, std::ios::binary) << input;
  const pid_t pid = spawn(argv, env, in, out, err);
  int raw = 0;
  CommandResult result;
  result.exit_code = wait_for(pid, timeout, &raw);
  if (result.exit_code == -1) {
    kill(-pid, SIGKILL);
    waitpid(pid, &raw, 0);
    result.err = "(timed out)\n";
  }
  result.out = read_all(out);
  result.err += read_all(err);
  return result;
}

CommandResult run_shell(const std::string& script, const Env& env, std::chrono::milliseconds timeout) {
  Env with_path = env;
  const char* path = getenv("PATH");
  with_path["PATH"] = std::string(EXAMISO_BIN_DIR) + ":" + (path ? path : "/usr/bin:/bin");
  return run({"/bin/bash", "-c", script}, with_path, timeout);
}

Daemon::Daemon(std::vector<std::string> argv, const Env& env) : argv_(std::move(argv)) {
  static int counter = 0;
  // EXAMISO_TEST_LOGS_DIR (the sanitizer run): every daemon's log is kept
  // there and read for reports once the tests have run.
  const char* kept = getenv("EXAMISO_TEST_LOGS_DIR");
  keep_log_ = kept && *kept;
  const std::string name = std::filesystem::path(argv_.front()).filename().string() + "-" + std::to_string(getpid()) +
                           "-" + std::to_string(++counter) + ".log";
  log_path_ = keep_log_ ? std::string(kept) + "/" + name
                        : (std::filesystem::temp_directory_path() / ("examiso-daemon-" + name)).string();
  pid_ = spawn(argv_, env, "/dev/null", "/dev/null", log_path_);
}

Daemon::~Daemon() {
  stop();
  std::error_code ignored;
  if (!keep_log_) std::filesystem::remove(log_path_, ignored);
}

bool Daemon::running() {
  if (status_ != -1) return false;
  int raw = 0;
  if (waitpid(pid_, &raw, WNOHANG) == pid_) {
    status_ = decode(raw);
    return false;
  }
  return true;
}

void Daemon::signal(int sig) {
  if (sig == SIGKILL) killed_on_purpose_ = true;
  if (running()) kill(pid_, sig);
}

bool Daemon::failed_unexpectedly() {
  if (running() || reported_) return false;
  reported_ = status_ != 0 && !killed_on_purpose_;
  return reported_;
}

int Daemon::wait(std::chrono::milliseconds timeout) {
  if (status_ != -1) return status_;
  int raw = 0;
  const int code = wait_for(pid_, timeout, &raw);
  if (code != -1) status_ = code;
  return code;
}

int Daemon::stop() {
  if (!running()) return status_;
  kill(pid_, SIGTERM);
  if (wait(std::chrono::seconds(10)) == -1) {
    kill(pid_, SIGKILL);
    wait(std::chrono::seconds(10));
  }
  return status_;
}

std::string Daemon::log() const { return read_all(log_path_); }

long proc_status(pid_t pid, const std::string& field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);)
    if (line.rfind(field + ":", 0) == 0) return std::stol(line.substr(field.size() + 1));
  return 0;
}

int free_port() {
  // Ports are chosen before their daemons bind them: never one twice, and
  // never one of the kernel's ephemeral range, which any outgoing connection
  // may take meanwhile (a port 0 bind would give exactly one of those).
  static std::mutex mutex;
  static std::set<int> given;
  static std::mt19937 random(static_cast<unsigned>(getpid()) ^ std::random_device{}());
  std::lock_guard lock(mutex);
  int ephemeral_low = 32768;
  std::ifstream("/proc/sys/net/ipv4/ip_local_port_range") >> ephemeral_low;
  const int low = 10000, high = std::max(low + 1000, ephemeral_low) - 1;
  for (;;) {
    const int port = std::uniform_int_distribution<int>(low, high)(random);
    if (given.count(port)) continue;
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<uint16_t>(port));
    const bool free = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    close(fd);
    if (free && given.insert(port).second) return port;
  }
}

bool wait_serving(const std::string& address, const std::string& service, std::chrono::milliseconds timeout) {
  internal_tls_dir();
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    // A fresh channel each time: a channel that failed once waits out its backoff.
    auto stub = grpc::health::v1::Health::NewStub(make_channel(address, service));
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(500));
    grpc::health::v1::HealthCheckRequest request;
    grpc::health::v1::HealthCheckResponse response;
    if (stub->Check(&context, request, &response).ok() &&
        response.status() == grpc::health::v1::HealthCheckResponse::SERVING)
      return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

}  // namespace examiso::testing
