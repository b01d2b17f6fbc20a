// The warm pool: environments made per exam before candidates ask, with the
// exam's setup already run, claimed by a session in one statement and never
// given to anyone else. Real sandboxes, real lifecycle and environment services.
#include <gtest/gtest.h>
#include <sched.h>
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "common/json.h"
#include "common/uuid.h"
#include "services/environment/local_driver.h"
#include "services/environment/sandbox/cgroup.h"
#include "services/environment/sandbox/frames.h"
#include "tests/support/eventually.h"
#include "tests/support/platform.h"
#include "tests/support/postgres.h"
#include "tests/support/terminal.h"

namespace examiso {
namespace {

namespace fs = std::filesystem;
using testing::Platform;
using testing::TerminalClient;

constexpr auto kWait = std::chrono::seconds(20);
const std::string kLab = "00000000-0000-4000-8000-0000000000a1";
const std::string kBroken = "00000000-0000-4000-8000-0000000000a2";

// The setup leaves a mark with its own process id and the hostname it saw:
// proof that it ran once, before the claim.
const std::string kCatalog = R"yaml(default_exam: 00000000-0000-4000-8000-0000000000a1
exams:
  - id: 00000000-0000-4000-8000-0000000000a1
    title: Pooled lab
    duration_seconds: 3600
    environment:
      memory_mb: 128
      pids: 64
      setup_script: echo "setup $$ on $(cat /etc/hostname)" >> "$HOME/setup-ran"
  - id: 00000000-0000-4000-8000-0000000000a2
    title: Broken pooled lab
    duration_seconds: 3600
    environment:
      setup_script: exit 7
)yaml";

class WarmPool : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    catalog_ = new testing::TempDir();
    std::ofstream(catalog_->path() + "/exams.yaml") << kCatalog;
    platform_ = new Platform(testing::shared_postgres().create_database(),
                             {{"EXAMISO_ENVIRONMENT_WARM_POOL_SIZE", "2"},
                              {"EXAMISO_LIFECYCLE_EXAM_CATALOG", catalog_->path() + "/exams.yaml"}});
    platform_->start("lifecycle");
    platform_->start("environment");
  }
  static void TearDownTestSuite() {
    delete platform_;
    delete catalog_;
  }
  void TearDown() override { ASSERT_TRUE(platform_->daemon("environment").running()) << platform_->logs(); }

  static std::string new_session(const std::string& exam_id) { return platform_->create_session(exam_id); }

  // Sandboxes on disk that no session has: the pool.
  static std::set<std::string> sandboxes() {
    std::set<std::string> ids;
    for (const auto& e : fs::directory_iterator(platform_->sandbox_dir())) ids.insert(e.path().filename());
    return ids;
  }
  static std::set<std::string> live_session_environments() {
    const Json list = Json::parse(platform_->sh("execution-environment list").out);
    std::set<std::string> ids;
    for (const auto& e : list["environments"])
      if (e["status"] != "destroyed" && e["status"] != "error") ids.insert(e["environment_id"].get<std::string>());
    return ids;
  }
  static std::set<std::string> pool() {
    std::set<std::string> out;
    const auto claimed = live_session_environments();
    for (const auto& id : sandboxes())
      if (!claimed.count(id)) out.insert(id);
    return out;
  }
  static bool pool_is(size_t n) {
    return testing::eventually([&] { return pool().size() == n; }, kWait, std::chrono::milliseconds(200));
  }

  static testing::TempDir* catalog_;
  static Platform* platform_;
};
testing::TempDir* WarmPool::catalog_ = nullptr;
Platform* WarmPool::platform_ = nullptr;

