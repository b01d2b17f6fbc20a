// Provisioning and cleanup, end to end: sessions get ready by themselves or
// fail with a classified reason; every session ends on time and leaves
// nothing behind; replicas do not trip over each other.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <fstream>

#include "common/clock.h"
#include "common/json.h"
#include "common/uuid.h"
#include "examiso/v1/lifecycle.grpc.pb.h"
#include "tests/support/eventually.h"
#include "tests/support/platform.h"
#include "tests/support/postgres.h"
#include "common/grpc_server.h"

namespace examiso {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::eventually;

const std::string kTwoSecondExam = "00000000-0000-4000-8000-000000000002";
const std::string kBrokenSetup = "00000000-0000-4000-8000-000000000003";
const std::string kSlowSetup = "00000000-0000-4000-8000-000000000004";
const std::string kFifteenSecondStart = "00000000-0000-4000-8000-000000000008";

struct Harness {
  explicit Harness(testing::Env env = {}, std::vector<std::string> services = {"lifecycle", "environment", "cleanup"})
      : platform(testing::shared_postgres().create_database(), std::move(env)) {
    for (const auto& s : services) platform.start(s);
    lifecycle = v1::LifecycleService::NewStub(
        make_channel(platform.address("lifecycle"), "lifecycle"));
  }

  std::string start_session(const std::string& exam, bool auto_provision = true) {
    v1::CreateSessionRequest r;
    r.set_user_id(new_uuid());
    r.set_exam_id(exam);
    r.set_auto_provision(auto_provision);
    v1::Session s;
    grpc::ClientContext c;
    const auto status = lifecycle->CreateSession(&c, r, &s);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return s.session_id();
  }
  Json status(const std::string& id) {
    return Json::parse(platform.sh("session-lifecycle status --session-id " + id).out, nullptr, false);
  }
  std::string state(const std::string& id) { return status(id).value("state", "?"); }
  bool reaches(const std::string& id, const std::string& wanted, milliseconds within) {
    return eventually([&] { return state(id) == wanted; }, within);
  }
  Json environment(const std::string& id) {
    return Json::parse(platform.sh("execution-environment status --session-id " + id).out, nullptr, false);
  }
  Json history(const std::string& id) {
    return Json::parse(platform.sh("session-lifecycle history --session-id " + id).out)["transitions"];
  }
  size_t sandboxes() { return std::distance(fs::directory_iterator(platform.sandbox_dir()), {}); }

  testing::Platform platform;
  std::unique_ptr<v1::LifecycleService::Stub> lifecycle;
};

TEST(Provisioning, AutoProvisionedSessionsGetReadyByThemselves) {
  Harness h;
  const std::string id = h.start_session("");
  ASSERT_TRUE(h.reaches(id, "ready", seconds(10))) << h.platform.logs();
  const Json history = h.history(id);
  ASSERT_EQ(history.size(), 3u);
  EXPECT_EQ(history[1]["to"], "initializing");
  EXPECT_EQ(history[2]["to"], "ready");
  EXPECT_EQ(history[2]["actor"], "provisioner");
  EXPECT_EQ(h.environment(id)["ready"], true);
}

TEST(Provisioning, FailuresAreClassifiedAndLeaveNothing) {
  Harness h;
  const std::string broken = h.start_session(kBrokenSetup);
  const std::string slow = h.start_session(kSlowSetup);
  ASSERT_TRUE(h.reaches(broken, "failed", seconds(10))) << h.platform.logs();
  const Json status = Json::parse(h.platform.sh("session-status get --session-id " + broken).out);
  EXPECT_EQ(status["display_state"], "error");
  EXPECT_EQ(status["error_reason"], "ENVIRONMENT_INIT_FAILED");
  EXPECT_EQ(status["recoverable"], true);
  EXPECT_NE(status["technical_message"].get<std::string>().find("cannot fetch the lab files"), std::string::npos);
  // The slow one exceeds its 1 s provisioning timeout.
  ASSERT_TRUE(h.reaches(slow, "failed", seconds(8))) << h.platform.logs();
  EXPECT_EQ(Json::parse(h.platform.sh("session-status get --session-id " + slow).out)["error_reason"],
            "ENVIRONMENT_INIT_FAILED");
  EXPECT_TRUE(eventually([&] { return h.sandboxes() == 0; }, seconds(5)));
}

// The environment service away during provisioning: retried, and ready once
// it is back.
TEST(Provisioning, RetriesWhileTheEnvironmentServiceIsAway) {
  Harness h({}, {"lifecycle"});
  const std::string id = h.start_session("");
  std::this_thread::sleep_for(seconds(2));
  EXPECT_EQ(h.state(id), "created");
  h.platform.start("environment");
  EXPECT_TRUE(h.reaches(id, "ready", seconds(15))) << h.platform.logs();
  EXPECT_NE(h.platform.daemon("lifecycle").log().find("provisioning_retry"), std::string::npos);
}

// A start that cannot progress. The watcher (the candidate's page) hears
// within 10 s that it takes longer than usual, and the session fails,
// classified, within the exam's provisioning timeout (15 s here).
struct StuckStart {
  Harness& h;
  std::string id;
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
  std::optional<milliseconds> delayed_after;
  std::mutex mutex;
  std::string heard;  // what the watch heard, and how it ended: shown when it missed the delay
  grpc::ClientContext context;
  std::thread watcher;

