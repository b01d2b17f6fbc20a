#include "tests/support/platform.h"

#include <stdexcept>

#include "common/config.h"

namespace examiso::testing {

Platform::Platform(std::string database_url, Env extra) : env_(std::move(extra)) {
  for (const char* service : {"identity", "lifecycle", "environment", "access", "cleanup"}) {
    const std::string address = "127.0.0.1:" + std::to_string(free_port());
    addresses_[service] = address;
    env_[Config::env_name(std::string(service) + ".listen")] = address;
    env_[Config::env_name(std::string(service) + ".address")] = address;
  }
  env_["DATABASE_URL"] = std::move(database_url);
  env_.emplace("EXAMISO_IDENTITY_HS256_SECRET", "end-to-end-test-development-secret");
  env_.emplace("EXAMISO_LIFECYCLE_EXAM_CATALOG", std::string(EXAMISO_SOURCE_DIR) + "/config/exams.yaml");
}

const std::string& Platform::start(const std::string& service, const Env& extra) {
  Env env = env_;
  for (const auto& [k, v] : extra) env[k] = v;
  daemons_[service] = std::make_unique<Daemon>(std::vector<std::string>{"examiso-" + service}, env);
  if (!wait_serving(addresses_.at(service), std::chrono::seconds(20)))
    throw std::runtime_error(service + " did not start:\n" + daemons_[service]->log());
  return addresses_.at(service);
}

std::string Platform::start_replica(const std::string& service, const Env& extra) {
  Env env = env_;
  for (const auto& [k, v] : extra) env[k] = v;
  const std::string address = "127.0.0.1:" + std::to_string(free_port());
  env[Config::env_name(service + ".listen")] = address;
  replicas_.push_back(std::make_unique<Daemon>(std::vector<std::string>{"examiso-" + service}, env));
  if (!wait_serving(address, std::chrono::seconds(20)))
    throw std::runtime_error(service + " replica did not start:\n" + replicas_.back()->log());
  return address;
}

void Platform::stop(const std::string& service) { daemons_.at(service)->stop(); }

CommandResult Platform::sh(const std::string& command, const Env& extra) const {
  Env env = env_;
  for (const auto& [k, v] : extra) env[k] = v;
  return run_shell(command, env);
}

std::string Platform::logs() const {
  std::string out;
  for (const auto& [name, d] : daemons_) out += "--- " + name + "\n" + d->log();
  for (const auto& d : replicas_) out += "--- replica\n" + d->log();
  return out;
}

}  // namespace examiso::testing
