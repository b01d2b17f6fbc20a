// The lifecycle service and its CLIs as users run them: the quickstart's
// lifecycle steps verbatim, bad input, watching across replicas, and the
// database going away and coming back.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <thread>

#include "common/errors.h"
#include "common/json.h"
#include "common/uuid.h"
#include "examiso/v1/lifecycle.grpc.pb.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "tests/support/platform.h"
#include "tests/support/postgres.h"
#include "common/grpc_server.h"

namespace examiso {
namespace {

using testing::Platform;

const std::string kUser = "550e8400-e29b-41d4-a716-446655440000";
const std::string kSession = "6ba7b810-9dad-11d1-80b4-00c04fd430c8";

// `expected` must be a subset of `actual`, value for value.
void expect_subset(const Json& expected, const Json& actual, const std::string& where = "") {
  for (const auto& [key, value] : expected.items()) {
    ASSERT_TRUE(actual.contains(key)) << where << key << " missing in " << actual.dump();
    if (value.is_object()) {
      expect_subset(value, actual[key], where + key + ".");
    } else {
      EXPECT_EQ(actual[key], value) << where << key;
    }
  }
}

bool is_iso8601(const Json& v) {
  return v.is_string() && v.get<std::string>().size() == 24 && v.get<std::string>().back() == 'Z';
}

class LifecycleE2E : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    platform_ = new Platform(testing::shared_postgres().create_database());
    platform_->start("lifecycle");
  }
  static void TearDownTestSuite() {
    delete platform_;
    platform_ = nullptr;
  }
  void TearDown() override {
    ASSERT_TRUE(platform_->daemon("lifecycle").running()) << platform_->logs();
  }
  static testing::CommandResult sh(const std::string& command, const testing::Env& env = {}) {
    return platform_->sh(command, env);
  }

  // A second replica, a stub for each, and a session created through the first.
  struct Replicas {
    std::unique_ptr<v1::LifecycleService::Stub> primary, other;
    v1::Session session;
  };
  static Replicas two_replicas(const std::string& user_id) {
    const std::string replica = platform_->start_replica("lifecycle");
    Replicas r{v1::LifecycleService::NewStub(
                   make_channel(platform_->address("lifecycle"), "lifecycle")),
               v1::LifecycleService::NewStub(make_channel(replica, "lifecycle")),
               {}};
    v1::CreateSessionRequest create;
    create.set_user_id(user_id);
    grpc::ClientContext c;
    EXPECT_TRUE(r.primary->CreateSession(&c, create, &r.session).ok());
    return r;
  }
  static grpc::Status transition(v1::LifecycleService::Stub& stub, const std::string& id, v1::SessionState to) {
    v1::TransitionRequest t;
    t.set_session_id(id);
    t.set_to(to);
    v1::TransitionResponse out;
    grpc::ClientContext c;
    return stub.Transition(&c, t, &out);
  }
  static Platform* platform_;
};
Platform* LifecycleE2E::platform_ = nullptr;