  StuckStart(Harness& harness, const std::string& exam) : h(harness), id(h.start_session(exam)) {
    watcher = std::thread([this] {
      v1::WatchSessionRequest r;
      r.set_session_id(id);
      auto reader = h.lifecycle->WatchSession(&context, r);
      v1::SessionStatus s;
      while (reader->Read(&s)) {
        const auto at = std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - started);
        std::lock_guard lock(mutex);
        heard += std::to_string(at.count()) + " ms: " + s.display_state() + (s.delayed() ? " (delayed)\n" : "\n");
        if (s.delayed() && !delayed_after) {
          delayed_after = at;
          EXPECT_NE(s.message().find("taking longer than usual"), std::string::npos) << s.message();
        }
      }
      const grpc::Status end = reader->Finish();
      std::lock_guard lock(mutex);
      heard += "ended: " + std::to_string(end.error_code()) + " " + end.error_message() + "\n";
    });
  }
  ~StuckStart() {
    context.TryCancel();
    watcher.join();
  }
  std::string watched() {
    std::lock_guard lock(mutex);
    return heard;
  }
  std::optional<milliseconds> delayed() {
    std::lock_guard lock(mutex);
    return delayed_after;
  }
  milliseconds until_failed() {
    EXPECT_TRUE(h.reaches(id, "failed", seconds(25))) << h.platform.logs();
    return std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - started);
  }
};

TEST(Provisioning, ADownEnvironmentServiceIsToldWithin10sAndFailsClassifiedWithinTheTimeout) {
  Harness h({}, {"lifecycle", "cleanup"});
  StuckStart start(h, kFifteenSecondStart);
  const milliseconds failed_after = start.until_failed();
  const auto delayed = start.delayed();
  ASSERT_TRUE(delayed) << "the watch never said the start was delayed:\n" << start.watched() << h.platform.logs();
  EXPECT_LE(*delayed, seconds(10));
  EXPECT_LE(failed_after, seconds(15) + milliseconds(500));
  const Json status = Json::parse(h.platform.sh("session-status get --session-id " + start.id).out);
  EXPECT_EQ(status["error_reason"], "PLATFORM_UNAVAILABLE") << status.dump();
  EXPECT_EQ(status["recoverable"], true);
  EXPECT_NE(status["technical_message"].get<std::string>().find("environment service was unavailable"),
            std::string::npos)
      << status.dump();
}

TEST(Provisioning, AHangingCreateIsToldWithin10sAndFailsWithinTheTimeout) {
  Harness h;
  // The provisioner's connection is up (one session made), then the service
  // stops answering: the next create is taken and never answered.
  ASSERT_TRUE(h.reaches(h.start_session(""), "ready", seconds(10))) << h.platform.logs();
  h.platform.daemon("environment").signal(SIGSTOP);
  StuckStart start(h, kFifteenSecondStart);
  const milliseconds failed_after = start.until_failed();
  h.platform.daemon("environment").signal(SIGCONT);
  const auto delayed = start.delayed();
  ASSERT_TRUE(delayed) << "the watch never said the start was delayed:\n" << start.watched() << h.platform.logs();
  EXPECT_LE(*delayed, seconds(10));
  EXPECT_LE(failed_after, seconds(15) + milliseconds(1500));
  const Json status = Json::parse(h.platform.sh("session-status get --session-id " + start.id).out);
  EXPECT_EQ(status["error_reason"], "ENVIRONMENT_INIT_FAILED") << status.dump();
  // The create the service takes up once it runs again leaves nothing behind
  // (but the first session's sandbox).
  EXPECT_TRUE(eventually([&] { return h.sandboxes() == 1; }, seconds(10))) << h.platform.logs();
}

