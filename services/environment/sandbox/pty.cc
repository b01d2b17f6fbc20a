#include "services/environment/sandbox/pty.h"

#include <fcntl.h>
#include <sys/ioctl.h>
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
                        uint16_t rows, int fd3, const std::vector<std::string>& cgroup_procs) {
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
    for (const auto& procs : cgroup_procs) {
      const int fd = open(procs.c_str(), O_WRONLY);
      if (fd < 0 || write(fd, "0", 1) != 1) _exit(126);
      close(fd);
    }
    setsid();
    const int slave = open(slave_name, O_RDWR);
    if (slave < 0 || ioctl(slave, TIOCSCTTY, 0) != 0) _exit(126);
    if (fd3 >= 0 && fd3 != 3) {
      dup2(fd3, 3);
    } else if (fd3 == 3) {
      fcntl(3, F_SETFD, 0);
    }
    dup2(slave, 0);
    dup2(slave, 1);
    dup2(slave, 2);
    if (slave > 3) close(slave);
    execve(c_argv[0], c_argv.data(), c_env.data());
    _exit(127);
  }
  return {master, pid};
}

}  // namespace examiso::sandbox
