#include "services/environment/sandbox/bwrap.h"

#include <unistd.h>

#include <filesystem>

#include "common/files.h"

namespace examiso::sandbox {
namespace {

// What of the host's /etc a shell needs: the loader, shells' and tools'
// defaults, time zones, certificates. Nothing with secrets or host identity.
constexpr const char* kHostEtc[] = {
    "ld.so.cache", "ld.so.conf",  "ld.so.conf.d", "alternatives",  "bash.bashrc",     "profile",
    "profile.d",   "inputrc",     "localtime",    "timezone",      "ssl",             "ca-certificates",
    "terminfo",    "vim",         "nanorc",       "mime.types",    "protocols",       "services",
    "skel",        "os-release",  "debian_version", "login.defs",  "nsswitch.conf",   "bash_completion.d",
    "python3",     "python3.11",  "perl",         "gitconfig",     "screenrc",        "magic",
};

// The device nodes bubblewrap's --dev provides, each bound again from the
// sandbox's own view of /dev (a lock on the host's /dev/null is seen by all).
constexpr const char* kDevices[] = {"null", "zero", "full", "random", "urandom", "tty"};

}  // namespace

std::vector<std::string> sandbox_command(const SandboxLayout& l, const std::vector<std::string>& command,
                                         bool info_fd) {
  const std::string uid = std::to_string(l.host_uid);
  std::vector<std::string> a{"/usr/bin/setpriv",
                             "--reuid=" + uid,
                             "--regid=" + uid,
                             "--clear-groups",
                             "--no-new-privs",
                             "--inh-caps=-all",
                             "--bounding-set=-all",
                             "--",
                             "/usr/bin/bwrap",
                             "--unshare-all",
                             "--unshare-user",
                             "--disable-userns",
                             "--die-with-parent",
                             "--uid",
                             "1000",
                             "--gid",
                             "1000",
                             "--hostname",
                             l.hostname,
                             "--ro-bind",
                             l.system_dir + "/usr",
                             "/usr",
                             "--symlink",
                             "usr/bin",
                             "/bin",
                             "--symlink",
                             "usr/sbin",
                             "/sbin",
                             "--symlink",
                             "usr/lib",
                             "/lib"};
  if (info_fd) a.insert(a.end(), {"--info-fd", "3"});
  a.insert(a.end(), {"--seccomp", std::to_string(kSeccompFd)});
  if (std::filesystem::exists("/usr/lib64")) a.insert(a.end(), {"--symlink", "usr/lib64", "/lib64"});
  a.insert(a.end(), {"--proc", "/proc", "--dev", "/dev"});
  for (const char* device : kDevices)
    a.insert(a.end(), {"--dev-bind", l.system_dir + "/dev/" + device, std::string("/dev/") + device});
  // /dev itself read-only: only /dev/shm (size-capped) and the terminals are written.
  a.insert(a.end(), {"--perms", "1777", "--size", std::to_string(l.shm_size_bytes), "--tmpfs", "/dev/shm",
                     "--remount-ro", "/dev", "--dir", "/etc"});
  for (const char* entry : kHostEtc) {
    const std::string path = std::string("/etc/") + entry;
    std::error_code ec;
    // A link stays a link, resolved inside (to the sandbox's /usr), not the host's file bound.
    if (std::filesystem::is_symlink(path, ec)) {
      a.insert(a.end(), {"--symlink", std::filesystem::read_symlink(path, ec).string(), path});
    } else if (std::filesystem::exists(path, ec)) {
      a.insert(a.end(), {"--ro-bind", l.system_dir + path, path});
    }
  }
  for (const char* own : {"passwd", "group", "hosts", "hostname"})
    a.insert(a.end(), {"--ro-bind", l.etc_dir + "/" + own, std::string("/etc/") + own});
  a.insert(a.end(), {"--dir", "/var", "--perms", "1777", "--size", std::to_string(l.tmp_size_bytes), "--tmpfs", "/tmp",
                     "--symlink", "../tmp", "/var/tmp", "--bind", l.home_dir, kHome, "--remount-ro", "/", "--chdir", kHome,
                     "--clearenv",
                     "--setenv", "HOME", kHome, "--setenv", "USER", "candidate", "--setenv", "LOGNAME", "candidate",
                     "--setenv", "SHELL", "/bin/bash", "--setenv", "TERM", "xterm-256color", "--setenv", "LANG",
                     "C.UTF-8", "--setenv", "HOSTNAME", l.hostname, "--setenv", "PATH",
                     "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin", "--"});
  a.insert(a.end(), command.begin(), command.end());
  return a;
}

void write_etc(const std::string& etc_dir, const std::string& hostname) {
  std::filesystem::create_directories(etc_dir);
  write_file(etc_dir + "/passwd",
             "root:x:0:0:root:/root:/usr/sbin/nologin\n"
             "candidate:x:1000:1000:Exam candidate:/home/candidate:/bin/bash\n"
             "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n");
  write_file(etc_dir + "/group", "root:x:0:\ncandidate:x:1000:\nnogroup:x:65534:\n");
  write_file(etc_dir + "/hosts", "127.0.0.1\tlocalhost " + hostname + "\n::1\tlocalhost\n");
  write_file(etc_dir + "/hostname", hostname + "\n");
}

}  // namespace examiso::sandbox
