// Isolation, tested: two real sandboxes A and B, and from inside A every way
// out we know of. Each probe has a control showing the same probe succeeds
// where it should, so a broken probe cannot pass.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <linux/keyctl.h>
#include <netinet/in.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <thread>

#include "common/files.h"
#include "common/json.h"
#include "common/uuid.h"
#include "examiso/v1/lifecycle.grpc.pb.h"
#include "tests/support/platform.h"
#include "tests/support/postgres.h"
#include "tests/support/terminal.h"

namespace examiso {
namespace {

namespace fs = std::filesystem;
using testing::TerminalClient;

const std::string kIsolationExam = "00000000-0000-4000-8000-000000000005";  // 128 MiB, 64 pids, 8 MiB /tmp

// The platform runs in a session keyring of its own, as a systemd service
// does, holding a key: no sandbox may see either.
const char* const kPlatformKeyring = "examiso-isolation-keyring";
const char* const kPlatformKey = "examiso-isolation-secret";

struct Sandbox {
  std::string session_id;
  std::string environment_id;
  std::unique_ptr<TerminalClient> terminal;
};

class Isolation : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ASSERT_GE(syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, kPlatformKeyring), 0) << strerror(errno);
    ASSERT_GE(syscall(SYS_add_key, "user", kPlatformKey, "s3cret", 6, KEY_SPEC_SESSION_KEYRING), 0) << strerror(errno);
    platform_ = new testing::Platform(testing::shared_postgres().create_database());
    platform_->start("identity");
    platform_->start("lifecycle");
    platform_->start("environment");
    a_ = new Sandbox(make_sandbox());
    b_ = new Sandbox(make_sandbox());
  }
  static void TearDownTestSuite() {
    delete a_;
    delete b_;
    delete platform_;
  }

  static Sandbox make_sandbox() {
    const std::string session = platform_->create_session(kIsolationExam);
    // Many at once on a busy machine may take longer than the usual call.
    const auto out = platform_->sh("execution-environment create --session-id " + session,
                                   {{"EXAMISO_GRPC_CALL_TIMEOUT_MS", "60000"}});
    if (out.exit_code != 0) throw std::runtime_error("create failed: " + out.out + out.err);
    Sandbox box{session, Json::parse(out.out).value("environment_id", ""), nullptr};
    // The probe goes into the sandbox's home, owned by the sandbox's uid.
    const fs::path home = home_seen_by_host(box);
    struct stat st {};
    stat(home.c_str(), &st);
    fs::copy_file(testing::bin("../tests/examiso-probe"), home / "examiso-probe");
    chown((home / "examiso-probe").c_str(), st.st_uid, st.st_gid);
    box.terminal = std::make_unique<TerminalClient>(platform_->address("environment"), box.session_id);
    return box;
  }

  // The home is mounted only in its keeper's mount namespace: the host
  // reaches it through the keeper's root.
  static std::string home_seen_by_host(const Sandbox& box) {
    const std::string dir = platform_->sandbox_dir() + "/" + box.environment_id;
    pid_t keeper = 0;
    std::ifstream(dir + "/control/keeper.pid") >> keeper;
    return "/proc/" + std::to_string(keeper) + "/root" + dir + "/home";
  }

  // Runs a command line in a sandbox's shell; returns what it printed.
  static std::string run(Sandbox& box, const std::string& command,
                         std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
    static int n = 1000;
    const int id = ++n;
    const size_t mark = box.terminal->output_size();
    // The marker is computed by the shell, so the typed line cannot match it.
    box.terminal->send(command + "; echo \"@@$((" + std::to_string(id) + "+1))@@\"\n");
    const auto end = box.terminal->wait_for("@@" + std::to_string(id + 1) + "@@", timeout, mark);
    EXPECT_TRUE(end) << "no answer to: " << command << "\n" << box.terminal->output().substr(mark);
    return box.terminal->output().substr(mark, end ? *end - mark : std::string::npos);
  }

  static std::string probe(Sandbox& box, const std::string& args) { return run(box, "~/examiso-probe " + args); }

  // The same probe on the host, as root: the control.
  static std::string host_probe(const std::string& args) {
    return testing::run_shell(testing::bin("../tests/examiso-probe") + " " + args).out;
  }

  static std::vector<pid_t> host_pids_of(const Sandbox& box) {
    std::vector<pid_t> pids;
    std::ifstream in("/sys/fs/cgroup/pids/" + platform_->cgroup_parent() + "/" + box.environment_id +
                     "/cgroup.procs");
    if (!in) in.open("/sys/fs/cgroup/" + platform_->cgroup_parent() + "/" + box.environment_id + "/cgroup.procs");
    for (pid_t p; in >> p;) pids.push_back(p);
    return pids;
  }

  static pid_t daemon_pid(const std::string& service) { return platform_->daemon(service).pid(); }

  static testing::Platform* platform_;
  static Sandbox* a_;
  static Sandbox* b_;
};
testing::Platform* Isolation::platform_ = nullptr;
Sandbox* Isolation::a_ = nullptr;
Sandbox* Isolation::b_ = nullptr;

