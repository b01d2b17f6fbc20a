#include "services/environment/sandbox/seccomp.h"

#include <errno.h>
#include <sched.h>
#include <seccomp.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <memory>
#include <stdexcept>

namespace examiso::sandbox {
namespace {

// Every entry of the deny list, and why a candidate's shell must not have it.
// This is the one place the list is kept; docs/decisions.md points here.
struct Denied {
  const char* name;
  const char* why;
};
constexpr Denied kDenied[] = {
    // Whole kernel subsystems with a history of privilege escalations, and
    // nothing an exam needs.
    {"io_uring_setup", "io_uring: a second system-call interface that bypasses this filter's view of calls"},
    {"io_uring_enter", "io_uring"},
    {"io_uring_register", "io_uring"},
    {"bpf", "eBPF programs run in the kernel"},
    {"userfaultfd", "stalls the kernel at will: the usual tool for winning kernel races"},
    {"perf_event_open", "reads other processes' and the kernel's activity"},
    // The kernel's keyrings are not namespaced: a key is a channel between
    // sandboxes (each shell also gets a fresh session keyring).
    {"keyctl", "kernel keyrings"},
    {"add_key", "kernel keyrings"},
    {"request_key", "kernel keyrings"},
    // The sandbox's file system is fixed by bubblewrap; no new mounts or
    // namespaces (which would hand out capabilities over new ones).
    {"mount", "changes the sandbox's file system"},
    {"umount2", "uncovers what a mount hides"},
    {"pivot_root", "changes the sandbox's root"},
    {"chroot", "changes the root (with setuid programs, a way up)"},
    {"move_mount", "new mount API"},
    {"open_tree", "new mount API"},
    {"fsopen", "new mount API"},
    {"fsconfig", "new mount API"},
    {"fsmount", "new mount API"},
    {"fspick", "new mount API"},
    {"mount_setattr", "new mount API"},
    {"unshare", "new namespaces"},
    {"setns", "enters other namespaces"},
    // The machine's own administration.
    {"kexec_load", "replaces the running kernel"},
    {"kexec_file_load", "replaces the running kernel"},
    {"init_module", "loads kernel code"},
    {"finit_module", "loads kernel code"},
    {"delete_module", "unloads kernel code"},
    {"swapon", "the host's swap"},
    {"swapoff", "the host's swap"},
    {"reboot", "the host's power"},
    {"acct", "process accounting of the host"},
    {"quotactl", "file system quotas"},
    {"quotactl_fd", "file system quotas"},
    {"open_by_handle_at", "opens files by handle, around every path check (the 'shocker' escape)"},
    {"name_to_handle_at", "makes the handles open_by_handle_at takes"},
    // The clock is the host's: the exam timer must not be touched.
    {"clock_settime", "the host's clock"},
    {"clock_adjtime", "the host's clock"},
    {"adjtimex", "the host's clock"},
    {"settimeofday", "the host's clock"},
    {"syslog", "the kernel's log"},
};

// Families socket() may make: local sockets, the sandbox's own (loopback-only)
// network, and netlink (ip, ss). Everything else (AF_VSOCK, which reaches the
// host around the network namespace; AF_ALG; AF_PACKET; ...) is refused.
constexpr int kAllowedFamilies[] = {AF_UNIX, AF_INET, AF_INET6, AF_NETLINK};

// New namespaces through clone(): the same as unshare.
constexpr unsigned long kNamespaceFlags[] = {CLONE_NEWNS,  CLONE_NEWUTS, CLONE_NEWIPC,   CLONE_NEWUSER,
                                             CLONE_NEWPID, CLONE_NEWNET, CLONE_NEWCGROUP};

struct Release {
  void operator()(void* ctx) const { seccomp_release(ctx); }
};

void check(int rc, const std::string& what) {
  if (rc < 0) throw std::runtime_error("cannot build the seccomp filter: " + what + ": " + strerror(-rc));
}

}  // namespace

std::string seccomp_program() {
  std::unique_ptr<void, Release> ctx(seccomp_init(SCMP_ACT_ALLOW));
  if (!ctx) throw std::runtime_error("cannot build the seccomp filter: seccomp_init failed");
  const uint32_t deny = SCMP_ACT_ERRNO(EPERM);
  // A call of another ABI (i386's int 0x80, x32) is refused outright: the
  // rules below are written for this one.
  check(seccomp_attr_set(ctx.get(), SCMP_FLTATR_ACT_BADARCH, deny), "bad-architecture action");
  // A binary tree of the listed calls, not a list: every system call of the
  // sandbox passes through the filter.
  check(seccomp_attr_set(ctx.get(), SCMP_FLTATR_CTL_OPTIMIZE, 2), "optimization");
  for (const Denied& d : kDenied) {
    const int nr = seccomp_syscall_resolve_name(d.name);
    // A call this architecture does not have cannot be made.
    if (nr == __NR_SCMP_ERROR) continue;
    check(seccomp_rule_add(ctx.get(), deny, nr, 0), d.name);
  }
#if defined(__x86_64__)
  // Newer than this libseccomp's table: by number.
  check(seccomp_rule_add(ctx.get(), deny, 467, 0), "open_tree_attr");  // the mount API again (Linux 6.15)
#endif
  // Terminal injection: TIOCSTI types into the terminal as if the candidate
  // had (another program's commands into the shell); TIOCLINUX reaches the
  // console. The request is an int: only its low 32 bits count.
  for (const unsigned long request : {TIOCSTI, TIOCLINUX})
    check(seccomp_rule_add(ctx.get(), deny, SCMP_SYS(ioctl), 1, SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffu, request)),
          "ioctl");
  for (int family = 0; family < AF_MAX; ++family) {
    bool allowed = false;
    for (const int a : kAllowedFamilies) allowed = allowed || a == family;
    if (!allowed)
      check(seccomp_rule_add(ctx.get(), deny, SCMP_SYS(socket), 1, SCMP_A0(SCMP_CMP_EQ, static_cast<scmp_datum_t>(family))), "socket");
  }
  // Families newer than this list, and any value with its high bits set.
  check(seccomp_rule_add(ctx.get(), deny, SCMP_SYS(socket), 1, SCMP_A0(SCMP_CMP_GE, AF_MAX)), "socket");
  for (const unsigned long flag : kNamespaceFlags)
    check(seccomp_rule_add(ctx.get(), deny, SCMP_SYS(clone), 1, SCMP_A0(SCMP_CMP_MASKED_EQ, flag, flag)), "clone");
  // clone3 passes its flags in memory, out of a filter's sight: "not
  // implemented" makes the C library fall back to clone, which is checked.
  check(seccomp_rule_add(ctx.get(), SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0), "clone3");

  // Exported through a memory file: libseccomp writes to a descriptor.
  const int fd = memfd_create("examiso-seccomp", MFD_CLOEXEC);
  if (fd < 0) throw std::runtime_error("cannot build the seccomp filter: memfd_create failed");
  std::string program;
  const int rc = seccomp_export_bpf(ctx.get(), fd);
  if (rc == 0) {
    const off_t size = lseek(fd, 0, SEEK_END);
    program.resize(size > 0 ? static_cast<size_t>(size) : 0);
    if (size <= 0 || pread(fd, program.data(), program.size(), 0) != size) program.clear();
  }
  close(fd);
  check(rc, "export");
  if (program.empty()) throw std::runtime_error("cannot build the seccomp filter: empty program");
  return program;
}

}  // namespace examiso::sandbox