TEST_F(WarmPool, ASessionGetsAReadyEnvironmentMadeBeforeItAskedAndThePoolRefills) {
  ASSERT_TRUE(pool_is(2)) << "pool: " << pool().size() << "\n" << platform_->logs();
  const auto before = pool();
  // Pooled environments are nobody's: they are not listed as sessions' environments.
  for (const auto& id : before) EXPECT_FALSE(live_session_environments().count(id));

  const std::string session = new_session(kLab);
  const auto r = platform_->sh("execution-environment create --session-id " + session);
  ASSERT_EQ(r.exit_code, 0) << r.err << platform_->logs();
  const Json env = Json::parse(r.out);
  EXPECT_TRUE(before.count(env["environment_id"].get<std::string>())) << r.out;
  EXPECT_EQ(env["pod_name"], "exam-" + session.substr(0, 8));
  EXPECT_EQ(env["status"], "running");

  // The session's name everywhere a shell sees it; the setup ran once, before.
  TerminalClient t(platform_->address("environment"), session);
  ASSERT_TRUE(t.send("echo \"host=$(hostname) var=$HOSTNAME file=$(cat /etc/hostname)\"; grep -c $(hostname) "
                     "/etc/hosts; cat ~/setup-ran\n"));
  const std::string name = env["pod_name"];
  ASSERT_TRUE(t.wait_for("host=" + name + " var=" + name + " file=" + name, kWait)) << t.output();
  ASSERT_TRUE(t.wait_for("setup ", kWait)) << t.output();
  EXPECT_TRUE(t.wait_for("\n1\r\n", kWait)) << t.output();  // /etc/hosts names it
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  const std::string out = t.output();
  EXPECT_EQ(out.find("setup ", out.find("setup ") + 1), std::string::npos) << "the setup ran twice:\n" << out;
  EXPECT_NE(out.find(" on pool-"), std::string::npos) << out;

  // A shell started after the candidate's ended is named the same.
  ASSERT_TRUE(t.send("exit\n"));
  ASSERT_TRUE(t.wait_for("starting a new one", kWait)) << t.output();
  const size_t mark = t.output_size();
  ASSERT_TRUE(t.send("echo \"again=$(hostname)\"\n"));
  EXPECT_TRUE(t.wait_for("again=" + name, kWait, mark)) << t.output();

  // The pool makes up for the one taken.
  EXPECT_TRUE(pool_is(2)) << platform_->logs();
  EXPECT_FALSE(pool().count(env["environment_id"]));
}

// Pool members run only on CPU time nobody else wants (SCHED_IDLE), so that
// refilling the pool never slows a candidate's terminal; a claimed one gets
// the normal policy back, for the shell and everything it starts.
TEST_F(WarmPool, PoolMembersRunOnIdleTimeAndAClaimRestoresTheNormalPolicy) {
  ASSERT_TRUE(pool_is(2)) << platform_->logs();
  const auto policies = [](const std::string& id) {
    std::set<int> seen;
    pid_t keeper = 0;
    std::ifstream(platform_->sandbox_dir() + "/" + id + "/control/keeper.pid") >> keeper;
    std::vector<int> pids = sandbox::cgroup::processes(platform_->cgroup_parent(), id);
    pids.push_back(keeper);
    for (const int pid : pids)
      if (const int policy = sched_getscheduler(pid); policy >= 0) seen.insert(policy);  // -1: it has just exited
    return std::pair(seen, pids.size());
  };
  const std::string pooled = *pool().begin();
  const auto [before, count] = policies(pooled);
  EXPECT_GE(count, 3u) << "the keeper, bwrap and the waiting shell at least";
  EXPECT_EQ(before, std::set<int>{SCHED_IDLE});

  const std::string session = new_session(kLab);
  const Json env = Json::parse(platform_->sh("execution-environment create --session-id " + session).out);
  const std::string claimed = env["environment_id"];
  EXPECT_EQ(policies(claimed).first, std::set<int>{SCHED_OTHER});
  TerminalClient t(platform_->address("environment"), session);
  ASSERT_TRUE(t.send("sleep 0.1 & grep ^policy /proc/$!/sched /proc/self/sched | tr -s ' '\n"));
  EXPECT_TRUE(t.wait_for("/sched:policy : 0\r\n", kWait)) << t.output();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(t.output().find("policy : 5"), std::string::npos) << t.output();
}

