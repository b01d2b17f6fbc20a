// examiso-sandbox: the keeper of one sandbox. It holds the sandbox's PTY, so
// that the shell outlives any client (and the environment service itself),
// keeps the recent output for replay, serves one terminal client at a time on
// a unix socket, and starts a new shell when the candidate's exits.
//
//   examiso-sandbox --socket PATH --pid-file PATH [--replay-bytes N] [--output-rate BYTES_PER_SECOND]
//                   [--cgroup-procs FILE]... [--cols C --rows R] [--ready-timeout-ms N] [--idle]
//                   [--home DIR --home-options TMPFS_OPTIONS] [--system-dir DIR] [--seccomp]
//                   -- COMMAND... [--respawn RESPAWN_COMMAND...]
//   examiso-sandbox --attach PATH
//
// --attach: a terminal client of the keeper at PATH for whoever has only a
// pipe to it (a pod's exec stream): standard input to the socket and the
// socket to standard output, the frames as they are, until either side ends.
// It is statically linked, so that it runs in any exam image.
//
// --home: the sandbox's home, a tmpfs mounted at DIR in a mount namespace of
// the keeper's own (so only the keeper and its sandboxes see it, and it goes
// with the keeper). The host's mount table then does not grow with each
// sandbox, which every new sandbox's namespace would copy: with 550 homes
// mounted on the host, starting bubblewrap took 12.5 ms instead of 4.
//
// --system-dir: the sandbox's own views of the host's system trees
// (kSystemTrees in bwrap.h): each a read-only overlay of the host's tree,
// mounted at DIR/<tree> in the keeper's mount namespace. The files are the
// host's, but they are other inodes: a lock (flock, fcntl) taken on one in a
// sandbox is not seen from any other, which it would be on the host's files.
//
// --seccomp: every command gets the sandbox's seccomp filter (seccomp.h) on
// fd kSeccompFd, for bubblewrap's --seccomp.
//
// The keeper closes every descriptor it was started with but 0, 1 and 2, and
// its shells start with only their terminal and the fds handed to them.
//
// --output-rate: the most output per second the shell's terminal is read at
// (0: no limit). Past it the pty is not read, so the candidate's own program
// waits on it: a flood costs every process after the keeper (the environment
// service, the gateway, the browser) only what the budget lets through, and
// it is the flooder's programs that wait. A quarter second's worth may go at
// once, so what a command prints in one go is not held back.
//
// --idle: the keeper and all it starts run on CPU time nobody else wants
// (SCHED_IDLE), for sandboxes made ahead of need; the environment service
// gives them the normal policy when one is claimed.
//
// It detaches at once (its starter is not its parent and need not reap it).
//
// COMMAND reports the sandbox set up by writing to fd 3 (bubblewrap's
// --info-fd). With --respawn, COMMAND is the first shell only, which also
// reports its setup on fd 4 ("<exit code>\n<output tail>"); later shells run
// RESPAWN_COMMAND. The keeper prints "ready" on stdout when the sandbox is up
// and the socket listens, or "failed: ..." and exits 1.
//
// A pooled sandbox (made before any session asked for it) waits in its first
// shell for one line of input. A `claim` frame gives it its session's hostname:
// the keeper sets it in the running sandbox's UTS namespace and in the
// commands of later shells, and answers `claimed`; the line is sent when the
// next client (the candidate's terminal) connects, so that the candidate's
// shell starts then, and costs nothing while many candidates arrive at once.
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "services/environment/sandbox/bwrap.h"
#include "services/environment/sandbox/frames.h"
#include "services/environment/sandbox/pty.h"
#include "services/environment/sandbox/seccomp.h"

namespace {

using namespace examiso::sandbox;

struct Options {
  std::string socket;
  std::string observe_socket;  // staff's: observers and messages (see frames.h)
  std::string pid_file;
  size_t replay_bytes = 64 * 1024;
  double output_rate = 0;  // bytes a second; 0: no limit
  std::vector<std::string> cgroup_procs;
  uint16_t cols = 80, rows = 24;
  int ready_timeout_ms = 30000;
  bool idle = false;
  std::string home, home_options;    // the tmpfs to mount at `home`, if any
  std::string system_dir;            // where to mount the views of the system trees, if anywhere
  bool seccomp = false;
  std::vector<std::string> command;  // the first shell
  std::vector<std::string> respawn;  // later shells; empty: `command` again
};

// SIGTERM and SIGINT set g_stop. They are blocked except while the keeper
// waits (in ppoll with g_waiting as the mask), so a stop never slips in
// between the check and the wait, and an idle keeper need not wake to look.
volatile sig_atomic_t g_stop = 0;
sigset_t g_waiting;

// Waits up to `timeout` (nullptr: no limit) for `fds`, or for a stop signal.
int wait_for(pollfd* fds, nfds_t n, const timespec* timeout) { return ppoll(fds, n, timeout, &g_waiting); }

// The terminal's output budget (--output-rate): a token bucket. A read may
// overdraw it (by one read at most); the next waits until it is paid back.
class OutputBudget {
 public:
  explicit OutputBudget(double rate)
      : rate_(rate), burst_(std::max(rate / 4, 64.0 * 1024)), tokens_(burst_), at_(std::chrono::steady_clock::now()) {}

