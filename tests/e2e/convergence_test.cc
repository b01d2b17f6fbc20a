// kill -9 of each service at each step of the flow (create, provisioning,
// ready, running, terminate, expiry) ends as the same flow does without the
// kill: the table below runs every pair, with "none" as each step's control.
// After a restart everything converges: no session is lost or stuck, no
// shell is replaced, no sandbox is orphaned.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <set>

#include "common/json.h"
#include "common/uuid.h"
#include "tests/support/eventually.h"
#include "tests/support/platform.h"
#include "tests/support/postgres.h"
#include "tests/support/terminal.h"

namespace examiso {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::eventually;

const std::string kTwoSecondSetup = "00000000-0000-4000-8000-000000000009";
const std::string kFourSecondExam = "00000000-0000-4000-8000-000000000010";
constexpr int kSessions = 3;

enum class Step { create, provisioning, ready, running, terminate, expiry };

const char* step_name(Step s) {
  switch (s) {
    case Step::create: return "create";
    case Step::provisioning: return "provisioning";
    case Step::ready: return "ready";
    case Step::running: return "running";
    case Step::terminate: return "terminate";
    default: return "expiry";
  }
}

struct Case {
  Step step;
  std::string killed;  // a service, or "none": the flow as it goes without a kill
};

void PrintTo(const Case& c, std::ostream* os) { *os << "kill -9 " << c.killed << " at " << step_name(c.step); }

// The platform without the gateway, driven as an operator would (CLIs).
class Flow : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* s : {"lifecycle", "environment", "access", "cleanup"}) platform_.start(s);
  }

  struct Candidate {
    std::string user_id, session_id;
  };

  std::vector<Candidate> start_sessions(const std::string& exam) {
    std::vector<Candidate> out(kSessions);
    for (auto& c : out) c.session_id = platform_.create_session(exam, true, &c.user_id);
    return out;
  }

  // A CLI's JSON answer; an empty object when it printed none (the record is
  // not there yet, or the service is down for the moment: both happen here).
  Json answer(const std::string& command) {
    const Json out = Json::parse(platform_.sh(command).out, nullptr, false);
    return out.is_object() ? out : Json::object();
  }
  Json lifecycle(const std::string& id) { return answer("session-lifecycle status --session-id " + id); }
  std::string state(const std::string& id) { return lifecycle(id).value("state", "?"); }
  std::string environment_status(const std::string& id) {
    return answer("execution-environment status --session-id " + id).value("status", "?");
  }

  bool all(const std::vector<Candidate>& cs, const std::function<bool(const Candidate&)>& pred,
           milliseconds within = seconds(30)) {
    return eventually([&] { return std::all_of(cs.begin(), cs.end(), pred); }, within, milliseconds(100));
  }
  bool all_in(const std::vector<Candidate>& cs, const std::string& wanted, milliseconds within = seconds(30)) {
    return all(cs, [&](const Candidate& c) { return state(c.session_id) == wanted; }, within);
  }

  void transition_all(const std::vector<Candidate>& cs, const std::string& to) {
    for (const auto& c : cs)
      ASSERT_EQ(platform_.sh("session-lifecycle transition --to " + to + " --session-id " + c.session_id).exit_code, 0)
          << platform_.logs();
  }

  void kill(const std::string& service) {
    if (service == "none") return;
    platform_.daemon(service).signal(SIGKILL);
    ASSERT_NE(platform_.daemon(service).wait(seconds(5)), -1);
    platform_.start(service);
  }

  // Two sweeps on demand, as cleanup makes them every second: what they would
  // end has ended by then.
  void sweep_twice() {
    for (int i = 0; i < 2; ++i)
      ASSERT_EQ(platform_.sh("cleanup-ttl sweep").exit_code, 0) << platform_.logs();
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
    eventually(look, seconds(10), milliseconds(200));
    EXPECT_EQ(on_disk, live) << platform_.logs();
  }

  size_t sandboxes() { return static_cast<size_t>(std::distance(fs::directory_iterator(platform_.sandbox_dir()), {})); }

  // A ready session: ready, its environment running, and cleanup leaves it be.
  void expect_ready(const std::vector<Candidate>& cs) {
    ASSERT_TRUE(all_in(cs, "ready")) << platform_.logs();
    sweep_twice();
    for (const auto& c : cs) {
      EXPECT_EQ(state(c.session_id), "ready") << "cleanup ended a ready session\n" << platform_.logs();
      EXPECT_EQ(environment_status(c.session_id), "running");
      const auto a = platform_.sh("environment-access authorize --session-id " + c.session_id + " --user-id " +
                                  c.user_id + " --access-type terminal");
      EXPECT_EQ(a.exit_code, 0) << a.err;
    }
    EXPECT_EQ(sandboxes(), cs.size());
    expect_no_orphans();
  }

  void expect_ended(const std::vector<Candidate>& cs, const std::string& reason) {
    ASSERT_TRUE(all_in(cs, "terminated")) << platform_.logs();
    for (const auto& c : cs) {
      const Json history = Json::parse(platform_.sh("session-lifecycle history --session-id " + c.session_id).out);
      EXPECT_EQ(history["transitions"].back().value("termination_reason", ""), reason) << history.dump();
    }
    EXPECT_TRUE(eventually([&] { return sandboxes() == 0; }, seconds(10))) << platform_.logs();
    expect_no_orphans();
  }

  testing::Platform platform_{testing::shared_postgres().create_database(),
                              {{"EXAMISO_LIFECYCLE_PROVISION_LEASE_SECONDS", "2"}}};
};