TEST_F(Isolation, CannotSeeOrSignalOtherProcesses) {
  const std::string listing = run(*a_, "ps -e -o comm= | sort | uniq -c; ls /proc | grep -c '^[0-9]'");
  for (const char* foreign : {"postgres", "examiso-", "sshd", "init", "systemd"})
    EXPECT_EQ(listing.find(foreign), std::string::npos) << foreign << " visible:\n" << listing;
  // B's shell: a process of B's that lives (its cgroup also holds the keeper,
  // and briefly whatever B's commands start).
  pid_t b_shell = 0;
  for (const pid_t pid : host_pids_of(*b_))
    if (read_file("/proc/" + std::to_string(pid) + "/comm").value_or("") == "bash\n") b_shell = pid;
  ASSERT_GT(b_shell, 0);
  for (pid_t target : {b_shell, daemon_pid("lifecycle"), daemon_pid("environment")}) {
    ASSERT_EQ(kill(target, 0), 0) << "control: pid " << target << " exists on the host";
    const std::string pid = std::to_string(target);
    EXPECT_NE(probe(*a_, "signal " + pid).find("denied signal ESRCH"), std::string::npos) << pid;
    EXPECT_NE(probe(*a_, "ptrace " + pid).find("denied ptrace"), std::string::npos) << pid;
  }
  EXPECT_NE(host_probe("signal " + std::to_string(b_shell)).find("ok signal"), std::string::npos);
}

TEST_F(Isolation, CannotReadOrWriteOtherFiles) {
  run(*b_, "echo b-secret > ~/secret");
  // B's home where the host reaches it, and where it is mounted in B's keeper.
  const std::string b_secret = home_seen_by_host(*b_) + "/secret";
  const std::string b_mounted = platform_->sandbox_dir() + "/" + b_->environment_id + "/home/secret";
  const std::string pg_version = testing::shared_postgres().data_dir() + "/PG_VERSION";
  const std::string repo_file = std::string(EXAMISO_SOURCE_DIR) + "/CMakeLists.txt";
  // The platform's internal TLS keys: with the gateway's, a candidate could attach to any terminal.
  const std::string gateway_key = testing::internal_tls_dir() + "/gateway/tls.key";
  const std::string ca_key = testing::internal_tls_dir() + "/ca.key";
  for (const std::string& file : {b_secret, b_mounted, pg_version, repo_file, gateway_key, ca_key, std::string("/root/.bashrc"),
                                  std::string("/etc/shadow"), std::string("/var/lib/postgresql")}) {
    if (file != "/var/lib/postgresql" && file != "/root/.bashrc" && file != b_mounted) {
      EXPECT_TRUE(std::ifstream(file).good()) << "control: the host can read " << file;
    }
    EXPECT_NE(probe(*a_, "read " + file).find("denied read"), std::string::npos) << file;
  }
  for (const std::string& file : {std::string("/usr/bin/evil"), std::string("/etc/passwd"), b_secret, b_mounted,
                                  std::string("/home/candidate/../../etc/evil")})
    EXPECT_NE(probe(*a_, "write " + file).find("denied write"), std::string::npos) << file;
  EXPECT_NE(probe(*a_, "write /home/candidate/mine").find("ok write"), std::string::npos) << "control";
  EXPECT_NE(probe(*a_, "write /tmp/mine").find("ok write"), std::string::npos) << "control";
  EXPECT_EQ(run(*b_, "cat ~/secret").find("b-secret") != std::string::npos, true);
}