  // Nullopt: the terminal may be read now; otherwise how long until it may.
  std::optional<timespec> wait() {
    if (rate_ <= 0) return std::nullopt;
    const auto now = std::chrono::steady_clock::now();
    tokens_ = std::min(burst_, tokens_ + rate_ * std::chrono::duration<double>(now - at_).count());
    at_ = now;
    if (tokens_ > 0) return std::nullopt;
    const auto ns = static_cast<long>(-tokens_ / rate_ * 1e9) + 1;
    return timespec{ns / 1'000'000'000, ns % 1'000'000'000};
  }

  void spend(size_t bytes) { tokens_ -= static_cast<double>(bytes); }

 private:
  double rate_, burst_, tokens_;
  std::chrono::steady_clock::time_point at_;
};

// A second's pause, cut short by a stop signal.
void pause_a_second() {
  const timespec second{1, 0};
  wait_for(nullptr, 0, &second);
}

class Keeper final {
 public:
  explicit Keeper(Options o) : o_(std::move(o)) {}

  int run() {
    std::string why;
    if (!mount_private(why) || !build_filter(why) || !start_shell(why) || !listen_on(o_.socket, listener_, why) ||
        (!o_.observe_socket.empty() && !listen_on(o_.observe_socket, observe_listener_, why))) {
      std::printf("failed: %s\n", why.c_str());
      std::fflush(stdout);
      return 1;
    }
    std::printf("ready\n");
    std::fflush(stdout);
    // Nothing more to say there: whoever waits for the end of it (a pod's
    // exec) is not kept waiting.
    if (const int null = open("/dev/null", O_WRONLY | O_CLOEXEC); null >= 0) {
      dup2(null, 1);
      close(null);
    }
    loop();
    if (shell_.pid > 0) kill(-shell_.pid, SIGKILL);
    unlink(o_.socket.c_str());
    if (!o_.observe_socket.empty()) unlink(o_.observe_socket.c_str());
    return 0;
  }

 private:
  // The home and the system trees' views, in a mount namespace of the keeper's own.
  bool mount_private(std::string& why) {
    if (o_.home.empty() && o_.system_dir.empty()) return true;
    // Private first: on a shared root, the mounts would reach the host too.
    if (unshare(CLONE_NEWNS) != 0 || mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
      why = std::string("cannot make a mount namespace: ") + std::strerror(errno);
      return false;
    }
    if (!o_.home.empty() &&
        mount("examiso-home", o_.home.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, o_.home_options.c_str()) != 0) {
      why = std::string("cannot mount the home directory: ") + std::strerror(errno);
      return false;
    }
    if (o_.system_dir.empty()) return true;
    // An overlay without an upper layer is read-only, and needs two lower
    // ones: the tree and an empty directory.
    const std::string empty = o_.system_dir + "/.empty";
    mkdir(o_.system_dir.c_str(), 0711);
    mkdir(empty.c_str(), 0700);
    for (const char* tree : kSystemTrees) {
      const std::string target = o_.system_dir + "/" + tree;
      const std::string options = std::string("lowerdir=/") + tree + ":" + empty;
      // Devices only in the view of /dev; nothing setuid in any.
      const unsigned long flags = MS_RDONLY | MS_NOSUID | (std::strcmp(tree, "dev") == 0 ? MS_NOEXEC : MS_NODEV);
      if ((mkdir(target.c_str(), 0755) != 0 && errno != EEXIST) ||
          mount("examiso-system", target.c_str(), "overlay", flags, options.c_str()) != 0) {
        why = "cannot mount the sandbox's view of /" + std::string(tree) + ": " + std::strerror(errno);
        return false;
      }
    }
    return true;
  }

  bool build_filter(std::string& why) {
    if (!o_.seccomp) return true;
    try {
      filter_ = seccomp_program();
      return true;
    } catch (const std::exception& e) {
      why = e.what();
      return false;
    }
  }

