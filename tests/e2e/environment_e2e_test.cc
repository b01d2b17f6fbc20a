// The environment service with the local driver: real sandboxes, the CLI as
// the quickstart uses it, the terminal stream, and reconciliation.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <sstream>
#include <fstream>
#include <thread>

#include "common/files.h"
#include "common/json.h"
#include "common/grpc_server.h"
#include "common/uuid.h"
#include "examiso/v1/environment.grpc.pb.h"
#include "examiso/v1/lifecycle.grpc.pb.h"
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

constexpr auto kWait = std::chrono::seconds(10);

class EnvironmentE2E : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    platform_ = new Platform(testing::shared_postgres().create_database());
    platform_->start("lifecycle");
    platform_->start("environment");
  }
  static void TearDownTestSuite() {
    delete platform_;
    platform_ = nullptr;
  }
  void TearDown() override { ASSERT_TRUE(platform_->daemon("environment").running()) << platform_->logs(); }

  // A new session in `created`, for exam `exam_id` (default: the catalog's).
  static std::string new_session(const std::string& exam_id = "") { return platform_->create_session(exam_id); }

  static Json create(const std::string& session_id, int expected_exit = 0, const std::string& extra = "") {
    const auto r = platform_->sh("execution-environment create --session-id " + session_id + extra);
    EXPECT_EQ(r.exit_code, expected_exit) << r.err << platform_->logs();
    return Json::parse(expected_exit == 0 ? r.out : r.err, nullptr, false);
  }

  static std::string lifecycle_state(const std::string& session_id) {
    return Json::parse(platform_->sh("session-lifecycle status --session-id " + session_id).out)["state"];
  }

  static std::string env_address() { return platform_->address("environment"); }
  static std::string sandbox(const std::string& environment_id) {
    return platform_->sandbox_dir() + "/" + environment_id;
  }
  // A viewer straight on the keeper's staff socket (past the environment service).
  static int raw_viewer(const std::string& environment_id) {
    const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    const std::string path = sandbox(environment_id) + "/control/observe.sock";
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0) << path;
    EXPECT_TRUE(sandbox::write_all(fd, sandbox::encode_frame(sandbox::FrameType::view, "")));
    return fd;
  }
  static pid_t keeper_of(const std::string& environment_id) {
    pid_t keeper = 0;
    std::ifstream(sandbox(environment_id) + "/control/keeper.pid") >> keeper;
    return keeper;
  }

  static Platform* platform_;
};
Platform* EnvironmentE2E::platform_ = nullptr;

// Quickstart 2.2 and the destroy of step 7, as typed.
TEST_F(EnvironmentE2E, QuickstartCreateAndDestroy) {
  const std::string session = new_session();
  const auto r = platform_->sh("execution-environment create \\\n  --session-id \"" + session + "\" \\\n  --timeout 60");
  ASSERT_EQ(r.exit_code, 0) << r.err << platform_->logs();
  const Json env = Json::parse(r.out);
  std::vector<std::string> keys;
  for (const auto& [k, v] : env.items()) keys.push_back(k);
  EXPECT_EQ(keys, (std::vector<std::string>{"environment_id", "session_id", "pod_name", "pod_namespace", "status",
                                            "created_at", "ready_at"}));
  EXPECT_TRUE(is_uuid(env["environment_id"].get<std::string>()));
  EXPECT_EQ(env["session_id"], session);
  EXPECT_EQ(env["pod_name"], "exam-" + session.substr(0, 8));
  EXPECT_EQ(env["pod_namespace"], "exam-sessions");
  EXPECT_EQ(env["status"], "running");
  EXPECT_EQ(lifecycle_state(session), "initializing") << "create moves a created session on";
  // The quickstart's next step now succeeds.
  EXPECT_EQ(platform_->sh("session-lifecycle transition --session-id " + session + " --to ready").exit_code, 0);

  const Json status = Json::parse(platform_->sh("execution-environment status --session-id " + session).out);
  EXPECT_EQ(status["ready"], true);
  EXPECT_EQ(status["status"], "running");
  EXPECT_TRUE(fs::exists(sandbox(env["environment_id"])));

  const auto d = platform_->sh("execution-environment destroy \\\n  --session-id \"" + session + "\"");
  ASSERT_EQ(d.exit_code, 0) << d.err;
  const Json destroyed = Json::parse(d.out);
  EXPECT_EQ(destroyed["environment_id"], env["environment_id"]);
  EXPECT_EQ(destroyed["session_id"], session);
  EXPECT_TRUE(destroyed["destroyed_at"].is_string());
  EXPECT_FALSE(fs::exists(sandbox(env["environment_id"])));
  // Destroying twice is not an error, and says the same.
  const auto again = platform_->sh("execution-environment destroy --session-id " + session);
  EXPECT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(Json::parse(again.out), destroyed);
  const Json after = Json::parse(platform_->sh("execution-environment status --session-id " + session).out);
  EXPECT_EQ(after["status"], "destroyed");
  EXPECT_EQ(after["ready"], false);
}