// The quickstart's lifecycle steps as typed (the operator names the user in
// the shell, as the quickstart's orchestrator would).
TEST_F(LifecycleE2E, QuickstartLifecycleSteps) {
  const testing::Env operator_shell{{"EXAMISO_USER_ID", kUser}};
  // 2.1
  auto r = sh(R"(session-lifecycle transition \
  --session-id "6ba7b810-9dad-11d1-80b4-00c04fd430c8" \
  --to created)",
              operator_shell);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  Json out = Json::parse(r.out);
  expect_subset({{"session_id", kSession}, {"previous_state", nullptr}, {"current_state", "created"}}, out);
  EXPECT_TRUE(is_iso8601(out["transitioned_at"])) << out;
  EXPECT_EQ(out["user_id"], kUser);

  // 2.2 (execution-environment create) moves the session to initializing; until
  // the environment service is running, the operator does it by hand.
  ASSERT_EQ(sh("session-lifecycle transition --session-id " + kSession + " --to initializing").exit_code, 0);

  // 2.3
  r = sh(R"(session-lifecycle transition \
  --session-id "6ba7b810-9dad-11d1-80b4-00c04fd430c8" \
  --to ready)");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  out = Json::parse(r.out);
  EXPECT_EQ(std::vector<std::string>({"session_id", "previous_state", "current_state", "transitioned_at"}),
            [&] {
              std::vector<std::string> keys;
              for (const auto& [k, v] : out.items()) keys.push_back(k);
              return keys;
            }());
  expect_subset({{"session_id", kSession}, {"previous_state", "initializing"}, {"current_state", "ready"}}, out);

  // 3
  r = sh(R"(session-status get \
  --session-id "6ba7b810-9dad-11d1-80b4-00c04fd430c8")");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  out = Json::parse(r.out);
  expect_subset({{"session_id", kSession},
                 {"display_state", "ready"},
                 {"message", "Your exam environment is ready"},
                 {"environment_ready", true},
                 {"remaining_seconds", 7200}},
                out);
  expect_subset({{"progress", {{"current_step", 3}, {"total_steps", 3}}}}, out);
  EXPECT_TRUE(is_iso8601(out["updated_at"]));

  // 5
  r = sh(R"(session-lifecycle transition \
  --session-id "6ba7b810-9dad-11d1-80b4-00c04fd430c8" \
  --to running)");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  expect_subset({{"previous_state", "ready"}, {"current_state", "running"}}, Json::parse(r.out));
  r = sh("session-lifecycle status --session-id " + kSession);
  out = Json::parse(r.out);
  expect_subset({{"session_id", kSession}, {"state", "running"}, {"reason", nullptr}}, out);
  EXPECT_TRUE(is_iso8601(out["started_at"]));
  EXPECT_EQ(out["started_at"], out["last_transition_at"]);

  // 7 (terminate)
  r = sh(R"(session-lifecycle transition \
  --session-id "6ba7b810-9dad-11d1-80b4-00c04fd430c8" \
  --to terminated \
  --reason "Exam time expired")");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  expect_subset({{"previous_state", "running"}, {"current_state", "terminated"}}, Json::parse(r.out));
  out = Json::parse(sh("session-lifecycle status --session-id " + kSession).out);
  expect_subset({{"state", "terminated"}, {"reason", "Exam time expired"}, {"remaining_seconds", 0}}, out);

  // "Invalid Lifecycle Transition"
  r = sh(R"(session-lifecycle transition \
  --session-id "6ba7b810-9dad-11d1-80b4-00c04fd430c8" \
  --to running)");
  EXPECT_EQ(r.exit_code, 6);
  EXPECT_EQ(r.out, "");
  const Json err = Json::parse(r.err);
  expect_subset({{"error", true},
                 {"code", "INVALID_TRANSITION"},
                 {"message", "Cannot transition from 'terminated' to 'running'"},
                 {"details", {{"current_state", "terminated"}}}},
                err);
  EXPECT_EQ(err["details"]["allowed_transitions"], Json::array());
  EXPECT_NE(r.err.find("\"allowed_transitions\": []"), std::string::npos) << r.err;

  // The history tells the whole story.
  const Json history = Json::parse(sh("session-lifecycle history --session-id " + kSession).out);
  ASSERT_EQ(history["transitions"].size(), 5u);
  EXPECT_EQ(history["transitions"][4]["reason"], "Exam time expired");
  EXPECT_EQ(history["transitions"][4]["actor"], "cli");
}

struct CliCase {
  std::string command;
  int exit_code;
  std::string code;
};

