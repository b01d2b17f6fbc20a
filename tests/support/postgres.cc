#include "tests/support/postgres.h"

#include <pwd.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <stdexcept>

#include "common/db.h"

namespace examiso::testing {
namespace {

std::string find_pg_bin() {
  std::string best;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/usr/lib/postgresql", ec)) {
    const auto candidate = entry.path() / "bin";
    if (std::filesystem::exists(candidate / "initdb") && candidate.string() > best) best = candidate.string();
  }
  if (best.empty()) throw std::runtime_error("no PostgreSQL server binaries under /usr/lib/postgresql");
  return best;
}

}  // namespace

PostgresCluster::PostgresCluster(bool durable) : bin_dir_(find_pg_bin()), durable_(durable) {
  std::string templ = (std::filesystem::temp_directory_path() / "examiso-pg-XXXXXX").string();
  if (!mkdtemp(templ.data())) throw std::runtime_error("mkdtemp failed");
  root_ = templ;
  data_dir_ = root_ + "/data";
  guard_directory(root_);
  if (geteuid() == 0) {
    const passwd* pw = getpwnam("postgres");
    if (!pw) throw std::runtime_error("running as root needs the `postgres` user (apt-get install postgresql)");
    if (chown(root_.c_str(), pw->pw_uid, pw->pw_gid) != 0) throw std::runtime_error("chown failed");
  }
  const auto r = pg({bin_dir_ + "/initdb", "-D", data_dir_, "-U", "postgres", "-A", "trust", "--no-sync", "-E",
                     "UTF8", "--locale=C.UTF-8"});
  if (r.exit_code != 0) throw std::runtime_error("initdb failed: " + r.err);
  port_ = free_port();
  start();
}

PostgresCluster::~PostgresCluster() {
  pg({bin_dir_ + "/pg_ctl", "-D", data_dir_, "-m", "immediate", "-w", "stop"});
  std::error_code ignored;
  std::filesystem::remove_all(root_, ignored);
}

CommandResult PostgresCluster::pg(const std::vector<std::string>& argv) const {
  if (geteuid() != 0) return run(argv);
  std::vector<std::string> as_postgres{"runuser", "-u", "postgres", "--"};
  as_postgres.insert(as_postgres.end(), argv.begin(), argv.end());
  return run(as_postgres);
}

void PostgresCluster::start() {
  std::string options = "-p " + std::to_string(port_) + " -k " + root_ +
                        " -c listen_addresses=127.0.0.1 -c max_connections=300";
  if (!durable_) options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off";
  const auto r = pg({bin_dir_ + "/pg_ctl", "-D", data_dir_, "-l", root_ + "/server.log", "-o", options, "-w", "start"});
  if (r.exit_code != 0) throw std::runtime_error("pg_ctl start failed: " + r.out + r.err);
}

void PostgresCluster::stop() {
  const auto r = pg({bin_dir_ + "/pg_ctl", "-D", data_dir_, "-m", "fast", "-w", "stop"});
  if (r.exit_code != 0) throw std::runtime_error("pg_ctl stop failed: " + r.out + r.err);
}

std::string PostgresCluster::url(const std::string& database) const {
  return "postgresql://postgres@127.0.0.1:" + std::to_string(port_) + "/" + database;
}

std::string PostgresCluster::create_database() {
  static std::atomic<int> counter{0};
  const std::string name = "test_" + std::to_string(getpid()) + "_" + std::to_string(++counter);
  PgConnection admin(url(), 5, 60000, "examiso-tests");
  admin.exec("CREATE DATABASE " + name);
  return url(name);
}

PostgresCluster& shared_postgres() {
  static PostgresCluster cluster;
  return cluster;
}

}  // namespace examiso::testing
