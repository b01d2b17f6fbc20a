// examiso-probe: one isolation probe per run, printed as "ok ..." or
// "denied <errno name>". Run inside a sandbox (copied into its home) and, as
// the control, on the host.
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
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

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: examiso-probe connect HOST PORT | listen PORT | read FILE | write FILE | signal PID |"
                         " ptrace PID | mount DIR | raw-socket | alloc MB | fork N\n");
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
    return report(true, what + " " + arg + " MB");
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