TEST_F(EnvironmentE2E, CreateIsIdempotentPerSession) {
  const std::string session = new_session();
  std::vector<std::thread> callers;
  std::vector<std::string> ids(5);
  for (size_t i = 0; i < ids.size(); ++i) {
    callers.emplace_back([&, i] {
      const auto r = platform_->sh("execution-environment create --session-id " + session);
      ids[i] = Json::parse(r.out, nullptr, false).value("environment_id", "failed: " + r.err);
    });
  }
  for (auto& t : callers) t.join();
  for (const auto& id : ids) EXPECT_EQ(id, ids[0]);
  EXPECT_EQ(create(session)["environment_id"], ids[0]);
  int sandboxes = 0;
  for (const auto& e : fs::directory_iterator(platform_->sandbox_dir())) sandboxes += e.path().filename() == ids[0];
  EXPECT_EQ(sandboxes, 1);
}

// A failed or timed-out create is exit 1 with the reason, and leaves nothing.
TEST_F(EnvironmentE2E, AFailedCreateLeavesNothingAllocated) {
  const auto before_dirs = std::distance(fs::directory_iterator(platform_->sandbox_dir()), {});
  const auto before_cgroups = sandbox::cgroup::list(platform_->cgroup_parent()).size();
  for (const auto& [exam, reason] : {std::pair{"00000000-0000-4000-8000-000000000003", "cannot fetch the lab files"},
                                     std::pair{"00000000-0000-4000-8000-000000000004", "did not finish in time"}}) {
    const std::string session = new_session(exam);
    const auto start = std::chrono::steady_clock::now();
    const Json err = create(session, 1, std::string(exam).back() == '4' ? " --timeout 1" : "");
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
    EXPECT_EQ(err["code"], "ENVIRONMENT_CREATE_FAILED");
    EXPECT_NE(err["details"]["reason"].get<std::string>().find(reason), std::string::npos) << err;
    EXPECT_EQ(std::distance(fs::directory_iterator(platform_->sandbox_dir()), {}), before_dirs);
    const Json status = Json::parse(platform_->sh("execution-environment status --session-id " + session).out);
    EXPECT_EQ(status["status"], "error");
  }
  // Cgroups are released as soon as the kernel lets go of them.
  for (int i = 0; i < 100 && sandbox::cgroup::list(platform_->cgroup_parent()).size() > before_cgroups; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(sandbox::cgroup::list(platform_->cgroup_parent()).size(), before_cgroups);
}

TEST_F(EnvironmentE2E, BadInputGetsTheRightExitCode) {
  struct Case {
    std::string command;
    int exit_code;
    std::string code;
  };
  const std::string ended = new_session();
  ASSERT_EQ(platform_->sh("session-lifecycle transition --to terminated --session-id " + ended).exit_code, 0);
  for (const Case& c : std::vector<Case>{
           {"execution-environment create", 3, "INVALID_IDENTITY"},
           {"execution-environment create --session-id nope", 3, "INVALID_IDENTITY"},
           {"execution-environment create --session-id " + new_uuid(), 4, "SESSION_NOT_FOUND"},
           {"execution-environment create --session-id " + ended, 6, "SESSION_TERMINATED"},
           {"execution-environment create --session-id " + new_uuid() + " --timeout 0", 2, "INVALID_USAGE"},
           {"execution-environment create --session-id " + new_uuid() + " --timeout soon", 2, "INVALID_USAGE"},
           {"execution-environment status --session-id " + new_uuid(), 4, "ENVIRONMENT_NOT_FOUND"},
           {"execution-environment destroy --session-id " + new_uuid(), 4, "ENVIRONMENT_NOT_FOUND"},
           {"execution-environment destroy --session-id '../../etc'", 3, "INVALID_IDENTITY"},
       }) {
    const auto r = platform_->sh(c.command);
    EXPECT_EQ(r.exit_code, c.exit_code) << c.command << "\n" << r.err;
    EXPECT_EQ(Json::parse(r.err, nullptr, false).value("code", ""), c.code) << c.command << "\n" << r.err;
  }
}

TEST_F(EnvironmentE2E, TheTerminalRunsInTheSandbox) {
  const std::string session = new_session();
  create(session);
  TerminalClient t(env_address(), session, 100, 30);
  t.send("echo $((6*7)); whoami; hostname; pwd; stty size; cat ~/exam/README\n");
  ASSERT_TRUE(t.wait_for("42", kWait)) << t.output() << "\n" << platform_->logs();
  ASSERT_TRUE(t.wait_for("Welcome to your exam environment", kWait)) << t.output();
  const std::string out = t.output();
  EXPECT_NE(out.find("candidate"), std::string::npos);
  EXPECT_NE(out.find("exam-" + session.substr(0, 8)), std::string::npos);
  EXPECT_NE(out.find("/home/candidate"), std::string::npos);
  EXPECT_NE(out.find("30 100"), std::string::npos) << out;
  t.resize(132, 43);
  const size_t mark = t.output_size();
  t.send("stty size\n");
  if (!t.wait_for("43 132", kWait, mark)) {
    // Seen once under ASan in a full run (the old size, 30 100): asked again,
    // the answer tells a late resize from a lost one.
    const size_t again = t.output_size();
    t.send("stty size\n");
    t.wait_for("$ ", kWait, again + 10);
    ADD_FAILURE() << "the resize was not seen by the next command:\n"
                  << t.output() << "\nasked again:\n" << t.output().substr(again) << platform_->logs();
  }
}

// A dropped client leaves the shell running; the next one gets the same shell
// and the recent output first.
TEST_F(EnvironmentE2E, ReattachingResumesTheSameShellWithRecentOutput) {
  const std::string session = new_session();
  create(session);
  std::string pid;
  {
    TerminalClient t(env_address(), session);
    t.send("export MARK=remembered; echo shell-pid-$$-e\"\"nd\n");  // typed text differs from output
    ASSERT_TRUE(t.wait_for("-end", kWait));
    const std::string out = t.output();
    const auto at = out.rfind("shell-pid-");
    pid = out.substr(at + 10, out.find("-end", at) - at - 10);
    t.send("for i in 1 2 3; do echo line-$i; done\n");
    ASSERT_TRUE(t.wait_for("line-3", kWait));
  }  // dropped without a goodbye
  TerminalClient again(env_address(), session);
  EXPECT_TRUE(again.wait_for("line-3", kWait)) << "no replay: " << again.output();
  const size_t mark = again.output_size();
  again.send("echo same-$$-$MARK\n");
  EXPECT_TRUE(again.wait_for("same-" + pid + "-remembered", kWait, mark)) << "pid " << pid << ":\n" << again.output();
  EXPECT_TRUE(again.detach().ok());
  TerminalClient third(env_address(), session);
  third.send("echo still-here\n");
  EXPECT_TRUE(third.wait_for("still-here", kWait));
}

// Staff observe a terminal beside its candidate: the recent output, then the
// live; nothing an observer sends reaches the shell; the candidate keeps the
// terminal and is told how many observe.
TEST_F(EnvironmentE2E, ObserversSeeTheTerminalAndCannotTouchIt) {
  const std::string session = new_session();
  const std::string environment_id = create(session)["environment_id"];
  TerminalClient candidate(env_address(), session);
  candidate.send("echo before-$((20+1))\n");
  ASSERT_TRUE(candidate.wait_for("before-21", kWait));
  TerminalClient observer(env_address(), session, 80, 24, true), second(env_address(), session, 80, 24, true);
  EXPECT_TRUE(observer.wait_for("before-21", kWait)) << "the replay";
  EXPECT_TRUE(testing::eventually([&] { return candidate.observers() == 2; }, kWait)) << candidate.observers();
  observer.send("touch /tmp/observer-typed\n");
  observer.resize(33, 11);
  // And straight on the keeper's staff socket (past the service, which drops
  // an observer's input itself): ignored there too.
  const int raw = raw_viewer(environment_id);
  using sandbox::FrameType;
  char replay[64];
  ASSERT_GT(read(raw, replay, sizeof replay), 0) << "a viewer, sent the replay";
  EXPECT_TRUE(sandbox::write_all(raw, sandbox::encode_frame(FrameType::input, "touch /tmp/observer-typed\n") +
                                          sandbox::encode_resize(33, 11)));
  const size_t mark = candidate.output_size();
  candidate.send("stty size; test -e /tmp/observer-typed && echo EXISTS || echo absent-$((3*3))\n");
  ASSERT_TRUE(candidate.wait_for("absent-9", kWait, mark)) << candidate.output().substr(mark);
  EXPECT_EQ(candidate.output().find("11 33", mark), std::string::npos) << "an observer resized the terminal";
  EXPECT_TRUE(observer.wait_for("absent-9", kWait)) << "live output";
  EXPECT_TRUE(second.wait_for("absent-9", kWait));
  EXPECT_FALSE(candidate.ended()) << "an observer displaced the candidate";
  EXPECT_EQ(observer.messages().size(), 0u);
  EXPECT_EQ(observer.observers(), -1) << "observers are not told of each other";
  EXPECT_TRUE(observer.detach().ok());
  close(raw);
  EXPECT_TRUE(testing::eventually([&] { return candidate.observers() == 1; }, kWait)) << candidate.observers();
}

// An observer that stops reading is dropped once 1 MiB behind: the
// candidate's output never waits for it.
TEST_F(EnvironmentE2E, AnObserverThatDoesNotReadIsDroppedNotWaitedFor) {
  const std::string session = new_session();
  const std::string environment_id = create(session)["environment_id"];
  TerminalClient candidate(env_address(), session);
  candidate.send("echo ready-$((2+2))\n");
  ASSERT_TRUE(candidate.wait_for("ready-4", kWait));
  const int stuck = raw_viewer(environment_id);
  ASSERT_TRUE(testing::eventually([&] { return candidate.observers() == 1; }, kWait));
  // 6 MB of output; the observer reads none of it.
  candidate.send("head -c 6000000 /dev/zero | tr '\\0' a; echo; echo flood-$((1+1))-done\n");
  EXPECT_TRUE(candidate.wait_for("flood-2-done", std::chrono::seconds(30))) << candidate.output_size();
  EXPECT_TRUE(testing::eventually([&] { return candidate.observers() == 0; }, kWait)) << "the observer was kept";
  close(stuck);
}

// A staff message reaches the attached client, or waits for the next one.
TEST_F(EnvironmentE2E, StaffMessagesReachTheCandidatesTerminal) {
  auto stub = v1::EnvironmentService::NewStub(make_channel(env_address(), "environment", "gateway"));
  const auto send = [&](const std::string& session, const std::string& text, v1::SendMessageResponse* out) {
    v1::SendMessageRequest r;
    r.set_session_id(session);
    r.set_text(text);
    grpc::ClientContext c;
    return stub->SendMessage(&c, r, out);
  };
  const std::string session = new_session();
  create(session);
  v1::SendMessageResponse answer;
  for (const std::string& bad : {std::string(), std::string(2001, 'x')}) {
    const grpc::Status s = send(session, bad, &answer);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  }
  EXPECT_EQ(send(new_uuid(), "hello", &answer).error_code(), grpc::StatusCode::NOT_FOUND);
  {
    TerminalClient candidate(env_address(), session);
    candidate.send("echo attached\n");
    ASSERT_TRUE(candidate.wait_for("attached", kWait));
    ASSERT_TRUE(send(session, "Please keep your camera on.", &answer).ok());
    EXPECT_TRUE(answer.delivered());
    EXPECT_TRUE(testing::eventually([&] { return candidate.messages().size() == 1; }, kWait));
    EXPECT_EQ(candidate.messages(), std::vector<std::string>{"Please keep your camera on."});
    EXPECT_EQ(candidate.output().find("camera"), std::string::npos) << "a message is not terminal output";
    EXPECT_TRUE(candidate.detach().ok());
  }
  EXPECT_TRUE(testing::eventually([&] { return send(session, "Five minutes left.", &answer).ok() && !answer.delivered(); },
                                  kWait));
  TerminalClient next(env_address(), session);
  EXPECT_TRUE(testing::eventually([&] { return !next.messages().empty(); }, kWait));
  EXPECT_EQ(next.messages().front(), "Five minutes left.");
}

// A second client takes the terminal (a second tab): the first one's stream
// ends saying so, and the same shell goes on for the second.
TEST_F(EnvironmentE2E, ASecondClientTakesTheTerminalAndTheFirstIsToldWhy) {
  const std::string session = new_session();
  create(session);
  TerminalClient first(env_address(), session);
  first.send("export MARK=kept-$((2+3)); echo set-$MARK\n");
  ASSERT_TRUE(first.wait_for("set-kept-5", kWait)) << first.output();
  TerminalClient second(env_address(), session);
  ASSERT_TRUE(testing::eventually([&] { return first.ended(); }, kWait));
  EXPECT_EQ(first.ended_reason(), "the terminal was opened elsewhere");
  const size_t mark = second.output_size();
  second.send("echo again-$MARK\n");
  EXPECT_TRUE(second.wait_for("again-kept-5", kWait, mark)) << second.output();
  EXPECT_FALSE(second.ended());
}

// The replay is the last 64 KiB of output (the configured replay bytes), from
// a line's start, however much came before.
TEST_F(EnvironmentE2E, TheReplayIsTheRecentOutputFromALineStart) {
  const std::string session = new_session();
  create(session);
  {
    TerminalClient t(env_address(), session);
    t.send("seq -f 'replay-line-%06g' 1 20000; echo all-\"\"done\n");  // 400 KB
    ASSERT_TRUE(t.wait_for("all-done", kWait));
  }
  TerminalClient again(env_address(), session);
  ASSERT_TRUE(again.wait_for("all-done", kWait)) << "no replay";
  const std::string replay = again.output();
  EXPECT_LE(replay.size(), 65536u);
  EXPECT_GT(replay.size(), 60000u);
  EXPECT_EQ(replay.rfind("replay-line-", 0), 0u) << replay.substr(0, 40);
  EXPECT_NE(replay.find("replay-line-020000"), std::string::npos);
  EXPECT_EQ(replay.find("replay-line-016000"), std::string::npos);
}

TEST_F(EnvironmentE2E, AnExitedShellIsReplacedAndTheHomeKept) {
  const std::string session = new_session();
  create(session);
  TerminalClient t(env_address(), session);
  t.send("echo kept > ~/notes.txt; exit\n");
  ASSERT_TRUE(t.wait_for("starting a new one", kWait)) << t.output();
  const size_t mark = t.output_size();
  t.send("cat ~/notes.txt\n");
  EXPECT_TRUE(t.wait_for("kept", kWait, mark)) << t.output();
}

TEST_F(EnvironmentE2E, AttachNeedsARunningEnvironment) {
  const std::string session = new_session();
  TerminalClient none(env_address(), session);
  EXPECT_TRUE(none.wait_for("never", std::chrono::milliseconds(500)) == std::nullopt);
  EXPECT_TRUE(none.ended());
  create(session);
  ASSERT_EQ(platform_->sh("execution-environment destroy --session-id " + session).exit_code, 0);
  TerminalClient after(env_address(), session);
  EXPECT_TRUE(after.wait_for("never", std::chrono::milliseconds(500)) == std::nullopt);
  EXPECT_TRUE(after.ended());
}

// A sandbox's home is mounted in its keeper's own mount namespace, not on the
// host: the host's mount table, which every new sandbox copies, does not grow
// with the number of sandboxes.
TEST_F(EnvironmentE2E, HomesAreNotMountedOnTheHost) {
  const auto host_mounts = [] {
    std::ifstream in("/proc/self/mountinfo");
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  const std::string session = new_session();
  const std::string id = create(session)["environment_id"];
  TerminalClient t(env_address(), session);
  t.send("echo kept-in-home > ~/file; df --output=fstype,size -B1M ~ | tail -1\n");
  ASSERT_TRUE(t.wait_for("tmpfs", kWait)) << t.output();
  EXPECT_EQ(host_mounts().find(sandbox(id)), std::string::npos) << host_mounts();
  std::string seen;
  std::ifstream("/proc/" + std::to_string(keeper_of(id)) + "/root" + sandbox(id) + "/home/file") >> seen;
  EXPECT_EQ(seen, "kept-in-home");
}

// A candidate's processes start with every signal at its default: nothing the
// platform ignores or blocks (SIGPIPE above all) leaks into the sandbox.
TEST_F(EnvironmentE2E, CandidateProcessesStartWithDefaultSignals) {
  const std::string session = new_session();
  create(session);
  TerminalClient t(env_address(), session);
  t.send("grep -E 'SigBlk|SigIgn' /proc/self/status; yes | head -1 >/dev/null; echo piped-$((2*5))\n");
  ASSERT_TRUE(t.wait_for("piped-10", kWait)) << t.output();
  EXPECT_NE(t.output().find("SigBlk:\t0000000000000000"), std::string::npos) << t.output();
  EXPECT_NE(t.output().find("SigIgn:\t0000000000000000"), std::string::npos) << t.output();
  EXPECT_EQ(t.output().find("Broken pipe"), std::string::npos) << t.output();
}

// A keeper with nothing to do sleeps (it used to wake twice a second), and a
// stop signal still ends it at once.
TEST_F(EnvironmentE2E, AnIdleKeeperSleepsAndStopsOnSignal) {
  const std::string session = new_session();
  const std::string id = create(session)["environment_id"];
  TerminalClient t(env_address(), session);
  t.send("echo settled-$((4+4))\n");
  ASSERT_TRUE(t.wait_for("settled-8", kWait)) << t.output();
  const pid_t keeper = keeper_of(id);
  ASSERT_GT(keeper, 0);
  const auto wakes = [&] { return testing::proc_status(keeper, "voluntary_ctxt_switches"); };
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  const long before = wakes();
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  EXPECT_LE(wakes() - before, 1) << "an idle keeper woke up";
  t.send("echo still-$((5+5))\n");
  EXPECT_TRUE(t.wait_for("still-10", kWait)) << t.output();
  ASSERT_EQ(kill(keeper, SIGTERM), 0);
  // Gone, or a zombie (which has no memory left).
  EXPECT_TRUE(testing::eventually([&] { return testing::proc_status(keeper, "VmRSS") == 0; }, std::chrono::seconds(2)));
  EXPECT_TRUE(testing::eventually([&] { return t.ended(); }, kWait));
  EXPECT_EQ(platform_->sh("execution-environment destroy --session-id " + session).exit_code, 0);
}

// The keeper carries its sandbox's output: it runs in the sandbox's cgroup,
// so a flood costs the CPU share of the candidate who makes it. Another
// candidate keeps typing meanwhile. (How much the flood adds to their echo is
// measured in bench/environment_bench: BM_EchoBesideAFlood.)
TEST_F(EnvironmentE2E, AFloodIsChargedToTheSandboxThatMakesIt) {
  const std::string flooder = new_session(), typist = new_session();
  const Json env = create(flooder);
  create(typist);
  const pid_t keeper = keeper_of(env["environment_id"]);
  ASSERT_GT(keeper, 0);
  const auto members = sandbox::cgroup::processes(platform_->cgroup_parent(), env["environment_id"]);
  EXPECT_NE(std::find(members.begin(), members.end(), keeper), members.end()) << "the keeper is in its sandbox's cgroup";
  const auto cpu_ticks = [](pid_t pid) {
    const std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat").value_or("");
    std::istringstream in(stat.substr(stat.rfind(')') + 2));
    std::string field;
    long long utime = 0, stime = 0;
    for (int i = 3; i <= 15 && in >> field; ++i) {
      if (i == 14) utime = std::stoll(field);
      if (i == 15) stime = std::stoll(field);
    }
    return utime + stime;
  };
  TerminalClient f(env_address(), flooder), t(env_address(), typist);
  f.send("echo go-$((1+1))\n");
  ASSERT_TRUE(f.wait_for("go-2", kWait));
  f.discard_output();
  const long long before = cpu_ticks(keeper);
  f.send("yes 'flood flood flood flood flood flood flood flood flood flood'\n");
  ASSERT_TRUE(testing::eventually([&] { return f.discarded_bytes() > (4u << 20); }, kWait))
      << "control: the flood flows";
  t.send("stty -echo; cat\n");
  for (int i = 0; i < 20; ++i) {
    const size_t mark = t.output_size();
    t.send("key" + std::to_string(i) + "\n");
    EXPECT_TRUE(t.wait_for("key" + std::to_string(i) + "\r\n", kWait, mark)) << "the typist's key " << i;
  }
  EXPECT_GT(cpu_ticks(keeper), before) << "control: carrying it costs the keeper CPU, charged to the sandbox";
  f.send("\x03");
}

// An environment destroyed while a client is attached: the client is told it
// ended (not that it detached).
TEST_F(EnvironmentE2E, DestroyingTheEnvironmentEndsItsAttachedTerminal) {
  const std::string session = new_session();
  create(session);
  TerminalClient t(env_address(), session);
  t.send("echo attached-$((1+1))\n");
  ASSERT_TRUE(t.wait_for("attached-2", kWait)) << t.output();
  ASSERT_EQ(platform_->sh("execution-environment destroy --session-id " + session).exit_code, 0);
  EXPECT_TRUE(testing::eventually([&] { return t.ended(); }, kWait));
  EXPECT_EQ(t.ended_reason(), "the environment ended");
}

// Attached terminals wait on one event loop in the service: holding many
// costs no thread each (it used to cost two).
TEST_F(EnvironmentE2E, AttachedTerminalsCostNoThreadEach) {
  const auto threads = [] { return testing::proc_status(platform_->daemon("environment").pid(), "Threads"); };
  constexpr int kTerminals = 16;
  std::vector<std::string> sessions;
  for (int i = 0; i < kTerminals; ++i) {
    sessions.push_back(new_session());
    create(sessions.back());
  }
  // One terminal first, so that gRPC's own threads for streams are counted.
  std::vector<std::unique_ptr<TerminalClient>> terminals;
  const auto attach = [&](const std::string& session) {
    terminals.push_back(std::make_unique<TerminalClient>(env_address(), session));
    terminals.back()->send("echo here-$((2+3))\n");
    ASSERT_TRUE(terminals.back()->wait_for("here-5", kWait)) << terminals.back()->output();
  };
  attach(sessions[0]);
  const int before = threads();
  for (int i = 1; i < kTerminals; ++i) attach(sessions[i]);
  const int after = threads();
  EXPECT_LT(after - before, 4) << before << " threads with one terminal, " << after << " with " << kTerminals;
  // And every one of them still answers.
  for (auto& t : terminals) {
    const size_t mark = t->output_size();
    t->send("echo again-$((3+4))\n");
    EXPECT_TRUE(t->wait_for("again-7", kWait, mark)) << t->output();
  }
  terminals.clear();
  for (const auto& session : sessions)
    EXPECT_EQ(platform_->sh("execution-environment destroy --session-id " + session).exit_code, 0);
}

// Sandboxes outlive a crash of the service; on restart, records and sandboxes
// are reconciled.
TEST(EnvironmentRestart, ReconcilesRecordsAndSandboxes) {
  Platform platform(testing::shared_postgres().create_database());
  platform.start("lifecycle");
  platform.start("environment");
  const auto session = [&] { return platform.create_session(); };

  const std::string kept = session(), lost = session();
  const Json kept_env = Json::parse(platform.sh("execution-environment create --session-id " + kept).out);
  const Json lost_env = Json::parse(platform.sh("execution-environment create --session-id " + lost).out);
  {
    TerminalClient t(platform.address("environment"), kept);
    t.send("echo before-crash > ~/proof; echo wr''itten\n");
    ASSERT_TRUE(t.wait_for("written", kWait)) << t.output() << "\n" << platform.logs();
  }
  platform.daemon("environment").signal(SIGKILL);
  platform.daemon("environment").wait(kWait);

  // While it is down: one sandbox dies, and an orphan appears.
  const std::string lost_dir = platform.sandbox_dir() + "/" + lost_env["environment_id"].get<std::string>();
  pid_t keeper = 0;
  std::ifstream(lost_dir + "/control/keeper.pid") >> keeper;
  ASSERT_GT(keeper, 0);
  kill(keeper, SIGKILL);
  const std::string orphan = new_uuid();
  fs::create_directories(platform.sandbox_dir() + "/" + orphan);

  platform.start("environment");
  TerminalClient t(platform.address("environment"), kept);
  t.send("cat ~/proof\n");
  EXPECT_TRUE(t.wait_for("before-crash", kWait)) << "the shell did not survive: " << t.output();
  const Json lost_status = Json::parse(platform.sh("execution-environment status --session-id " + lost).out);
  EXPECT_EQ(lost_status["status"], "error");
  EXPECT_EQ(lost_status["error_reason"], "sandbox vanished");
  EXPECT_FALSE(fs::exists(platform.sandbox_dir() + "/" + orphan));
  EXPECT_FALSE(fs::exists(lost_dir));
}

// A machine's share for sandboxes: at most max_sandboxes of them, and all of
// them together within the memory and processes of their parent cgroup,
// whatever each exam allows on its own.
TEST(EnvironmentCapacity, NoMoreSandboxesThanTheMachineGives) {
  Platform platform(testing::shared_postgres().create_database(),
                    {{"EXAMISO_ENVIRONMENT_MAX_SANDBOXES", "3"},
                     {"EXAMISO_ENVIRONMENT_SANDBOXES_MEMORY_MB", "200"},
                     {"EXAMISO_ENVIRONMENT_SANDBOXES_PIDS", "150"}});
  platform.start("lifecycle");
  platform.start("environment");
  const std::string parent = platform.cgroup_parent();
  const bool v2 = sandbox::cgroup::unified();
  const std::string memory_max = v2 ? "/sys/fs/cgroup/" + parent + "/memory.max"
                                    : "/sys/fs/cgroup/memory/" + parent + "/memory.limit_in_bytes";
  const std::string pids_max = v2 ? "/sys/fs/cgroup/" + parent + "/pids.max" : "/sys/fs/cgroup/pids/" + parent + "/pids.max";
  EXPECT_EQ(read_number(memory_max), 200 << 20);
  EXPECT_EQ(read_number(pids_max), 150);

  // The isolation exam: 128 MiB and 64 processes each.
  const std::string exam = "00000000-0000-4000-8000-000000000005";
  std::vector<std::string> sessions;
  for (int i = 0; i < 3; ++i) {
    sessions.push_back(platform.create_session(exam));
    ASSERT_EQ(platform.sh("execution-environment create --session-id " + sessions.back()).exit_code, 0)
        << platform.logs();
  }
  const std::string fourth = platform.create_session(exam);
  const auto refused = platform.sh("execution-environment create --session-id " + fourth);
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_EQ(Json::parse(refused.err, nullptr, false).value("code", ""), "ENVIRONMENT_CAPACITY_REACHED") << refused.err;

  // 90 MB each fits every sandbox's own limit, not three of them the machine's share.
  std::vector<std::unique_ptr<TerminalClient>> terminals;
  for (const auto& s : sessions) {
    const std::string env_id =
        Json::parse(platform.sh("execution-environment status --session-id " + s).out).value("environment_id", "");
    const std::string dir = platform.sandbox_dir() + "/" + env_id;
    // The home is mounted in its keeper's namespace: reached through its root.
    const std::string home =
        "/proc/" + std::to_string(read_number(dir + "/control/keeper.pid").value_or(0)) + "/root" + dir + "/home";
    struct stat st {};
    ASSERT_EQ(stat(home.c_str(), &st), 0) << home;
    fs::copy_file(testing::bin("../tests/examiso-probe"), home + "/probe");
    ASSERT_EQ(chown((home + "/probe").c_str(), st.st_uid, st.st_gid), 0);
    terminals.push_back(std::make_unique<TerminalClient>(platform.address("environment"), s));
  }
  for (auto& t : terminals) t->send("~/probe alloc 90 8; echo exit=$?\n");
  int held = 0;
  for (auto& t : terminals) held += t->wait_for("ok alloc 90 MB", std::chrono::seconds(5)).has_value();
  EXPECT_GE(held, 1) << "control: a sandbox may take 90 MB";
  // Some sandbox's allocation was ended by the parent's limit.
  bool killed = false;
  for (auto& t : terminals) killed = killed || t->wait_for("exit=137", std::chrono::seconds(12)).has_value();
  EXPECT_TRUE(killed) << "three sandboxes took 270 MB of a 200 MB share";
}

// A terminal carries no more output a second than its budget
// (environment.terminal_output_mb_per_s): past it the candidate's own program
// waits on the pty, and every process after the keeper carries only what the
// budget lets through. Input still goes through at once: ^C ends a flood.
// Control: the same output with no budget goes much faster.
TEST(EnvironmentOutputBudget, ATerminalPrintsNoFasterThanItsBudget) {
  constexpr double kMegabytes = 8, kBudget = 2, kBurst = kBudget / 4;
  const double least = (kMegabytes - kBurst) / kBudget * 0.9;  // seconds, with some slack for the clock
  for (const std::string rate : {"2", "0"}) {
    SCOPED_TRACE("terminal_output_mb_per_s " + rate);
    Platform platform(testing::shared_postgres().create_database(),
                      {{"EXAMISO_ENVIRONMENT_TERMINAL_OUTPUT_MB_PER_S", rate}});
    platform.start("lifecycle");
    platform.start("environment");
    const std::string session = platform.create_session();
    ASSERT_EQ(platform.sh("execution-environment create --session-id " + session).exit_code, 0) << platform.logs();
    TerminalClient t(platform.address("environment"), session);
    t.send("echo go-$((1+1))\n");
    ASSERT_TRUE(t.wait_for("go-2", kWait)) << t.output();
    size_t mark = t.output_size();
    const auto start = std::chrono::steady_clock::now();
    t.send("head -c " + std::to_string(static_cast<int>(kMegabytes * 1e6)) +
           " /dev/zero | tr '\\0' x; echo; echo done-$((2+2))\n");
    ASSERT_TRUE(t.wait_for("done-4", std::chrono::seconds(60), mark)) << "the output arrives, all of it";
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (rate == "0") {
      EXPECT_LT(seconds, least) << "control: with no budget the same output goes faster";
      continue;
    }
    EXPECT_GE(seconds, least) << kMegabytes << " MB at " << kBudget << " MB a second";
    // The flooder's own input is not held behind its output.
    mark = t.output_size();
    t.send("yes\n");
    ASSERT_TRUE(t.wait_bytes(mark + (1 << 20), kWait)) << "the flood flows";
    const auto interrupted = std::chrono::steady_clock::now();
    t.send("\x03");
    t.send("echo after-$((3+3))\n");
    ASSERT_TRUE(t.wait_for("after-6", kWait, mark)) << "^C ends the flood";
    EXPECT_LT(std::chrono::steady_clock::now() - interrupted, std::chrono::seconds(3)) << "at once, not after the flood";
  }
}

}  // namespace
}  // namespace examiso