TEST_F(LifecycleE2E, BadInputGetsAClearErrorAndTheRightExitCode) {
  const std::string user = new_uuid();
  ASSERT_EQ(sh("session-lifecycle transition --to created --user-id " + user).exit_code, 0);
  const std::vector<CliCase> cases{
      {"session-lifecycle transition --session-id " + kSession + " --to bogus", 2, "INVALID_USAGE"},
      {"session-lifecycle transition --session-id " + kSession, 2, "INVALID_USAGE"},
      {"session-lifecycle transition --to running", 3, "INVALID_IDENTITY"},
      {"session-lifecycle transition --to running --session-id 'x; DROP TABLE sessions'", 3, "INVALID_IDENTITY"},
      {"session-lifecycle transition --to created", 3, "INVALID_IDENTITY"},
      {"session-lifecycle transition --to created --user-id 1 --exam-id 2", 3, "INVALID_IDENTITY"},
      {"session-lifecycle transition --to created --user-id 00000000-0000-4000-8000-0000000000aa --exam-id "
       "11111111-2222-4333-8444-555555555555",
       3, "INVALID_EXAM_ID"},
      {"session-lifecycle transition --to created --user-id " + user, 6, "ACTIVE_SESSION_EXISTS"},
      {"session-lifecycle transition --to ready --session-id 11111111-2222-4333-8444-555555555555", 4,
       "SESSION_NOT_FOUND"},
      {"session-lifecycle transition --to failed --session-id " + kSession, 3, "INVALID_ARGUMENT"},
      {"session-lifecycle transition --to terminated --termination-reason bored --session-id " + kSession, 2,
       "INVALID_USAGE"},
      {"session-lifecycle transition --to failed --session-id " + kSession + " --reason \"$(head -c 100000 "
       "/dev/zero | tr '\\0' r)\"",
       3, "INVALID_ARGUMENT"},
      {"session-status get", 3, "INVALID_IDENTITY"},
      {"session-status get --session-id 11111111-2222-4333-8444-555555555555", 4, "SESSION_NOT_FOUND"},
      {"session-lifecycle status --session-id " + std::string(10000, 'f'), 3, "INVALID_IDENTITY"},
  };
  for (const auto& c : cases) {
    const auto r = sh(c.command);
    EXPECT_EQ(r.exit_code, c.exit_code) << c.command.substr(0, 200) << "\n" << r.err.substr(0, 500);
    const Json err = Json::parse(r.err, nullptr, false);
    ASSERT_TRUE(err.is_object()) << c.command.substr(0, 200) << "\n" << r.err.substr(0, 500);
    EXPECT_EQ(err["code"], c.code) << c.command.substr(0, 200);
  }
  // The active session is reported back, so a client can resume it.
  const Json exists = Json::parse(sh("session-lifecycle transition --to created --user-id " + user).err);
  EXPECT_TRUE(exists["details"].contains("session_id"));
}

