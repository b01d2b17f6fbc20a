// The lifecycle domain against a real PostgreSQL: the state machine (every
// allowed and forbidden transition), races, the clock, status, bad input.
#include <gtest/gtest.h>

#include <fstream>
#include <thread>

#include "common/db.h"
#include "common/uuid.h"
#include "services/lifecycle/catalog.h"
#include "services/lifecycle/session_store.h"
#include "services/lifecycle/status.h"
#include "tests/support/postgres.h"

namespace examiso::lifecycle {
namespace {

const std::string kCatalog = std::string(EXAMISO_SOURCE_DIR) + "/tests/data/test_exams.yaml";
const TimePoint kStart = from_micros(1770460125000000);

class LifecycleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    PgPoolOptions o;
    o.url = testing::shared_postgres().create_database();
    o.size = 60;
    pool_ = std::make_unique<PgPool>(o);
    auto conn = pool_->acquire();
    apply_migrations(*conn, "lifecycle", lifecycle_migrations());
    store_ = std::make_unique<SessionStore>(*pool_, catalog_, clock_);
  }

  Session create(const std::string& user = new_uuid()) { return store_->create({"", user, "", false, "test"}); }

  TransitionResult move(const std::string& id, State to, const std::string& reason = "") {
    TransitionRequest r;
    r.session_id = id;
    r.to = to;
    r.reason = reason;
    r.actor = "test";
    return store_->transition(r);
  }

  // A new session brought into `state` along the contract's paths.
  Session in_state(State state) {
    Session s = create();
    const std::vector<State> path = [&]() -> std::vector<State> {
      switch (state) {
        case State::created: return {};
        case State::initializing: return {State::initializing};
        case State::ready: return {State::initializing, State::ready};
        case State::running: return {State::initializing, State::ready, State::running};
        case State::terminated: return {State::terminated};
        case State::failed: return {State::failed};
      }
      return {};
    }();
    for (State next : path) s = move(s.session_id, next, next == State::failed ? "broken" : "").session;
    EXPECT_EQ(s.state, state);
    return s;
  }

  int64_t count(const std::string& sql) { return pool_->acquire()->exec(sql).integer(0, 0); }

  std::string error_code(const std::function<void()>& f) {
    try {
      f();
      return "none";
    } catch (const Error& e) {
      return e.code();
    }
  }

  ManualClock clock_{kStart};
  ExamCatalog catalog_ = ExamCatalog::load(kCatalog);
  std::unique_ptr<PgPool> pool_;
  std::unique_ptr<SessionStore> store_;
};

// The contract's table, every pair: allowed ones succeed, all others are
// INVALID_TRANSITION naming the current state and what it allows.
TEST_F(LifecycleTest, EveryTransitionOfTheContractTable) {
  const std::map<State, std::set<State>> allowed{
      {State::created, {State::initializing, State::terminated, State::failed}},
      {State::initializing, {State::ready, State::terminated, State::failed}},
      {State::ready, {State::running, State::terminated, State::failed}},
      {State::running, {State::terminated, State::failed}},
      {State::terminated, {}},
      {State::failed, {}},
  };
  for (State from : kAllStates) {
    for (State to : kAllStates) {
      if (to == State::created) continue;  // entered only by creation, checked below
      const Session s = in_state(from);
      const bool ok = allowed.at(from).count(to) > 0;
      SCOPED_TRACE(std::string(name(from)) + " -> " + std::string(name(to)));
      try {
        const TransitionResult r = move(s.session_id, to, to == State::failed ? "the reason" : "");
        EXPECT_TRUE(ok);
        EXPECT_EQ(r.previous_state, from);
        EXPECT_EQ(r.session.state, to);
        EXPECT_EQ(r.session.version, s.version + 1);
      } catch (const Error& e) {
        EXPECT_FALSE(ok) << e.what();
        EXPECT_EQ(e.code(), "INVALID_TRANSITION");
        EXPECT_EQ(std::string(e.what()),
                  "Cannot transition from '" + std::string(name(from)) + "' to '" + std::string(name(to)) + "'");
        EXPECT_EQ(e.details()["current_state"], name(from));
        EXPECT_EQ(e.details()["requested_state"], name(to));
        Json expected = Json::array();
        for (State a : allowed_transitions(from)) expected.push_back(name(a));
        EXPECT_EQ(e.details()["allowed_transitions"], expected);
        EXPECT_EQ(store_->get(s.session_id).version, s.version) << "a refused transition changed the row";
      }
    }
  }
  EXPECT_EQ(error_code([&] { move(create().session_id, State::created); }), "INVALID_ARGUMENT");
}

