#include "tests/support/platform.h"

#include <stdexcept>

#include <unistd.h>

#include <thread>

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "common/config.h"
#include "common/uuid.h"
#include "examiso/v1/lifecycle.grpc.pb.h"
#include "services/environment/local_driver.h"
#include "tests/support/http_client.h"
#include "common/grpc_server.h"

namespace examiso::testing {

Platform::Platform(std::string database_url, Env extra) : env_(std::move(extra)) {
  internal_tls_dir();
  for (const char* service : {"identity", "lifecycle", "environment", "access", "cleanup"}) {
    const std::string address = "127.0.0.1:" + std::to_string(free_port());
    addresses_[service] = address;
    env_[Config::env_name(std::string(service) + ".listen")] = address;
    env_[Config::env_name(std::string(service) + ".address")] = address;
  }
  addresses_["gateway"] = "127.0.0.1:" + std::to_string(free_port());
  env_["EXAMISO_GATEWAY_LISTEN"] = addresses_["gateway"];
  env_.emplace("EXAMISO_GATEWAY_STATIC_DIR", std::string(EXAMISO_SOURCE_DIR) + "/frontend/dist");
  env_["DATABASE_URL"] = std::move(database_url);
  env_.emplace("EXAMISO_IDENTITY_HS256_SECRET", "end-to-end-test-development-secret");
  env_.emplace("EXAMISO_IDENTITY_DEV_SIGN_IN", "true");
  env_.emplace("EXAMISO_LIFECYCLE_EXAM_CATALOG", std::string(EXAMISO_SOURCE_DIR) + "/tests/data/test_exams.yaml");
  static int instances = 0;
  cgroup_parent_ = "examiso-test-" + std::to_string(getpid()) + "-" + std::to_string(++instances);
  guard_sandboxes(sandboxes_.path());
  guard_cgroup(cgroup_parent_);
  env_.emplace("EXAMISO_ENVIRONMENT_STATE_DIR", sandboxes_.path());
  env_.emplace("EXAMISO_ENVIRONMENT_CGROUP_PARENT", cgroup_parent_);
  env_.emplace("EXAMISO_ENVIRONMENT_RECONCILE_INTERVAL_SECONDS", "1");
  // Sandboxes made ahead would be counted by tests that check what exists:
  // the tests of the warm pool turn it on.
  env_.emplace("EXAMISO_ENVIRONMENT_WARM_POOL_SIZE", "0");
}

Platform::~Platform() {
  for (auto& [name, d] : daemons_) retire(*d);
  for (auto& d : replicas_) retire(*d);
  // Sandboxes outlive the environment service by design: end them here.
  environment::LocalDriver driver({sandboxes_.path(), cgroup_parent_, bin("examiso-sandbox"), 4096});
  for (const auto& id : driver.list()) driver.destroy(id);
  for (int i = 0; i < 100 && !driver.list().empty(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  for (const char* c : {"memory", "pids", "cpu", ""})
    rmdir(("/sys/fs/cgroup/" + std::string(c) + (*c ? "/" : "") + cgroup_parent_).c_str());
}

const std::string& Platform::start(const std::string& service, const Env& extra) {
  Env env = env_;
  for (const auto& [k, v] : extra) env[k] = v;
  if (const auto old = daemons_.find(service); old != daemons_.end()) retire(*old->second);
  daemons_[service] = std::make_unique<Daemon>(std::vector<std::string>{"examiso-" + service}, env);
  const bool up = service == "gateway" ? wait_http(addresses_.at(service), std::chrono::seconds(20))
                                       : wait_serving(addresses_.at(service), service, std::chrono::seconds(20));
  if (!up)
    throw std::runtime_error(service + " did not start:\n" + daemons_[service]->log());
  return addresses_.at(service);
}

std::string Platform::start_replica(const std::string& service, const Env& extra) {
  Env env = env_;
  for (const auto& [k, v] : extra) env[k] = v;
  const std::string address = "127.0.0.1:" + std::to_string(free_port());
  env[Config::env_name(service + ".listen")] = address;
  replicas_.push_back(std::make_unique<Daemon>(std::vector<std::string>{"examiso-" + service}, env));
  const bool up = service == "gateway" ? wait_http(address, std::chrono::seconds(20))
                                       : wait_serving(address, service, std::chrono::seconds(20));
  if (!up)
    throw std::runtime_error(service + " replica did not start:\n" + replicas_.back()->log());
  return address;
}

void Platform::stop(const std::string& service) { retire(*daemons_.at(service)); }

void Platform::retire(Daemon& d) {
  const int code = d.stop();
  // Every daemon stops cleanly when asked: one that crashed, or whose
  // sanitizer found something, fails the test that ran it.
  if (d.failed_unexpectedly()) ADD_FAILURE() << d.name() << " exited with " << code << "; its log:\n" << d.log();
}

std::string Platform::create_session(const std::string& exam_id, bool auto_provision, std::string* user_id) const {
  auto stub = v1::LifecycleService::NewStub(
      make_channel(address("lifecycle"), "lifecycle"));
  v1::CreateSessionRequest request;
  request.set_user_id(new_uuid());
  request.set_exam_id(exam_id);
  request.set_auto_provision(auto_provision);
  v1::Session session;
  grpc::ClientContext context;
  if (const auto s = stub->CreateSession(&context, request, &session); !s.ok())
    throw std::runtime_error("CreateSession failed: " + s.error_message());
  if (user_id) *user_id = session.user_id();
  return session.session_id();
}

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
