#pragma once
// A real, throw-away PostgreSQL cluster for tests: Debian's server binaries,
// run as the `postgres` user when the tests run as root (it refuses root),
// data in a temporary directory, TCP on a free loopback port.
#include <string>

#include "tests/support/process.h"

namespace examiso::testing {

class PostgresCluster final {
 public:
  // initdb + start. Tests skip fsync; `durable` keeps PostgreSQL's defaults
  // (fsync, synchronous commit), for benchmarks that must be honest.
  explicit PostgresCluster(bool durable = false);
  ~PostgresCluster();
  PostgresCluster(const PostgresCluster&) = delete;
  PostgresCluster& operator=(const PostgresCluster&) = delete;

  void start();
  void stop();  // fast shutdown: clients are disconnected
  int port() const { return port_; }
  const std::string& data_dir() const { return data_dir_; }
  std::string url(const std::string& database = "postgres") const;

  // A new empty database; returns its URL.
  std::string create_database();

 private:
  CommandResult pg(const std::vector<std::string>& argv) const;

  std::string bin_dir_;
  std::string root_;
  std::string data_dir_;
  int port_ = 0;
  bool durable_ = false;
};

// One cluster per test binary, started on first use.
PostgresCluster& shared_postgres();

}  // namespace examiso::testing