TEST(Provisioning, TwoReplicasProvisionEachSessionOnce) {
  Harness h;
  h.platform.start_replica("lifecycle");
  std::vector<std::string> ids;
  for (int i = 0; i < 20; ++i) ids.push_back(h.start_session(""));
  for (const auto& id : ids) {
    ASSERT_TRUE(h.reaches(id, "ready", seconds(20))) << id;
    EXPECT_EQ(h.history(id).size(), 3u) << id;
  }
  const Json all = Json::parse(h.platform.sh("execution-environment list").out)["environments"];
  EXPECT_EQ(all.size(), ids.size()) << "an environment per session, no more";
}

// A session whose deadline passes is terminated at it (cleanup sleeps until
// the soonest deadline; 3 s allowed for a busy machine), and its sandbox is
// gone soon after.
TEST(Cleanup, ExpiredSessionsEndOnTimeAndLeaveNothing) {
  Harness h;
  const std::string id = h.start_session(kTwoSecondExam);
  ASSERT_TRUE(h.reaches(id, "ready", seconds(10)));
  ASSERT_EQ(h.platform.sh("session-lifecycle transition --to running --session-id " + id).exit_code, 0);
  const TimePoint deadline = *parse_iso8601(h.status(id)["deadline"].get<std::string>());
  ASSERT_TRUE(h.reaches(id, "terminated", seconds(6)));
  const Json last = h.history(id).back();
  EXPECT_EQ(last["termination_reason"], "time_expired");
  EXPECT_EQ(last["actor"], "cleanup");
  const TimePoint ended = *parse_iso8601(last["at"].get<std::string>());
  EXPECT_GE(ended, deadline);
  EXPECT_LT(ended - deadline, seconds(3)) << "terminated " << iso8601(ended) << ", due " << iso8601(deadline);
  EXPECT_TRUE(eventually([&] { return h.environment(id).value("status", "") == "destroyed" && h.sandboxes() == 0; },
                         std::chrono::duration_cast<milliseconds>(deadline + seconds(10) -
                                                                  std::chrono::system_clock::now())));
  const Json check = Json::parse(h.platform.sh("cleanup-ttl check --session-id " + id).out);
  EXPECT_EQ(check["should_cleanup"], false);
  EXPECT_EQ(check["reason"], "Session already terminated and cleaned");
}

TEST(Cleanup, AbandonedSessionsAreTerminated) {
  Harness h(testing::Env{{"EXAMISO_CLEANUP_ABANDON_AFTER_SECONDS", "1"}});
  const std::string id = h.start_session("");
  ASSERT_TRUE(h.reaches(id, "terminated", seconds(8)));
  EXPECT_EQ(h.history(id).back()["termination_reason"], "abandoned");
  EXPECT_TRUE(eventually([&] { return h.sandboxes() == 0; }, seconds(5)));
}

TEST(Cleanup, EnvironmentsOfEndedSessionsAreReleased) {
  Harness h;
  const std::string id = h.start_session("");
  ASSERT_TRUE(h.reaches(id, "ready", seconds(10)));
  ASSERT_EQ(h.sandboxes(), 1u);
  ASSERT_EQ(h.platform.sh("session-lifecycle transition --to terminated --session-id " + id).exit_code, 0);
  EXPECT_TRUE(eventually([&] { return h.sandboxes() == 0; }, seconds(5)));
  EXPECT_EQ(h.environment(id)["status"], "destroyed");
}

TEST(Cleanup, ALostEnvironmentEndsItsSession) {
  Harness h;
  const std::string id = h.start_session("");
  ASSERT_TRUE(h.reaches(id, "ready", seconds(10)));
  ASSERT_EQ(h.platform.sh("session-lifecycle transition --to running --session-id " + id).exit_code, 0);
  const std::string env = h.environment(id)["environment_id"];
  pid_t keeper = 0;
  std::ifstream(h.platform.sandbox_dir() + "/" + env + "/control/keeper.pid") >> keeper;
  ASSERT_GT(keeper, 0);
  kill(keeper, SIGKILL);
  ASSERT_TRUE(h.reaches(id, "terminated", seconds(8))) << h.platform.logs();
  EXPECT_EQ(h.history(id).back()["termination_reason"], "environment_lost");
  EXPECT_EQ(Json::parse(h.platform.sh("session-status get --session-id " + id).out)["message"],
            "Your exam ended because its environment was lost");
}

