// kill -9 each service in turn in the middle of the flow (provisioning,
// running, expiry): after a restart everything converges, no session is
// stuck, no sandbox is orphaned.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>

#include "common/json.h"
#include "common/uuid.h"
#include "examiso/v1/lifecycle.grpc.pb.h"
#include "tests/support/eventually.h"
#include "tests/support/platform.h"
#include "tests/support/postgres.h"

namespace examiso {
namespace {

namespace fs = std::filesystem;
using std::chrono::seconds;
using testing::eventually;

const std::string kTwoSecondExam = "00000000-0000-4000-8000-000000000002";

class Convergence : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* s : {"lifecycle", "environment", "access", "cleanup"}) platform_.start(s);
  }

  std::vector<std::string> start_sessions(int n, const std::string& exam = "") {
    std::vector<std::string> ids;
    for (int i = 0; i < n; ++i) ids.push_back(platform_.create_session(exam, true));
    return ids;
  }

  std::string state(const std::string& id) {
    return Json::parse(platform_.sh("session-lifecycle status --session-id " + id).out, nullptr, false)
        .value("state", "?");
  }

  bool all_reach(const std::vector<std::string>& ids, const std::string& wanted, std::chrono::milliseconds within) {
    return eventually([&] {
      for (const auto& id : ids)
        if (state(id) != wanted) return false;
      return true;
    }, within, std::chrono::milliseconds(200));
  }

  void crash_and_restart(const std::string& service) {
    platform_.daemon(service).signal(SIGKILL);
    platform_.daemon(service).wait(seconds(5));
    platform_.start(service);
  }

  // Sandboxes on the machine are exactly the live environments, once the
  // environment service has reconciled (every second here): a sandbox half
  // made by a killed service may stand until then, not longer.
  void expect_no_orphans() {
    std::set<std::string> on_disk, live;
    const auto look = [&] {
      on_disk.clear();
      live.clear();
      for (const auto& e : fs::directory_iterator(platform_.sandbox_dir())) on_disk.insert(e.path().filename());
      const Json list = Json::parse(platform_.sh("execution-environment list").out);
      for (const auto& e : list["environments"])
        if (e["status"] == "running" || e["status"] == "creating") live.insert(e["environment_id"]);
      return on_disk == live;
    };
    eventually(look, seconds(5), std::chrono::milliseconds(200));
    EXPECT_EQ(on_disk, live) << platform_.logs();
  }

  testing::Platform platform_{testing::shared_postgres().create_database(),
                              {{"EXAMISO_LIFECYCLE_PROVISION_LEASE_SECONDS", "2"}}};
};

TEST_F(Convergence, LifecycleKilledWhileProvisioning) {
  const auto ids = start_sessions(6);
  crash_and_restart("lifecycle");
  EXPECT_TRUE(all_reach(ids, "ready", seconds(20))) << platform_.logs();
  expect_no_orphans();
}

TEST_F(Convergence, EnvironmentKilledWhileProvisioning) {
  const auto ids = start_sessions(6);
  crash_and_restart("environment");
  EXPECT_TRUE(all_reach(ids, "ready", seconds(20))) << platform_.logs();
  expect_no_orphans();
}

TEST_F(Convergence, CleanupKilledBeforeExpiry) {
  const auto ids = start_sessions(4, kTwoSecondExam);
  ASSERT_TRUE(all_reach(ids, "ready", seconds(20)));
  for (const auto& id : ids)
    ASSERT_EQ(platform_.sh("session-lifecycle transition --to running --session-id " + id).exit_code, 0);
  platform_.daemon("cleanup").signal(SIGKILL);
  platform_.daemon("cleanup").wait(seconds(5));
  std::this_thread::sleep_for(seconds(3));  // the deadlines pass with nobody sweeping
  for (const auto& id : ids) EXPECT_EQ(state(id), "running");
  platform_.start("cleanup");
  EXPECT_TRUE(all_reach(ids, "terminated", seconds(5)));
  EXPECT_TRUE(eventually([&] { return std::distance(fs::directory_iterator(platform_.sandbox_dir()), {}) == 0; },
                         seconds(5)));
  expect_no_orphans();
}

TEST_F(Convergence, EveryServiceKilledWhileSessionsRun) {
  const auto ids = start_sessions(4);
  ASSERT_TRUE(all_reach(ids, "ready", seconds(20)));
  for (const auto& id : ids)
    ASSERT_EQ(platform_.sh("session-lifecycle transition --to running --session-id " + id).exit_code, 0);
  for (const char* s : {"access", "cleanup", "environment", "lifecycle"}) crash_and_restart(s);
  for (const auto& id : ids) EXPECT_EQ(state(id), "running") << "a restart ended a session";
  const Json env = Json::parse(platform_.sh("execution-environment status --session-id " + ids[0]).out);
  EXPECT_EQ(env["ready"], true) << "the sandbox did not survive";
  expect_no_orphans();
  for (const auto& id : ids)
    ASSERT_EQ(platform_.sh("session-lifecycle transition --to terminated --session-id " + id).exit_code, 0);
  EXPECT_TRUE(eventually([&] { return std::distance(fs::directory_iterator(platform_.sandbox_dir()), {}) == 0; },
                         seconds(5)));
}

}  // namespace
}  // namespace examiso