TEST_F(Isolation, CannotReachHostServicesOrTheOtherSandbox) {
  // Something listening on the host like the gateway would (:3000 by default).
  const int listener = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_ANY);
  int one = 1;
  setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  ASSERT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  listen(listener, 8);
  socklen_t len = sizeof addr;
  getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len);
  const std::string gateway_like = std::to_string(ntohs(addr.sin_port));

  std::vector<std::string> ports{std::to_string(testing::shared_postgres().port()), gateway_like};
  for (const char* s : {"identity", "lifecycle", "environment"}) {
    const std::string a = platform_->address(s);
    ports.push_back(a.substr(a.rfind(':') + 1));
  }
  for (const auto& port : ports) {
    EXPECT_NE(host_probe("connect 127.0.0.1 " + port).find("ok connect"), std::string::npos) << "control " << port;
    EXPECT_NE(probe(*a_, "connect 127.0.0.1 " + port).find("denied connect"), std::string::npos) << port;
  }
  // The host's own addresses are not reachable either: no route at all.
  const std::string host_ip = testing::run_shell("hostname -I | cut -d' ' -f1").out;
  if (host_ip.size() > 6) {
    const std::string ip = host_ip.substr(0, host_ip.find_first_of(" \n"));
    EXPECT_NE(host_probe("connect " + ip + " " + gateway_like).find("ok connect"), std::string::npos) << "control";
    EXPECT_NE(probe(*a_, "connect " + ip + " " + gateway_like).find("denied connect ENETUNREACH"), std::string::npos);
  }
  // B listens on its loopback; A's loopback is another one.
  run(*b_, "(~/examiso-probe listen 7777 > /dev/null &) ; sleep 0.2");
  EXPECT_NE(probe(*b_, "connect 127.0.0.1 7777").find("ok connect"), std::string::npos) << "control";
  EXPECT_NE(probe(*a_, "connect 127.0.0.1 7777").find("denied connect ECONNREFUSED"), std::string::npos);
  // Only a loopback interface inside; the host has more.
  std::ifstream host_dev("/proc/net/dev");
  int host_interfaces = 0;
  for (std::string line; std::getline(host_dev, line);) host_interfaces += line.find(':') != std::string::npos;
  EXPECT_GT(host_interfaces, 1) << "control";
  const std::string devices = run(*a_, "echo count=$(grep -c : /proc/net/dev); grep -o '^ *[a-z0-9]*:' /proc/net/dev");
  EXPECT_NE(devices.find("count=1\r"), std::string::npos) << devices;
  EXPECT_NE(devices.find("lo:"), std::string::npos) << devices;
  close(listener);
}

TEST_F(Isolation, SeesNothingOfThePlatformsEnvironment) {
  std::ifstream environ("/proc/" + std::to_string(daemon_pid("environment")) + "/environ");
  const std::string platform_env((std::istreambuf_iterator<char>(environ)), {});
  ASSERT_NE(platform_env.find("DATABASE_URL="), std::string::npos) << "control";
  ASSERT_NE(platform_env.find("EXAMISO_IDENTITY_HS256_SECRET="), std::string::npos) << "control";
  const std::string inside = run(*a_, "env; cat /proc/1/environ | tr '\\0' '\\n'");
  for (const char* leak : {"DATABASE_URL", "EXAMISO_", "end-to-end-test-development-secret", "postgresql://"})
    EXPECT_EQ(inside.find(leak), std::string::npos) << leak << " leaked:\n" << inside;
  EXPECT_NE(inside.find("HOME=/home/candidate"), std::string::npos) << "control: env works";
}

