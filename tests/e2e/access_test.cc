// The access service: who may reach what, a log of every decision, and
// denials that say nothing: the same bytes and the same time whatever the cause.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>

#include "common/json.h"
#include "common/uuid.h"
#include "examiso/v1/access.grpc.pb.h"
#include "examiso/v1/lifecycle.grpc.pb.h"
#include "tests/support/platform.h"
#include "tests/support/postgres.h"
#include "common/grpc_server.h"

namespace examiso {
namespace {

class AccessE2E : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    platform_ = new testing::Platform(testing::shared_postgres().create_database(),
                                      {{"EXAMISO_LIFECYCLE_PROVISIONER_WORKERS", "0"}});
    for (const char* s : {"lifecycle", "access"}) platform_->start(s);
    lifecycle_ = v1::LifecycleService::NewStub(
        make_channel(platform_->address("lifecycle"), "lifecycle"));
    access_ = v1::AccessService::NewStub(
        make_channel(platform_->address("access"), "access"));
  }
  static void TearDownTestSuite() {
    lifecycle_.reset();
    access_.reset();
    delete platform_;
  }

  static std::string session_for(const std::string& user) {
    v1::CreateSessionRequest r;
    r.set_user_id(user);
    v1::Session s;
    grpc::ClientContext c;
    EXPECT_TRUE(lifecycle_->CreateSession(&c, r, &s).ok());
    return s.session_id();
  }
  static void move(const std::string& session, v1::SessionState to) {
    v1::TransitionRequest t;
    t.set_session_id(session);
    t.set_to(to);
    t.set_reason("test");
    v1::TransitionResponse out;
    grpc::ClientContext c;
    ASSERT_TRUE(lifecycle_->Transition(&c, t, &out).ok());
  }
  static grpc::Status authorize(const std::string& session, const std::string& user,
                                v1::AccessType type = v1::ACCESS_TYPE_TERMINAL, v1::AuthorizeResponse* out = nullptr) {
    v1::AuthorizeRequest r;
    r.set_session_id(session);
    r.set_user_id(user);
    r.set_access_type(type);
    r.set_client_ip("203.0.113.7");
    v1::AuthorizeResponse response;
    grpc::ClientContext c;
    return access_->Authorize(&c, r, out ? out : &response);
  }

  static testing::Platform* platform_;
  static std::unique_ptr<v1::LifecycleService::Stub> lifecycle_;
  static std::unique_ptr<v1::AccessService::Stub> access_;
};
testing::Platform* AccessE2E::platform_ = nullptr;
std::unique_ptr<v1::LifecycleService::Stub> AccessE2E::lifecycle_;
std::unique_ptr<v1::AccessService::Stub> AccessE2E::access_;

// Terminal: ready or running only; status and details: any state; never
// someone else's.
TEST_F(AccessE2E, GrantsOnlyTheOwnerInAStateThatAllowsIt) {
  const std::string owner = new_uuid(), stranger = new_uuid();
  const std::string s = session_for(owner);
  const auto granted = [&](v1::AccessType t, const std::string& user) { return authorize(s, user, t).ok(); };
  struct Step {
    v1::SessionState state;
    bool terminal;
  };
  for (const Step& step : {Step{v1::SESSION_STATE_CREATED, false}, Step{v1::SESSION_STATE_INITIALIZING, false},
                           Step{v1::SESSION_STATE_READY, true}, Step{v1::SESSION_STATE_RUNNING, true},
                           Step{v1::SESSION_STATE_TERMINATED, false}}) {
    if (step.state != v1::SESSION_STATE_CREATED) move(s, step.state);
    SCOPED_TRACE(v1::SessionState_Name(step.state));
    EXPECT_EQ(granted(v1::ACCESS_TYPE_TERMINAL, owner), step.terminal);
    EXPECT_TRUE(granted(v1::ACCESS_TYPE_STATUS, owner));
    EXPECT_TRUE(granted(v1::ACCESS_TYPE_DETAILS, owner));
    for (auto t : {v1::ACCESS_TYPE_TERMINAL, v1::ACCESS_TYPE_STATUS, v1::ACCESS_TYPE_DETAILS, v1::ACCESS_TYPE_CONTROL})
      EXPECT_FALSE(granted(t, stranger));
  }
  const std::string failed = session_for(new_uuid());
  move(failed, v1::SESSION_STATE_FAILED);
  EXPECT_FALSE(authorize(failed, owner).ok());
  v1::AuthorizeResponse ok;
  const std::string fresh_owner = new_uuid();
  const std::string fresh = session_for(fresh_owner);
  ASSERT_TRUE(authorize(fresh, fresh_owner, v1::ACCESS_TYPE_STATUS, &ok).ok());
  EXPECT_EQ(ok.state(), v1::SESSION_STATE_CREATED);
  EXPECT_EQ(ok.user_id(), fresh_owner);
  // The status the decision saw, for callers that show it (the gateway's status endpoint).
  EXPECT_EQ(ok.status().session_id(), fresh);
  EXPECT_EQ(ok.status().lifecycle_state(), v1::SESSION_STATE_CREATED);
  EXPECT_EQ(ok.status().display_state(), "creating");
}

