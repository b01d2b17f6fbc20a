// The gateway against the real platform: every service, a real PostgreSQL,
// real sandboxes, real HTTP and WebSocket connections.
#include <gtest/gtest.h>
#include <grpcpp/grpcpp.h>
#include <yaml-cpp/yaml.h>

#include <csignal>
#include <fstream>
#include <random>
#include <regex>
#include <set>
#include <thread>

#include "common/json.h"
#include "common/uuid.h"
#include "examiso/v1/lifecycle.grpc.pb.h"
#include "gateway/api.h"
#include "services/identity/token.h"
#include "tests/support/eventually.h"
#include "tests/support/http_client.h"
#include "tests/support/platform.h"
#include "tests/support/postgres.h"
#include "common/grpc_server.h"

namespace examiso {
namespace {

using namespace std::chrono_literals;
using testing::HttpResult;
using testing::WsClient;

const std::string kExam = "a1b2c3d4-e5f6-7890-abcd-ef1234567890";
const std::string kTwoSecondExam = "00000000-0000-4000-8000-000000000002";
const std::string kFourSecondExam = "00000000-0000-4000-8000-000000000010";
const std::string kOrigin = "http://exam.example";

class GatewayTest : public ::testing::Test {
 protected:
  static inline testing::PostgresCluster* cluster = nullptr;
  static inline testing::Platform* platform = nullptr;
  static inline std::string gw;

  static void SetUpTestSuite() {
    cluster = new testing::PostgresCluster();
    // No terminal output budget here: a client that stops reading must meet
    // a flood as fast as the machine makes it (the budget is tested in
    // environment_e2e_test).
    platform = new testing::Platform(cluster->create_database(), {{"EXAMISO_GATEWAY_ALLOWED_ORIGINS", kOrigin},
                                                                  {"EXAMISO_CLEANUP_SWEEP_INTERVAL_MS", "200"},
                                                                  {"EXAMISO_ENVIRONMENT_TERMINAL_OUTPUT_MB_PER_S", "0"}});
    for (const char* s : {"identity", "lifecycle", "environment", "access", "cleanup", "gateway"}) platform->start(s);
    gw = platform->address("gateway");
  }
  static void TearDownTestSuite() {
    delete platform;
    delete cluster;
  }

  void TearDown() override {
    if (HasFailure()) std::cerr << platform->logs().substr(0, 20000);
  }

  // A staff token from the operator CLI, as on a development platform
  // (`session-identity token --role proctor`).
  static std::string staff_token(const std::string& role, const std::string& user = new_uuid()) {
    const auto r = testing::run({"session-identity", "token", "--user-id", user, "--role", role, "--raw"},
                                platform->env());
    if (r.exit_code != 0) throw std::runtime_error("token: " + r.out + r.err);
    return r.out.substr(0, r.out.find_last_not_of(" \n") + 1);
  }

  static std::string token_for(const std::string& user) {
    const auto r = testing::run({"session-identity", "token", "--user-id", user}, platform->env());
    if (r.exit_code != 0) throw std::runtime_error("token: " + r.out + r.err);
    return Json::parse(r.out)["token"];
  }

  struct Candidate {
    std::string user = new_uuid();
    std::string token = token_for(user);
    std::string session;
  };

  // A candidate with a session of `exam`, provisioned through the gateway.
  static Candidate candidate_with_session(const std::string& exam = kExam, bool wait_ready = true) {
    Candidate c;
    const HttpResult r = testing::http_as(c.token, gw, "POST", "/v1/sessions", Json{{"exam_id", exam}}.dump());
    if (r.status != 201) throw std::runtime_error("create: " + r.body);
    c.session = Json::parse(r.body)["data"]["session_id"];
    if (wait_ready && !testing::eventually([&] { return state_of(c) == "ready"; }, 20s))
      throw std::runtime_error("never ready: " + platform->logs());
    return c;
  }

  static std::string state_of(const Candidate& c) {
    const HttpResult r = testing::http_as(c.token, gw, "GET", "/v1/sessions/" + c.session + "/status");
    return r.status == 200 ? Json::parse(r.body)["data"]["lifecycle_state"].get<std::string>() : "";
  }

  static std::unique_ptr<WsClient> terminal(const Candidate& c, const std::string& address = gw) {
    return WsClient::connect(address, "/v1/sessions/" + c.session + "/terminal",
                             {{"Authorization", "Bearer " + c.token}});
  }

  // Reads messages until one satisfies `want` (the rest is kept in `seen`).
  static std::optional<Json> until(WsClient& ws, const std::function<bool(const Json&)>& want,
                                   std::chrono::milliseconds within = 10s, std::string* seen = nullptr) {
    const auto deadline = std::chrono::steady_clock::now() + within;
    while (std::chrono::steady_clock::now() < deadline) {
      const auto m = ws.receive(std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now()));
      if (!m) return std::nullopt;
      const Json j = Json::parse(*m, nullptr, false);
      if (seen) *seen += *m + "\n";
      if (want(j)) return j;
    }
    return std::nullopt;
  }