TEST_F(WarmPool, ClaimedEnvironmentsAreNeverSharedOrReused) {
  ASSERT_TRUE(pool_is(2)) << platform_->logs();
  // Two sessions at once take two different environments.
  const std::string a = new_session(kLab), b = new_session(kLab);
  testing::CommandResult ra, rb;
  std::thread ta([&] { ra = platform_->sh("execution-environment create --session-id " + a); });
  std::thread tb([&] { rb = platform_->sh("execution-environment create --session-id " + b); });
  ta.join();
  tb.join();
  ASSERT_EQ(ra.exit_code, 0) << ra.err;
  ASSERT_EQ(rb.exit_code, 0) << rb.err;
  const std::string ea = Json::parse(ra.out)["environment_id"], eb = Json::parse(rb.out)["environment_id"];
  EXPECT_NE(ea, eb);

  // A destroyed environment is gone, not given back to the pool.
  ASSERT_EQ(platform_->sh("execution-environment destroy --session-id " + a).exit_code, 0);
  EXPECT_FALSE(fs::exists(platform_->sandbox_dir() + "/" + ea));
  ASSERT_TRUE(pool_is(2)) << platform_->logs();
  EXPECT_FALSE(pool().count(ea));
  ASSERT_EQ(platform_->sh("execution-environment destroy --session-id " + b).exit_code, 0);
}

TEST_F(WarmPool, AClaimedSandboxCannotBeClaimedAgainNorRenamedFromItsTerminal) {
  ASSERT_TRUE(pool_is(2)) << platform_->logs();
  const std::string session = new_session(kLab);
  const Json env = Json::parse(platform_->sh("execution-environment create --session-id " + session).out);
  const std::string id = env["environment_id"], name = env["pod_name"];

  // The candidate types the bytes of a claim frame: they are input to the shell.
  TerminalClient t(platform_->address("environment"), session);
  const std::string forged = sandbox::encode_frame(sandbox::FrameType::claim, "intruder");
  ASSERT_TRUE(t.send(forged + "\n"));
  ASSERT_TRUE(t.send("echo \"now=$(hostname)\"\n"));
  EXPECT_TRUE(t.wait_for("now=" + name, kWait)) << t.output();

  // The keeper itself takes one claim only.
  environment::LocalDriver driver({platform_->sandbox_dir(), platform_->cgroup_parent(), "", 65536});
  try {
    driver.claim(id, "intruder");
    ADD_FAILURE() << "a second claim was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("already claimed"), std::string::npos) << e.what();
  }
  // (Its socket serves one client: the candidate's terminal attaches again.)
  TerminalClient again(platform_->address("environment"), session);
  ASSERT_TRUE(again.send("echo \"still=$(hostname) $(cat /etc/hostname) $(grep -c intruder /etc/hosts)\"\n"));
  EXPECT_TRUE(again.wait_for("still=" + name + " " + name + " 0", kWait)) << again.output();
  ASSERT_EQ(platform_->sh("execution-environment destroy --session-id " + session).exit_code, 0);
}

TEST_F(WarmPool, AnExamWhoseSetupFailsKeepsNoPoolAndStillFailsWithItsReason) {
  ASSERT_TRUE(pool_is(2)) << platform_->logs();  // only the working exam's
  const std::string session = new_session(kBroken);
  const auto r = platform_->sh("execution-environment create --session-id " + session);
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.err.find("exit 7"), std::string::npos) << r.err;
  EXPECT_TRUE(pool_is(2)) << platform_->logs();
}

TEST_F(WarmPool, SurvivesARestartOfTheServiceAndReplacesAMemberThatDied) {
  ASSERT_TRUE(pool_is(2)) << platform_->logs();
  const auto before = pool();
  platform_->stop("environment");
  platform_->start("environment");
  // Kept: the same sandboxes, neither destroyed as orphans nor made again.
  std::this_thread::sleep_for(std::chrono::seconds(2));
  EXPECT_EQ(pool(), before) << platform_->logs();

  // One dies while waiting: reconciled and replaced.
  const std::string dead = *before.begin();
  pid_t keeper = 0;
  std::ifstream(platform_->sandbox_dir() + "/" + dead + "/control/keeper.pid") >> keeper;
  ASSERT_GT(keeper, 0);
  kill(keeper, SIGKILL);
  EXPECT_TRUE(testing::eventually(
      [&] {
        const auto now = pool();
        return now.size() == 2 && !now.count(dead);
      },
      kWait, std::chrono::milliseconds(200)))
      << platform_->logs();
}

}  // namespace
}  // namespace examiso