  // The filter for one command, on a descriptor of its own (bubblewrap reads
  // it to the end); -1 without --seccomp.
  int filter_fd(std::string& why) {
    if (!o_.seccomp) return -1;
    const int fd = memfd_create("examiso-seccomp", MFD_CLOEXEC);
    if (fd < 0 || !write_all(fd, filter_) || lseek(fd, 0, SEEK_SET) != 0) {
      if (fd >= 0) close(fd);
      why = std::string("cannot hand over the seccomp filter: ") + std::strerror(errno);
      return -2;
    }
    return fd;
  }

  // Starts the command on a new PTY and waits for the sandbox to report itself
  // set up on fd 3; on failure `why` holds what it printed.
  bool start_shell(std::string& why) {
    const bool first = !started_once_;
    const bool report_setup = first && !o_.respawn.empty();
    const auto& command = first || o_.respawn.empty() ? o_.command : o_.respawn;
    int info[2], setup[2] = {-1, -1};
    if (pipe2(info, O_CLOEXEC) != 0 || (report_setup && pipe2(setup, O_CLOEXEC) != 0)) {
      why = "pipe failed";
      return false;
    }
    const int filter = filter_fd(why);
    if (filter == -2) {
      for (int fd : {info[0], info[1], setup[0], setup[1]})
        if (fd >= 0) close(fd);
      return false;
    }
    // fds 3, 4 and kSeccompFd of the command.
    static_assert(kSeccompFd == 5);
    try {
      shell_ = spawn_on_pty(command, {"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}, o_.cols, o_.rows,
                            {info[1], setup[1], filter});  // in the keeper's cgroups
    } catch (const std::exception& e) {
      for (int fd : {info[0], info[1], setup[0], setup[1], filter})
        if (fd >= 0) close(fd);
      why = e.what();
      return false;
    }
    if (filter >= 0) close(filter);
    close(info[1]);
    if (setup[1] >= 0) close(setup[1]);
    started_ = std::chrono::steady_clock::now();
    // Wait for the info document to end (or EOF without one: the sandbox
    // failed) and, for the first shell, for the setup report; keep the output.
    std::string early, report;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(o_.ready_timeout_ms);
    bool up = false, info_done = false, setup_done = setup[0] < 0;
    while (!(info_done && setup_done) && std::chrono::steady_clock::now() < deadline) {
      pollfd p[3] = {{info_done ? -1 : info[0], POLLIN, 0},
                     {shell_.master, POLLIN, 0},
                     {setup_done ? -1 : setup[0], POLLIN, 0}};
      if (poll(p, 3, 100) < 0 && errno != EINTR) break;
      char buf[4096];
      if (p[1].revents & POLLIN) {
        const ssize_t n = read(shell_.master, buf, sizeof buf);
        if (n > 0) early.append(buf, static_cast<size_t>(n));
      }
      if (p[0].revents & (POLLIN | POLLHUP)) {
        // bwrap writes its info document in pieces and then closes: read to
        // the end, or a write to a closed pipe would kill the sandbox.
        const ssize_t n = read(info[0], buf, sizeof buf);
        if (n > 0) {
          up = true;
        } else {
          info_done = true;
          if (!up) break;
        }
      }
      if (p[2].revents & (POLLIN | POLLHUP)) {
        const ssize_t n = read(setup[0], buf, sizeof buf);
        // The report ends with a NUL: bwrap keeps its own copy of fd 4 open,
        // so no EOF comes.
        if (n > 0) report.append(buf, static_cast<size_t>(n));
        if (n <= 0 || report.find('\0') != std::string::npos) setup_done = true;
      }
    }
    close(info[0]);
    if (setup[0] >= 0) close(setup[0]);
    if (const auto nul = report.find('\0'); nul != std::string::npos) report.resize(nul);
    const bool setup_ok = setup[0] < 0 || report.rfind("0\n", 0) == 0;
    if (!up || !info_done || !setup_done || !setup_ok) {
      kill(-shell_.pid, SIGKILL);
      waitpid(shell_.pid, nullptr, 0);
      close(shell_.master);
      shell_ = {};
      if (up && info_done && !setup_done) {
        why = "the setup script did not finish in time";
      } else if (setup_done && !setup_ok) {
        const auto nl = report.find('\n');
        why = "the setup script failed (exit " + report.substr(0, nl) + ")";
        if (nl != std::string::npos && nl + 1 < report.size()) why += ": " + report.substr(nl + 1);
      } else {
        why = early.empty() ? "the sandbox did not start" : early;
      }
      while (!why.empty() && (why.back() == '\n' || why.back() == '\r')) why.pop_back();
      return false;
    }
    started_once_ = true;
    remember(early);
    return true;
  }

  bool listen_on(const std::string& path, int& listener, std::string& why) {
    listener = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.size() >= sizeof addr.sun_path) {
      why = "socket path too long";
      return false;
    }
    std::strcpy(addr.sun_path, path.c_str());
    unlink(path.c_str());
    if (bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || listen(listener, 16) != 0) {
      why = std::string("cannot listen on ") + path + ": " + strerror(errno);
      return false;
    }
    chmod(path.c_str(), 0600);
    return true;
  }

