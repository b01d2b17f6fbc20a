#pragma once
// The seccomp filter every process of a local sandbox runs under: everything
// is allowed except the kernel interfaces listed (with the reason for each) in
// seccomp.cc, which fail with EPERM. bubblewrap loads it (--seccomp FD) just
// before it runs the sandbox's command.
#include <string>

namespace examiso::sandbox {

// The filter as a classic BPF program for this machine's architecture, ready
// for bubblewrap's --seccomp. Throws std::runtime_error if it cannot be built:
// a sandbox is never started without it.
std::string seccomp_program();

}  // namespace examiso::sandbox
