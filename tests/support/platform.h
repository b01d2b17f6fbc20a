#pragma once
// The real platform for end-to-end tests: the service daemons on free
// loopback ports, wired to each other and to a test database, and the
// environment a CLI needs to reach them.
#include <map>
#include <memory>
#include <string>

#include "tests/support/process.h"

namespace examiso::testing {

class Platform final {
 public:
  // `database_url`: a fresh database (see PostgresCluster::create_database).
  explicit Platform(std::string database_url, Env extra = {});

  // Starts examiso-<service> and waits until it is SERVING; returns its address.
  const std::string& start(const std::string& service, const Env& extra = {});
  // A second replica of `service` on another port (same database); returns its address.
  std::string start_replica(const std::string& service, const Env& extra = {});
  void stop(const std::string& service);

  Daemon& daemon(const std::string& service) { return *daemons_.at(service); }
  const std::string& address(const std::string& service) const { return addresses_.at(service); }

  // What a CLI (or a daemon) needs in its environment to reach every service.
  const Env& env() const { return env_; }

  // A new session of `exam_id` ("" : the catalog's default) for a new user
  // (in `user_id` if asked), through the lifecycle service; its id. Throws
  // when it cannot be made.
  std::string create_session(const std::string& exam_id = "", bool auto_provision = false,
                             std::string* user_id = nullptr) const;

  // Runs a command line with build/bin on PATH and env().
  CommandResult sh(const std::string& command, const Env& extra = {}) const;

  // Every daemon's log, for failure messages.
  std::string logs() const;

  // Where this platform's local sandboxes live, and their cgroup parent.
  const std::string& sandbox_dir() const { return sandboxes_.path(); }
  const std::string& cgroup_parent() const { return cgroup_parent_; }

  ~Platform();

 private:
  // Stops it (if it still runs); a failure of the test when it ended badly.
  void retire(Daemon& d);

  TempDir sandboxes_;
  std::string cgroup_parent_;
  Env env_;
  std::map<std::string, std::string> addresses_;
  std::map<std::string, std::unique_ptr<Daemon>> daemons_;
  std::vector<std::unique_ptr<Daemon>> replicas_;
};

}  // namespace examiso::testing
