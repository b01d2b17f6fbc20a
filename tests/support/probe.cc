// examiso-probe: one isolation probe per run, printed as "ok ..." or
// "denied <errno name>". Run inside a sandbox (copied into its home) and, as
// the control, on the host.
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/keyctl.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/timex.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace {

int report(bool ok, const std::string& what) {
  if (ok) {
    std::printf("ok %s\n", what.c_str());
    return 0;
  }
  std::printf("denied %s %s\n", what.c_str(), strerrorname_np(errno) ? strerrorname_np(errno) : "?");
  return 1;
}

// System calls the sandbox's seccomp filter refuses, each made with arguments
// that do nothing where it is allowed (a bad descriptor, a missing path, a
// read-only request): on the host they fail for another reason or succeed,
// inside only with EPERM.
long call(const std::string& name) {
  static const std::map<std::string, std::function<long()>> calls{
      {"io_uring_setup", [] { return syscall(SYS_io_uring_setup, 1, nullptr); }},
      {"io_uring_enter", [] { return syscall(SYS_io_uring_enter, -1, 0, 0, 0, nullptr, 0); }},
      {"io_uring_register", [] { return syscall(SYS_io_uring_register, -1, 0, nullptr, 0); }},
      {"keyctl", [] { return syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0); }},
      {"add_key", [] { return syscall(SYS_add_key, "user", "examiso-probe", "x", 1, KEY_SPEC_PROCESS_KEYRING); }},
      {"request_key", [] { return syscall(SYS_request_key, "user", "examiso-probe-none", nullptr, 0); }},
      {"bpf", [] { return syscall(SYS_bpf, -1, nullptr, 0); }},
      {"userfaultfd", [] { return syscall(SYS_userfaultfd, O_CLOEXEC); }},
      {"perf_event_open", [] { return syscall(SYS_perf_event_open, nullptr, 0, -1, -1, 0); }},
      {"kexec_load", [] { return syscall(SYS_kexec_load, 0, 0, nullptr, ~0UL); }},
      {"kexec_file_load", [] { return syscall(SYS_kexec_file_load, -1, -1, 0, nullptr, 0); }},
      {"init_module", [] { return syscall(SYS_init_module, nullptr, 0, ""); }},
      {"finit_module", [] { return syscall(SYS_finit_module, -1, "", 0); }},
      {"delete_module", [] { return syscall(SYS_delete_module, "examiso_probe_none", O_NONBLOCK); }},
      {"mount", [] { return syscall(SYS_mount, "none", "/nonexistent-examiso", "tmpfs", 0, nullptr); }},
      {"umount2", [] { return syscall(SYS_umount2, "/nonexistent-examiso", 0); }},
      {"pivot_root", [] { return syscall(SYS_pivot_root, "/nonexistent-examiso", "/nonexistent-examiso"); }},
      {"chroot", [] { return syscall(SYS_chroot, "/nonexistent-examiso"); }},
      {"move_mount", [] { return syscall(SYS_move_mount, -1, "", -1, "", 0); }},
      {"open_tree", [] { return syscall(SYS_open_tree, -1, "/nonexistent-examiso", 0); }},
      {"fsopen", [] { return syscall(SYS_fsopen, "examiso-none", 0); }},
      {"fsconfig", [] { return syscall(SYS_fsconfig, -1, 0, nullptr, nullptr, 0); }},
      {"fsmount", [] { return syscall(SYS_fsmount, -1, 0, 0); }},
      {"fspick", [] { return syscall(SYS_fspick, -1, "", 0); }},
      {"mount_setattr", [] { return syscall(SYS_mount_setattr, -1, "", 0, nullptr, 0); }},
      {"open_tree_attr", [] { return syscall(467, -1, "/nonexistent-examiso", 0, nullptr, 0); }},
      {"unshare", [] { return syscall(SYS_unshare, 0); }},
      {"setns", [] { return syscall(SYS_setns, -1, 0); }},
      {"swapon", [] { return syscall(SYS_swapon, "/nonexistent-examiso", 0); }},
      {"swapoff", [] { return syscall(SYS_swapoff, "/nonexistent-examiso"); }},
      {"reboot", [] { return syscall(SYS_reboot, 0, 0, 0, nullptr); }},  // wrong magic: EINVAL where allowed
      {"acct", [] { return syscall(SYS_acct, "/nonexistent-examiso/acct"); }},
      {"quotactl", [] { return syscall(SYS_quotactl, 0, "/nonexistent-examiso", 0, nullptr); }},
      {"quotactl_fd", [] { return syscall(SYS_quotactl_fd, -1, 0, 0, nullptr); }},
      {"open_by_handle_at", [] { return syscall(SYS_open_by_handle_at, -1, nullptr, 0); }},
      {"name_to_handle_at", [] { return syscall(SYS_name_to_handle_at, -1, "", nullptr, nullptr, 0); }},
      {"clock_settime", [] { return syscall(SYS_clock_settime, -1, nullptr); }},
      {"clock_adjtime", [] { return syscall(SYS_clock_adjtime, -1, nullptr); }},
      {"adjtimex",
       [] {
         timex t{};  // modes 0: only reads
         return syscall(SYS_adjtimex, &t);
       }},
      {"settimeofday", [] { return syscall(SYS_settimeofday, nullptr, nullptr); }},
      {"syslog", [] { return syscall(SYS_syslog, 10, nullptr, 0); }},  // the buffer's size
      {"clone-newuser",
       [] {
         const long pid = syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0);
         if (pid == 0) _exit(0);
         if (pid > 0) waitpid(static_cast<pid_t>(pid), nullptr, 0);
         return pid;
       }},
      {"clone3", [] { return syscall(SYS_clone3, nullptr, 0); }},
      {"tiocsti",
       [] {
         // On a terminal of its own: nobody's shell gets the character.
         const int master = posix_openpt(O_RDWR | O_NOCTTY);
         if (master < 0 || grantpt(master) != 0 || unlockpt(master) != 0) return -1L;
         const int slave = open(ptsname(master), O_RDWR | O_NOCTTY);
         const char c = 'x';
         return slave < 0 ? -1L : static_cast<long>(ioctl(slave, TIOCSTI, &c));
       }},
      {"tioclinux",
       [] {
         char sub = 0;
         return static_cast<long>(ioctl(0, TIOCLINUX, &sub));
       }},
  };
  const auto it = calls.find(name);
  if (it == calls.end()) {
    std::fprintf(stderr, "unknown call %s\n", name.c_str());
    std::exit(2);
  }
  return it->second();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: examiso-probe connect HOST PORT | listen PORT | read FILE | write FILE | signal PID |"
                         " ptrace PID | ptrace-child | mount DIR | raw-socket | alloc MB [SECONDS] | fork N | call SYSCALL | socket FAMILY |"
                         " lock FILE SECONDS | trylock FILE\n");
    return 2;
  }
  const std::string what = argv[1];
  const char* arg = argc > 2 ? argv[2] : "";
  if (what == "connect" && argc == 4) {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(std::atoi(argv[3])));
    inet_pton(AF_INET, arg, &a.sin_addr);
    return report(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0, what);
  }
  if (what == "listen") {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(std::atoi(arg)));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(fd, 4) != 0) return report(false, what);
    report(true, what);
    std::fflush(stdout);
    for (;;) close(accept(fd, nullptr, nullptr));
  }
  if (what == "read") {
    const int fd = open(arg, O_RDONLY);
    char c;
    return report(fd >= 0 && read(fd, &c, 1) >= 0, what);
  }
  if (what == "write") return report(open(arg, O_WRONLY | O_CREAT | O_APPEND, 0600) >= 0, what);
  if (what == "signal") return report(kill(std::atoi(arg), 0) == 0, what);
  if (what == "ptrace") return report(ptrace(PTRACE_ATTACH, std::atoi(arg), nullptr, nullptr) == 0, what);
  if (what == "mount") return report(mount("probe", arg, "tmpfs", 0, "size=1m") == 0, what);
  if (what == "call") return report(call(arg) >= 0, what + " " + arg);
  if (what == "socket") {
    const int family = std::atoi(arg);
    return report(socket(family, family == AF_NETLINK ? SOCK_RAW : SOCK_STREAM, 0) >= 0 ||
                      errno == EPROTONOSUPPORT || errno == ESOCKTNOSUPPORT || errno == EPROTOTYPE,
                  what + " " + arg);
  }
  if (what == "ptrace-child") {
    // ptrace stays inside a sandbox (gdb and strace are exam tools).
    const pid_t child = fork();
    if (child == 0) {
      pause();
      _exit(0);
    }
    const bool ok = ptrace(PTRACE_ATTACH, child, nullptr, nullptr) == 0;
    kill(child, SIGKILL);
    waitpid(child, nullptr, 0);
    return report(ok, what);
  }
  if (what == "lock" || what == "trylock") {
    // lock FILE SECONDS: hold an exclusive flock that long; trylock FILE: try.
    const int fd = open(arg, O_RDONLY);
    const bool ok = fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == 0;
    report(ok, what + " " + arg);
    std::fflush(stdout);
    if (ok && what == "lock") sleep(static_cast<unsigned>(std::atoi(argc > 3 ? argv[3] : "30")));
    return ok ? 0 : 1;
  }
  if (what == "raw-socket") return report(socket(AF_INET, SOCK_RAW, IPPROTO_ICMP) >= 0, what);
  if (what == "alloc") {
    const size_t mb = std::strtoul(arg, nullptr, 10);
    std::vector<char*> blocks;
    for (size_t i = 0; i < mb; ++i) {
      char* b = static_cast<char*>(std::malloc(1 << 20));
      if (!b) return report(false, what);
      std::memset(b, 1, 1 << 20);  // touch every page
      blocks.push_back(b);
    }
    report(true, what + " " + arg + " MB");
    std::fflush(stdout);
    if (argc > 3) sleep(static_cast<unsigned>(std::atoi(argv[3])));  // held that long
    return 0;
  }
  if (what == "fork") {
    int made = 0;
    for (int i = 0; i < std::atoi(arg); ++i) {
      const pid_t p = fork();
      if (p == 0) {
        pause();
        _exit(0);
      }
      if (p < 0) break;
      ++made;
    }
    std::printf("forked %d\n", made);
    kill(0, SIGTERM);
    return 0;
  }
  std::fprintf(stderr, "unknown probe %s\n", what.c_str());
  return 2;
}