  // Terminal output until `needle` appears.
  static bool output_contains(WsClient& ws, const std::string& needle, std::chrono::milliseconds within = 10s) {
    std::string output;
    return until(
               ws,
               [&](const Json& j) {
                 if (j.value("type", "") != "output") return false;
                 // Only the end that may hold it: a flood of output stays linear.
                 output = output.substr(output.size() - std::min(output.size(), needle.size())) + j.value("data", "");
                 return output.find(needle) != std::string::npos;
               },
               within)
        .has_value();
  }
};

Json data_of(const HttpResult& r) { return Json::parse(r.body)["data"]; }
std::string code_of(const HttpResult& r) {
  const Json j = Json::parse(r.body, nullptr, false);
  return j.is_object() && j.contains("error") ? j["error"].value("code", "") : "";
}

TEST_F(GatewayTest, TheQuickstartApiFlowWorks) {
  Candidate c;
  // 1. Create session
  HttpResult r = testing::http_as(c.token, gw, "POST", "/v1/sessions", R"({"exam_id": ")" + kExam + R"("})");
  ASSERT_EQ(r.status, 201) << r.body;
  const Json created = Json::parse(r.body);
  EXPECT_EQ(created["success"], true);
  c.session = created["data"]["session_id"];
  EXPECT_TRUE(is_uuid(c.session));
  EXPECT_EQ(created["data"]["user_id"], c.user);
  EXPECT_EQ(created["data"]["exam_id"], kExam);
  EXPECT_EQ(created["data"]["status"], "created");
  EXPECT_EQ(created["data"]["websocket_url"], "ws://" + gw + "/v1/sessions/" + c.session + "/terminal");
  EXPECT_EQ(created["data"]["status_url"], "ws://" + gw + "/v1/sessions/" + c.session + "/status");

  // A second one is refused, and names the caller's own active session.
  r = testing::http_as(c.token, gw, "POST", "/v1/sessions", Json{{"exam_id", kExam}}.dump());
  EXPECT_EQ(r.status, 409);
  EXPECT_EQ(code_of(r), "ACTIVE_SESSION_EXISTS");
  EXPECT_EQ(Json::parse(r.body)["error"]["session_id"], c.session);

  // 2. Check status (poll until ready)
  ASSERT_TRUE(testing::eventually([&] { return state_of(c) == "ready"; }, 20s));
  r = testing::http_as(c.token, gw, "GET", "/v1/sessions/" + c.session + "/status");
  Json status = data_of(r);
  EXPECT_EQ(status["display_state"], "ready");
  EXPECT_EQ(status["environment_ready"], true);
  EXPECT_EQ(status["remaining_seconds"], 7200);
  EXPECT_FALSE(status.contains("technical_message"));

  r = testing::http_as(c.token, gw, "GET", "/v1/sessions/" + c.session);
  const Json details = data_of(r);
  EXPECT_EQ(details["lifecycle_state"], "ready");
  EXPECT_TRUE(details["started_at"].is_null());
  EXPECT_EQ(details["environment"]["ready"], true);
  EXPECT_TRUE(is_uuid(details["environment"]["environment_id"].get<std::string>()));

  r = testing::http_as(c.token, gw, "GET", "/v1/sessions");
  ASSERT_EQ(data_of(r)["sessions"].size(), 1u);
  EXPECT_EQ(data_of(r)["sessions"][0]["session_id"], c.session);

  // 3. Connect terminal: connecting starts the exam.
  auto ws = terminal(c);
  ASSERT_FALSE(ws->refused()) << ws->refused()->status << ws->refused()->body;
  const auto running = until(*ws, [](const Json& j) { return j.value("type", "") == "status"; });
  ASSERT_TRUE(running);
  EXPECT_EQ((*running)["state"], "running");
  EXPECT_GT((*running)["remaining_seconds"].get<int>(), 7100);

  // 4. Work on exam: the setup script ran, the shell answers.
  ws->send(R"({"type":"resize","cols":120,"rows":40})");
  ws->send(R"({"type":"input","data":"cat ~/exam/README; echo cols=$(tput cols 2>/dev/null || stty size)\n"})");
  EXPECT_TRUE(output_contains(*ws, "Welcome to your exam environment."));
  ws->send(R"({"type":"input","data":"stty size\n"})");
  EXPECT_TRUE(output_contains(*ws, "40 120"));
  r = testing::http_as(c.token, gw, "GET", "/v1/sessions/" + c.session);
  EXPECT_EQ(data_of(r)["lifecycle_state"], "running");
  EXPECT_TRUE(data_of(r)["started_at"].is_string());

  // 5. Terminate when done: the open terminal is told, then closed normally.
  r = testing::http_as(c.token, gw, "POST", "/v1/sessions/" + c.session + "/terminate");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(data_of(r)["lifecycle_state"], "terminated");
  EXPECT_EQ(data_of(r)["termination_reason"], "submitted");
  EXPECT_TRUE(data_of(r)["terminated_at"].is_string()) << r.body;
  EXPECT_EQ(data_of(r)["environment_released"], true);
  const auto ended = until(*ws, [](const Json& j) { return j.value("type", "") == "termination"; });
  ASSERT_TRUE(ended);
  EXPECT_EQ((*ended)["reason"], "submitted");
  EXPECT_EQ(ws->wait_closed(), 1000);

  r = testing::http_as(c.token, gw, "POST", "/v1/sessions/" + c.session + "/terminate");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(code_of(r), "SESSION_ALREADY_TERMINATED");
  r = testing::http_as(c.token, gw, "GET", "/v1/sessions/" + c.session + "/status");
  EXPECT_EQ(data_of(r)["lifecycle_state"], "terminated");
  EXPECT_EQ(data_of(r)["remaining_seconds"], 0);
  // The terminal of an ended session: 4006.
  EXPECT_EQ(terminal(c)->wait_closed(), 4006);
}

// An environment that ends while its session goes on (an operator destroyed
// it) closes the terminal with 4006 and no termination message: the session
// has not ended.
TEST_F(GatewayTest, AnEnvironmentEndingOnItsOwnClosesTheTerminalWith4006) {
  const Candidate c = candidate_with_session();
  auto ws = terminal(c);
  ASSERT_TRUE(until(*ws, [](const Json& j) { return j.value("type", "") == "status"; }));
  ASSERT_EQ(platform->sh("execution-environment destroy --session-id " + c.session).exit_code, 0);
  EXPECT_FALSE(until(*ws, [](const Json& j) { return j.value("type", "") == "termination"; }, 5s));
  EXPECT_EQ(ws->wait_closed(), 4006);
  EXPECT_EQ(state_of(c), "running");
}

TEST_F(GatewayTest, AnotherUsersSessionAndAnUnknownOneLookTheSame) {
  const Candidate a = candidate_with_session();
  const Candidate b;
  const std::string unknown = new_uuid();
  const std::vector<std::pair<std::string, std::string>> endpoints{
      {"GET", ""}, {"GET", "/status"}, {"POST", "/start"}, {"POST", "/terminate"}, {"POST", "/terminal-ticket"}};
  for (const auto& [method, tail] : endpoints) {
    const HttpResult foreign = testing::http_as(b.token, gw, method, "/v1/sessions/" + a.session + tail);
    const HttpResult none = testing::http_as(b.token, gw, method, "/v1/sessions/" + unknown + tail);
    EXPECT_EQ(foreign.status, 403) << method << tail;
    EXPECT_EQ(foreign.body, none.body) << method << tail;
    EXPECT_EQ(foreign.body, R"({"success":false,"error":{"code":"ACCESS_DENIED","message":"Access denied"}})");
    auto headers = foreign.headers, other = none.headers;
    headers.erase("date");
    other.erase("date");
    EXPECT_EQ(headers, other);
    for (const auto& [k, v] : foreign.headers) {
      EXPECT_EQ(v.find(a.session), std::string::npos);
      EXPECT_EQ(v.find(a.user), std::string::npos);
    }
  }
  for (const std::string tail : {"/terminal", "/status"}) {
    auto foreign = WsClient::connect(gw, "/v1/sessions/" + a.session + tail, {{"Authorization", "Bearer " + b.token}});
    auto none = WsClient::connect(gw, "/v1/sessions/" + unknown + tail, {{"Authorization", "Bearer " + b.token}});
    std::string seen_foreign, seen_none;
    while (auto m = foreign->receive(2s)) seen_foreign += *m;
    while (auto m = none->receive(2s)) seen_none += *m;
    EXPECT_EQ(foreign->wait_closed(), 4003) << tail;
    EXPECT_EQ(none->wait_closed(), 4003) << tail;
    EXPECT_EQ(foreign->close_reason(), none->close_reason());
    EXPECT_EQ(seen_foreign, seen_none);
    EXPECT_EQ(seen_foreign.find(a.session), std::string::npos);
  }
  // A's session is untouched by all of it.
  EXPECT_EQ(state_of(a), "ready");
}

TEST_F(GatewayTest, MissingMalformedExpiredAndForgedTokensAreRefusedAlike) {
  const Candidate a = candidate_with_session();
  const std::string path = "/v1/sessions/" + a.session + "/status";
  // alg "none", and a token signed with another secret.
  const std::string none_token = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiIiLCJleHAiOjQxMDI0NDQ4MDB9.";
  SystemClock clock;
  identity::TokenPolicy attacker;
  attacker.algorithms = {"HS256"};
  attacker.hs256_secret = "an-attackers-guess";
  attacker.dev_sign_in = true;
  const std::string forged =
      identity::TokenIssuer(attacker, std::chrono::hours(1), std::chrono::hours(1), clock).issue(a.user, {}).token;
  // Signed right, but it expired an hour ago.
  ManualClock past(clock.now() - std::chrono::hours(2));
  identity::TokenPolicy platform_policy;
  platform_policy.algorithms = {"HS256"};
  platform_policy.hs256_secret = platform->env().at("EXAMISO_IDENTITY_HS256_SECRET");
  platform_policy.dev_sign_in = true;
  const std::string expired =
      identity::TokenIssuer(platform_policy, std::chrono::hours(1), std::chrono::hours(1), past).issue(a.user, {}).token;
  std::set<std::string> bodies;
  for (const testing::Headers& h : std::vector<testing::Headers>{
           {},
           {{"Authorization", "Bearer"}},
           {{"Authorization", "Basic dXNlcjpwYXNz"}},
           {{"Authorization", "Bearer not.a.jwt"}},
           {{"Authorization", "Bearer " + none_token}},
           {{"Authorization", "Bearer " + forged}},
           {{"Authorization", "Bearer " + expired}},
       }) {
    const HttpResult r = testing::http(gw, "GET", path, "", h);
    EXPECT_EQ(r.status, 401) << (h.empty() ? "" : h[0].second);
    EXPECT_EQ(r.headers.at("www-authenticate"), "Bearer");
    bodies.insert(Json::parse(r.body)["error"]["code"].get<std::string>());
    auto ws = WsClient::connect(gw, "/v1/sessions/" + a.session + "/terminal", h);
    EXPECT_EQ(ws->wait_closed(), 4001);
  }
  EXPECT_EQ(bodies, std::set<std::string>{"UNAUTHENTICATED"});
  EXPECT_EQ(state_of(a), "ready");  // nobody started it
}

TEST_F(GatewayTest, BrowsersUseSingleUseTicketsBoundToUserAndSession) {
  const Candidate a = candidate_with_session();
  const Candidate b = candidate_with_session();
  const auto ticket = [](const Candidate& c) {
    const HttpResult r = testing::http_as(c.token, gw, "POST", "/v1/sessions/" + c.session + "/terminal-ticket");
    EXPECT_EQ(r.status, 200) << r.body;
    return data_of(r)["ticket"].get<std::string>();
  };
  const testing::Headers browser{{"Origin", kOrigin}};
  // Bound to the session: A's ticket opens nothing of B's.
  const std::string t1 = ticket(a);
  EXPECT_EQ(WsClient::connect(gw, "/v1/sessions/" + b.session + "/terminal?ticket=" + t1, browser)->wait_closed(),
            4001);
  EXPECT_EQ(state_of(b), "ready");
  // Single use: that attempt spent it.
  EXPECT_EQ(WsClient::connect(gw, "/v1/sessions/" + a.session + "/terminal?ticket=" + t1, browser)->wait_closed(),
            4001);
  // A fresh one works, once.
  const std::string t2 = ticket(a);
  auto ws = WsClient::connect(gw, "/v1/sessions/" + a.session + "/terminal?ticket=" + t2, browser);
  ASSERT_FALSE(ws->refused());
  ws->send(R"({"type":"input","data":"echo ticket-$((6*7))\n"})");
  EXPECT_TRUE(output_contains(*ws, "ticket-42"));
  EXPECT_EQ(WsClient::connect(gw, "/v1/sessions/" + a.session + "/terminal?ticket=" + t2, browser)->wait_closed(),
            4001);
  EXPECT_EQ(WsClient::connect(gw, "/v1/sessions/" + a.session + "/terminal?ticket=garbage", browser)->wait_closed(),
            4001);
}

TEST_F(GatewayTest, CrossSiteWebSocketHijackingFails) {
  const Candidate a = candidate_with_session();
  // A page on another site opens the candidate's terminal with the browser's
  // credentials (here even a valid ticket and token): the upgrade is refused.
  const HttpResult t = testing::http_as(a.token, gw, "POST", "/v1/sessions/" + a.session + "/terminal-ticket");
  const std::string ticket = data_of(t)["ticket"];
  for (const std::string evil : {"http://evil.example", "null", "http://exam.example.evil.example", "https://exam.example"}) {
    auto ws = WsClient::connect(gw, "/v1/sessions/" + a.session + "/terminal?ticket=" + ticket,
                                {{"Origin", evil}, {"Authorization", "Bearer " + a.token}});
    ASSERT_TRUE(ws->refused()) << evil;
    EXPECT_EQ(ws->refused()->status, 403);
    EXPECT_EQ(code_of(*ws->refused()), "ACCESS_DENIED");
    auto status = WsClient::connect(gw, "/v1/sessions/" + a.session + "/status", {{"Origin", evil}});
    ASSERT_TRUE(status->refused());
    EXPECT_EQ(status->refused()->status, 403);
  }
  EXPECT_EQ(state_of(a), "ready");
  // The ticket was not spent by the refused attempts.
  auto ws = WsClient::connect(gw, "/v1/sessions/" + a.session + "/terminal?ticket=" + ticket, {{"Origin", kOrigin}});
  ASSERT_FALSE(ws->refused());
  EXPECT_TRUE(until(*ws, [](const Json& j) { return j.value("type", "") == "status"; }));
}

TEST_F(GatewayTest, ATerminalBeforeTheSessionIsReadyClosesWith4005) {
  Candidate c;
  // A session that is not provisioned (an operator's, through gRPC).
  auto lifecycle = v1::LifecycleService::NewStub(
      make_channel(platform->address("lifecycle"), "lifecycle"));
  v1::CreateSessionRequest create;
  create.set_user_id(c.user);
  create.set_exam_id(kExam);
  v1::Session session;
  grpc::ClientContext context;
  ASSERT_TRUE(lifecycle->CreateSession(&context, create, &session).ok());
  c.session = session.session_id();
  auto ws = terminal(c);
  EXPECT_EQ(ws->wait_closed(), 4005);
  EXPECT_EQ(state_of(c), "created");
}

TEST_F(GatewayTest, ReconnectingResumesTheSameShellWithItsRecentOutput) {
  const Candidate c = candidate_with_session();
  auto first = terminal(c);
  first->send(R"({"type":"input","data":"export MARK=kept-$((40+2)); echo shell=$$ mark-one\n"})");
  std::string seen;
  ASSERT_TRUE(until(*first, [&](const Json&) { return seen.find("mark-one") != std::string::npos &&
                                                       seen.rfind("shell=") != std::string::npos; },
                    10s, &seen));
  first->drop();
  EXPECT_EQ(state_of(c), "running");  // a dropped connection does not end the session

  auto second = terminal(c);
  ASSERT_FALSE(second->refused());
  EXPECT_TRUE(output_contains(*second, "mark-one"));  // replayed
  second->send(R"({"type":"input","data":"echo again=$MARK\n"})");
  EXPECT_TRUE(output_contains(*second, "again=kept-42"));  // the same shell
}

// A second tab (or device) takes the terminal: the first is closed with 4008,
// without a termination message, and the exam goes on in the same shell.
TEST_F(GatewayTest, ASecondTerminalTakesOverAndTheFirstClosesWith4008) {
  const Candidate c = candidate_with_session();
  auto first = terminal(c);
  first->send(R"({"type":"input","data":"export MARK=tab-$((40+2)); echo set-$MARK\n"})");
  ASSERT_TRUE(output_contains(*first, "set-tab-42"));
  auto second = terminal(c);
  std::string seen;
  EXPECT_FALSE(until(*first, [](const Json& j) { return j.value("type", "") == "termination"; }, 10s, &seen));
  EXPECT_EQ(first->wait_closed(), 4008) << seen;
  EXPECT_EQ(first->close_reason(), "opened elsewhere");
  EXPECT_EQ(state_of(c), "running");
  second->send(R"({"type":"input","data":"echo again-$MARK\n"})");
  EXPECT_TRUE(output_contains(*second, "again-tab-42"));
  // And back: the first tab takes it again, the second is told.
  auto third = terminal(c);
  EXPECT_EQ(second->wait_closed(), 4008);
  third->send(R"({"type":"input","data":"echo third-$MARK\n"})");
  EXPECT_TRUE(output_contains(*third, "third-tab-42"));
}

// The deadline holds by the gateway's own clock: with nobody sweeping
// (cleanup down), the terminal still gets the termination and 1000 at the
// deadline, and a terminal opened later gets them at once, with no shell.
TEST_F(GatewayTest, TheTerminalEndsAtTheDeadlineEvenWithCleanupDown) {
  platform->stop("cleanup");
  const Candidate c = candidate_with_session(kFourSecondExam);
  auto ws = terminal(c);
  const auto end = until(*ws, [](const Json& j) { return j.value("type", "") == "termination"; }, 15s);
  ASSERT_TRUE(end) << platform->logs().substr(0, 5000);
  EXPECT_EQ((*end)["reason"], "time_expired");
  EXPECT_EQ((*end)["message"], "Your exam time has expired");
  EXPECT_EQ(ws->wait_closed(), 1000);
  EXPECT_EQ(state_of(c), "running");  // nobody has terminated it: the gateway kept the time itself
  auto late = terminal(c);
  std::string seen;
  const auto again = until(*late, [](const Json& j) { return j.value("type", "") == "termination"; }, 10s, &seen);
  EXPECT_TRUE(again) << seen;
  EXPECT_EQ(seen.find("\"output\""), std::string::npos) << seen;
  EXPECT_EQ(late->wait_closed(), 1000);
  platform->start("cleanup");
  EXPECT_TRUE(testing::eventually([&] { return state_of(c) == "terminated"; }, 10s));
}

// Tokens outlive nothing: a valid one is exchanged for a fresh one of the same
// user; an expired, forged or revoked one is refused (401).
TEST_F(GatewayTest, RefreshGivesAFreshTokenAndRefusesExpiredOrRevokedOnes) {
  const Candidate c = candidate_with_session();
  HttpResult r = testing::http_as(c.token, gw, "POST", "/v1/auth/refresh");
  ASSERT_EQ(r.status, 200) << r.body;
  const std::string fresh = data_of(r)["token"];
  EXPECT_TRUE(data_of(r)["expires_at"].is_string());
  EXPECT_EQ(data_of(r)["user_id"], c.user);
  const auto verified = testing::run({"session-identity", "verify", "--token", fresh}, platform->env());
  ASSERT_EQ(verified.exit_code, 0) << verified.err;
  EXPECT_EQ(Json::parse(verified.out)["user_id"], c.user);
  r = testing::http_as(fresh, gw, "GET", "/v1/sessions/" + c.session + "/status");
  EXPECT_EQ(r.status, 200) << r.body;

  ManualClock past(SystemClock().now() - std::chrono::hours(2));
  identity::TokenPolicy policy;
  policy.algorithms = {"HS256"};
  policy.hs256_secret = platform->env().at("EXAMISO_IDENTITY_HS256_SECRET");
  policy.dev_sign_in = true;
  const std::string expired =
      identity::TokenIssuer(policy, std::chrono::hours(1), std::chrono::hours(1), past).issue(c.user, {}).token;
  r = testing::http_as(expired, gw, "POST", "/v1/auth/refresh");
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(code_of(r), "UNAUTHENTICATED");
  EXPECT_EQ(testing::http(gw, "POST", "/v1/auth/refresh").status, 401);

  // Signing out revokes the token: refresh and every request refuse it.
  r = testing::http_as(fresh, gw, "POST", "/v1/auth/logout");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(testing::http_as(fresh, gw, "POST", "/v1/auth/refresh").status, 401);
  EXPECT_EQ(testing::http_as(fresh, gw, "GET", "/v1/sessions").status, 401);
  EXPECT_EQ(testing::run({"session-identity", "verify", "--token", fresh}, platform->env()).exit_code, 5);
  // The other token of the same user is untouched.
  EXPECT_EQ(testing::http_as(c.token, gw, "GET", "/v1/sessions").status, 200);
}

// Behind a trusted proxy the client is X-Forwarded-For's; from anyone else,
// X-Forwarded-For is ignored (a sprayer cannot escape its limit by writing it).
// Only requests that prove no user count per address.
TEST_F(GatewayTest, PerAddressLimitsCountFailuresAndBelieveOnlyTrustedProxies) {
  const testing::Env limits = {{"EXAMISO_GATEWAY_RATE_LIMIT_IP_PER_SECOND", "1"},
                               {"EXAMISO_GATEWAY_RATE_LIMIT_IP_BURST", "5"}};
  testing::Env trusted = limits;
  trusted["EXAMISO_GATEWAY_TRUSTED_PROXIES"] = "127.0.0.0/8";
  const std::string direct = platform->start_replica("gateway", limits);
  const std::string proxied = platform->start_replica("gateway", trusted);
  const auto bad = [](const std::string& address, const std::string& xff) {
    testing::Headers h{{"Authorization", "Bearer not.a.token"}};
    if (!xff.empty()) h.emplace_back("X-Forwarded-For", xff);
    return testing::http(address, "GET", "/v1/sessions", "", h).status;
  };
  // Valid users are never counted per address, however many share it.
  std::vector<Candidate> hall(12);
  for (const auto& c : hall) EXPECT_EQ(testing::http_as(c.token, direct, "GET", "/v1/sessions").status, 200);
  int refused = 0;
  for (int i = 0; i < 10; ++i) refused += bad(direct, "203.0.113." + std::to_string(i)) == 429;
  EXPECT_GE(refused, 4) << "a forged X-Forwarded-For escaped the limit";
  // Through the trusted proxy: each forwarded client has its own bucket.
  for (int i = 0; i < 6; ++i) bad(proxied, "198.51.100.7, 127.0.0.1");
  EXPECT_EQ(bad(proxied, "198.51.100.7"), 429);
  EXPECT_EQ(bad(proxied, "198.51.100.8"), 401);
  // What a client wrote further left is not believed: the proxy's nearest hop is the client.
  EXPECT_EQ(bad(proxied, "198.51.100.9, 198.51.100.7"), 429);
  // Known users behind the same addresses go on.
  EXPECT_EQ(testing::http_as(hall[0].token, direct, "GET", "/v1/sessions").status, 200);
}

TEST_F(GatewayTest, AtTheDeadlineTheTerminalGetsTheTerminationAndClose1000) {
  const Candidate c = candidate_with_session(kTwoSecondExam);
  auto ws = terminal(c);
  auto status = WsClient::connect(gw, "/v1/sessions/" + c.session + "/status",
                                  {{"Authorization", "Bearer " + c.token}});
  const auto first = until(*ws, [](const Json& j) { return j.value("type", "") == "status"; });
  ASSERT_TRUE(first);
  EXPECT_LE((*first)["remaining_seconds"].get<int>(), 2);
  const auto end = until(*ws, [](const Json& j) { return j.value("type", "") == "termination"; }, 10s);
  ASSERT_TRUE(end);
  EXPECT_EQ((*end)["reason"], "time_expired");
  EXPECT_EQ((*end)["message"], "Your exam time has expired");
  EXPECT_EQ(ws->wait_closed(), 1000);
  // The status stream saw it too, and ended.
  const auto last = until(*status, [](const Json& j) {
    return j.value("type", "") == "status_update" && j["data"]["lifecycle_state"] == "terminated";
  });
  ASSERT_TRUE(last);
  EXPECT_EQ((*last)["data"]["termination_reason"], "time_expired");
  EXPECT_EQ((*last)["data"]["remaining_seconds"], 0);
  EXPECT_EQ(status->wait_closed(), 1000);
}

TEST_F(GatewayTest, TerminatingThroughAnotherReplicaEndsTheTerminal) {
  const std::string other = platform->start_replica("gateway");
  const Candidate c = candidate_with_session();
  auto ws = terminal(c);
  ASSERT_TRUE(until(*ws, [](const Json& j) { return j.value("type", "") == "status"; }));
  const HttpResult r = testing::http_as(c.token, other, "POST", "/v1/sessions/" + c.session + "/terminate");
  ASSERT_EQ(r.status, 200) << r.body;
  const auto end = until(*ws, [](const Json& j) { return j.value("type", "") == "termination"; });
  ASSERT_TRUE(end);
  EXPECT_EQ((*end)["reason"], "submitted");
  EXPECT_EQ(ws->wait_closed(), 1000);
}

TEST_F(GatewayTest, TheStatusStreamPushesChangesAndTheTimeAtLeastEvery5s) {
  Candidate c;
  const HttpResult r = testing::http_as(c.token, gw, "POST", "/v1/sessions", Json{{"exam_id", kExam}}.dump());
  c.session = data_of(r)["session_id"];
  auto ws = WsClient::connect(gw, "/v1/sessions/" + c.session + "/status", {{"Authorization", "Bearer " + c.token}});
  std::set<std::string> states;
  ASSERT_TRUE(until(*ws, [&](const Json& j) {
    EXPECT_EQ(j["type"], "status_update");
    states.insert(j["data"]["lifecycle_state"].get<std::string>());
    return j["data"]["lifecycle_state"] == "ready";
  }));
  EXPECT_TRUE(states.count("ready"));
  // Nothing changes now; the time still comes, at least every 5 s.
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 2; ++i) {
    const auto m = ws->receive(5500ms);
    ASSERT_TRUE(m) << "no status within 5 s";
    EXPECT_EQ(Json::parse(*m)["data"]["remaining_seconds"], 7200);
  }
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 11s);
}

