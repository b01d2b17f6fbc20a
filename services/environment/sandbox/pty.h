#pragma once
// A process on its own pseudo-terminal: session leader, the PTY as its
// controlling terminal (so job control works inside), in its starter's
// cgroups (the keeper joins its sandbox's before it starts any).
#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace examiso::sandbox {

struct PtyProcess {
  int master = -1;
  pid_t pid = -1;
};

// Starts argv with exactly `env`; extra_fds[i] (when >= 0) becomes the
// child's fd 3 + i, and no other descriptor is open in it but the terminal's
// 0, 1 and 2. It runs in a fresh session keyring. Throws std::runtime_error
// when the PTY or the process cannot be made.
PtyProcess spawn_on_pty(const std::vector<std::string>& argv, const std::vector<std::string>& env, uint16_t cols,
                        uint16_t rows, const std::vector<int>& extra_fds);

void resize_pty(int master, uint16_t cols, uint16_t rows);

}  // namespace examiso::sandbox