TEST(Cleanup, CheckAndManualSweeps) {
  // No continuous sweeping here: the sweeps are ours.
  Harness h(testing::Env{{"EXAMISO_CLEANUP_SWEEP_INTERVAL_MS", "3600000"}});
  const std::string waiting = h.start_session("");
  ASSERT_TRUE(h.reaches(waiting, "ready", seconds(10)));
  Json check = Json::parse(h.platform.sh("cleanup-ttl check --session-id " + waiting).out);
  EXPECT_EQ(check["should_cleanup"], false);
  EXPECT_GT(check["ttl_remaining_seconds"].get<int>(), 890);

  const std::string due = h.start_session(kTwoSecondExam);
  ASSERT_TRUE(h.reaches(due, "ready", seconds(10)));
  ASSERT_EQ(h.platform.sh("session-lifecycle transition --to running --session-id " + due).exit_code, 0);
  check = Json::parse(h.platform.sh("cleanup-ttl check --session-id " + due).out);
  EXPECT_EQ(check["should_cleanup"], false);
  EXPECT_LE(check["ttl_remaining_seconds"].get<int>(), 2);
  std::this_thread::sleep_for(milliseconds(2200));
  check = Json::parse(h.platform.sh("cleanup-ttl check --session-id " + due).out);
  EXPECT_EQ(check["should_cleanup"], true);
  EXPECT_EQ(check["reason"], "Exam time has expired");

  const Json dry = Json::parse(h.platform.sh("cleanup-ttl sweep --dry-run").out);
  EXPECT_EQ(dry["dry_run"], true);
  EXPECT_EQ(dry["cleaned_session_ids"], Json({due}));
  EXPECT_EQ(h.state(due), "running") << "a dry run changes nothing";

  const Json swept = Json::parse(h.platform.sh("cleanup-ttl sweep").out);
  std::vector<std::string> keys;
  for (const auto& [k, v] : swept.items()) keys.push_back(k);
  EXPECT_EQ(keys, (std::vector<std::string>{"sweep_started_at", "sweep_completed_at", "sessions_checked",
                                            "sessions_cleaned", "cleaned_session_ids", "dry_run"}));
  EXPECT_EQ(swept["sessions_cleaned"], 1);
  EXPECT_EQ(swept["cleaned_session_ids"], Json({due}));
  EXPECT_EQ(h.state(due), "terminated");
  const Json history = Json::parse(h.platform.sh("cleanup-ttl history --limit 5").out)["sweeps"];
  ASSERT_GE(history.size(), 2u);
  EXPECT_EQ(history[0]["cleaned_session_ids"], Json({due}));
  EXPECT_EQ(history[0]["actions"][0]["action"], "terminate_expired");
  EXPECT_EQ(history[1]["dry_run"], true);
  EXPECT_EQ(Json::parse(h.platform.sh("cleanup-ttl check --session-id " + new_uuid()).err)["code"],
            "SESSION_NOT_FOUND");
}

TEST(Cleanup, ReplicasSweepingTogetherDoNotConflict) {
  Harness h;
  h.platform.start_replica("cleanup");
  std::vector<std::string> ids;
  for (int i = 0; i < 8; ++i) ids.push_back(h.start_session(kTwoSecondExam));
  for (const auto& id : ids) {
    ASSERT_TRUE(h.reaches(id, "ready", seconds(15)));
    ASSERT_EQ(h.platform.sh("session-lifecycle transition --to running --session-id " + id).exit_code, 0);
  }
  for (const auto& id : ids) {
    ASSERT_TRUE(h.reaches(id, "terminated", seconds(8)));
    int terminations = 0;
    for (const auto& t : h.history(id)) terminations += t["to"] == "terminated";
    EXPECT_EQ(terminations, 1);
  }
  EXPECT_TRUE(eventually([&] { return h.sandboxes() == 0; }, seconds(5)));
}

}  // namespace
}  // namespace examiso
