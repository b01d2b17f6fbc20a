#pragma once
// The command line that starts a sandbox: setpriv drops to the sandbox's own
// unprivileged host uid (no capabilities, no_new_privs), then bubblewrap makes
// private namespaces of every kind with uid 1000 inside, read-only system
// directories, a private home and a size-capped /tmp, a read-only /dev with a
// size-capped /dev/shm, the seccomp filter (seccomp.h) and a clean environment.
#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace examiso::sandbox {

struct SandboxLayout {
  uid_t host_uid = 0;
  std::string hostname;
  std::string home_dir;  // host directory bound at /home/candidate
  std::string etc_dir;   // host directory with passwd, group, hosts, hostname
  // Where the keeper mounted the sandbox's own views of the system trees
  // (kSystemTrees): the host's files, but a lock taken on one (flock, fcntl)
  // is held in this sandbox only, not a signal another one can see.
  std::string system_dir;
  int64_t tmp_size_bytes = 64 << 20;
  int64_t shm_size_bytes = 16 << 20;
};

inline constexpr const char* kHome = "/home/candidate";

// The host trees a sandbox sees (read-only, in parts), each mounted by the
// keeper at <system_dir>/<tree> as a read-only overlay of its own.
inline constexpr const char* kSystemTrees[] = {"usr", "etc", "dev"};

// The descriptor the keeper hands the seccomp filter on to bubblewrap.
inline constexpr int kSeccompFd = 5;

// setpriv + bwrap, ending with `command` (run inside). With `info_fd`, bwrap
// reports itself set up on fd 3.
std::vector<std::string> sandbox_command(const SandboxLayout& layout, const std::vector<std::string>& command,
                                         bool info_fd = true);

// The files of <etc_dir>: the candidate as uid 1000, the session's hostname.
void write_etc(const std::string& etc_dir, const std::string& hostname);

}  // namespace examiso::sandbox