TEST_F(Isolation, GainsNoCapabilities) {
  const std::string status = run(*a_, "grep -E '^Cap(Eff|Prm|Bnd)' /proc/self/status; id");
  EXPECT_NE(status.find("CapEff:\t0000000000000000"), std::string::npos) << status;
  EXPECT_NE(status.find("CapBnd:\t0000000000000000"), std::string::npos) << status;
  EXPECT_NE(status.find("uid=1000(candidate)"), std::string::npos) << status;
  testing::TempDir mnt;
  EXPECT_NE(host_probe("mount " + mnt.path()).find("ok mount"), std::string::npos) << "control";
  umount2(mnt.path().c_str(), MNT_DETACH);
  EXPECT_NE(host_probe("raw-socket").find("ok raw-socket"), std::string::npos) << "control";
  EXPECT_NE(probe(*a_, "mount /tmp").find("denied mount EPERM"), std::string::npos);
  EXPECT_NE(probe(*a_, "raw-socket").find("denied raw-socket"), std::string::npos);
  EXPECT_NE(run(*a_, "unshare -Ur true 2>&1 || echo no-userns").find("no-userns"), std::string::npos);
  EXPECT_NE(run(*a_, "ls -ld /usr; touch /usr/x 2>&1").find("Read-only file system"), std::string::npos);
}

// The seccomp filter: every call on its list fails with EPERM inside (clone3
// with ENOSYS, so that the C library falls back to clone, which is checked),
// and the same calls, with the same harmless arguments, get another answer on
// the host (the control: it is the filter that refuses, not the arguments).
TEST_F(Isolation, KernelInterfacesOutsideAnExamAreRefused) {
  const std::vector<std::string> calls{
      "io_uring_setup", "io_uring_enter", "io_uring_register", "keyctl",        "add_key",       "request_key",
      "bpf",            "userfaultfd",    "perf_event_open",   "kexec_load",    "kexec_file_load", "init_module",
      "finit_module",   "delete_module",  "mount",             "umount2",       "pivot_root",    "chroot",
      "move_mount",     "open_tree",      "fsopen",            "fsconfig",      "fsmount",       "fspick",
      "mount_setattr",  "open_tree_attr", "unshare",           "setns",         "swapon",        "swapoff",
      "reboot",         "acct",           "quotactl",          "quotactl_fd",   "open_by_handle_at",
      "name_to_handle_at", "clock_settime", "clock_adjtime",   "adjtimex",      "settimeofday",  "syslog",
      "clone-newuser",  "clone3",         "tiocsti",           "tioclinux"};
  std::string all;
  for (const auto& c : calls) all += " " + c;
  const std::string inside = run(*a_, "grep '^Seccomp:' /proc/self/status; for c in" + all +
                                          "; do ~/examiso-probe call $c; done");
  EXPECT_NE(inside.find("Seccomp:\t2"), std::string::npos) << inside;
  const std::string host =
      testing::run_shell("for c in" + all + "; do " + testing::bin("../tests/examiso-probe") + " call $c; done").out;
  // What a machine's own policy may refuse its root too (then the control says nothing).
  const bool io_uring_off = read_number("/proc/sys/kernel/io_uring_disabled").value_or(0) == 2;
  for (const auto& c : calls) {
    const std::string errno_name = c == "clone3" ? "ENOSYS" : "EPERM";
    EXPECT_NE(inside.find("denied call " + c + " " + errno_name + "\r"), std::string::npos) << c << ":\n" << inside;
    const bool may_refuse = (c.rfind("io_uring", 0) == 0 && io_uring_off) || c.rfind("kexec", 0) == 0 ||
                            c.find("init_module") != std::string::npos;
    if (!may_refuse) {
      EXPECT_EQ(host.find("call " + c + " " + errno_name + "\n"), std::string::npos) << "control, " << c << ":\n" << host;
    }
  }
  EXPECT_NE(host.find("ok call tiocsti"), std::string::npos) << "control: TIOCSTI works on the host\n" << host;
  // ptrace stays: gdb and strace are exam tools.
  EXPECT_NE(probe(*a_, "ptrace-child").find("ok ptrace-child"), std::string::npos);
}