// One user holds at most gateway.max_websockets_per_user (16) sockets at
// once: past it the upgrade is refused with 429; a closed one frees its slot.
TEST_F(GatewayTest, AUserCannotHoldMoreThanSixteenSockets) {
  Candidate c = candidate_with_session();
  const std::string target = "/v1/sessions/" + c.session + "/status";
  const testing::Headers auth{{"Authorization", "Bearer " + c.token}};
  std::vector<std::unique_ptr<WsClient>> open;
  for (int i = 0; i < 16; ++i) {
    open.push_back(WsClient::connect(gw, target, auth));
    ASSERT_TRUE(open.back()->open()) << "socket " << i;
    ASSERT_TRUE(open.back()->receive()) << "control: socket " << i << " works";
  }
  auto over = WsClient::connect(gw, target, auth);
  ASSERT_TRUE(over->refused().has_value());
  EXPECT_EQ(over->refused()->status, 429) << over->refused()->body;
  // Another user is not affected.
  Candidate other = candidate_with_session();
  auto theirs = WsClient::connect(gw, "/v1/sessions/" + other.session + "/status",
                                  {{"Authorization", "Bearer " + other.token}});
  EXPECT_TRUE(theirs->open());
  open.back()->close();
  open.pop_back();
  // The slot is freed when the gateway sees the close.
  std::unique_ptr<WsClient> again;
  for (int i = 0; i < 50 && !(again && again->open()); ++i) {
    std::this_thread::sleep_for(100ms);
    again = WsClient::connect(gw, target, auth);
  }
  EXPECT_TRUE(again && again->open());
}

