#pragma once
// The command line that starts a sandbox: setpriv drops to the sandbox's own
// unprivileged host uid (no capabilities, no_new_privs), then bubblewrap makes
// private namespaces of every kind with uid 1000 inside, read-only system
// directories, a private home and a size-capped /tmp, and a clean environment.
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
  int64_t tmp_size_bytes = 64 << 20;
};

inline constexpr const char* kHome = "/home/candidate";

// setpriv + bwrap, ending with `command` (run inside). With `info_fd`, bwrap
// reports itself set up on fd 3.
std::vector<std::string> sandbox_command(const SandboxLayout& layout, const std::vector<std::string>& command,
                                         bool info_fd = true);

// The files of <etc_dir>: the candidate as uid 1000, the session's hostname.
void write_etc(const std::string& etc_dir, const std::string& hostname);

}  // namespace examiso::sandbox