  // The replay buffer: the last replay_bytes of output. It is trimmed once it
  // holds twice that, so output is copied once more per replay_bytes, not per read.
  void remember(std::string_view bytes) {
    replay_.append(bytes);
    if (replay_.size() > 2 * o_.replay_bytes) {
      replay_.erase(0, replay_.size() - o_.replay_bytes);
      wrapped_ = true;
    }
  }

  void send_output(std::string_view bytes, FrameType type = FrameType::output) {
    remember(bytes);
    const std::string frame = encode_frame(type, bytes);
    to_client(frame);
    // Observers get it in batches (kViewerBatch apart): a keystroke's echo is
    // one write here, not one per observer, and so is its cost on every hop after.
    if (watching() == 0) return;
    for_viewers_ += frame;
    if (!viewers_due_) viewers_due_ = std::chrono::steady_clock::now() + kViewerBatch;
  }

  void flush_viewers() {
    for (size_t i = viewers_.size(); i-- > 0;)
      if (viewers_[i].viewing) to_viewer(i, for_viewers_);
    for_viewers_.clear();
    viewers_due_.reset();
  }

  // The keeper never waits for its client: what the client has not taken yet
  // waits here, and past kClientBacklog the shell's output is not read (the
  // shell then waits on its pty) while the client's input still is.
  void to_client(std::string_view frame) {
    if (client_ < 0) return;
    to_client_.append(frame);
    flush_client();
  }

  void flush_client() {
    while (!to_client_.empty()) {
      const ssize_t n = write(client_, to_client_.data(), to_client_.size());
      if (n > 0) {
        to_client_.erase(0, static_cast<size_t>(n));
      } else if (n < 0 && errno == EINTR) {
        continue;
      } else if (n < 0 && errno == EAGAIN) {
        return;
      } else {
        return drop_client();
      }
    }
  }

  // A pty hands over at most 4 KiB per read, and a read of an empty pty first
  // waits for what the kernel is still moving into it: what is there goes out
  // as one frame, so a flood of output makes fewer, larger messages on every
  // hop after this one. False when there was nothing to read.
  bool read_shell(int master) {
    char buf[64 * 1024];
    size_t got = 0;
    ssize_t n;
    while (got < sizeof buf && (n = read(master, buf + got, sizeof buf - got)) > 0) got += static_cast<size_t>(n);
    if (got == 0) return false;
    budget_.spend(got);
    send_output(std::string_view(buf, got));
    return true;
  }

  void drop_client() {
    if (client_ >= 0) close(client_);
    client_ = -1;
    reader_ = FrameReader();
    to_client_.clear();
  }

  void accept_client() {
    const int fd = accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) return;
    // The newest client wins; the one it replaces is told why it goes.
    if (client_ >= 0) to_client(encode_frame(FrameType::taken, ""));
    drop_client();
    client_ = fd;
    if (release_on_attach_) {
      release_on_attach_ = false;
      pending_input_ += "\n";
    }
    if (const std::string r = replay(); !r.empty()) to_client(r);
    for (const auto& text : messages_) to_client(encode_frame(FrameType::message, text));
    messages_.clear();
    if (watching() > 0) to_client(encode_frame(FrameType::watchers, std::to_string(watching())));
  }

  // The recent output as one frame ("" when there is none), from a line start
  // when older output was cut off.
  std::string replay() const {
    std::string_view replay = replay_;
    if (replay.size() > o_.replay_bytes) replay.remove_prefix(replay.size() - o_.replay_bytes);
    if (replay.size() < replay_.size() || wrapped_) {
      const auto nl = replay.find('\n');
      if (nl != std::string_view::npos) replay.remove_prefix(nl + 1);
    }
    return replay.empty() ? std::string() : encode_frame(FrameType::output, replay);
  }

  // --- The observe socket: staff's observers and messages (frames.h) ---

  struct Viewer {
    int fd;
    FrameReader reader;
    std::string out;  // not taken yet
    bool viewing = false;
  };

  size_t watching() const {
    return static_cast<size_t>(std::count_if(viewers_.begin(), viewers_.end(), [](const Viewer& v) { return v.viewing; }));
  }