TEST_F(GatewayTest, BadInputGetsAClearError) {
  Candidate c;
  const auto post = [&](const std::string& body) { return testing::http_as(c.token, gw, "POST", "/v1/sessions", body); };
  HttpResult r = post("{not json");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(code_of(r), "INVALID_JSON");
  r = post("[1,2]");
  EXPECT_EQ(code_of(r), "INVALID_JSON");
  r = post(R"({"exam_id": 42})");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(code_of(r), "INVALID_EXAM_ID");
  r = post(R"({"exam_id": "not-a-uuid"})");
  EXPECT_EQ(code_of(r), "INVALID_EXAM_ID");
  r = post(R"({"exam_id": ")" + new_uuid() + R"("})");  // not in the catalog
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(code_of(r), "INVALID_EXAM_ID");
  r = post("{\"exam_id\": \"\xff\xfe\"}");
  EXPECT_EQ(r.status, 400);
  // Nothing was half-written: the user has no session.
  r = testing::http_as(c.token, gw, "GET", "/v1/sessions");
  EXPECT_EQ(data_of(r)["sessions"].size(), 0u);

  r = testing::http_as(c.token, gw, "POST", "/v1/sessions", std::string(70000, ' '));
  EXPECT_EQ(r.status, 413);
  EXPECT_EQ(code_of(r), "PAYLOAD_TOO_LARGE");
  r = testing::http(gw, "GET", "/healthz", "", {{"X-Padding", std::string(9000, 'a')}});
  EXPECT_EQ(r.status, 431);
  EXPECT_EQ(code_of(r), "HEADERS_TOO_LARGE");
  r = testing::http(gw, "DELETE", "/v1/sessions");
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(r.headers.at("allow"), "POST, GET");
  r = testing::http(gw, "GET", "/v1/nothing-here");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(code_of(r), "NOT_FOUND");
  // Development sign-in: no name is a new user; a name is always the same user.
  r = testing::http(gw, "POST", "/v1/dev/token", "");
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(data_of(r)["user_id"], c.user);
  const auto alice = data_of(testing::http(gw, "POST", "/v1/dev/token", R"({"name": "alice"})"))["user_id"];
  EXPECT_EQ(data_of(testing::http(gw, "POST", "/v1/dev/token", R"({"name": "alice"})"))["user_id"], alice);
  EXPECT_NE(data_of(testing::http(gw, "POST", "/v1/dev/token", R"({"name": "bob"})"))["user_id"], alice);
  for (const std::string& bad : std::vector<std::string>{R"({"name": ""})", R"({"name": 7})", R"({"name": ")" + std::string(65, 'a') + "\"}"}) {
    r = testing::http(gw, "POST", "/v1/dev/token", bad);
    EXPECT_EQ(r.status, 400) << bad;
    EXPECT_EQ(code_of(r), "INVALID_ARGUMENT") << bad;
  }
}

