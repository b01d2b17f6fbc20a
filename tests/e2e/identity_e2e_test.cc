// The identity service and `session-identity`, as users run them: the real
// daemon, the real CLI, real gRPC.
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <fstream>
#include <random>
#include <sstream>

#include "common/json.h"
#include "examiso/v1/identity.grpc.pb.h"
#include "tests/support/postgres.h"
#include "tests/support/process.h"
#include "tests/support/reflection.h"
#include "common/grpc_server.h"

namespace examiso {
namespace {

using testing::Env;

const std::string kSecret = "identity-e2e-development-secret";

class IdentityE2E : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    address_ = "127.0.0.1:" + std::to_string(testing::free_port());
    daemon_ = new testing::Daemon({"examiso-identity"}, {{"EXAMISO_IDENTITY_LISTEN", address_},
                                                         {"EXAMISO_IDENTITY_HS256_SECRET", kSecret}, {"EXAMISO_IDENTITY_DEV_SIGN_IN", "true"},
                                                         {"DATABASE_URL", testing::shared_postgres().create_database()}});
    ASSERT_TRUE(testing::wait_serving(address_, "identity")) << daemon_->log();
  }
  static void TearDownTestSuite() {
    delete daemon_;
    daemon_ = nullptr;
  }
  void TearDown() override { ASSERT_TRUE(daemon_->running()) << "the service died:\n" << daemon_->log(); }

  // A command line as a user types it, pointed at the service under test.
  static testing::CommandResult sh(const std::string& command) {
    return testing::run_shell(command, {{"EXAMISO_IDENTITY_ADDRESS", address_}});
  }
  static testing::CommandResult cli(std::vector<std::string> args) {
    args.insert(args.begin(), "session-identity");
    return testing::run(args, {{"EXAMISO_IDENTITY_ADDRESS", address_}});
  }

  static std::string address_;
  static testing::Daemon* daemon_;
};
std::string IdentityE2E::address_;
testing::Daemon* IdentityE2E::daemon_ = nullptr;

// Quickstart step 1, verbatim.
TEST_F(IdentityE2E, QuickstartValidateIdentity) {
  const auto r = sh(R"(session-identity validate \
  --user-id "550e8400-e29b-41d4-a716-446655440000" \
  --session-id "6ba7b810-9dad-11d1-80b4-00c04fd430c8")");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, R"({
  "valid": true,
  "identity": {
    "user_id": "550e8400-e29b-41d4-a716-446655440000",
    "exam_session_id": "6ba7b810-9dad-11d1-80b4-00c04fd430c8",
    "environment_id": null
  }
}
)");
  EXPECT_EQ(r.err, "");
}

// The quickstart's "Missing Identity" scenario, verbatim.
TEST_F(IdentityE2E, QuickstartMissingIdentity) {
  const auto r = sh(R"(session-identity validate --session-id "some-session")");
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, R"({
  "error": true,
  "code": "INVALID_IDENTITY",
  "message": "Missing required identity component: user_id",
  "details": {
    "missing_fields": ["user_id"]
  }
}
)");
}