  void accept_viewer() {
    const int fd = accept4(observe_listener_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) return;
    if (viewers_.size() >= kMaxViewers) {
      close(fd);
      return;
    }
    viewers_.push_back(Viewer{fd, {}, {}, false});
  }

  // Whatever an observer sends after `view` is ignored: it never reaches the shell.
  void read_viewer(size_t i) {
    char buf[4096];
    const ssize_t n = read(viewers_[i].fd, buf, sizeof buf);
    if (n <= 0) {
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
      return drop_viewer(i);
    }
    if (viewers_[i].viewing) return;
    viewers_[i].reader.feed(std::string_view(buf, static_cast<size_t>(n)));
    const auto f = viewers_[i].reader.next();
    if (viewers_[i].reader.corrupt()) return drop_viewer(i);
    if (!f) return;
    if (f->type == FrameType::view) {
      // What is waiting is in the replay already. Flushing may drop others
      // (and move this one in the list): found again by its fd.
      const int fd = viewers_[i].fd;
      flush_viewers();
      const auto j = viewer_of(fd);
      if (!j) return;
      viewers_[*j].viewing = true;
      if (const std::string r = replay(); !r.empty()) to_viewer(*j, r);
      tell_watchers();
    } else if (f->type == FrameType::message) {
      const bool delivered = client_ >= 0;
      if (delivered) {
        to_client(encode_frame(FrameType::message, f->payload));
      } else {
        if (messages_.size() == kMaxQueuedMessages) messages_.erase(messages_.begin());
        messages_.push_back(f->payload);
      }
      write_all(viewers_[i].fd, encode_frame(FrameType::message, delivered ? "delivered" : "queued"));
      drop_viewer(i);
    } else {
      drop_viewer(i);
    }
  }

  // An observer that does not keep up is dropped: it never slows the candidate.
  void to_viewer(size_t i, std::string_view frame) {
    Viewer& v = viewers_[i];
    v.out.append(frame);
    while (!v.out.empty()) {
      const ssize_t n = write(v.fd, v.out.data(), v.out.size());
      if (n > 0) {
        v.out.erase(0, static_cast<size_t>(n));
      } else if (n < 0 && errno == EINTR) {
        continue;
      } else if (n < 0 && errno == EAGAIN && v.out.size() <= kViewerBacklog) {
        return;
      } else {
        return drop_viewer(i);
      }
    }
  }

  void drop_viewer(size_t i) {
    const bool was_viewing = viewers_[i].viewing;
    close(viewers_[i].fd);
    viewers_.erase(viewers_.begin() + static_cast<std::ptrdiff_t>(i));
    if (was_viewing) tell_watchers();
  }

  void tell_watchers() { to_client(encode_frame(FrameType::watchers, std::to_string(watching()))); }

  std::optional<size_t> viewer_of(int fd) const {
    for (size_t i = 0; i < viewers_.size(); ++i)
      if (viewers_[i].fd == fd) return i;
    return std::nullopt;
  }

  void read_client() {
    char buf[65536];
    const ssize_t n = read(client_, buf, sizeof buf);
    if (n <= 0) {
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
      drop_client();
      return;
    }
    reader_.feed(std::string_view(buf, static_cast<size_t>(n)));
    while (auto f = reader_.next()) {
      if (f->type == FrameType::input) {
        if (pending_input_.size() + f->payload.size() <= (1u << 20)) pending_input_ += f->payload;
      } else if (f->type == FrameType::claim) {
        claim(f->payload);
      } else if (f->type == FrameType::resize) {
        uint16_t cols = 0, rows = 0;
        if (decode_resize(f->payload, cols, rows) && cols > 0 && rows > 0 && shell_.master >= 0) {
          o_.cols = cols;
          o_.rows = rows;
          resize_pty(shell_.master, cols, rows);
        }
      }
    }
    if (reader_.corrupt()) drop_client();
    if (!pending_input_.empty() && shell_.master >= 0) write_shell();  // at once; the rest when the pty takes it
  }

  // A pooled sandbox becomes a session's: its name wherever a shell sees it,
  // then the waiting first shell goes on. Once only.
  void claim(const std::string& name) {
    std::string why = claimed_ ? "already claimed" : valid_hostname(name) ? "" : "not a hostname";
    if (why.empty() && set_hostname(name, why)) {
      for (auto* argv : {&o_.command, &o_.respawn}) {
        for (size_t i = 0; i + 1 < argv->size(); ++i) {
          if ((*argv)[i] == "--hostname") (*argv)[i + 1] = name;
          if ((*argv)[i] == "--setenv" && (*argv)[i + 1] == "HOSTNAME" && i + 2 < argv->size()) (*argv)[i + 2] = name;
        }
      }
      claimed_ = true;
      release_on_attach_ = true;
    }
    const std::string answer = why.empty() ? encode_frame(FrameType::claimed, name)
                                           : encode_frame(FrameType::notice, "claim refused: " + why);
    to_client(answer);
  }