// socket(): AF_UNIX, AF_INET, AF_INET6 and AF_NETLINK only. AF_VSOCK (to the
// host, around the network namespace), AF_ALG, AF_PACKET and every other
// family, known or not, fail with EPERM.
TEST_F(Isolation, OnlyLocalAndInternetSocketsCanBeMade) {
  const std::vector<int> allowed{AF_UNIX, AF_INET, AF_INET6, AF_NETLINK};
  const std::vector<int> refused{0, AF_AX25, AF_PACKET, AF_ALG, AF_VSOCK, AF_XDP, AF_MCTP, AF_MAX, 100, -1};
  std::string families;
  for (int f : allowed) families += " " + std::to_string(f);
  for (int f : refused) families += " " + std::to_string(f);
  const std::string inside = run(*a_, "for f in" + families + "; do ~/examiso-probe socket $f; done");
  const std::string host =
      testing::run_shell("for f in" + families + "; do " + testing::bin("../tests/examiso-probe") + " socket $f; done").out;
  for (int f : allowed) EXPECT_NE(inside.find("ok socket " + std::to_string(f) + "\r"), std::string::npos) << f << inside;
  for (int f : refused) {
    const std::string name = "socket " + std::to_string(f);
    EXPECT_NE(inside.find("denied " + name + " EPERM"), std::string::npos) << name << ":\n" << inside;
    EXPECT_EQ(host.find("denied " + name + " EPERM"), std::string::npos) << "control, " << name << ":\n" << host;
  }
  EXPECT_NE(host.find("ok socket " + std::to_string(AF_PACKET)), std::string::npos) << "control\n" << host;
}

// The platform's session keyring (and its key) stay out of every sandbox.
TEST_F(Isolation, KeyringsAreNotShared) {
  const std::string host = testing::run_shell("cat /proc/keys").out;
  ASSERT_NE(host.find(kPlatformKeyring), std::string::npos) << "control: the host's processes see it\n" << host;
  ASSERT_NE(host.find(kPlatformKey), std::string::npos) << "control\n" << host;
  const std::string inside = run(*a_, "cat /proc/keys; ~/examiso-probe call add_key");
  EXPECT_EQ(inside.find(kPlatformKeyring), std::string::npos) << inside;
  EXPECT_EQ(inside.find(kPlatformKey), std::string::npos) << inside;
  EXPECT_NE(inside.find("denied call add_key EPERM"), std::string::npos) << inside;
}

// A lock on a file every sandbox sees (flock, on /usr, /etc and /dev files)
// is held in the locker's sandbox only: no signal from one candidate to another.
TEST_F(Isolation, LocksOnSharedFilesAreNotSeenFromAnotherSandbox) {
  for (const std::string file : {"/usr/lib/os-release", "/etc/profile", "/dev/null"}) {
    const std::string held = run(*a_, "~/examiso-probe lock " + file + " 20 & sleep 0.3");
    ASSERT_NE(held.find("ok lock " + file), std::string::npos) << held;
    EXPECT_NE(probe(*a_, "trylock " + file).find("denied trylock " + file + " EAGAIN"), std::string::npos)
        << "control: the probe sees the lock where it is";
    EXPECT_NE(probe(*b_, "trylock " + file).find("ok trylock " + file), std::string::npos) << file;
    run(*a_, "kill %1; wait");
  }
}

// /dev holds its devices and nothing else can be put there; /dev/shm is
// bounded by the exam's /tmp size (8 MiB here), not the host's memory.
TEST_F(Isolation, DevIsReadOnlyAndSharedMemoryIsBounded) {
  EXPECT_NE(run(*a_, "touch /dev/examiso 2>&1").find("Read-only file system"), std::string::npos);
  EXPECT_NE(run(*a_, "echo x > /dev/null && echo null-$((1+1)); head -c 5 /dev/urandom | wc -c").find("null-2\r\n5"),
            std::string::npos)
      << "control: the devices work";
  EXPECT_NE(run(*a_, "head -c 1M /dev/zero > /dev/shm/small && echo shm-$((1+2))").find("shm-3"), std::string::npos)
      << "control: /dev/shm is writable";
  const std::string big = run(*a_, "head -c 12M /dev/zero > /dev/shm/big; rm -f /dev/shm/big /dev/shm/small");
  EXPECT_NE(big.find("No space left on device"), std::string::npos) << big;
}