TEST_F(LifecycleTest, TerminalStatesAllowNothing) {
  for (State terminal : {State::terminated, State::failed}) {
    const Session s = in_state(terminal);
    for (State to : kAllStates) {
      if (to == State::created) continue;
      try {
        move(s.session_id, to, "x");
        FAIL() << "left " << name(terminal);
      } catch (const Error& e) {
        EXPECT_EQ(e.code(), "INVALID_TRANSITION");
        EXPECT_EQ(e.details()["allowed_transitions"], Json::array());
      }
    }
  }
}

TEST_F(LifecycleTest, FailedNeedsAReasonAndGetsAClass) {
  const Session s = in_state(State::ready);
  for (const std::string& empty : {std::string(), std::string("  \n\t")}) {
    EXPECT_EQ(error_code([&] { move(s.session_id, State::failed, empty); }), "INVALID_ARGUMENT");
  }
  EXPECT_EQ(store_->get(s.session_id).state, State::ready);
  EXPECT_EQ(store_->history(s.session_id).size(), 3u);

  TransitionRequest r;
  r.session_id = s.session_id;
  r.to = State::failed;
  r.reason = "sandbox exited: OOM";
  r.failure_class = FailureClass::runtime;
  const Session failed = store_->transition(r).session;
  EXPECT_EQ(failed.failure_class, FailureClass::runtime);
  EXPECT_EQ(failed.reason, "sandbox exited: OOM");
  EXPECT_EQ(move(in_state(State::created).session_id, State::failed, "x").session.failure_class, FailureClass::infra);
}

TEST_F(LifecycleTest, TerminationCarriesATypedReason) {
  const Session s = in_state(State::running);
  TransitionRequest r;
  r.session_id = s.session_id;
  r.to = State::terminated;
  r.reason = "Candidate pressed submit";
  r.termination_reason = TerminationReason::submitted;
  const Session t = store_->transition(r).session;
  EXPECT_EQ(t.termination_reason, TerminationReason::submitted);
  EXPECT_EQ(t.reason, "Candidate pressed submit");
  EXPECT_EQ(move(in_state(State::ready).session_id, State::terminated).session.termination_reason,
            TerminationReason::admin);
  // Typed reasons belong to their states only.
  r.session_id = in_state(State::ready).session_id;
  r.to = State::running;
  EXPECT_EQ(error_code([&] { store_->transition(r); }), "INVALID_ARGUMENT");
  r.termination_reason = TerminationReason::none;
  r.failure_class = FailureClass::init;
  EXPECT_EQ(error_code([&] { store_->transition(r); }), "INVALID_ARGUMENT");
}

TEST_F(LifecycleTest, HistoryRecordsEveryTransition) {
  const Session s = in_state(State::running);
  clock_.advance(std::chrono::seconds(5));
  move(s.session_id, State::terminated, "done");
  const auto h = store_->history(s.session_id);
  ASSERT_EQ(h.size(), 5u);
  EXPECT_FALSE(h[0].from);
  EXPECT_EQ(h[0].to, State::created);
  EXPECT_EQ(h[3].from, State::ready);
  EXPECT_EQ(h[3].to, State::running);
  EXPECT_EQ(h[4].reason, "done");
  EXPECT_EQ(h[4].termination_reason, TerminationReason::admin);
  EXPECT_EQ(h[4].actor, "test");
  EXPECT_EQ(h[4].at, kStart + std::chrono::seconds(5));
}

