#include "services/environment/local_driver.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sched.h>
#include <spawn.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>

#include "common/errors.h"
#include "common/files.h"
#include "common/log.h"
#include "common/uuid.h"
#include "services/environment/sandbox/bwrap.h"
#include "services/environment/sandbox/cgroup.h"
#include "services/environment/sandbox/frames.h"

namespace examiso::environment {
namespace {

namespace fs = std::filesystem;
using sandbox::FrameType;

constexpr int64_t kShmLimitBytes = 64 << 20;

[[noreturn]] void create_failed(const std::string& reason) {
  throw Error("ENVIRONMENT_CREATE_FAILED", "Environment could not be created: " + reason, Json{{"reason", reason}});
}

// 90% of this machine's memory.
int64_t most_of_the_memory() {
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  return pages > 0 && page > 0 ? static_cast<int64_t>(pages) * page / 10 * 9 : int64_t{1} << 40;
}

// A client of a keeper's socket.
class LocalTerminal final : public Terminal {
 public:
  explicit LocalTerminal(int fd) : fd_(fd) {}
  ~LocalTerminal() override { ::close(fd_); }

  std::optional<std::string> read(std::chrono::milliseconds timeout) override {
    std::string out = absorb(reader_, ended_);
    if (!out.empty()) return out;
    if (!fill(timeout)) return ended_ ? std::nullopt : std::optional(out);
    return absorb(reader_, ended_);
  }

  // The next frame; nullopt after `timeout` with none, or at the end (ended()).
  std::optional<sandbox::Frame> next_frame(std::chrono::milliseconds timeout) {
    if (auto f = reader_.next()) return f;
    return fill(timeout) ? reader_.next() : std::nullopt;
  }
  bool ended() const { return ended_; }

  bool send(std::string_view frame) override {
    std::lock_guard lock(write_mutex_);
    return sandbox::write_all(fd_, frame);
  }

  int wait_fd() const override { return fd_; }

 private:
  // Reads what arrives within `timeout` into the frame reader; false when
  // nothing did (or the stream ended).
  bool fill(std::chrono::milliseconds timeout) {
    if (ended_) return false;
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return false;
    char buf[65536];
    const ssize_t n = ::read(fd_, buf, sizeof buf);
    if (n <= 0) {
      ended_ = true;
      return false;
    }
    reader_.feed(std::string_view(buf, static_cast<size_t>(n)));
    if (reader_.corrupt()) ended_ = true;
    return true;
  }

