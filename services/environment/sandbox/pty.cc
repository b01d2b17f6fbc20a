#include "services/environment/sandbox/pty.h"

#include <fcntl.h>
#include <linux/keyctl.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <termios.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <stdexcept>

namespace examiso::sandbox {

void resize_pty(int master, uint16_t cols, uint16_t rows) {
  winsize ws{};
  ws.ws_col = cols;
  ws.ws_row = rows;
  ioctl(master, TIOCSWINSZ, &ws);
}

PtyProcess spawn_on_pty(const std::vector<std::string>& argv, const std::vector<std::string>& env, uint16_t cols,
                        uint16_t rows, const std::vector<int>& extra_fds) {
  const int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (master < 0 || grantpt(master) != 0 || unlockpt(master) != 0) throw std::runtime_error("cannot open a PTY");
  char slave_name[128];
  if (ptsname_r(master, slave_name, sizeof slave_name) != 0) throw std::runtime_error("ptsname failed");
  resize_pty(master, cols, rows);

  // Everything the child needs is prepared before fork: it only calls
  // async-signal-safe functions.
  std::vector<std::string> args = argv, envs = env;
  std::vector<char*> c_argv, c_env;
  for (auto& a : args) c_argv.push_back(a.data());
  c_argv.push_back(nullptr);
  for (auto& e : envs) c_env.push_back(e.data());
  c_env.push_back(nullptr);

  const pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    // The shell starts with every signal at its default and none blocked:
    // ignored signals outlive exec, and the keeper's own (SIGPIPE ignored,
    // stop signals blocked) would otherwise reach every candidate process.
    // The system call itself: glibc refuses its own two signals (32 and 33),
    // which posix_spawn leaves ignored in the keeper.
    struct {
      void (*handler)(int) = SIG_DFL;
      unsigned long flags = 0;
      void (*restorer)() = nullptr;
      unsigned long mask = 0;
    } default_action;
    for (int sig = 1; sig < NSIG; ++sig)
      syscall(SYS_rt_sigaction, sig, &default_action, nullptr, sizeof default_action.mask);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    setsid();
    // A session keyring of its own, empty: the keyrings are not namespaced,
    // and the one this service runs under (systemd gives every service one)
    // would otherwise be every sandbox's, a channel between them.
    syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, nullptr);
    const int slave = open(slave_name, O_RDWR);
    if (slave < 0 || ioctl(slave, TIOCSCTTY, 0) != 0) _exit(126);
    // Park the extra fds high first, so that placing them on 3, 4, ... cannot
    // overwrite one another (or the PTY).
    int parked[8];
    const size_t extras = extra_fds.size() < 8 ? extra_fds.size() : 8;
    for (size_t i = 0; i < extras; ++i) parked[i] = extra_fds[i] >= 0 ? fcntl(extra_fds[i], F_DUPFD_CLOEXEC, 100) : -1;
    dup2(slave, 0);
    dup2(slave, 1);
    dup2(slave, 2);
    if (slave > 2) close(slave);
    for (size_t i = 0; i < extras; ++i)
      if (parked[i] >= 0) dup2(parked[i], static_cast<int>(3 + i));
    // Then nothing else: the command gets the terminal and the fds handed
    // over, whatever its starter had open without close-on-exec.
    for (size_t i = 0; i < extras; ++i)
      if (parked[i] < 0) close(static_cast<int>(3 + i));
    close_range(static_cast<unsigned>(3 + extras), ~0U, 0);
    execve(c_argv[0], c_argv.data(), c_env.data());
    _exit(127);
  }
  return {master, pid};
}

}  // namespace examiso::sandbox