// A staff message is history (kind message, the text as its reason) only
// while the session has a terminal; anything else stores nothing.
TEST_F(LifecycleTest, StaffMessagesAreHistoryWhileThereIsATerminal) {
  const Session s = in_state(State::running);
  const HistoryEntry h = store_->record_message(s.session_id, "Please keep your camera on.", "staff:p1");
  EXPECT_EQ(h.kind, "message");
  EXPECT_EQ(h.to, State::running);
  const auto history = store_->history(s.session_id);
  EXPECT_EQ(history.back().kind, "message");
  EXPECT_EQ(history.back().reason, "Please keep your camera on.");
  EXPECT_EQ(history.back().actor, "staff:p1");
  EXPECT_EQ(history.back().from, State::running);
  EXPECT_EQ(store_->get(s.session_id).version, s.version) << "a message changes nothing of the session";
  EXPECT_EQ(error_code([&] { store_->record_message(in_state(State::created).session_id, "hi", "staff:p1"); }),
            "SESSION_NOT_READY");
  EXPECT_EQ(error_code([&] { store_->record_message(in_state(State::terminated).session_id, "hi", "staff:p1"); }),
            "SESSION_TERMINATED");
  EXPECT_EQ(error_code([&] { store_->record_message(new_uuid(), "hi", "staff:p1"); }), "SESSION_NOT_FOUND");
  EXPECT_EQ(error_code([&] { store_->record_message(s.session_id, "", "staff:p1"); }), "INVALID_ARGUMENT");
  EXPECT_EQ(error_code([&] { store_->record_message(s.session_id, std::string(2001, 'x'), "staff:p1"); }),
            "INVALID_ARGUMENT");
  EXPECT_EQ(error_code([&] { store_->record_message("nope", "hi", "staff:p1"); }), "INVALID_IDENTITY");
  EXPECT_EQ(store_->history(s.session_id).size(), history.size()) << "a refused message left something";
}

// Terminal connections are counted (two tabs: still connected after the
// first goes), last seen is kept, each is a history event, and none of it is
// a change of the session.
TEST_F(LifecycleTest, ConnectionsAreCountedAndInHistory) {
  const Session s = in_state(State::running);
  store_->record_connection(s.session_id, true, "from 10.0.0.1", "gateway:u");
  clock_.advance(std::chrono::seconds(3));
  store_->record_connection(s.session_id, true, "from 10.0.0.2", "gateway:u");
  store_->record_connection(s.session_id, false, "opened elsewhere", "gateway:u");
  Session now = store_->get(s.session_id);
  EXPECT_EQ(now.terminals_open, 1);
  EXPECT_EQ(now.last_seen_at, kStart + std::chrono::seconds(3));
  EXPECT_EQ(now.version, s.version);
  store_->record_connection(s.session_id, false, "the connection closed", "gateway:u");
  store_->record_connection(s.session_id, false, "a drop counted twice", "gateway:u");
  EXPECT_EQ(store_->get(s.session_id).terminals_open, 0) << "never below none";
  const auto h = store_->history(s.session_id);
  EXPECT_EQ(h.back().kind, "disconnect");
  EXPECT_EQ(h.back().reason, "a drop counted twice");
  EXPECT_EQ(h[h.size() - 5].kind, "connect");
  EXPECT_EQ(h[h.size() - 5].reason, "from 10.0.0.1");
  EXPECT_EQ(error_code([&] { store_->record_connection(new_uuid(), true, "", "gateway:u"); }), "SESSION_NOT_FOUND");
  EXPECT_EQ(error_code([&] { store_->record_connection(s.session_id, true, std::string(2001, 'x'), "g"); }),
            "INVALID_ARGUMENT");
}

// 50 callers race ready -> running: exactly one wins.
TEST_F(LifecycleTest, ConcurrentTransitionsFromOneStateHaveOneWinner) {
  const Session s = in_state(State::ready);
  std::atomic<int> won{0}, refused{0}, other{0};
  std::vector<std::thread> callers;
  std::atomic<bool> go{false};
  for (int i = 0; i < 50; ++i) {
    callers.emplace_back([&] {
      while (!go) std::this_thread::yield();
      try {
        move(s.session_id, State::running);
        ++won;
      } catch (const Error& e) {
        (e.code() == "INVALID_TRANSITION" ? refused : other)++;
      }
    });
  }
  go = true;
  for (auto& t : callers) t.join();
  EXPECT_EQ(won, 1);
  EXPECT_EQ(refused, 49);
  EXPECT_EQ(other, 0);
  EXPECT_EQ(count("SELECT count(*) FROM session_transitions WHERE to_state = 'running' AND session_id = '" +
                  s.session_id + "'"),
            1);
}