  int fd_;
  sandbox::FrameReader reader_;
  bool ended_ = false;
  std::mutex write_mutex_;
};

}  // namespace

LocalDriver::LocalDriver(LocalDriverOptions options) : o_(std::move(options)) {
  fs::create_directories(o_.state_dir);
  // Each sandbox's uid must traverse to its own home; nobody may list others.
  chmod(o_.state_dir.c_str(), 0711);
  // N candidates never take more than the machine has, whatever each exam allows.
  sandbox::cgroup::limit_all(
      o_.cgroup_parent,
      {o_.sandboxes_memory_bytes > 0 ? o_.sandboxes_memory_bytes : most_of_the_memory(), o_.sandboxes_pids, 0});
  remover_ = std::thread([this] {
    while (!stop_) {
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
      retry_removals();
    }
  });
}

LocalDriver::~LocalDriver() {
  stop_ = true;
  remover_.join();
  for (const auto& [id, fd] : keepers_) ::close(fd);
}

std::string LocalDriver::dir(const std::string& environment_id) const {
  // Ids come from our own database, but a path is built from them: check.
  if (!is_uuid(environment_id)) throw Error("INVALID_ARGUMENT", "not an environment id");
  return o_.state_dir + "/" + environment_id;
}

void LocalDriver::create(const EnvironmentSpec& spec, std::chrono::steady_clock::time_point deadline) {
  const std::string d = dir(spec.environment_id);
  {
    std::lock_guard lock(create_mutex_);
    int64_t count = 0;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(o_.state_dir, ec)) count += e.is_directory() && is_uuid(e.path().filename().string());
    if (count >= o_.max_sandboxes)
      throw Error("ENVIRONMENT_CAPACITY_REACHED",
                  "This machine already runs its maximum of " + std::to_string(o_.max_sandboxes) + " sandboxes",
                  Json{{"max_sandboxes", o_.max_sandboxes}});
    std::error_code made;
    fs::create_directories(d + "/control", made);
    if (made) create_failed("cannot make " + d + "/control: " + made.message());
  }
  try {
    chmod(d.c_str(), 0711);
    chmod((d + "/control").c_str(), 0700);
    const std::string home = d + "/home";
    fs::create_directories(home);
    // Mounted by the keeper, in its own mount namespace.
    const std::string home_options = "size=" + std::to_string(spec.home_size_bytes) + ",mode=0700,uid=" +
                                     std::to_string(spec.host_uid) + ",gid=" + std::to_string(spec.host_uid);
    sandbox::write_etc(d + "/etc", spec.name);

    const auto procs = sandbox::cgroup::create(
        o_.cgroup_parent, spec.environment_id,
        {spec.memory_limit_bytes, spec.pids_limit, spec.cpu_millis});
    // /dev/shm: its own small tmpfs, never more than /tmp may hold.
    const sandbox::SandboxLayout layout{spec.host_uid,       spec.name,
                                        home,                d + "/etc",
                                        d + "/system",       spec.tmp_size_bytes,
                                        std::min<int64_t>(spec.tmp_size_bytes, kShmLimitBytes)};

    // The keeper: its own session (so no terminal signal reaches it), a clean
    // environment, stdout for "ready", stderr to its log.
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    std::vector<std::string> args{o_.keeper_binary,
                                  "--socket",
                                  d + "/control/terminal.sock",
                                  "--observe-socket",
                                  d + "/control/observe.sock",
                                  "--pid-file",
                                  d + "/control/keeper.pid",
                                  "--replay-bytes",
                                  std::to_string(o_.replay_bytes),
                                  "--output-rate",
                                  std::to_string(static_cast<int64_t>(o_.output_rate)),
                                  "--ready-timeout-ms",
                                  std::to_string(std::max<int64_t>(left.count(), 1)),
                                  "--home",
                                  home,
                                  "--home-options",
                                  home_options,
                                  "--system-dir",
                                  d + "/system",
                                  "--seccomp"};
    for (const auto& p : procs) args.insert(args.end(), {"--cgroup-procs", p});
    // Made ahead of need: only on CPU time nobody else wants, so that refilling
    // the pool never slows a candidate's terminal. claim() restores the policy.
    if (spec.pooled) args.push_back("--idle");
    const std::vector<std::string> shell{"/bin/bash", "-l"};
    args.push_back("--");
    if (spec.setup_script.empty() && !spec.pooled) {
      for (auto& a : sandbox::sandbox_command(layout, shell)) args.push_back(std::move(a));
    } else {
      // The first shell runs the exam's setup, reports it on fd 4, then
      // becomes the candidate's shell: one sandbox start instead of two. A
      // pooled one first waits for its claim (a line on the terminal, sent by
      // the keeper once the hostname is the session's).
      const std::string wrapper =
          "out=$(/bin/bash -c \"$1\" 2>&1 </dev/null 4>&-); code=$?; "
          "printf '%s\\n%s\\0' \"$code\" \"${out:$(( ${#out} > 500 ? ${#out} - 500 : 0 ))}\" >&4; exec 4>&-; "
          "[ \"$code\" = 0 ] || exit \"$code\"; " +
          std::string(spec.pooled ? "IFS= read -rs _; unset HOSTNAME; " : "") + "exec /bin/bash -l";
      const std::string setup = spec.setup_script.empty() ? ":" : spec.setup_script;
      for (auto& a : sandbox::sandbox_command(layout, {"/bin/bash", "-c", wrapper, "examiso-setup", setup}))
        args.push_back(std::move(a));
      args.push_back("--respawn");
      for (auto& a : sandbox::sandbox_command(layout, shell)) args.push_back(std::move(a));
    }
    std::vector<char*> c_args;
    for (auto& a : args) c_args.push_back(a.data());
    c_args.push_back(nullptr);
    // The keeper's environment: PATH (it gives its shells nothing more), and a
    // sanitizer build's report settings, so that its reports are collected too.
    std::vector<std::string> env_strings{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"};
    for (const char* name : {"ASAN_OPTIONS", "UBSAN_OPTIONS"})
      if (const char* value = getenv(name)) env_strings.push_back(std::string(name) + "=" + value);
    std::vector<char*> env;
    for (auto& e : env_strings) env.push_back(e.data());
    env.push_back(nullptr);

    int ready[2];
    if (pipe2(ready, O_CLOEXEC) != 0) create_failed("pipe failed");
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&actions, ready[1], 1);
    posix_spawn_file_actions_addopen(&actions, 2, (d + "/control/keeper.log").c_str(), O_WRONLY | O_CREAT | O_APPEND,
                                     0600);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    pid_t keeper = -1;
    const int rc = posix_spawn(&keeper, c_args[0], &actions, &attr, c_args.data(), env.data());
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    close(ready[1]);
    if (rc != 0) {
      close(ready[0]);
      create_failed("cannot start " + o_.keeper_binary + ": " + strerror(rc));
    }
    waitpid(keeper, nullptr, 0);  // it detaches at once

    std::string line;
    while (line.find('\n') == std::string::npos) {
      // The keeper enforces the deadline itself; allow it time to say so.
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                            deadline + std::chrono::seconds(2) - std::chrono::steady_clock::now())
                            .count();
      pollfd p{ready[0], POLLIN, 0};
      if (left <= 0 || poll(&p, 1, static_cast<int>(left)) <= 0) break;
      char buf[4096];
      const ssize_t n = ::read(ready[0], buf, sizeof buf);
      if (n <= 0) break;
      line.append(buf, static_cast<size_t>(n));
    }
    close(ready[0]);
    if (line.rfind("ready", 0) != 0) {
      std::string why = line.rfind("failed: ", 0) == 0 ? line.substr(8) : "the sandbox did not start in time";
      while (!why.empty() && (why.back() == '\n' || why.back() == '\r')) why.pop_back();
      create_failed(why);
    }
  } catch (const Error& e) {
    destroy(spec.environment_id);
    throw;
  } catch (const std::exception& e) {
    destroy(spec.environment_id);
    create_failed(e.what());
  }
}