TEST_F(IdentityE2E, ReportsMalformedIdsAndTheEnvironmentId) {
  auto r = cli({"validate", "--user-id", "550E8400-E29B-41D4-A716-446655440000", "--session-id",
                "6ba7b810-9dad-11d1-80b4-00c04fd430c8", "--environment-id", "7c9e6679-7425-40de-944b-e07fc1f90ae7"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  const Json ok = Json::parse(r.out);
  EXPECT_EQ(ok["identity"]["user_id"], "550e8400-e29b-41d4-a716-446655440000");
  EXPECT_EQ(ok["identity"]["environment_id"], "7c9e6679-7425-40de-944b-e07fc1f90ae7");

  r = cli({"validate", "--user-id", "550e8400-e29b-41d4-a716-446655440000", "--session-id", "some-session",
           "--environment-id", "nope"});
  EXPECT_EQ(r.exit_code, 3);
  const Json err = Json::parse(r.err);
  EXPECT_EQ(err["code"], "INVALID_IDENTITY");
  EXPECT_EQ(err["details"]["invalid_fields"], Json({"exam_session_id", "environment_id"}));
}

struct BadInput {
  std::vector<std::string> args;
  int exit_code;
  std::string code;
};

TEST_F(IdentityE2E, BadCliInputGetsAClearJsonError) {
  const std::string uuid = "550e8400-e29b-41d4-a716-446655440000";
  const std::vector<BadInput> cases{
      {{"validate", "--user-id", uuid, "--session-id", uuid, "--verbose"}, 2, "INVALID_USAGE"},
      {{"validate", "--user-id"}, 2, "INVALID_USAGE"},
      {{"frobnicate"}, 2, "INVALID_USAGE"},
      {{}, 2, "INVALID_USAGE"},
      {{"validate", "--user-id", "", "--session-id", ""}, 3, "INVALID_IDENTITY"},
      {{"validate", "--user-id", std::string(10000, '7'), "--session-id", uuid}, 3, "INVALID_IDENTITY"},
      {{"validate", "--user-id", "\xff\xfe", "--session-id", uuid}, 2, "INVALID_USAGE"},
      {{"validate", "--user-id", "550e8400' OR 1=1; --", "--session-id", uuid}, 3, "INVALID_IDENTITY"},
      {{"token", "--user-id", uuid, "--ttl", "soon"}, 2, "INVALID_USAGE"},
      {{"token", "--user-id", uuid, "--ttl", "-5"}, 3, "INVALID_ARGUMENT"},
      {{"token", "--user-id", "someone"}, 3, "INVALID_IDENTITY"},
      {{"token"}, 2, "INVALID_USAGE"},
      {{"verify", "--token", "not.a.token"}, 5, "UNAUTHENTICATED"},
  };
  for (const auto& c : cases) {
    const auto r = cli(c.args);
    std::string shown;
    for (const auto& a : c.args) shown += " " + a.substr(0, 40);
    EXPECT_EQ(r.exit_code, c.exit_code) << shown << "\n" << r.err;
    EXPECT_EQ(r.out, "") << shown;
    ASSERT_TRUE(is_valid_utf8(r.err)) << shown;
    const Json err = Json::parse(r.err, nullptr, false);
    ASSERT_TRUE(err.is_object()) << shown << "\n" << r.err;
    EXPECT_EQ(err["error"], true) << shown;
    EXPECT_EQ(err["code"], c.code) << shown;
    EXPECT_FALSE(err["message"].get<std::string>().empty()) << shown;
    EXPECT_TRUE(err["details"].is_object()) << shown;
  }
}

// A terminal ticket carries the roles it was issued with (a staff observer's),
// none for a candidate's, and only known ones.
TEST_F(IdentityE2E, TerminalTicketsCarryTheirRoles) {
  auto stub = v1::IdentityService::NewStub(make_channel(address_, "identity", "gateway"));
  const std::string user = "6f1c2a9e-0b5d-4e7a-9c3f-2d8e4b6a1f00", session = "3c9d5e7f-1a2b-4c6d-8e0f-a1b2c3d4e5f6";
  const auto issue = [&](std::vector<std::string> roles, std::string* ticket) {
    v1::IssueTerminalTicketRequest r;
    r.set_user_id(user);
    r.set_session_id(session);
    for (auto& role : roles) r.add_roles(role);
    v1::IssueTerminalTicketResponse out;
    grpc::ClientContext c;
    const grpc::Status s = stub->IssueTerminalTicket(&c, r, &out);
    *ticket = out.ticket();
    return s;
  };
  const auto redeem = [&](const std::string& ticket) {
    v1::RedeemTerminalTicketRequest r;
    r.set_ticket(ticket);
    r.set_session_id(session);
    v1::RedeemTerminalTicketResponse out;
    grpc::ClientContext c;
    EXPECT_TRUE(stub->RedeemTerminalTicket(&c, r, &out).ok());
    return std::vector<std::string>(out.roles().begin(), out.roles().end());
  };
  std::string ticket;
  ASSERT_TRUE(issue({"proctor", "admin"}, &ticket).ok());
  EXPECT_EQ(redeem(ticket), (std::vector<std::string>{"proctor", "admin"}));
  ASSERT_TRUE(issue({}, &ticket).ok());
  EXPECT_EQ(redeem(ticket), std::vector<std::string>{});
  EXPECT_EQ(issue({"root"}, &ticket).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(issue({"proctor,admin"}, &ticket).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(IdentityE2E, HelpIsNotAnError) {
  const auto r = cli({"--help"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("validate"), std::string::npos);
  EXPECT_NE(r.out.find("token"), std::string::npos);
}

TEST_F(IdentityE2E, MintsAndVerifiesDevelopmentTokens) {
  auto r = cli({"token", "--user-id", "550e8400-e29b-41d4-a716-446655440000", "--ttl", "120"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const Json issued = Json::parse(r.out);
  EXPECT_EQ(issued["user_id"], "550e8400-e29b-41d4-a716-446655440000");
  const std::string token = issued["token"];

  r = sh("session-identity verify --token \"$(session-identity token --user-id 550e8400-e29b-41d4-a716-446655440000 "
         "--raw)\"");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Json::parse(r.out)["user_id"], "550e8400-e29b-41d4-a716-446655440000");

  r = cli({"verify", "--token", token.substr(0, token.size() - 2)});
  EXPECT_EQ(r.exit_code, 5);
  EXPECT_EQ(Json::parse(r.err)["details"]["reason"], "bad_signature");
}

TEST_F(IdentityE2E, AnUnreachableServiceIsBackendUnavailableNamingTheAddress) {
  const std::string nowhere = "127.0.0.1:" + std::to_string(testing::free_port());
  const auto start = std::chrono::steady_clock::now();
  const auto r = testing::run({"session-identity", "validate", "--user-id", "550e8400-e29b-41d4-a716-446655440000",
                               "--session-id", "6ba7b810-9dad-11d1-80b4-00c04fd430c8"},
                              {{"EXAMISO_IDENTITY_ADDRESS", nowhere}});
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(3));
  EXPECT_EQ(r.exit_code, 1);
  const Json err = Json::parse(r.err);
  EXPECT_EQ(err["code"], "BACKEND_UNAVAILABLE");
  EXPECT_NE(err["message"].get<std::string>().find(nowhere), std::string::npos);
  // The flag wins over the environment.
  const auto flagged = testing::run({"session-identity", "--address", address_, "validate", "--user-id",
                                     "550e8400-e29b-41d4-a716-446655440000", "--session-id",
                                     "6ba7b810-9dad-11d1-80b4-00c04fd430c8"},
                                    {{"EXAMISO_IDENTITY_ADDRESS", nowhere}});
  EXPECT_EQ(flagged.exit_code, 0) << flagged.err;
}

TEST_F(IdentityE2E, GrpcurlCanListAndDescribeEveryService) {
  const auto services = testing::reflection_list(address_, "identity");
  for (const char* expected :
       {"examiso.v1.IdentityService", "grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"})
    EXPECT_NE(std::find(services.begin(), services.end(), expected), services.end()) << expected;
  const std::string described = testing::reflection_describe(address_, "identity", "examiso.v1.IdentityService");
  EXPECT_NE(described.find("rpc ValidateIdentity(.examiso.v1.ValidateIdentityRequest) returns "
                           "(.examiso.v1.ValidateIdentityResponse)"),
            std::string::npos)
      << described;
  EXPECT_NE(described.find("rpc IssueToken"), std::string::npos);
}

// Whatever arrives on the wire, the service answers and stays up.
TEST_F(IdentityE2E, SurvivesArbitraryRequests) {
  auto channel = make_channel(address_, "identity", "gateway");
  grpc::GenericStub generic(channel);
  std::mt19937 rng(42);
  for (const char* method : {"/examiso.v1.IdentityService/ValidateIdentity", "/examiso.v1.IdentityService/VerifyToken",
                             "/examiso.v1.IdentityService/IssueToken"}) {
    for (int i = 0; i < 200; ++i) {
      std::string junk(rng() % 512, '\0');
      for (auto& c : junk) c = static_cast<char>(rng());
      grpc::ClientContext context;
      context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
      grpc::Slice slice(junk);
      grpc::ByteBuffer request(&slice, 1), response;
      std::mutex m;
      std::condition_variable cv;
      bool done = false;
      generic.UnaryCall(&context, method, grpc::StubOptions(), &request, &response, [&](grpc::Status) {
        std::lock_guard lock(m);
        done = true;
        cv.notify_one();
      });
      std::unique_lock lock(m);
      ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(10), [&] { return done; }));
    }
  }
  auto stub = v1::IdentityService::NewStub(channel);
  v1::VerifyTokenRequest huge;
  huge.set_token(std::string(3 << 20, 'a'));
  grpc::ClientContext context;
  v1::VerifyTokenResponse out;
  EXPECT_EQ(stub->VerifyToken(&context, huge, &out).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_TRUE(daemon_->running()) << daemon_->log();
  EXPECT_EQ(sh("session-identity validate --user-id 550e8400-e29b-41d4-a716-446655440000 --session-id "
               "6ba7b810-9dad-11d1-80b4-00c04fd430c8")
                .exit_code,
            0);
}

TEST(IdentityService, RefusesToIssueTokensWithoutASigningSecret) {
  testing::TempDir dir;
  const std::string key = dir.path() + "/rs256.pub";
  ASSERT_EQ(testing::run({"openssl", "genpkey", "-algorithm", "RSA", "-out", dir.path() + "/rs256.key"}).exit_code, 0);
  ASSERT_EQ(testing::run({"openssl", "pkey", "-in", dir.path() + "/rs256.key", "-pubout", "-out", key}).exit_code, 0);
  const std::string address = "127.0.0.1:" + std::to_string(testing::free_port());
  testing::Daemon daemon({"examiso-identity"}, {{"EXAMISO_IDENTITY_LISTEN", address},
                                                {"EXAMISO_IDENTITY_ALGORITHMS", "RS256"},
                                                {"EXAMISO_IDENTITY_RS256_PUBLIC_KEY_FILE", key},
                                                {"DATABASE_URL", testing::shared_postgres().create_database()}});
  ASSERT_TRUE(testing::wait_serving(address, "identity")) << daemon.log();
  const auto r = testing::run({"session-identity", "token", "--user-id", "550e8400-e29b-41d4-a716-446655440000"},
                              {{"EXAMISO_IDENTITY_ADDRESS", address}});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(Json::parse(r.err)["code"], "TOKEN_ISSUING_DISABLED");
}

TEST(IdentityService, RefusesToStartWithABadConfigAndSaysWhy) {
  testing::TempDir dir;
  const std::string path = dir.path() + "/examiso.yaml";
  std::ofstream(path) << "identity:\n  algoritms: [HS256]\n";
  testing::Daemon daemon({"examiso-identity", "--config", path}, {});
  EXPECT_EQ(daemon.wait(std::chrono::seconds(10)), 1);
  EXPECT_NE(daemon.log().find("unknown key 'identity.algoritms'"), std::string::npos) << daemon.log();
}

// A signing secret alone does not turn the development sign-in on: only
// identity.dev_sign_in does (which ./scripts/dev up sets, and nothing else).
TEST(IdentityService, ASecretAloneIssuesNoTokens) {
  const std::string address = "127.0.0.1:" + std::to_string(testing::free_port());
  testing::Daemon daemon({"examiso-identity"}, {{"EXAMISO_IDENTITY_LISTEN", address},
                                                {"EXAMISO_IDENTITY_HS256_SECRET", kSecret},
                                                {"DATABASE_URL", testing::shared_postgres().create_database()}});
  ASSERT_TRUE(testing::wait_serving(address, "identity")) << daemon.log();
  const auto r = testing::run({"session-identity", "token", "--user-id", "550e8400-e29b-41d4-a716-446655440000"},
                              {{"EXAMISO_IDENTITY_ADDRESS", address}});
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_EQ(Json::parse(r.err, nullptr, false).value("code", ""), "TOKEN_ISSUING_DISABLED") << r.err;
  EXPECT_NE(r.err.find("identity.dev_sign_in"), std::string::npos) << r.err;
  // Turned on without a secret to sign with, identity refuses to start, and says why.
  const std::string other = "127.0.0.1:" + std::to_string(testing::free_port());
  testing::Daemon refused({"examiso-identity"}, {{"EXAMISO_IDENTITY_LISTEN", other},
                                                 {"EXAMISO_IDENTITY_DEV_SIGN_IN", "true"},
                                                 {"EXAMISO_IDENTITY_ALGORITHMS", "RS256"},
                                                 {"DATABASE_URL", testing::shared_postgres().create_database()}});
  EXPECT_EQ(refused.wait(std::chrono::seconds(10)), 1) << refused.log();
  EXPECT_NE(refused.log().find("identity.dev_sign_in needs identity.hs256_secret"), std::string::npos)
      << refused.log();
}

TEST(IdentityService, ShutsDownGracefullyAndLogsOneJsonObjectPerLine) {
  const std::string address = "127.0.0.1:" + std::to_string(testing::free_port());
  testing::Daemon daemon({"examiso-identity"}, {{"EXAMISO_IDENTITY_LISTEN", address},
                                                {"EXAMISO_IDENTITY_HS256_SECRET", kSecret}, {"EXAMISO_IDENTITY_DEV_SIGN_IN", "true"},
                                                {"DATABASE_URL", testing::shared_postgres().create_database()}});
  ASSERT_TRUE(testing::wait_serving(address, "identity")) << daemon.log();
  testing::run({"session-identity", "token", "--user-id", "550e8400-e29b-41d4-a716-446655440000"},
               {{"EXAMISO_IDENTITY_ADDRESS", address}});
  daemon.signal(SIGTERM);
  EXPECT_EQ(daemon.wait(std::chrono::seconds(6)), 0);
  std::istringstream lines(daemon.log());
  std::vector<std::string> events;
  for (std::string line; std::getline(lines, line);) {
    const Json entry = Json::parse(line, nullptr, false);
    ASSERT_TRUE(entry.is_object()) << line;
    EXPECT_EQ(entry["service"], "identity");
    EXPECT_TRUE(entry.contains("ts") && entry.contains("level") && entry.contains("event")) << line;
    events.push_back(entry["event"]);
    if (entry["event"] == "token_issued") {
      EXPECT_EQ(entry["user_id"], "550e8400-e29b-41d4-a716-446655440000");
    }
  }
  // In this order, whatever else (migrations) is said between.
  std::vector<std::string> key_events;
  for (const auto& e : events)
    if (e == "listening" || e == "token_issued" || e == "shutting_down" || e == "stopped") key_events.push_back(e);
  EXPECT_EQ(key_events, (std::vector<std::string>{"listening", "token_issued", "shutting_down", "stopped"}));
}

}  // namespace
}  // namespace examiso