TEST_F(LifecycleE2E, AOneMegabyteReasonIsRefusedOverGrpc) {
  auto stub = v1::LifecycleService::NewStub(
      make_channel(platform_->address("lifecycle"), "lifecycle"));
  v1::CreateSessionRequest create;
  create.set_user_id(new_uuid());
  v1::Session session;
  grpc::ClientContext c1;
  ASSERT_TRUE(stub->CreateSession(&c1, create, &session).ok());
  v1::TransitionRequest t;
  t.set_session_id(session.session_id());
  t.set_to(v1::SESSION_STATE_TERMINATED);
  t.set_reason(std::string(1 << 20, 'r'));
  v1::TransitionResponse out;
  grpc::ClientContext c2;
  const grpc::Status s = stub->Transition(&c2, t, &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(from_grpc_status(s, "").code(), "INVALID_ARGUMENT");
  v1::GetSessionRequest get;
  get.set_session_id(session.session_id());
  grpc::ClientContext c3;
  ASSERT_TRUE(stub->GetSession(&c3, get, &session).ok());
  EXPECT_EQ(session.state(), v1::SESSION_STATE_CREATED);
  EXPECT_EQ(session.version(), 1);
}

// A change made through one replica reaches a watcher on another.
TEST_F(LifecycleE2E, WatchersSeeChangesMadeOnAnotherReplica) {
  auto [primary, other, session] = two_replicas(new_uuid());
  ASSERT_FALSE(session.session_id().empty());

  grpc::ClientContext watch_context;
  v1::WatchSessionRequest watch;
  watch.set_session_id(session.session_id());
  auto reader = other->WatchSession(&watch_context, watch);
  v1::SessionStatus status;
  ASSERT_TRUE(reader->Read(&status));
  EXPECT_EQ(status.display_state(), "creating");

  for (v1::SessionState to : {v1::SESSION_STATE_INITIALIZING, v1::SESSION_STATE_READY, v1::SESSION_STATE_RUNNING,
                              v1::SESSION_STATE_TERMINATED}) {
    const v1::SessionState before = status.lifecycle_state();
    const auto sent = std::chrono::steady_clock::now();
    ASSERT_TRUE(transition(*primary, session.session_id(), to).ok());
    // A heartbeat (the state before, again) may come first: it was on its way.
    do {
      ASSERT_TRUE(reader->Read(&status));
      ASSERT_TRUE(status.lifecycle_state() == to || status.lifecycle_state() == before) << status.lifecycle_state();
    } while (status.lifecycle_state() != to);
    EXPECT_LT(std::chrono::steady_clock::now() - sent, std::chrono::seconds(5));  // pushed, not polled
  }
  EXPECT_EQ(status.display_state(), "terminated");
  EXPECT_FALSE(reader->Read(&status)) << "the stream ends with the session";
  EXPECT_TRUE(reader->Finish().ok());
}

// Open watches are served by one thread of the service: holding many costs no
// thread each (it used to cost one), and each still gets its changes.
TEST_F(LifecycleE2E, OpenWatchesCostNoThreadEach) {
  const auto threads = [] { return testing::proc_status(platform_->daemon("lifecycle").pid(), "Threads"); };
  auto stub = v1::LifecycleService::NewStub(
      make_channel(platform_->address("lifecycle"), "lifecycle"));
  struct Watcher {
    std::string session_id;
    grpc::ClientContext context;
    std::unique_ptr<grpc::ClientReader<v1::SessionStatus>> reader;
  };
  constexpr int kWatches = 24;
  std::vector<std::unique_ptr<Watcher>> watchers;
  const auto open = [&] {
    v1::CreateSessionRequest create;
    create.set_user_id(new_uuid());
    v1::Session session;
    grpc::ClientContext c;
    ASSERT_TRUE(stub->CreateSession(&c, create, &session).ok());
    auto w = std::make_unique<Watcher>();
    w->session_id = session.session_id();
    v1::WatchSessionRequest request;
    request.set_session_id(w->session_id);
    w->reader = stub->WatchSession(&w->context, request);
    v1::SessionStatus first;
    ASSERT_TRUE(w->reader->Read(&first));
    watchers.push_back(std::move(w));
  };
  open();
  const int before = threads();
  for (int i = 1; i < kWatches; ++i) open();
  const int after = threads();
  EXPECT_LT(after - before, 4) << before << " threads with one watch, " << after << " with " << kWatches;
  for (auto& w : watchers) {
    ASSERT_TRUE(transition(*stub, w->session_id, v1::SESSION_STATE_TERMINATED).ok());
    v1::SessionStatus status;
    while (w->reader->Read(&status) && status.lifecycle_state() != v1::SESSION_STATE_TERMINATED) {
    }
    EXPECT_EQ(status.lifecycle_state(), v1::SESSION_STATE_TERMINATED);
    EXPECT_FALSE(w->reader->Read(&status)) << "the stream ends with the session";
    EXPECT_TRUE(w->reader->Finish().ok());
  }
}

TEST_F(LifecycleE2E, StatusFollowsChangesMadeOnAnotherReplica) {
  auto [primary, other, session] = two_replicas(new_uuid());
  ASSERT_FALSE(session.session_id().empty());
  const auto status_on = [&](v1::LifecycleService::Stub& stub) {
    v1::GetStatusRequest request;
    request.set_session_id(session.session_id());
    v1::SessionStatus status;
    grpc::ClientContext c;
    EXPECT_TRUE(stub.GetStatus(&c, request, &status).ok());
    return status.lifecycle_state();
  };
  const auto transition_on = [&](v1::LifecycleService::Stub& stub, v1::SessionState to) {
    ASSERT_TRUE(transition(stub, session.session_id(), to).ok());
  };
  for (v1::SessionState to : {v1::SESSION_STATE_INITIALIZING, v1::SESSION_STATE_READY, v1::SESSION_STATE_RUNNING}) {
    ASSERT_NE(status_on(*primary), to);  // read, so that it may be kept
    ASSERT_NE(status_on(*other), to);
    transition_on(*other, to);
    EXPECT_EQ(status_on(*other), to) << "the replica's own change";
    const auto sent = std::chrono::steady_clock::now();
    while (status_on(*primary) != to && std::chrono::steady_clock::now() - sent < std::chrono::seconds(5))
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    EXPECT_EQ(status_on(*primary), to);
  }
  transition_on(*primary, v1::SESSION_STATE_TERMINATED);
  EXPECT_EQ(status_on(*primary), v1::SESSION_STATE_TERMINATED);
}

// A second daemon on a port already served must not share it (gRPC would by
// default, handing it some of the first one's calls): it stops, saying why.
TEST_F(LifecycleE2E, ASecondDaemonOnATakenPortRefusesToStart) {
  testing::Env env = platform_->env();
  env["EXAMISO_LIFECYCLE_LISTEN"] = platform_->address("lifecycle");
  testing::Daemon second({"examiso-lifecycle"}, env);
  EXPECT_NE(second.wait(std::chrono::seconds(10)), 0);
  EXPECT_NE(second.log().find("cannot listen on " + platform_->address("lifecycle")), std::string::npos)
      << second.log();
}

TEST_F(LifecycleE2E, WatchRepeatsTheStatusWithFreshRemainingTime) {
  const std::string user = new_uuid();
  const Json created = Json::parse(sh("session-lifecycle transition --to created --user-id " + user).out);
  const std::string id = created["session_id"];
  for (const char* to : {"initializing", "ready", "running"})
    ASSERT_EQ(sh("session-lifecycle transition --to " + std::string(to) + " --session-id " + id).exit_code, 0);
  const auto r = sh("timeout 5 session-status watch --session-id " + id);
  std::istringstream lines(r.out);
  int updates = 0;
  for (std::string line; std::getline(lines, line);) {
    const Json j = Json::parse(line);
    EXPECT_EQ(j["display_state"], "running");
    EXPECT_LE(j["remaining_seconds"].get<int>(), 7200);
    ++updates;
  }
  EXPECT_GE(updates, 3) << "first status plus a heartbeat every 2 s";
}

TEST_F(LifecycleE2E, GrpcurlCanListTheService) {
  auto stub = grpc::health::v1::Health::NewStub(
      make_channel(platform_->address("lifecycle"), "lifecycle"));
  grpc::health::v1::HealthCheckRequest request;
  request.set_service("examiso.v1.LifecycleService");
  grpc::health::v1::HealthCheckResponse response;
  grpc::ClientContext c;
  ASSERT_TRUE(stub->Check(&c, request, &response).ok());
  EXPECT_EQ(response.status(), grpc::health::v1::HealthCheckResponse::SERVING);
}

grpc::health::v1::HealthCheckResponse::ServingStatus health(const std::string& address) {
  auto stub = grpc::health::v1::Health::NewStub(make_channel(address, "lifecycle"));
  grpc::health::v1::HealthCheckRequest request;
  grpc::health::v1::HealthCheckResponse response;
  grpc::ClientContext c;
  c.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
  return stub->Check(&c, request, &response).ok() ? response.status()
                                                  : grpc::health::v1::HealthCheckResponse::UNKNOWN;
}

template <class F>
bool eventually(F&& condition, std::chrono::milliseconds within) {
  const auto deadline = std::chrono::steady_clock::now() + within;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return condition();
}

// PostgreSQL stopped and started for real: fail fast, write nothing half,
// say so, and recover without a restart.
TEST(LifecycleDatabase, FailsFastWhileTheDatabaseIsDownAndRecoversByItself) {
  testing::PostgresCluster cluster;
  Platform platform(cluster.create_database());
  platform.start("lifecycle");
  const std::string user = new_uuid();
  const Json created = Json::parse(platform.sh("session-lifecycle transition --to created --user-id " + user).out);
  const std::string id = created["session_id"];
  // A watch open while the database is away: it goes on (a candidate's terminal
  // is not cut by a database blip) and sees the changes made once it is back.
  auto stub = v1::LifecycleService::NewStub(
      make_channel(platform.address("lifecycle"), "lifecycle"));
  grpc::ClientContext watch_context;
  watch_context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));  // fail, not hang
  v1::WatchSessionRequest watch;
  watch.set_session_id(id);
  auto reader = stub->WatchSession(&watch_context, watch);
  v1::SessionStatus watched;
  ASSERT_TRUE(reader->Read(&watched));

  cluster.stop();
  for (const std::string& command :
       {"session-status get --session-id " + id, "session-lifecycle transition --to initializing --session-id " + id,
        std::string("session-lifecycle transition --to created --user-id 00000000-0000-4000-8000-00000000ffff")}) {
    const auto start = std::chrono::steady_clock::now();
    const auto r = platform.sh(command);
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(3)) << command;
    EXPECT_EQ(r.exit_code, 1) << command << r.err;
    EXPECT_EQ(Json::parse(r.err)["code"], "BACKEND_UNAVAILABLE") << r.err;
  }
  EXPECT_TRUE(eventually([&] { return health(platform.address("lifecycle")) ==
                                      grpc::health::v1::HealthCheckResponse::NOT_SERVING; },
                         std::chrono::seconds(5)));
  ASSERT_TRUE(reader->Read(&watched)) << "the watch ended with the database";
  EXPECT_EQ(watched.lifecycle_state(), v1::SESSION_STATE_CREATED);

  cluster.start();
  EXPECT_TRUE(eventually([&] { return platform.sh("session-status get --session-id " + id).exit_code == 0; },
                         std::chrono::seconds(10)))
      << platform.logs();
  EXPECT_TRUE(eventually([&] { return health(platform.address("lifecycle")) ==
                                      grpc::health::v1::HealthCheckResponse::SERVING; },
                         std::chrono::seconds(5)));
  // Nothing of the refused calls was written.
  const Json status = Json::parse(platform.sh("session-lifecycle status --session-id " + id).out);
  EXPECT_EQ(status["state"], "created");
  const Json history = Json::parse(platform.sh("session-lifecycle history --session-id " + id).out);
  EXPECT_EQ(history["transitions"].size(), 1u);
  ASSERT_EQ(platform.sh("session-lifecycle transition --to initializing --session-id " + id).exit_code, 0);
  while (reader->Read(&watched) && watched.lifecycle_state() == v1::SESSION_STATE_CREATED) {
  }
  EXPECT_EQ(watched.lifecycle_state(), v1::SESSION_STATE_INITIALIZING);
  watch_context.TryCancel();
  const Json others = Json::parse(platform.sh("session-lifecycle list --user-id 00000000-0000-4000-8000-00000000ffff").out);
  EXPECT_TRUE(others["sessions"].empty());
  // And the service said so.
  const std::string log = platform.daemon("lifecycle").log();
  EXPECT_NE(log.find("\"event\":\"database_unavailable\""), std::string::npos) << log;
  EXPECT_NE(log.find("\"event\":\"database_available\""), std::string::npos) << log;
  EXPECT_TRUE(platform.daemon("lifecycle").running());
}