// The keeper's pid while it runs. A zombie (empty cmdline) or a recycled pid
// (another command line) is not this sandbox's keeper.
std::optional<pid_t> LocalDriver::keeper(const std::string& environment_id) const {
  const std::string d = dir(environment_id);
  const pid_t pid = static_cast<pid_t>(read_number(d + "/control/keeper.pid").value_or(0));
  if (pid <= 0) return std::nullopt;
  const std::string cmdline = read_file("/proc/" + std::to_string(pid) + "/cmdline").value_or("");
  if (cmdline.find(d + "/control/terminal.sock") == std::string::npos) return std::nullopt;
  return pid;
}

// A keeper seen alive once is watched through a pidfd: later checks cost one
// poll, not two file reads (every cleanup sweep asks about every environment).
bool LocalDriver::alive(const std::string& environment_id) {
  std::lock_guard lock(keepers_mutex_);
  if (const auto it = keepers_.find(environment_id); it != keepers_.end()) {
    pollfd p{it->second, POLLIN, 0};
    if (poll(&p, 1, 0) == 0) return true;
    ::close(it->second);
    keepers_.erase(it);
    return false;
  }
  const auto pid = keeper(environment_id);
  if (!pid) return false;
  const int fd = static_cast<int>(syscall(SYS_pidfd_open, *pid, 0));
  if (fd < 0) return true;
  // Checked again once held: the pidfd is the keeper's, not that of a process
  // that took its pid in between.
  if (keeper(environment_id) != pid) {
    ::close(fd);
    return false;
  }
  keepers_.emplace(environment_id, fd);
  return true;
}