// 30 sandboxes made at once: no process in any of them holds a descriptor
// but its terminal, whatever the service had open while making the others.
TEST_F(Isolation, NoSandboxHoldsADescriptorButItsTerminal) {
  std::vector<Sandbox> boxes(30);
  std::vector<std::thread> makers;
  std::mutex mutex;
  std::string failures;
  for (auto& box : boxes) {
    makers.emplace_back([&] {
      try {
        box = make_sandbox();
      } catch (const std::exception& e) {
        std::lock_guard lock(mutex);
        failures += std::string(e.what()) + "\n";
      }
    });
  }
  for (auto& t : makers) t.join();
  ASSERT_EQ(failures, "");
  for (auto& box : boxes) {
    // A shell that has answered is done reading its start-up files.
    ASSERT_NE(run(box, "echo up-$((2+3))").find("up-5"), std::string::npos);
    const auto pids = host_pids_of(box);
    ASSERT_GE(pids.size(), 2u) << "control: the sandbox's processes are found";
    std::set<std::string> terminals;
    const std::string dir = platform_->sandbox_dir() + "/" + box.environment_id;
    const pid_t keeper = static_cast<pid_t>(read_number(dir + "/control/keeper.pid").value_or(0));
    for (const pid_t pid : pids) {
      if (pid == keeper) continue;  // in the sandbox's cgroup, not in the sandbox
      std::error_code ec;
      const std::string comm = read_file("/proc/" + std::to_string(pid) + "/comm").value_or("?");
      for (const auto& fd : fs::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec)) {
        const std::string target = fs::read_symlink(fd.path(), ec).string();
        if (target.rfind("/dev/pts/", 0) == 0) {
          terminals.insert(target);
        } else if (comm != "bwrap\n" || (target != "anon_inode:[eventfd]" && target != "anon_inode:[signalfd]")) {
          // (bubblewrap's own: how its monitor learns of the sandbox's end.)
          ADD_FAILURE() << "pid " << pid << " (" << comm << ") of " << box.environment_id << " holds fd "
                        << fd.path().filename() << ": " << target;
        }
      }
    }
    EXPECT_EQ(terminals.size(), 1u) << "one terminal per sandbox";
  }
  for (auto& box : boxes)
    EXPECT_EQ(platform_->sh("execution-environment destroy --session-id " + box.session_id).exit_code, 0);
}

// Memory and process limits are the sandbox's own: the OOM killer takes the
// offender in A, a fork bomb in A stays in A, and B keeps answering.
TEST_F(Isolation, ResourceLimitsContainTheOffender) {
  // An offender of its own: the shared sandboxes stay as they were for any
  // test that runs after this one.
  Sandbox offender = make_sandbox();
  EXPECT_NE(probe(offender, "alloc 32").find("ok alloc 32 MB"), std::string::npos) << "control";
  const std::string oom = run(offender, "~/examiso-probe alloc 1024; echo exit=$?");
  EXPECT_NE(oom.find("exit=137"), std::string::npos) << oom;
  EXPECT_NE(run(offender, "echo alive-after-oom-$((1+1))").find("alive-after-oom-2"), std::string::npos);

  EXPECT_NE(probe(offender, "fork 10").find("forked 10"), std::string::npos) << "control";
  const std::string bounded = probe(offender, "fork 1000");
  EXPECT_EQ(bounded.find("forked 1000"), std::string::npos) << bounded;

  offender.terminal->send("bomb() { bomb | bomb & }; bomb\n");
  std::this_thread::sleep_for(std::chrono::seconds(2));
  EXPECT_LE(host_pids_of(offender).size(), 64u);
  EXPECT_NE(run(*b_, "echo b-still-answers-$((2+2))", std::chrono::seconds(10)).find("b-still-answers-4"),
            std::string::npos);
  // Destroying it ends all of it.
  ASSERT_EQ(platform_->sh("execution-environment destroy --session-id " + offender.session_id).exit_code, 0);
  for (int i = 0; i < 100 && !host_pids_of(offender).empty(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_TRUE(host_pids_of(offender).empty());
}

}  // namespace
}  // namespace examiso