TEST(LifecycleDatabase, StartsBeforeTheDatabaseAndServesOnceItIsUp) {
  testing::PostgresCluster cluster;
  const std::string url = cluster.create_database();
  cluster.stop();
  Platform platform(url);
  testing::Daemon daemon({"examiso-lifecycle"}, platform.env());
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  EXPECT_TRUE(daemon.running()) << daemon.log();
  EXPECT_NE(daemon.log().find("waiting_for_database"), std::string::npos) << daemon.log();
  cluster.start();
  EXPECT_TRUE(testing::wait_serving(platform.address("lifecycle"), "lifecycle", std::chrono::seconds(10))) << daemon.log();
}

TEST(LifecycleCatalog, AnInvalidCatalogStopsStartUpNamingFileLineAndField) {
  testing::TempDir dir;
  const std::string path = dir.path() + "/exams.yaml";
  std::ofstream(path) << "exams:\n  - id: a1b2c3d4-e5f6-7890-abcd-ef1234567890\n    title: T\n"
                         "    duration_seconds: -5\n";
  Platform platform(testing::shared_postgres().create_database(), {{"EXAMISO_LIFECYCLE_EXAM_CATALOG", path}});
  testing::Daemon daemon({"examiso-lifecycle"}, platform.env());
  EXPECT_EQ(daemon.wait(std::chrono::seconds(10)), 1);
  EXPECT_NE(daemon.log().find(path + ":4: exams[0].duration_seconds: must be between 1 and 604800"),
            std::string::npos)
      << daemon.log();
}

}  // namespace
}  // namespace examiso