void LocalDriver::claim(const std::string& environment_id, const std::string& name) {
  // Out of the pool's idle scheduling first: the keeper, then every process
  // of the sandbox (its shell waits for the claim, so none is being made).
  std::vector<int> pids = sandbox::cgroup::processes(o_.cgroup_parent, environment_id);
  if (const auto pid = keeper(environment_id)) pids.insert(pids.begin(), *pid);
  const sched_param normal{};
  for (const int pid : pids) {
    std::error_code ignored;
    for (const auto& task : fs::directory_iterator("/proc/" + std::to_string(pid) + "/task", ignored))
      sched_setscheduler(std::stoi(task.path().filename().string()), SCHED_OTHER, &normal);
  }
  auto terminal = attach(environment_id, 0, 0);
  auto& local = static_cast<LocalTerminal&>(*terminal);
  if (!local.send(sandbox::encode_frame(FrameType::claim, name)))
    throw Error("ENVIRONMENT_NOT_FOUND", "The pooled environment's keeper went away");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (std::chrono::steady_clock::now() < deadline) {
    const auto frame = local.next_frame(std::chrono::milliseconds(100));
    if (!frame && local.ended()) break;
    if (!frame) continue;
    if (frame->type == FrameType::claimed) {
      // /etc/hostname and /etc/hosts are bound into the sandbox: rewritten in
      // place, its shells see the new name too.
      sandbox::write_etc(dir(environment_id) + "/etc", name);
      return;
    }
    if (frame->type == FrameType::notice)
      throw Error("ENVIRONMENT_NOT_FOUND", "The pooled environment refused the claim: " + frame->payload);
  }
  throw Error("ENVIRONMENT_NOT_FOUND", "The pooled environment did not answer its claim");
}

void LocalDriver::destroy(const std::string& environment_id) {
  const std::string d = dir(environment_id);
  if (const auto pid = keeper(environment_id)) {
    // Killing the keeper ends bwrap (die-with-parent) and with it every
    // process in the sandbox's PID namespace.
    kill(*pid, SIGKILL);
    for (int i = 0; i < 100 && keeper(environment_id); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  {
    std::lock_guard lock(keepers_mutex_);
    if (const auto it = keepers_.find(environment_id); it != keepers_.end()) {
      ::close(it->second);
      keepers_.erase(it);
    }
  }
  sandbox::cgroup::kill_all(o_.cgroup_parent, environment_id);
  umount2((d + "/home").c_str(), MNT_DETACH);  // a home mounted on the host (before keepers mounted them)
  std::error_code ignored;
  fs::remove_all(d, ignored);
  if (!sandbox::cgroup::remove(o_.cgroup_parent, environment_id)) {
    std::lock_guard lock(mutex_);
    pending_cgroups_.insert(environment_id);
  }
}

void LocalDriver::retry_removals() {
  std::set<std::string> pending;
  {
    std::lock_guard lock(mutex_);
    pending.swap(pending_cgroups_);
  }
  for (const auto& id : pending) {
    if (sandbox::cgroup::remove(o_.cgroup_parent, id)) continue;
    std::lock_guard lock(mutex_);
    pending_cgroups_.insert(id);
  }
}

std::vector<std::string> LocalDriver::list() {
  std::set<std::string> ids;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(o_.state_dir, ec))
    if (e.is_directory() && is_uuid(e.path().filename().string())) ids.insert(e.path().filename().string());
  for (const auto& name : sandbox::cgroup::list(o_.cgroup_parent))
    if (is_uuid(name)) ids.insert(name);
  return {ids.begin(), ids.end()};
}

std::unique_ptr<Terminal> LocalDriver::attach(const std::string& environment_id, uint16_t cols, uint16_t rows) {
  auto terminal = connect_to(dir(environment_id) + "/control/terminal.sock");
  if (cols && rows) terminal->resize(cols, rows);
  return terminal;
}

std::unique_ptr<Terminal> LocalDriver::open_observer(const std::string& environment_id) {
  return connect_to(dir(environment_id) + "/control/observe.sock");
}

std::unique_ptr<Terminal> LocalDriver::connect_to(const std::string& path) {
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  if (fd < 0 || connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    if (fd >= 0) ::close(fd);
    throw Error("ENVIRONMENT_NOT_FOUND", "The environment's terminal is not running");
  }
  return std::make_unique<LocalTerminal>(fd);
}

int64_t LocalDriver::memory_usage(const std::string& environment_id) const {
  return sandbox::cgroup::memory_usage(o_.cgroup_parent, environment_id);
}

}  // namespace examiso::environment