// Racing different targets from one state: the history records the true predecessor.
TEST_F(LifecycleTest, RacingDifferentTargetsKeepTheHistoryTrue) {
  for (int round = 0; round < 10; ++round) {
    const Session s = in_state(State::ready);
    std::thread a([&] { try { move(s.session_id, State::running); } catch (const Error&) {} });
    std::thread b([&] { try { move(s.session_id, State::failed, "x"); } catch (const Error&) {} });
    a.join();
    b.join();
    const auto h = store_->history(s.session_id);
    for (size_t i = 1; i < h.size(); ++i) {
      ASSERT_TRUE(h[i].from);
      EXPECT_EQ(*h[i].from, h[i - 1].to);
      EXPECT_TRUE(can_transition(*h[i].from, h[i].to));
    }
  }
}

TEST_F(LifecycleTest, OneActiveSessionPerUser) {
  const std::string user = new_uuid();
  const Session first = create(user);
  try {
    create(user);
    FAIL() << "second active session";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), "ACTIVE_SESSION_EXISTS");
    EXPECT_EQ(e.details()["session_id"], first.session_id);
  }
  move(first.session_id, State::terminated);
  EXPECT_EQ(create(user).state, State::created);
  EXPECT_EQ(count("SELECT count(*) FROM sessions WHERE user_id = '" + user + "'"), 2);
}

TEST_F(LifecycleTest, ConcurrentCreatesForOneUserHaveOneWinner) {
  const std::string user = new_uuid();
  std::atomic<int> won{0}, exists{0};
  std::vector<std::thread> callers;
  for (int i = 0; i < 20; ++i) {
    callers.emplace_back([&] {
      try {
        create(user);
        ++won;
      } catch (const Error& e) {
        if (e.code() == "ACTIVE_SESSION_EXISTS") ++exists;
      }
    });
  }
  for (auto& t : callers) t.join();
  EXPECT_EQ(won, 1);
  EXPECT_EQ(exists, 19);
}

TEST_F(LifecycleTest, CallerChosenIdsAndTheDefaultExam) {
  const std::string id = "6BA7B810-9DAD-11D1-80B4-00C04FD430C8";
  const Session s = store_->create({id, new_uuid(), "", false, "test"});
  EXPECT_EQ(s.session_id, "6ba7b810-9dad-11d1-80b4-00c04fd430c8");
  EXPECT_EQ(s.exam_id, "a1b2c3d4-e5f6-7890-abcd-ef1234567890");
  EXPECT_EQ(s.duration_seconds, 7200);
  EXPECT_EQ(error_code([&] { store_->create({id, new_uuid(), "", false, "test"}); }), "SESSION_EXISTS");
  const Session short_exam = store_->create({"", new_uuid(), "00000000-0000-4000-8000-000000000002", false, "t"});
  EXPECT_EQ(short_exam.duration_seconds, 2);
}