class Convergence : public Flow, public ::testing::WithParamInterface<Case> {};

TEST_P(Convergence, EndsAsWithoutTheKill) {
  const auto [step, killed] = GetParam();
  SCOPED_TRACE(std::string("kill -9 ") + killed + " at " + step_name(step));
  switch (step) {
    case Step::create: {
      const auto cs = start_sessions("");
      kill(killed);
      expect_ready(cs);
      break;
    }
    case Step::provisioning: {
      // Every create under way (its setup takes two seconds) when the kill comes.
      const auto cs = start_sessions(kTwoSecondSetup);
      ASSERT_TRUE(all(cs, [&](const Candidate& c) { return environment_status(c.session_id) == "creating"; }))
          << platform_.logs();
      kill(killed);
      expect_ready(cs);
      break;
    }
    case Step::ready: {
      const auto cs = start_sessions("");
      ASSERT_TRUE(all_in(cs, "ready")) << platform_.logs();
      kill(killed);
      expect_ready(cs);
      transition_all(cs, "running");
      break;
    }
    case Step::running: {
      const auto cs = start_sessions("");
      ASSERT_TRUE(all_in(cs, "ready")) << platform_.logs();
      transition_all(cs, "running");
      {
        testing::TerminalClient t(platform_.address("environment"), cs[0].session_id);
        t.send("export MARK=$((6000+66)); echo set-$MARK\n");
        ASSERT_TRUE(t.wait_for("set-6066", seconds(10))) << t.output();
      }
      kill(killed);
      sweep_twice();
      for (const auto& c : cs) EXPECT_EQ(state(c.session_id), "running") << "a restart ended a session";
      testing::TerminalClient t(platform_.address("environment"), cs[0].session_id);
      t.send("echo again-$MARK\n");
      EXPECT_TRUE(t.wait_for("again-6066", seconds(10))) << "not the same shell: " << t.output();
      EXPECT_EQ(sandboxes(), cs.size());
      expect_no_orphans();
      break;
    }
    case Step::terminate: {
      const auto cs = start_sessions("");
      ASSERT_TRUE(all_in(cs, "ready")) << platform_.logs();
      transition_all(cs, "running");
      for (const auto& c : cs)
        ASSERT_EQ(platform_.sh("session-lifecycle transition --to terminated --termination-reason submitted"
                               " --session-id " +
                               c.session_id)
                      .exit_code,
                  0);
      kill(killed);  // before cleanup has released every environment
      expect_ended(cs, "submitted");
      break;
    }
    case Step::expiry: {
      const auto cs = start_sessions(kFourSecondExam);
      ASSERT_TRUE(all_in(cs, "ready")) << platform_.logs();
      transition_all(cs, "running");
      std::this_thread::sleep_for(seconds(3));
      kill(killed);  // around the deadline
      expect_ended(cs, "time_expired");
      break;
    }
  }
}

std::vector<Case> all_cases() {
  std::vector<Case> out;
  for (Step step : {Step::create, Step::provisioning, Step::ready, Step::running, Step::terminate, Step::expiry})
    for (const char* service : {"none", "lifecycle", "environment", "access", "cleanup"}) out.push_back({step, service});
  return out;
}

INSTANTIATE_TEST_SUITE_P(KillNineTable, Convergence, ::testing::ValuesIn(all_cases()),
                         [](const ::testing::TestParamInfo<Case>& info) {
                           return std::string(step_name(info.param.step)) + "_" + info.param.killed;
                         });

// The deadline holds with nobody sweeping: lifecycle refuses all but the
// termination, which then says time_expired whoever asks for it; cleanup, back,
// ends the rest.
class Deadline : public Flow {};

TEST_F(Deadline, HoldsWhileCleanupIsDown) {
  const auto cs = start_sessions(kFourSecondExam);
  ASSERT_TRUE(all_in(cs, "ready")) << platform_.logs();
  platform_.stop("cleanup");
  transition_all(cs, "running");
  ASSERT_TRUE(eventually([&] { return lifecycle(cs[0].session_id).value("state", "") == "running"; }, seconds(1)));
  std::this_thread::sleep_for(seconds(5));  // past the deadline, nobody sweeping
  const auto failed = platform_.sh("session-lifecycle transition --to failed --reason late --session-id " +
                                   cs[0].session_id);
  EXPECT_EQ(failed.exit_code, 6) << failed.err;
  const Json error = Json::parse(failed.err, nullptr, false);
  EXPECT_EQ(error.value("code", ""), "INVALID_TRANSITION");
  EXPECT_EQ(error["details"]["allowed_transitions"], Json::array({"terminated"})) << failed.err;
  const Json status = Json::parse(platform_.sh("session-status get --session-id " + cs[1].session_id).out);
  EXPECT_EQ(status["remaining_seconds"], 0);
  EXPECT_EQ(status["message"], "Your exam time has expired");
  // A late submission is recorded as what it is: the time had expired.
  ASSERT_EQ(platform_.sh("session-lifecycle transition --to terminated --session-id " + cs[1].session_id).exit_code, 0);
  const Json history = Json::parse(platform_.sh("session-lifecycle history --session-id " + cs[1].session_id).out);
  EXPECT_EQ(history["transitions"].back().value("termination_reason", ""), "time_expired");
  platform_.start("cleanup");
  expect_ended(cs, "time_expired");
}

}  // namespace
}  // namespace examiso