  static bool valid_hostname(const std::string& name) {
    if (name.empty() || name.size() > 63 || name.front() == '-' || name.back() == '-') return false;
    for (char c : name)
      if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
    return true;
  }

  // The running sandbox is the first child of its bubblewrap (the shell's pid
  // is bubblewrap's monitor, still in the host's namespaces). The child is
  // held by its /proc directory while it is checked to be that child (a pid
  // reused meanwhile fails), and its UTS namespace must be neither this
  // process's nor init's: that would rename the host.
  bool set_hostname(const std::string& name, std::string& why) {
    pid_t inner = 0;
    const std::string self = std::to_string(shell_.pid);
    std::ifstream("/proc/" + self + "/task/" + self + "/children") >> inner;
    const int proc = inner > 0 ? open(("/proc/" + std::to_string(inner)).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
    const bool child = proc >= 0 && parent_of(proc) == shell_.pid;
    const int target = child ? openat(proc, "ns/uts", O_RDONLY | O_CLOEXEC) : -1;
    const int own = open("/proc/self/ns/uts", O_RDONLY | O_CLOEXEC);
    struct stat a {}, b {}, host {};
    bool ok = false;
    // (init's may be unreadable, in some VMs: then this process's, which is the host's, is the check.)
    const bool init_known = stat("/proc/1/ns/uts", &host) == 0;
    if (target < 0 || own < 0 || fstat(target, &a) != 0 || fstat(own, &b) != 0) {
      why = "the sandbox is not running";
    } else if ((a.st_ino == b.st_ino && a.st_dev == b.st_dev) ||
               (init_known && a.st_ino == host.st_ino && a.st_dev == host.st_dev)) {
      why = "the sandbox has no UTS namespace of its own";
    } else if (setns(target, CLONE_NEWUTS) != 0) {
      why = std::string("cannot enter the sandbox: ") + strerror(errno);
    } else {
      ok = sethostname(name.data(), name.size()) == 0;
      if (!ok) why = std::string("cannot set the hostname: ") + strerror(errno);
      if (setns(own, CLONE_NEWUTS) != 0) {
        // Never go on in the sandbox's namespace.
        std::fprintf(stderr, "examiso-sandbox: cannot return to its own UTS namespace\n");
        _exit(1);
      }
    }
    for (int fd : {proc, target, own})
      if (fd >= 0) close(fd);
    return ok;
  }

  // The parent pid in a /proc/<pid> directory's stat; -1 when unreadable.
  static pid_t parent_of(int proc_dir) {
    const int fd = openat(proc_dir, "stat", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    char buf[512] = {};
    const ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
    const char* end = n > 0 ? std::strrchr(buf, ')') : nullptr;
    int ppid = -1;
    char state = 0;
    if (!end || std::sscanf(end + 1, " %c %d", &state, &ppid) != 2) return -1;
    return ppid;
  }

  void write_shell() {
    const ssize_t n = write(shell_.master, pending_input_.data(), pending_input_.size());
    if (n > 0) pending_input_.erase(0, static_cast<size_t>(n));
  }

  // The shell ended: say so, and start a new one (backing off if it keeps dying).
  void restart_shell() {
    int status = 0;
    waitpid(shell_.pid, &status, 0);
    close(shell_.master);
    shell_ = {};
    pending_input_.clear();
    const int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    const bool quick = std::chrono::steady_clock::now() - started_ < std::chrono::seconds(2);
    backoff_ = quick ? std::min(backoff_ * 2 + 1, 30) : 0;
    send_output("\r\n[examiso] your shell ended (status " + std::to_string(code) + "); starting a new one\r\n",
                FrameType::notice);
    for (int s = 0; s < backoff_ && !g_stop; ++s) pause_a_second();
    std::string why;
    if (!g_stop && !start_shell(why)) send_output("\r\n[examiso] " + why + "\r\n", FrameType::notice);
  }

  void loop() {
    fcntl(shell_.master, F_SETFL, O_NONBLOCK);
    while (!g_stop) {
      std::vector<pollfd> fds{{listener_, POLLIN, 0}};
      const int master = shell_.master;
      // With a backlog for the client, or the output budget spent, the pty
      // waits, its end included (a shell that exits is restarted only once its
      // last output is read), and so does input for it (for a few ms at most).
      const auto budget_wait = budget_.wait();
      if (master >= 0 && to_client_.size() < kClientBacklog && !budget_wait)
        fds.push_back({master, static_cast<short>(POLLIN | (pending_input_.empty() ? 0 : POLLOUT)), 0});
      if (client_ >= 0) fds.push_back({client_, static_cast<short>(POLLIN | (to_client_.empty() ? 0 : POLLOUT)), 0});
      if (observe_listener_ >= 0) fds.push_back({observe_listener_, POLLIN, 0});
      for (const Viewer& v : viewers_) fds.push_back({v.fd, static_cast<short>(POLLIN | (v.out.empty() ? 0 : POLLOUT)), 0});
      // Without a shell, go on at once to start one.
      const timespec now{0, 0};
      std::optional<timespec> wait = budget_wait;
      if (viewers_due_) {
        const auto ns = std::max<int64_t>(
            0, std::chrono::duration_cast<std::chrono::nanoseconds>(*viewers_due_ - std::chrono::steady_clock::now())
                   .count());
        const timespec due{static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
        if (!wait || ns < wait->tv_sec * 1'000'000'000LL + wait->tv_nsec) wait = due;
      }
      const timespec* timeout = master < 0 ? &now : wait ? &*wait : nullptr;
      if (wait_for(fds.data(), fds.size(), timeout) < 0 && errno != EINTR) break;
      for (const pollfd& p : fds) {
        if (!p.revents) continue;
        if (p.fd == listener_) {
          accept_client();
        } else if (p.fd == master) {
          if ((p.revents & POLLIN) && read_shell(master)) continue;
          if (p.revents & POLLOUT) write_shell();
          if (p.revents & (POLLHUP | POLLERR)) {
            restart_shell();
            if (shell_.master >= 0) fcntl(shell_.master, F_SETFL, O_NONBLOCK);
            break;  // the fd set changed
          }
        } else if (p.fd == client_) {
          if (p.revents & POLLOUT) flush_client();
          if (client_ >= 0 && (p.revents & (POLLIN | POLLHUP | POLLERR))) read_client();
        } else if (p.fd == observe_listener_) {
          accept_viewer();
        } else if (const auto i = viewer_of(p.fd)) {
          // By its fd: viewers come and go within one pass.
          if (p.revents & POLLOUT) to_viewer(*i, "");
          if (const auto j = viewer_of(p.fd); j && (p.revents & (POLLIN | POLLHUP | POLLERR))) read_viewer(*j);
        }
      }
      if (viewers_due_ && std::chrono::steady_clock::now() >= *viewers_due_) flush_viewers();
      if (shell_.master < 0 && !g_stop) {
        std::string why;
        if (start_shell(why)) {
          fcntl(shell_.master, F_SETFL, O_NONBLOCK);
        } else {
          pause_a_second();
        }
      }
    }
  }

  Options o_;
  OutputBudget budget_{o_.output_rate};
  PtyProcess shell_;
  std::chrono::steady_clock::time_point started_;
  bool started_once_ = false;
  bool claimed_ = false;
  bool release_on_attach_ = false;
  int backoff_ = 0;
  int listener_ = -1;
  int client_ = -1;
  int observe_listener_ = -1;
  std::vector<Viewer> viewers_;
  std::string for_viewers_;  // output the observers have not been sent yet
  std::optional<std::chrono::steady_clock::time_point> viewers_due_;
  static constexpr std::chrono::milliseconds kViewerBatch{50};
  std::vector<std::string> messages_;  // for the next client: none is attached
  static constexpr size_t kMaxViewers = 128;
  static constexpr size_t kViewerBacklog = 1 << 20;
  static constexpr size_t kMaxQueuedMessages = 8;
  FrameReader reader_;
  std::string replay_;
  bool wrapped_ = false;
  std::string pending_input_;
  std::string to_client_;
  std::string filter_;  // the compiled seccomp filter, with --seccomp
  static constexpr size_t kClientBacklog = 256 << 10;
};

bool parse(int argc, char** argv, Options& o) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const bool has = i + 1 < argc;
    if (a == "--") {
      auto* target = &o.command;
      for (++i; i < argc; ++i) {
        if (std::string(argv[i]) == "--respawn") {
          target = &o.respawn;
        } else {
          target->push_back(argv[i]);
        }
      }
    } else if (a == "--socket" && has) {
      o.socket = argv[++i];
    } else if (a == "--observe-socket" && has) {
      o.observe_socket = argv[++i];
    } else if (a == "--pid-file" && has) {
      o.pid_file = argv[++i];
    } else if (a == "--replay-bytes" && has) {
      o.replay_bytes = std::stoul(argv[++i]);
    } else if (a == "--output-rate" && has) {
      o.output_rate = std::stod(argv[++i]);
    } else if (a == "--cgroup-procs" && has) {
      o.cgroup_procs.push_back(argv[++i]);
    } else if (a == "--cols" && has) {
      o.cols = static_cast<uint16_t>(std::stoi(argv[++i]));
    } else if (a == "--ready-timeout-ms" && has) {
      o.ready_timeout_ms = std::stoi(argv[++i]);
    } else if (a == "--home" && has) {
      o.home = argv[++i];
    } else if (a == "--home-options" && has) {
      o.home_options = argv[++i];
    } else if (a == "--system-dir" && has) {
      o.system_dir = argv[++i];
    } else if (a == "--seccomp") {
      o.seccomp = true;
    } else if (a == "--idle") {
      o.idle = true;
    } else if (a == "--rows" && has) {
      o.rows = static_cast<uint16_t>(std::stoi(argv[++i]));
    } else {
      return false;
    }
  }
  return !o.socket.empty() && !o.pid_file.empty() && !o.command.empty();
}

int attach(const char* path) {
  signal(SIGPIPE, SIG_IGN);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (std::strlen(path) >= sizeof addr.sun_path) return 2;
  std::strcpy(addr.sun_path, path);
  // The keeper may be starting still: its socket is tried for 10 s.
  int fd = -1;
  for (int attempt = 0; fd < 0 && attempt < 100; ++attempt) {
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      close(fd);
      fd = -1;
      usleep(100000);
    }
  }
  if (fd < 0) {
    std::fprintf(stderr, "examiso-sandbox: no keeper answers at %s: %s\n", path, std::strerror(errno));
    return 1;
  }
  pollfd fds[2] = {{0, POLLIN, 0}, {fd, POLLIN, 0}};
  char buf[65536];
  for (;;) {
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return 1;
    }
    for (int i = 0; i < 2; ++i) {
      if (!fds[i].revents) continue;
      const ssize_t n = read(fds[i].fd, buf, sizeof buf);
      if (n <= 0) return 0;  // either side ended: the shell goes on for the next client
      if (!write_all(i == 0 ? fd : 1, std::string_view(buf, static_cast<size_t>(n)))) return 0;
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  // Nothing of whoever started the keeper reaches it, or through it a sandbox.
  close_range(3, ~0U, 0);
  if (argc == 3 && std::string(argv[1]) == "--attach") return attach(argv[2]);
  Options options;
  try {
    if (!parse(argc, argv, options)) {
      std::fprintf(stderr, "usage: examiso-sandbox --socket PATH [--observe-socket PATH] --pid-file PATH [--replay-bytes N] [--output-rate B] "
                           "[--cgroup-procs FILE]... [--cols C --rows R] [--idle] -- COMMAND...\n");
      return 2;
    }
  } catch (const std::exception&) {
    std::fprintf(stderr, "examiso-sandbox: bad number in arguments\n");
    return 2;
  }
  const sched_param param{};
  if (options.idle && sched_setscheduler(0, SCHED_IDLE, &param) != 0) return 1;
  // Detach: the starter's child exits at once; the keeper lives on in its own session.
  const pid_t child = fork();
  if (child < 0) return 1;
  if (child > 0) return 0;
  setsid();
  // The keeper joins its sandbox's cgroups: the work of carrying a flood of
  // output is then charged to the candidate who makes it (their CPU share),
  // not to everyone's. Never the one the OOM killer picks there.
  for (const auto& procs : options.cgroup_procs) {
    const int fd = open(procs.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0 || write(fd, "0", 1) != 1) {
      std::printf("failed: cannot join the sandbox's cgroup %s: %s\n", procs.c_str(), std::strerror(errno));
      return 1;
    }
    close(fd);
  }
  if (!options.cgroup_procs.empty()) {
    if (const int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC); fd >= 0) {
      if (write(fd, "-1000", 5) != 5) std::fprintf(stderr, "examiso-sandbox: cannot set oom_score_adj\n");
      close(fd);
    }
  }
  if (FILE* f = std::fopen(options.pid_file.c_str(), "we")) {
    std::fprintf(f, "%d\n", static_cast<int>(getpid()));
    std::fclose(f);
  }
  signal(SIGPIPE, SIG_IGN);
  struct sigaction stop {};
  stop.sa_handler = [](int) { g_stop = 1; };
  sigaction(SIGTERM, &stop, nullptr);
  sigaction(SIGINT, &stop, nullptr);
  sigset_t stops;
  sigemptyset(&stops);
  sigaddset(&stops, SIGTERM);
  sigaddset(&stops, SIGINT);
  sigprocmask(SIG_BLOCK, &stops, &g_waiting);
  return Keeper(std::move(options)).run();
}