// Bad input: a clear error, and nothing stored.
TEST_F(LifecycleTest, BadInputIsRefusedAndNothingIsStored) {
  const std::string user = new_uuid();
  const std::string sql_text = "'); DELETE FROM sessions; --";
  struct Case {
    std::function<void()> call;
    std::string code;
  };
  const Session victim = in_state(State::ready);
  const int64_t before = count("SELECT count(*) FROM sessions");
  const int64_t history_before = count("SELECT count(*) FROM session_transitions");
  const std::vector<Case> cases{
      {[&] { store_->create({"", user, "11111111-2222-4333-8444-555555555555", false, "t"}); }, "INVALID_EXAM_ID"},
      {[&] { store_->create({"", user, sql_text, false, "t"}); }, "INVALID_EXAM_ID"},
      {[&] { store_->create({"", user, std::string(1 << 20, 'x'), false, "t"}); }, "INVALID_ARGUMENT"},
      {[&] { store_->create({"", "not-a-uuid", "", false, "t"}); }, "INVALID_IDENTITY"},
      {[&] { store_->create({"", sql_text, "", false, "t"}); }, "INVALID_IDENTITY"},
      {[&] { store_->create({sql_text, user, "", false, "t"}); }, "INVALID_IDENTITY"},
      {[&] { store_->create({"", "", "", false, "t"}); }, "INVALID_IDENTITY"},
      {[&] { store_->create({"", user, "", false, std::string(1000, 'a')}); }, "INVALID_ARGUMENT"},
      {[&] { move(victim.session_id, State::running, std::string(1 << 20, 'r')); }, "INVALID_ARGUMENT"},
      {[&] { move(victim.session_id, State::failed, std::string("nul\0byte", 8)); }, "INVALID_ARGUMENT"},
      {[&] { move(sql_text, State::running); }, "INVALID_IDENTITY"},
      {[&] { move("", State::running); }, "INVALID_IDENTITY"},
      {[&] { move(new_uuid(), State::running); }, "SESSION_NOT_FOUND"},
      {[&] { store_->get("x' OR '1'='1"); }, "INVALID_IDENTITY"},
      {[&] { store_->get(new_uuid()); }, "SESSION_NOT_FOUND"},
      {[&] { store_->history(new_uuid()); }, "SESSION_NOT_FOUND"},
      {[&] { store_->list({sql_text, {}, {}, {}, 10}); }, "INVALID_IDENTITY"},
      {[&] { store_->list({"", {}, {}, {}, 0}); }, "INVALID_ARGUMENT"},
  };
  for (size_t i = 0; i < cases.size(); ++i) EXPECT_EQ(error_code(cases[i].call), cases[i].code) << "case " << i;
  EXPECT_EQ(count("SELECT count(*) FROM sessions"), before);
  EXPECT_EQ(count("SELECT count(*) FROM session_transitions"), history_before);
  EXPECT_EQ(store_->get(victim.session_id).version, victim.version);
  // SQL metacharacters in free text are stored as text.
  EXPECT_EQ(move(victim.session_id, State::failed, sql_text).session.reason, sql_text);
}