// Someone else's session, an unknown one, a malformed id: the same bytes.
TEST_F(AccessE2E, EveryDenialIsTheSameBytes) {
  const std::string owner = new_uuid(), stranger = new_uuid();
  const std::string s = session_for(owner);
  move(s, v1::SESSION_STATE_INITIALIZING);
  move(s, v1::SESSION_STATE_READY);
  const std::vector<std::pair<std::string, std::string>> attempts{
      {s, stranger},                                       // someone else's
      {new_uuid(), stranger},                              // unknown
      {"user-b-session-id", "user-a-id"},                  // malformed
      {s, "not-a-user"},                                   // malformed user on a real session
      {s.substr(0, 35) + "'", stranger},                   // almost an id
      {std::string(5000, 'x'), stranger},                  // absurd
      {"6BA7B810-9DAD-11D1-80B4-00C04FD430C8", stranger},  // upper-case unknown
  };
  std::string first_out, first_err;
  for (const auto& [session, user] : attempts) {
    testing::Env env = platform_->env();
    const auto r = testing::run({"environment-access", "authorize", "--session-id", session, "--user-id", user}, env);
    EXPECT_EQ(r.exit_code, 5) << session.substr(0, 50);
    if (first_err.empty()) {
      first_out = r.out;
      first_err = r.err;
    }
    EXPECT_EQ(r.out, first_out);
    EXPECT_EQ(r.err, first_err) << session.substr(0, 50);
    EXPECT_EQ(r.err.find(s), std::string::npos) << "the session id leaked";
    EXPECT_EQ(r.err.find(owner), std::string::npos) << "the owner leaked";
    const grpc::Status status = authorize(session, user);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
    EXPECT_EQ(status.error_message(), "Access denied");
    EXPECT_EQ(status.error_details(), authorize(attempts[0].first, attempts[0].second).error_details());
  }
  EXPECT_EQ(first_err, "{\n  \"error\": true,\n  \"code\": \"ACCESS_DENIED\",\n  \"message\": \"Access denied\",\n"
                       "  \"details\": {}\n}\n");
}

TEST_F(AccessE2E, EveryDecisionIsLoggedWithItsReasonForOperatorsOnly) {
  const std::string owner = new_uuid(), stranger = new_uuid();
  const std::string s = session_for(owner);
  ASSERT_FALSE(authorize(s, stranger).ok());
  ASSERT_FALSE(authorize(s, owner).ok());  // terminal before ready
  ASSERT_TRUE(authorize(s, owner, v1::ACCESS_TYPE_STATUS).ok());
  ASSERT_FALSE(authorize("x' OR 1=1 --", stranger).ok());
  const Json log = Json::parse(platform_->sh("environment-access log --session-id " + s).out);
  ASSERT_EQ(log["entries"].size(), 3u);
  EXPECT_EQ(log["entries"][0]["granted"], true);
  EXPECT_EQ(log["entries"][0]["access_type"], "status");
  EXPECT_EQ(log["entries"][1]["denial_reason"], "state_created");
  EXPECT_EQ(log["entries"][2]["denial_reason"], "not_owner");
  EXPECT_EQ(log["entries"][2]["user_id"], stranger);
  EXPECT_EQ(log["entries"][2]["client_ip"], "203.0.113.7");
  const Json odd = Json::parse(platform_->sh("environment-access log --session-id \"x' OR 1=1 --\"").out);
  ASSERT_EQ(odd["entries"].size(), 1u);
  EXPECT_EQ(odd["entries"][0]["denial_reason"], "malformed_session_id");
}

TEST_F(AccessE2E, MissingIdentityIsAUsageMistakeNotADenial) {
  const auto r = platform_->sh("environment-access authorize --session-id " + new_uuid());
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_EQ(Json::parse(r.err)["details"]["missing_fields"], Json({"user_id"}));
}

// The lifecycle service away: not a denial (that would lie), but unavailable.
TEST(AccessDependencies, ALostLifecycleServiceIsUnavailableNotDenied) {
  testing::Platform platform(testing::shared_postgres().create_database());
  platform.start("lifecycle");
  platform.start("access");
  platform.stop("lifecycle");
  const auto r = platform.sh("environment-access authorize --session-id " + new_uuid() + " --user-id " + new_uuid());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(Json::parse(r.err)["code"], "BACKEND_UNAVAILABLE");
}

}  // namespace
}  // namespace examiso