// The web UI (frontend/dist, built by ./scripts/dev): index.html at "/", hashed
// assets cached for good, a strict CSP with no inline script, nothing else.
TEST_F(GatewayTest, ServesTheWebUIWithStrictHeaders) {
  const auto page = testing::http(gw, "GET", "/");
  ASSERT_EQ(page.status, 200) << "frontend/dist missing? ./scripts/dev builds it";
  EXPECT_EQ(page.headers.at("content-type"), "text/html; charset=utf-8");
  EXPECT_EQ(page.headers.at("cache-control"), "no-cache");
  const std::string csp = page.headers.at("content-security-policy");
  EXPECT_NE(csp.find("script-src 'self'"), std::string::npos) << csp;
  EXPECT_EQ(csp.find("unsafe-eval"), std::string::npos) << csp;
  EXPECT_EQ(page.headers.at("x-frame-options"), "DENY");
  std::smatch script;
  ASSERT_TRUE(std::regex_search(page.body, script, std::regex(R"re(<script[^>]*src="(/assets/[^"]+\.js)")re")))
      << page.body;
  EXPECT_EQ(std::regex_search(page.body, std::regex(R"re(<script(?![^>]*\bsrc=)[^>]*>)re")), false) << "inline script";
  const auto asset = testing::http(gw, "GET", script[1].str());
  EXPECT_EQ(asset.status, 200);
  EXPECT_EQ(asset.headers.at("cache-control"), "public, max-age=31536000, immutable");
  EXPECT_EQ(asset.headers.at("content-type"), "text/javascript; charset=utf-8");
  for (const char* missing : {"/assets/nothing.js", "/somewhere", "/index.html/..", "/.%2e/etc/passwd"})
    EXPECT_EQ(testing::http(gw, "GET", missing).status, 404) << missing;
}

TEST_F(GatewayTest, FuzzedAndMalformedRequestsGetA4xxAndNeverHurtTheServer) {
  const Candidate a = candidate_with_session();
  const std::string auth = "Authorization: Bearer " + a.token + "\r\n";
  const std::vector<std::string> attacks{
      "GARBAGE\r\n\r\n",
      "GET\r\n\r\n",
      "GET / HTTP/9.9\r\n\r\n",
      "GET /v1/sessions HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
      "POST /v1/sessions HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\nContent-Length: 20\r\n\r\n0123456789",
      "POST /v1/sessions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
      "GET /v1/sessions/\xff\xfe/status HTTP/1.1\r\nHost: x\r\n" + auth + "\r\n",
      "GET /v1/sessions/../../etc/passwd HTTP/1.1\r\nHost: x\r\n" + auth + "\r\n",
      "GET /v1/sessions/..%2F..%2Fetc%2Fpasswd/status HTTP/1.1\r\nHost: x\r\n" + auth + "\r\n",
      "GET /v1/sessions/" + a.session + "%2Fstatus HTTP/1.1\r\nHost: x\r\n" + auth + "\r\n",
      "GET /v1/sessions/" + a.session + "/status/../../" + a.session + " HTTP/1.1\r\nHost: x\r\n" + auth + "\r\n",
      "GET /v1/sessions/" + std::string(4000, 'a') + "/status HTTP/1.1\r\nHost: x\r\n" + auth + "\r\n",
      "GET /v1/sessions/" + a.session + "%00/status HTTP/1.1\r\nHost: x\r\n" + auth + "\r\n",
      "GET http://evil.example/v1/sessions HTTP/1.1\r\nHost: x\r\n" + auth + "\r\n",
      "GET *  HTTP/1.1\r\nHost: x\r\n\r\n",
      "BREW /v1/sessions HTTP/1.1\r\nHost: x\r\n\r\n",
      "GET /v1/sessions HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n",
      "GET /v1/sessions HTTP/1.1\r\nHost: x\r\n" + std::string(200, 'X') + ": \x01\x02\r\n\r\n",
      "GET /../../../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n",
      "GET /%2e%2e/%2e%2e/etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n",
      "GET /v1/sessions/" + a.session + "/terminal HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
          "Sec-WebSocket-Version: 99\r\n" + auth + "\r\n",
  };
  for (const std::string& attack : attacks) {
    const auto r = testing::raw_exchange(gw, attack, 5s, true);
    EXPECT_FALSE(r.timed_out) << attack;
    if (r.received.empty()) continue;  // the connection was cut without an answer: fine
    ASSERT_GE(r.received.size(), 12u) << attack;
    const int status = std::stoi(r.received.substr(9, 3));
    EXPECT_TRUE(status >= 400 && status < 500) << attack << "\n-> " << r.received.substr(0, 300);
    EXPECT_EQ(r.received.find("root:"), std::string::npos);  // no /etc/passwd
    EXPECT_EQ(r.received.find(a.user), std::string::npos) << attack;
  }
  // A sloppy query string is no reason to refuse the owner.
  EXPECT_EQ(testing::raw_exchange(gw, "GET /v1/sessions/" + a.session + "/status?x=%zz&&=& HTTP/1.1\r\nHost: x\r\n" +
                                          auth + "\r\n", 5s, true)
                .received.substr(0, 12),
            "HTTP/1.1 200");
  // Random mutations of a valid request.
  const std::string valid = "GET /v1/sessions/" + a.session + "/status HTTP/1.1\r\nHost: x\r\n" + auth + "\r\n";
  std::mt19937 rng(20261128);
  for (int i = 0; i < 300; ++i) {
    std::string m = valid;
    for (int k = 0, n = 1 + static_cast<int>(rng() % 8); k < n; ++k) {
      const size_t at = rng() % m.size();
      switch (rng() % 3) {
        case 0: m[at] = static_cast<char>(rng() % 256); break;
        case 1: m.erase(at, 1 + rng() % 4); break;
        default: m.insert(at, std::string(1 + rng() % 3, static_cast<char>(rng() % 256)));
      }
    }
    const auto r = testing::raw_exchange(gw, m, 3s, true);
    if (r.received.size() >= 12) {
      const int status = std::stoi(r.received.substr(9, 3));
      EXPECT_TRUE(status < 500) << ::testing::PrintToString(m) << "\n-> " << r.received.substr(0, 300);
      if (status == 200) {
        EXPECT_NE(r.received.find(a.session), std::string::npos);
      }
    }
  }
  EXPECT_EQ(testing::http(gw, "GET", "/healthz").status, 200);
  EXPECT_TRUE(platform->daemon("gateway").running());
  EXPECT_EQ(state_of(a), "ready");
}

TEST_F(GatewayTest, SlowAndIdleClientsAreCutOff) {
  const std::string other = platform->start_replica(
      "gateway", {{"EXAMISO_GATEWAY_REQUEST_TIMEOUT_SECONDS", "1"}, {"EXAMISO_GATEWAY_IDLE_TIMEOUT_SECONDS", "1"}});
  // Slowloris: a header that never ends.
  auto t0 = std::chrono::steady_clock::now();
  auto r = testing::raw_exchange(other, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: a", 5s);
  EXPECT_TRUE(r.closed);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 3s);
  // A body that never comes.
  t0 = std::chrono::steady_clock::now();
  r = testing::raw_exchange(other, "POST /v1/sessions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{", 5s);
  EXPECT_TRUE(r.closed);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 3s);
  // A kept-alive connection that stays idle.
  t0 = std::chrono::steady_clock::now();
  r = testing::raw_exchange(other, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 5s);
  EXPECT_TRUE(r.closed);
  EXPECT_EQ(r.received.substr(0, 12), "HTTP/1.1 200");
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 3s);
}

TEST_F(GatewayTest, RateLimitsAnswer429) {
  const std::string other = platform->start_replica(
      "gateway", {{"EXAMISO_GATEWAY_RATE_LIMIT_IP_PER_SECOND", "5"}, {"EXAMISO_GATEWAY_RATE_LIMIT_IP_BURST", "10"}});
  int limited = 0;
  for (int i = 0; i < 30; ++i) {
    const HttpResult r = testing::http(other, "GET", "/healthz");
    if (r.status == 429) {
      ++limited;
      EXPECT_EQ(code_of(r), "RATE_LIMITED");
      EXPECT_EQ(r.headers.at("retry-after"), "1");
    }
  }
  EXPECT_GE(limited, 15);
  const std::string users = platform->start_replica(
      "gateway", {{"EXAMISO_GATEWAY_RATE_LIMIT_USER_PER_SECOND", "2"}, {"EXAMISO_GATEWAY_RATE_LIMIT_USER_BURST", "3"}});
  const Candidate c;
  limited = 0;
  for (int i = 0; i < 10; ++i) limited += testing::http_as(c.token, users, "GET", "/v1/sessions").status == 429;
  EXPECT_GE(limited, 5);
  const Candidate d;  // another user is not limited by c's requests
  EXPECT_EQ(testing::http_as(d.token, users, "GET", "/v1/sessions").status, 200);
}

TEST_F(GatewayTest, AClientThatStopsReadingCannotMakeTheGatewayBuffer) {
  const Candidate c = candidate_with_session();
  const auto rss_kb = [] { return testing::proc_status(platform->daemon("gateway").pid(), "VmRSS"); };
  auto ws = terminal(c);
  ASSERT_TRUE(until(*ws, [](const Json& j) { return j.value("type", "") == "status"; }));
  const long before = rss_kb();
  ws->pause_reading();
  ws->send(R"({"type":"input","data":"yes 0123456789012345678901234567890123456789\n"})");
  std::this_thread::sleep_for(7s);
  const long after = rss_kb();
  // A gateway that buffered would grow by hundreds of MB in 7 s (this suite's
  // terminals have no output budget). (AddressSanitizer
  // holds freed memory back for a while: more room there.)
#if defined(__SANITIZE_ADDRESS__)
  constexpr long kMaxGrowthKb = 128 * 1024;
#else
  constexpr long kMaxGrowthKb = 32 * 1024;
#endif
  EXPECT_LT(after - before, kMaxGrowthKb) << "gateway grew from " << before << " kB to " << after << " kB";
  // Another candidate is served meanwhile.
  EXPECT_EQ(testing::http(gw, "GET", "/healthz").status, 200);
  // However long it paused, the terminal is there when it reads again.
  ws->resume_reading();
  ws->send(R"({"type":"input","data":"\u0003"})");
  ws->send(R"({"type":"input","data":"echo resumed-$((2+2))\n"})");
  EXPECT_TRUE(output_contains(*ws, "resumed-4", 60s));
  EXPECT_TRUE(ws->open());
}

TEST_F(GatewayTest, OversizedAndMalformedTerminalMessages) {
  const Candidate c = candidate_with_session();
  auto ws = terminal(c);
  ws->send("not json");
  const auto error = until(*ws, [](const Json& j) { return j.value("type", "") == "error"; });
  ASSERT_TRUE(error);
  EXPECT_EQ((*error)["data"]["code"], "INVALID_ARGUMENT");
  ws->send(R"({"type":"input","data":"echo still-here\n"})");
  EXPECT_TRUE(output_contains(*ws, "still-here"));
  // Beyond the message limit (64 KiB): closed with 1009, the session lives on.
  ws->send(Json{{"type", "input"}, {"data", std::string(70000, 'x')}}.dump());
  EXPECT_EQ(ws->wait_closed(), 1009);
  EXPECT_EQ(state_of(c), "running");
}

TEST_F(GatewayTest, InputFasterThanTheTerminalTakesItEndsTheConnection) {
  const Candidate c = candidate_with_session();
  auto ws = terminal(c);
  // Whatever gets through is eaten quickly once the terminal takes input again.
  ws->send(R"({"type":"input","data":"stty raw -echo; timeout 5 cat >/dev/null; stty sane; echo back-$((1+1))\n"})");
  ASSERT_TRUE(output_contains(*ws, "stty sane"));
  // The environment service stops taking input; the gateway must not queue it without bound.
  platform->daemon("environment").signal(SIGSTOP);
  const std::string chunk = Json{{"type", "input"}, {"data", std::string(60000, 'x')}}.dump();
  for (int i = 0; i < 800 && ws->open(); ++i) ws->send(chunk);
  const uint16_t code = ws->wait_closed(20s);
  platform->daemon("environment").signal(SIGCONT);
  EXPECT_EQ(code, 1008);
  // The session is fine, and a new connection works.
  EXPECT_EQ(state_of(c), "running");
  auto again = terminal(c);
  EXPECT_TRUE(output_contains(*again, "back-2", 30s));
}

TEST_F(GatewayTest, HealthReadinessAndMetrics) {
  EXPECT_EQ(testing::http(gw, "GET", "/healthz").status, 200);
  const HttpResult ready = testing::http(gw, "GET", "/readyz");
  EXPECT_EQ(ready.status, 200);
  for (const char* s : {"identity", "lifecycle", "environment", "access"})
    EXPECT_EQ(data_of(ready)["services"][s], "serving") << s;
  const Candidate c = candidate_with_session();
  auto ws = terminal(c);
  ws->send(R"({"type":"input","data":"echo metered\n"})");
  ASSERT_TRUE(output_contains(*ws, "metered"));
  const HttpResult m = testing::http(gw, "GET", "/metrics");
  EXPECT_EQ(m.status, 200);
  EXPECT_EQ(m.headers.at("content-type"), "text/plain; version=0.0.4");
  for (const char* needle :
       {"examiso_http_requests_total{route=\"/v1/sessions/{id}/status\",code=\"200\"}",
        "examiso_http_request_duration_seconds_bucket{route=\"/v1/sessions\",le=\"0.005\"}",
        "examiso_websockets_open{kind=\"terminal\"} ", "examiso_terminal_bytes_total{direction=\"to_client\"} ",
        "examiso_terminal_bytes_total{direction=\"from_client\"} "})
    EXPECT_NE(m.body.find(needle), std::string::npos) << needle << "\n" << m.body.substr(0, 3000);
  const auto at = m.body.find("examiso_websockets_open{kind=\"terminal\"} ");
  ASSERT_NE(at, std::string::npos);
  EXPECT_GE(std::stoi(m.body.substr(at + std::string("examiso_websockets_open{kind=\"terminal\"} ").size())), 1);
  // No session or user id ever becomes a label.
  EXPECT_EQ(m.body.find(c.session), std::string::npos);
}

TEST_F(GatewayTest, TheOpenApiDocumentListsExactlyTheRoutesServed) {
  const YAML::Node doc = YAML::LoadFile(std::string(EXAMISO_SOURCE_DIR) + "/gateway/openapi.yaml");
  EXPECT_EQ(doc["openapi"].as<std::string>().substr(0, 2), "3.");
  std::set<std::pair<std::string, std::string>> documented, served;
  for (const auto& path : doc["paths"]) {
    for (const auto& op : path.second) {
      std::string method = op.first.as<std::string>();
      if (!std::set<std::string>{"get", "post", "put", "patch", "delete", "head", "options"}.count(method)) continue;
      for (auto& ch : method) ch = static_cast<char>(std::toupper(ch));
      documented.emplace(method, path.first.as<std::string>());
      EXPECT_TRUE(op.second["responses"]) << method << " " << path.first.as<std::string>();
    }
  }
  for (const auto& r : gateway::Api::routes()) served.emplace(r.method, r.path);
  EXPECT_EQ(documented, served);
  // And the server really answers each one (not 404/405).
  const Candidate c;
  for (const auto& [method, path] : served) {
    std::string target = path;
    if (auto at = target.find("{id}"); at != std::string::npos) target.replace(at, 4, new_uuid());
    const HttpResult r = testing::http_as(c.token, gw, method, target);
    EXPECT_NE(r.status, 404) << method << " " << path;
    EXPECT_NE(r.status, 405) << method << " " << path;
  }
}

TEST_F(GatewayTest, TlsServesHttpsWhenConfigured) {
  testing::TempDir dir;
  const auto made = testing::run({"openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                                  "/CN=localhost", "-keyout", dir.path() + "/key.pem", "-out", dir.path() + "/cert.pem"});
  ASSERT_EQ(made.exit_code, 0) << made.err;
  const std::string port = std::to_string(testing::free_port());
  testing::Env env = platform->env();
  env["EXAMISO_GATEWAY_LISTEN"] = "127.0.0.1:" + port;
  env["EXAMISO_GATEWAY_TLS_CERT_FILE"] = dir.path() + "/cert.pem";
  env["EXAMISO_GATEWAY_TLS_KEY_FILE"] = dir.path() + "/key.pem";
  testing::Daemon tls({"examiso-gateway"}, env);
  testing::CommandResult r;
  ASSERT_TRUE(testing::eventually(
      [&] {
        r = testing::run({"openssl", "s_client", "-quiet", "-connect", "127.0.0.1:" + port}, {}, 5s,
                         "GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        return r.out.find("HTTP/1.1 200") != std::string::npos;
      },
      10s, 200ms))
      << r.out << r.err << tls.log();
  // Plain HTTP on the TLS port gets nothing useful.
  const auto plain = testing::raw_exchange("127.0.0.1:" + port, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 3s);
  EXPECT_EQ(plain.received.find("HTTP/1.1 200"), std::string::npos);

  // The development platform: http and https, ws and wss, on one port.
  const std::string both_port = std::to_string(testing::free_port());
  env["EXAMISO_GATEWAY_LISTEN"] = "127.0.0.1:" + both_port;
  env["EXAMISO_GATEWAY_PLAIN_HTTP_WITH_TLS"] = "true";
  testing::Daemon both({"examiso-gateway"}, env);
  const std::string both_address = "127.0.0.1:" + both_port;
  ASSERT_TRUE(testing::wait_http(both_address, 10s)) << both.log();
  const Candidate c = candidate_with_session();
  const HttpResult created = testing::http_as(c.token, both_address, "GET", "/v1/sessions/" + c.session + "/status");
  EXPECT_EQ(created.status, 200);
  // The seed's wss:// example, with a client that accepts the certificate.
  const std::string upgrade = "GET /v1/sessions/" + c.session + "/terminal HTTP/1.1\r\nHost: localhost:" +
                              both_port +
                              "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                              "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                              "Authorization: Bearer " + c.token + "\r\n\r\n";
  ASSERT_TRUE(testing::eventually(
      [&] {
        r = testing::run({"openssl", "s_client", "-quiet", "-ign_eof", "-connect", both_address}, {}, 4s, upgrade);
        return r.out.find("HTTP/1.1 101") != std::string::npos && r.out.find("\"type\":\"status\"") != std::string::npos;
      },
      15s, 200ms))
      << r.out << r.err << both.log();
}

// Last: it stops a service.
TEST_F(GatewayTest, ADownServiceIs503AtOnceAndRecovers) {
  const Candidate c = candidate_with_session();
  // Streams open when the service goes: each says so, none pretends the session ended.
  auto open_status = WsClient::connect(gw, "/v1/sessions/" + c.session + "/status",
                                       {{"Authorization", "Bearer " + c.token}});
  ASSERT_TRUE(until(*open_status, [](const Json& j) { return j.value("type", "") == "status_update"; }));
  platform->stop("lifecycle");
  const auto said = until(*open_status, [](const Json& j) { return j.value("type", "") == "error"; });
  ASSERT_TRUE(said);
  EXPECT_EQ((*said)["data"]["code"], "BACKEND_UNAVAILABLE");
  EXPECT_EQ((*said)["data"]["recoverable"], true);
  EXPECT_EQ(open_status->wait_closed(), 1011);
  const auto t0 = std::chrono::steady_clock::now();
  HttpResult r = testing::http_as(c.token, gw, "GET", "/v1/sessions/" + c.session + "/status");
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s);
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(code_of(r), "BACKEND_UNAVAILABLE");
  EXPECT_EQ(r.body.find("127.0.0.1"), std::string::npos);  // no internal detail
  r = testing::http(gw, "GET", "/readyz");
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(Json::parse(r.body)["error"]["services"]["lifecycle"], "unavailable");
  auto ws = terminal(c);
  EXPECT_EQ(ws->wait_closed(), 1013);
  EXPECT_EQ(ws->close_reason(), "A service is unavailable; try again shortly");

  platform->start("lifecycle");
  EXPECT_TRUE(testing::eventually([&] { return state_of(c) == "ready"; }, 10s));
  // The gateway's own channel may still be in gRPC's reconnect backoff a moment longer.
  EXPECT_TRUE(testing::eventually([&] { return testing::http(gw, "GET", "/readyz").status == 200; }, 5s));
}

// Every /v1/admin route, as a candidate (and with no token): refused, and
// each refusal is an access decision in the log. The list is the gateway's
// own, so a route added later is tried too.
TEST_F(GatewayTest, ACandidateIsRefusedEveryStaffRoute) {
  const Candidate c = candidate_with_session();
  int tried = 0;
  for (const auto& route : gateway::Api::routes()) {
    if (route.path.rfind("/v1/admin/", 0) != 0) continue;
    ++tried;
    std::string path = route.path;
    if (const auto at = path.find("{id}"); at != std::string::npos) path.replace(at, 4, c.session);
    const std::string body = route.method == "POST" ? R"({"reason":"x","seconds":60,"text":"x"})" : "";
    HttpResult r = testing::http_as(c.token, gw, route.method, path, body);
    EXPECT_EQ(r.status, 403) << route.method << " " << path << " " << r.body;
    EXPECT_EQ(code_of(r), "ACCESS_DENIED") << path;
    r = testing::http(gw, route.method, path, body);
    EXPECT_EQ(r.status, 401) << route.method << " " << path;
  }
  EXPECT_GE(tried, 3);
  EXPECT_EQ(state_of(c), "ready") << "nothing happened to the session";
  // The refusals are decisions like any other, kept with their cause.
  const auto log = testing::run({"environment-access", "log", "--session-id", c.session}, platform->env());
  ASSERT_EQ(log.exit_code, 0) << log.err;
  int refused = 0;
  const Json entries = Json::parse(log.out)["entries"];
  for (const auto& e : entries)
    refused += e["granted"] == false && e["denial_reason"] == "not_staff" && e["user_id"] == c.user;
  EXPECT_GE(refused, 2) << log.out;
}

TEST_F(GatewayTest, StaffTokensCarryTheirRole) {
  const auto verify = [](const std::string& token) {
    const auto r = testing::run({"session-identity", "verify", "--token", token}, platform->env());
    return Json::parse(r.out, nullptr, false);
  };
  EXPECT_EQ(verify(staff_token("proctor"))["roles"], Json::array({"proctor"}));
  EXPECT_EQ(verify(Candidate().token)["roles"], Json::array({"candidate"}));
  const auto bad = testing::run({"session-identity", "token", "--user-id", new_uuid(), "--role", "root"}, platform->env());
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.err.find("root"), std::string::npos) << bad.err;
  // The development sign-in offers the role too; a role it does not know is refused.
  HttpResult r = testing::http(gw, "POST", "/v1/dev/token", R"({"role":"admin"})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(data_of(r)["roles"], Json::array({"admin"}));
  r = testing::http(gw, "POST", "/v1/dev/token", R"({"role":"root"})");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(code_of(r), "INVALID_ARGUMENT");
  r = testing::http(gw, "POST", "/v1/dev/token", R"({"role":7})");
  EXPECT_EQ(r.status, 400);
}

// A proctor sees the room: every session of an exam, whoever's, filtered by
// state; and one session's history (transitions and access decisions).
TEST_F(GatewayTest, AProctorSeesTheRoomAndASessionsHistory) {
  const Candidate a = candidate_with_session(), b = candidate_with_session();
  const std::string proctor_user = new_uuid(), proctor = staff_token("proctor", proctor_user);
  HttpResult r = testing::http_as(proctor, gw, "GET", "/v1/admin/sessions?exam_id=" + kExam + "&state=ready");
  ASSERT_EQ(r.status, 200) << r.body;
  std::map<std::string, Json> seen;
  const Json room = data_of(r)["sessions"];
  for (const auto& s : room) {
    EXPECT_EQ(s["exam_id"], kExam);
    EXPECT_EQ(s["lifecycle_state"], "ready");
    seen[s["session_id"]] = s;
  }
  ASSERT_TRUE(seen.count(a.session) && seen.count(b.session)) << r.body;
  EXPECT_EQ(seen[a.session]["user_id"], a.user);
  EXPECT_EQ(seen[b.session]["user_id"], b.user);
  EXPECT_EQ(seen[a.session]["remaining_seconds"], 7200);
  r = testing::http_as(proctor, gw, "GET", "/v1/admin/sessions?state=running&exam_id=" + kExam);
  const Json running = data_of(r)["sessions"];
  for (const auto& s : running) EXPECT_NE(s["session_id"], a.session) << "filtered by state";
  r = testing::http_as(proctor, gw, "GET", "/v1/admin/sessions?limit=1");
  EXPECT_EQ(data_of(r)["sessions"].size(), 1u);
  for (const std::string bad : {"exam_id=nope", "state=sleeping", "limit=0", "limit=1001", "limit=x"}) {
    r = testing::http_as(proctor, gw, "GET", "/v1/admin/sessions?" + bad);
    EXPECT_EQ(r.status, 400) << bad;
    EXPECT_EQ(code_of(r), "INVALID_ARGUMENT") << bad;
  }

  r = testing::http_as(proctor, gw, "GET", "/v1/admin/sessions/" + a.session);
  ASSERT_EQ(r.status, 200) << r.body;
  const Json detail = data_of(r);
  EXPECT_EQ(detail["session"]["user_id"], a.user);
  std::vector<std::string> states;
  for (const auto& t : detail["transitions"]) states.push_back(t["to_state"]);
  EXPECT_EQ(states, (std::vector<std::string>{"created", "initializing", "ready"}));
  bool candidate_seen = false, proctor_seen = false;
  for (const auto& d : detail["access_decisions"]) {
    candidate_seen = candidate_seen || (d["user_id"] == a.user && d["granted"] == true);
    proctor_seen = proctor_seen || (d["user_id"] == proctor_user && d["access_type"] == "staff_view");
  }
  EXPECT_TRUE(candidate_seen) << detail.dump();
  EXPECT_TRUE(proctor_seen) << "staff decisions are logged too: " << detail.dump();
  r = testing::http_as(proctor, gw, "GET", "/v1/admin/sessions/" + new_uuid());
  EXPECT_EQ(r.status, 403) << "an unknown session, as for anyone";
}

// A proctor ends an attempt: the candidate's open terminal is told why it
// ended and closes normally; the history keeps who and why.
TEST_F(GatewayTest, AProctorEndsAnAttempt) {
  const Candidate c = candidate_with_session();
  auto ws = terminal(c);
  ASSERT_TRUE(until(*ws, [](const Json& j) { return j.value("type", "") == "status"; }));
  const std::string proctor_user = new_uuid(), proctor = staff_token("proctor", proctor_user);
  const std::string path = "/v1/admin/sessions/" + c.session + "/terminate";
  for (const std::string bad : {"", "{}", R"({"reason":""})", R"({"reason":7})"}) {
    const HttpResult r = testing::http_as(proctor, gw, "POST", path, bad);
    EXPECT_EQ(r.status, 400) << bad << " " << r.body;
  }
  EXPECT_EQ(state_of(c), "running") << "a refused request changes nothing";
  HttpResult r = testing::http_as(proctor, gw, "POST", path, R"({"reason":"a second person in the room"})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(data_of(r)["termination_reason"], "proctor_terminated");
  EXPECT_EQ(data_of(r)["reason"], "a second person in the room");
  EXPECT_EQ(data_of(r)["environment_released"], true);
  const auto ended = until(*ws, [](const Json& j) { return j.value("type", "") == "termination"; });
  ASSERT_TRUE(ended);
  EXPECT_EQ((*ended)["reason"], "proctor_terminated");
  EXPECT_EQ((*ended)["message"], "Your exam was ended by a proctor");
  EXPECT_EQ(ws->wait_closed(), 1000);

  r = testing::http_as(proctor, gw, "POST", path, R"({"reason":"again"})");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(code_of(r), "SESSION_ALREADY_TERMINATED");
  r = testing::http_as(proctor, gw, "GET", "/v1/admin/sessions/" + c.session);
  Json last;  // the last transition (the terminal's drop comes after it)
  const Json history = data_of(r)["transitions"];
  for (const auto& t : history)
    if (t["kind"] == "transition") last = t;
  EXPECT_EQ(last["to_state"], "terminated");
  EXPECT_EQ(last["termination_reason"], "proctor_terminated");
  EXPECT_EQ(last["reason"], "a second person in the room");
  EXPECT_EQ(last["actor"], "staff:" + proctor_user);
}

// A proctor gives more time: the candidate's terminal hears the new remaining
// time at once, the gateway's own deadline moves with it (no termination at
// the old one), and the history keeps who, how much and why.
TEST_F(GatewayTest, AProctorGivesMoreTime) {
  const Candidate c = candidate_with_session(kFourSecondExam);
  const std::string proctor_user = new_uuid(), proctor = staff_token("proctor", proctor_user);
  const std::string path = "/v1/admin/sessions/" + c.session + "/extend";
  for (const std::string bad : {"", R"({"seconds":0,"reason":"x"})", R"({"seconds":-5,"reason":"x"})",
                                R"({"seconds":"5","reason":"x"})", R"({"seconds":1.5,"reason":"x"})",
                                R"({"seconds":5})", R"({"seconds":5,"reason":""})", R"({"seconds":3601,"reason":"x"})"}) {
    const HttpResult r = testing::http_as(proctor, gw, "POST", path, bad);
    EXPECT_EQ(r.status, 400) << bad << " " << r.body;
  }
  auto ws = terminal(c);  // the four seconds start here
  ASSERT_TRUE(until(*ws, [](const Json& j) { return j.value("type", "") == "status"; }));
  const auto given = std::chrono::steady_clock::now();
  HttpResult r = testing::http_as(proctor, gw, "POST", path, R"({"seconds":6,"reason":"the room's power went out"})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(data_of(r)["extended_seconds"], 6);
  const int remaining = data_of(r)["remaining_seconds"].get<int>();
  EXPECT_GT(remaining, 4) << "more than the whole exam had: " << r.body;
  const auto answered = std::chrono::steady_clock::now();
  // Told at once, not at the next heartbeat (2 s).
  const auto told = until(*ws, [&](const Json& j) {
    return j.value("type", "") == "status" && j.value("remaining_seconds", 0) >= remaining - 1;
  }, 5s);
  ASSERT_TRUE(told) << "the candidate's terminal was not told";
  EXPECT_LT(std::chrono::steady_clock::now() - answered, 1500ms);
  // Past the old deadline (four seconds from the start) the terminal still works.
  std::this_thread::sleep_for(4s);
  ws->send(R"({"type":"input","data":"echo still-$((6*7))\n"})");
  EXPECT_TRUE(output_contains(*ws, "still-42", 3s)) << "ended at the old deadline";
  // And ends at the new one, as time_expired.
  const auto ended = until(*ws, [](const Json& j) { return j.value("type", "") == "termination"; }, 15s);
  ASSERT_TRUE(ended);
  EXPECT_EQ((*ended)["reason"], "time_expired");
  EXPECT_GE(std::chrono::steady_clock::now() - given, 5s);

  r = testing::http_as(proctor, gw, "POST", path, R"({"seconds":60,"reason":"too late"})");
  EXPECT_EQ(r.status, 409) << r.body;
  EXPECT_EQ(code_of(r), "INVALID_TRANSITION");
  r = testing::http_as(proctor, gw, "GET", "/v1/admin/sessions/" + c.session);
  const Json history = data_of(r)["transitions"];
  Json extension;
  for (const auto& t : history)
    if (t["kind"] == "extend") extension = t;
  ASSERT_FALSE(extension.is_null()) << history.dump();
  EXPECT_EQ(extension["seconds"], 6);
  EXPECT_EQ(extension["reason"], "the room's power went out");
  EXPECT_EQ(extension["actor"], "staff:" + proctor_user);
  EXPECT_EQ(extension["from_state"], "running");
}

// A proctor watches a candidate's terminal: the recent output, then the live;
// what the observer types never reaches the shell; the candidate keeps the
// terminal and is told that someone watches (and when nobody does any more).
TEST_F(GatewayTest, AProctorWatchesATerminalReadOnly) {
  const Candidate c = candidate_with_session();
  auto ws = terminal(c);
  ws->send(R"({"type":"input","data":"echo before-$((20+1))\n"})");
  ASSERT_TRUE(output_contains(*ws, "before-21"));
  const std::string proctor = staff_token("proctor");
  const std::string path = "/v1/admin/sessions/" + c.session + "/terminal";
  auto view = WsClient::connect(gw, path, {{"Authorization", "Bearer " + proctor}});
  EXPECT_TRUE(output_contains(*view, "before-21")) << "the replay first";
  const auto watching = until(*ws, [](const Json& j) { return j.value("type", "") == "watching"; });
  ASSERT_TRUE(watching) << "the candidate is told";
  EXPECT_EQ((*watching)["observers"], 1);
  // The observer types: nothing reaches the shell, and nobody is displaced.
  view->send(R"({"type":"input","data":"touch /tmp/observer-typed; echo typed-by-$((1+1))\n"})");
  view->send(R"({"type":"resize","cols":33,"rows":11})");
  ws->send(R"({"type":"input","data":"echo after-$((40+2))\n"})");
  EXPECT_TRUE(output_contains(*ws, "after-42"));
  EXPECT_TRUE(output_contains(*view, "after-42")) << "live";
  ws->send(R"({"type":"input","data":"test -e /tmp/observer-typed && echo EXISTS || echo ABSENT-$((3*3))\n"})");
  EXPECT_TRUE(output_contains(*ws, "ABSENT-9")) << "the observer's input reached the shell";
  // A candidate may not watch (even their own session) this way.
  auto refused = WsClient::connect(gw, path, {{"Authorization", "Bearer " + c.token}});
  EXPECT_EQ(refused->wait_closed(), 4003);
  view.reset();
  const auto alone = until(*ws, [](const Json& j) { return j.value("type", "") == "watching"; });
  ASSERT_TRUE(alone);
  EXPECT_EQ((*alone)["observers"], 0);
  ws->send(R"({"type":"input","data":"echo still-mine\n"})");
  EXPECT_TRUE(output_contains(*ws, "still-mine"));
}

// A proctor's browser watches with a ticket from the staff route, which
// carries their role; a candidate's ticket opens no view, and a proctor's
// opens no candidate's terminal.
TEST_F(GatewayTest, AProctorsBrowserWatchesWithAStaffTicket) {
  const Candidate c = candidate_with_session();
  auto ws = terminal(c);
  ws->send(R"({"type":"input","data":"echo seen-by-$((3+4))\n"})");
  ASSERT_TRUE(output_contains(*ws, "seen-by-7"));
  const std::string proctor = staff_token("proctor");
  const testing::Headers browser{{"Origin", kOrigin}};
  const std::string view = "/v1/admin/sessions/" + c.session + "/terminal?ticket=";
  HttpResult r = testing::http_as(proctor, gw, "POST", "/v1/admin/sessions/" + c.session + "/terminal-ticket");
  ASSERT_EQ(r.status, 200) << r.body;
  auto watching = WsClient::connect(gw, view + data_of(r)["ticket"].get<std::string>(), browser);
  EXPECT_TRUE(output_contains(*watching, "seen-by-7"));
  // The candidate's own ticket is not a staff one.
  r = testing::http_as(c.token, gw, "POST", "/v1/sessions/" + c.session + "/terminal-ticket");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(WsClient::connect(gw, view + data_of(r)["ticket"].get<std::string>(), browser)->wait_closed(), 4003);
  // Nor does a proctor's ticket open the candidate's own terminal.
  r = testing::http_as(proctor, gw, "POST", "/v1/admin/sessions/" + c.session + "/terminal-ticket");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(WsClient::connect(gw, "/v1/sessions/" + c.session + "/terminal?ticket=" +
                                      data_of(r)["ticket"].get<std::string>(), browser)->wait_closed(),
            4003);
  ws->send(R"({"type":"input","data":"echo still-$((4+4))\n"})");
  EXPECT_TRUE(output_contains(*ws, "still-8")) << "the candidate kept the terminal";
}

// The room shows who is connected and when each was last seen; a session's
// history has its connects and drops (a second tab is no drop of the candidate).
TEST_F(GatewayTest, StaffSeeWhoIsConnected) {
  const Candidate c = candidate_with_session();
  const std::string proctor = staff_token("proctor");
  const auto listed = [&]() -> Json {
    const HttpResult r = testing::http_as(proctor, gw, "GET", "/v1/admin/sessions?exam_id=" + kExam);
    const Json room = data_of(r)["sessions"];
    for (const auto& s : room)
      if (s["session_id"] == c.session) return s;
    return Json();
  };
  EXPECT_EQ(listed()["connected"], false);
  EXPECT_TRUE(listed()["last_seen_at"].is_null()) << "never connected";
  auto ws = terminal(c);
  ASSERT_TRUE(until(*ws, [](const Json& j) { return j.value("type", "") == "status"; }));
  EXPECT_TRUE(testing::eventually([&] { return listed()["connected"] == true; }, 5s)) << listed().dump();
  EXPECT_TRUE(listed()["last_seen_at"].is_string());
  auto second = terminal(c);  // another tab takes the terminal
  EXPECT_EQ(ws->wait_closed(), 4008);
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(listed()["connected"], true) << "the second tab is open";
  second->close();
  EXPECT_TRUE(testing::eventually([&] { return listed()["connected"] == false; }, 5s)) << listed().dump();
  ws = terminal(c);  // back
  EXPECT_TRUE(testing::eventually([&] { return listed()["connected"] == true; }, 5s));
  const HttpResult r = testing::http_as(proctor, gw, "GET", "/v1/admin/sessions/" + c.session);
  std::vector<std::string> events;
  const Json history = data_of(r)["transitions"];
  for (const auto& t : history)
    if (t["kind"] == "connect" || t["kind"] == "disconnect") events.push_back(t["kind"]);
  // Two tabs' events may interleave either way; three connects and two drops in all.
  EXPECT_EQ(std::count(events.begin(), events.end(), "connect"), 3) << history.dump();
  EXPECT_EQ(std::count(events.begin(), events.end(), "disconnect"), 2) << history.dump();
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.front(), "connect");
  EXPECT_EQ(events.back(), "connect");
  EXPECT_EQ(data_of(r)["session"]["connected"], true);
}

// A proctor's message: the candidate's terminal gets it as a notice, or the
// next connection does when none is open; it is in the history with who sent it.
TEST_F(GatewayTest, AProctorSendsTheCandidateAMessage) {
  const Candidate c = candidate_with_session();
  const std::string proctor_user = new_uuid(), proctor = staff_token("proctor", proctor_user);
  const std::string path = "/v1/admin/sessions/" + c.session + "/message";
  const std::string too_long = R"({"text":")" + std::string(2001, 'x') + "\"}";
  for (const std::string& bad : {std::string(), std::string("{}"), std::string(R"({"text":""})"),
                                 std::string(R"({"text":7})"), too_long}) {
    const HttpResult r = testing::http_as(proctor, gw, "POST", path, bad);
    EXPECT_EQ(r.status, 400) << bad.substr(0, 20) << " " << r.body;
  }
  auto ws = terminal(c);
  ASSERT_TRUE(until(*ws, [](const Json& j) { return j.value("type", "") == "status"; }));
  HttpResult r = testing::http_as(proctor, gw, "POST", path, R"({"text":"Please keep your camera on."})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(data_of(r)["delivered"], true);
  auto notice = until(*ws, [](const Json& j) { return j.value("type", "") == "notice"; });
  ASSERT_TRUE(notice);
  EXPECT_EQ((*notice)["text"], "Please keep your camera on.");
  // Nobody connected: kept for the next connection.
  ws->close();
  ws.reset();
  EXPECT_TRUE(testing::eventually([&] {
    r = testing::http_as(proctor, gw, "POST", path, R"({"text":"Five minutes left."})");
    return r.status == 200 && data_of(r)["delivered"] == false;
  }, 5s)) << r.body;
  ws = terminal(c);
  notice = until(*ws, [](const Json& j) { return j.value("type", "") == "notice"; });
  ASSERT_TRUE(notice);
  EXPECT_EQ((*notice)["text"], "Five minutes left.");
  r = testing::http_as(proctor, gw, "GET", "/v1/admin/sessions/" + c.session);
  int messages = 0;
  const Json history = data_of(r)["transitions"];
  for (const auto& t : history) {
    if (t["kind"] != "message") continue;
    ++messages;
    EXPECT_EQ(t["actor"], "staff:" + proctor_user);
  }
  EXPECT_GE(messages, 2) << history.dump();
  // An ended session has no terminal to tell.
  ASSERT_EQ(testing::http_as(proctor, gw, "POST", "/v1/admin/sessions/" + c.session + "/terminate",
                             R"({"reason":"done"})").status, 200);
  r = testing::http_as(proctor, gw, "POST", path, R"({"text":"too late"})");
  EXPECT_EQ(code_of(r), "SESSION_TERMINATED") << r.body;
}

// More time in all than lifecycle.max_extension_seconds is refused, whatever
// the steps; a session not started yet starts with the time it was given.
TEST_F(GatewayTest, MoreTimeHasALimitAndCountsBeforeTheStart) {
  const Candidate c = candidate_with_session();
  const std::string proctor = staff_token("admin");
  const std::string path = "/v1/admin/sessions/" + c.session + "/extend";
  HttpResult r = testing::http_as(proctor, gw, "POST", path, R"({"seconds":3000,"reason":"accommodation"})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(data_of(r)["remaining_seconds"], 7200 + 3000) << "ready: the exam will be longer";
  r = testing::http_as(proctor, gw, "POST", path, R"({"seconds":601,"reason":"more"})");
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_NE(Json::parse(r.body)["error"]["message"].get<std::string>().find("3000"), std::string::npos) << r.body;
  r = testing::http_as(proctor, gw, "POST", path, R"({"seconds":600,"reason":"the rest"})");
  EXPECT_EQ(r.status, 200) << r.body;
  r = testing::http_as(c.token, gw, "POST", "/v1/sessions/" + c.session + "/start");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_GE(data_of(r)["remaining_seconds"].get<int>(), 7200 + 3600 - 2);
}

}  // namespace
}  // namespace examiso