TEST_F(LifecycleTest, TheClockStartsOnRunningAndTheDeadlineIsStored) {
  Session s = in_state(State::ready);
  clock_.advance(std::chrono::seconds(30));
  EXPECT_EQ(remaining_seconds(s, clock_.now()), 7200);  // not started: full duration
  s = move(s.session_id, State::running).session;
  EXPECT_EQ(s.started_at, clock_.now());
  EXPECT_EQ(s.deadline, clock_.now() + std::chrono::seconds(7200));
  EXPECT_EQ(store_->get(s.session_id).deadline, s.deadline);
  EXPECT_EQ(remaining_seconds(s, clock_.now()), 7200);
  clock_.advance(std::chrono::milliseconds(100'500));
  EXPECT_EQ(remaining_seconds(s, clock_.now()), 7100);  // rounded up
  clock_.advance(std::chrono::seconds(7100));
  EXPECT_EQ(remaining_seconds(s, clock_.now()), 0);
  clock_.advance(std::chrono::seconds(50));
  EXPECT_EQ(remaining_seconds(s, clock_.now()), 0);
  s = move(s.session_id, State::terminated).session;
  EXPECT_EQ(remaining_seconds(s, clock_.now()), 0);
}

// With the cache on, a read answers from memory until the change is heard of
// (forget), except for this store's own changes, which are never stale.
TEST_F(LifecycleTest, TheCacheAnswersUntilAChangeIsHeardOf) {
  store_->set_cache(true);
  const Session s = in_state(State::ready);
  EXPECT_EQ(store_->get(s.session_id).state, State::ready);
  SessionStore replica(*pool_, catalog_, clock_);
  TransitionRequest start{s.session_id, State::running, "", TerminationReason::none, FailureClass::none, "test", {}};
  replica.transition(start);
  EXPECT_EQ(store_->get(s.session_id).state, State::ready) << "not heard of yet";
  EXPECT_EQ(store_->get(s.session_id, s.user_id).state, State::ready) << "the owner's read may use the copy";
  EXPECT_EQ(store_->get(s.session_id, new_uuid()).state, State::running) << "anyone else's goes to the database";
  store_->forget(s.session_id);
  EXPECT_EQ(store_->get(s.session_id).state, State::running);

  move(s.session_id, State::terminated);
  EXPECT_EQ(store_->get(s.session_id).state, State::terminated) << "its own change";

  const Session other = in_state(State::ready);
  EXPECT_EQ(store_->get(other.session_id).state, State::ready);
  store_->set_cache(false);
  replica.transition({other.session_id, State::running, "", TerminationReason::none, FailureClass::none, "test", {}});
  EXPECT_EQ(store_->get(other.session_id).state, State::running) << "off: every read goes to the database";
  EXPECT_EQ(error_code([&] { store_->get(new_uuid()); }), "SESSION_NOT_FOUND");
}

TEST_F(LifecycleTest, DisplayStatusForEveryState) {
  struct Expect {
    State state;
    const char* display;
    const char* message;
    int step;
    bool ready;
  };
  for (const Expect& e : {Expect{State::created, "creating", "Creating your exam session", 1, false},
                          Expect{State::initializing, "initializing", "Preparing your exam environment", 2, false},
                          Expect{State::ready, "ready", "Your exam environment is ready", 3, true},
                          Expect{State::running, "running", "Your exam is in progress", 3, true},
                          Expect{State::terminated, "terminated", "Your exam was ended by an administrator", 3, false}}) {
    const DisplayStatus d = display_status(in_state(e.state), clock_.now());
    EXPECT_EQ(d.display_state, e.display);
    EXPECT_EQ(d.message, e.message);
    EXPECT_EQ(d.current_step, e.step);
    EXPECT_EQ(d.total_steps, 3);
    EXPECT_EQ(d.environment_ready, e.ready);
    EXPECT_EQ(d.error_reason, "");
  }
}

TEST_F(LifecycleTest, FailuresAreClassifiedForCandidatesAndOperators) {
  struct Expect {
    FailureClass failure;
    const char* code;
    bool recoverable;
  };
  for (const Expect& e : {Expect{FailureClass::init, "ENVIRONMENT_INIT_FAILED", true},
                          Expect{FailureClass::runtime, "ENVIRONMENT_FAILED", false},
                          Expect{FailureClass::access, "ACCESS_FAILED", true},
                          Expect{FailureClass::infra, "PLATFORM_UNAVAILABLE", true}}) {
    TransitionRequest r;
    r.session_id = in_state(State::initializing).session_id;
    r.to = State::failed;
    r.reason = "bwrap: setting up uid map: Permission denied";
    r.failure_class = e.failure;
    const DisplayStatus d = display_status(store_->transition(r).session, clock_.now());
    EXPECT_EQ(d.display_state, "error");
    EXPECT_EQ(d.error_reason, e.code);
    EXPECT_EQ(d.recoverable, e.recoverable);
    EXPECT_EQ(d.current_step, 2);  // where it failed
    EXPECT_EQ(d.technical_message, "bwrap: setting up uid map: Permission denied");
    EXPECT_EQ(d.message.find("bwrap"), std::string::npos) << "technical detail in the candidate's message";
  }
}

TEST_F(LifecycleTest, ListsByUserStateAndTime) {
  const std::string user = new_uuid();
  const Session old_one = create(user);
  move(old_one.session_id, State::terminated);
  clock_.advance(std::chrono::seconds(10));
  const Session newer = create(user);
  const auto mine = store_->list({user, {}, {}, {}, 10});
  ASSERT_EQ(mine.size(), 2u);
  EXPECT_EQ(mine[0].session_id, newer.session_id);  // newest first
  EXPECT_EQ(store_->list({user, {State::created}, {}, {}, 10}).size(), 1u);
  Session running = in_state(State::running);
  const auto due = store_->list({"", {State::running}, clock_.now() + std::chrono::seconds(7201), {}, 10});
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(due[0].session_id, running.session_id);
  EXPECT_TRUE(store_->list({"", {State::running}, clock_.now(), {}, 10}).empty());
  // One exam's room (the staff console's list).
  SessionFilter of_exam{"", {}, {}, {}, 100, false, running.exam_id};
  const auto room = store_->list(of_exam);
  ASSERT_FALSE(room.empty());
  for (const auto& s : room) EXPECT_EQ(s.exam_id, running.exam_id);
  of_exam.exam_id = "00000000-0000-4000-8000-00000000dead";
  EXPECT_TRUE(store_->list(of_exam).empty());
}

class CatalogTest : public ::testing::Test {
 protected:
  std::string load_error(const std::string& yaml) {
    const std::string path = dir_.path() + "/exams.yaml";
    std::ofstream(path) << yaml;
    try {
      ExamCatalog::load(path);
      return "loaded";
    } catch (const Error& e) {
      const std::string what = e.what();
      EXPECT_EQ(what.rfind("exam catalog " + path + ":", 0), 0u) << what;
      return what.substr(("exam catalog " + path + ":").size());
    }
  }
  testing::TempDir dir_;
};

TEST_F(CatalogTest, TheShippedCatalogHasTheQuickstartExam) {
  const ExamCatalog c = ExamCatalog::load(std::string(EXAMISO_SOURCE_DIR) + "/config/exams.yaml");
  EXPECT_EQ(c.default_exam().exam_id, "a1b2c3d4-e5f6-7890-abcd-ef1234567890");
  EXPECT_EQ(c.default_exam().duration_seconds, 7200);
  EXPECT_EQ(c.default_exam().environment.memory_limit_bytes, 512ll << 20);
  EXPECT_FALSE(c.default_exam().environment.setup_script.empty());
}

TEST_F(CatalogTest, MistakesNameTheLineAndField) {
  const std::string head = "exams:\n  - id: a1b2c3d4-e5f6-7890-abcd-ef1234567890\n    title: T\n";
  EXPECT_EQ(load_error(head + "    duration_seconds: 60\n"), "loaded");
  EXPECT_EQ(load_error(head + "    duration_seconds: soon\n"), "4: exams[0].duration_seconds: expected a whole number");
  EXPECT_EQ(load_error(head + "    duration_seconds: 0\n"), "4: exams[0].duration_seconds: must be between 1 and 604800");
  EXPECT_EQ(load_error(head), "2: exams[0].duration_seconds: is required");
  EXPECT_EQ(load_error(head + "    duration_seconds: 60\n    durration: 5\n"), "5: exams[0].durration: unknown field");
  EXPECT_EQ(load_error(head + "    duration_seconds: 60\n    environment:\n      memory_mb: 1\n"),
            "6: exams[0].environment.memory_mb: must be between 16 and 65536");
  EXPECT_EQ(load_error("exams:\n  - id: nope\n    title: T\n    duration_seconds: 5\n"),
            "2: exams[0].id: must be a UUID");
  EXPECT_EQ(load_error(head + "    duration_seconds: 60\n" + head.substr(7) + "    duration_seconds: 60\n"),
            "5: exams[1].id: duplicate exam id a1b2c3d4-e5f6-7890-abcd-ef1234567890");
  EXPECT_EQ(load_error("default_exam: 11111111-2222-4333-8444-555555555555\n" + head + "    duration_seconds: 6\n"),
            "1: default_exam: is not one of the exams");
  const std::string net = head + "    duration_seconds: 60\n    environment:\n      network:\n        egress_allow: ";
  EXPECT_EQ(load_error(net + "[10.0.0.0/8, 192.0.2.0/24:443]\n"), "loaded");
  for (const char* bad : {"10.0.0.0/8:https", "10.0.0.0", "10.0.0.0/33", "300.0.0.0/8", "10.0.0.0/8:70000", "''"})
    EXPECT_EQ(load_error(net + "[" + bad + "]\n"),
              "7: exams[0].environment.network.egress_allow: expected CIDR or CIDR:port entries (e.g. 10.0.0.0/8:443)")
        << bad;
  EXPECT_EQ(load_error("exams: []\n"), "1: exams: must list at least one exam");
  EXPECT_EQ(load_error("exams: [\n"), "2: end of sequence flow not found");
}

}  // namespace
}  // namespace examiso::lifecycle
