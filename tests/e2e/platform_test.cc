// What operators and the platform rely on beyond one service: start-up
// refusal on bad configuration, the CLIs' configuration, a PostgreSQL outage
// for every service, restarts under an open terminal, full disks, terminal
// tickets that expire, production sign-in (RS256, no development tokens).
#include <gtest/gtest.h>
#include <grpcpp/grpcpp.h>
#include <jwt.h>
#include <sys/mount.h>

#include <filesystem>
#include <fstream>

#include "common/json.h"
#include "common/uuid.h"
#include "examiso/v1/access.grpc.pb.h"
#include "examiso/v1/cleanup.grpc.pb.h"
#include "examiso/v1/environment.grpc.pb.h"
#include "examiso/v1/identity.grpc.pb.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "tests/support/eventually.h"
#include "tests/support/http_client.h"
#include "tests/support/platform.h"
#include "tests/support/postgres.h"
#include "tests/support/terminal.h"
#include "common/grpc_server.h"

namespace examiso {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using testing::HttpResult;
using testing::WsClient;

const std::vector<std::string> kDaemons = {"identity", "lifecycle", "environment", "access", "cleanup", "gateway"};

// ---------------------------------------------------------------- configuration

// Every daemon refuses a configuration it cannot follow, at once, naming
// what is wrong: a key the file misspells, a value of the wrong kind, a
// certificate it cannot read.
TEST(Configuration, EveryDaemonRefusesABadConfigurationAndSaysWhy) {
  testing::TempDir dir;
  const std::string file = dir.path() + "/examiso.yaml";
  for (const auto& service : kDaemons) {
    std::ofstream(file) << service << ":\n  lisen: \"127.0.0.1:1\"\n";
    testing::Daemon misspelt({"examiso-" + service, "--config", file}, {});
    EXPECT_EQ(misspelt.wait(10s), 1) << service;
    EXPECT_NE(misspelt.log().find("unknown key '" + service + ".lisen'"), std::string::npos)
        << service << ": " << misspelt.log();
    testing::Daemon wrong_kind({"examiso-" + service}, {{"EXAMISO_LOG_LEVEL", "loud"}});
    EXPECT_EQ(wrong_kind.wait(10s), 1) << service;
    EXPECT_NE(wrong_kind.log().find("log.level must be one of"), std::string::npos) << service << ": " << wrong_kind.log();
    testing::Daemon no_certificate({"examiso-" + service}, {{"EXAMISO_GRPC_TLS_DIR", dir.path()}});
    EXPECT_EQ(no_certificate.wait(10s), 1) << service;
    EXPECT_NE(no_certificate.log().find("grpc.tls_dir: cannot read " + dir.path() + "/" + service + "/ca.crt"),
              std::string::npos)
        << service << ": " << no_certificate.log();
  }
}

// A terminal's output budget that is no budget at all (negative, not a number,
// or so small it would read as none) stops the environment service at start.
TEST(Configuration, TheEnvironmentRefusesAnOutputBudgetItCannotKeep) {
  for (const std::string bad : {"-1", "nan", "inf", "0.0000001"}) {
    testing::Daemon env({"examiso-environment"}, {{"EXAMISO_ENVIRONMENT_TERMINAL_OUTPUT_MB_PER_S", bad}});
    EXPECT_EQ(env.wait(10s), 1) << bad;
    EXPECT_NE(env.log().find("environment.terminal_output_mb_per_s must be 0 (no limit) or at least 0.001"),
              std::string::npos)
        << bad << ": " << env.log();
  }
}

// The CLIs find their service through --config, EXAMISO_CONFIG or an
// environment override, which wins over the file.
TEST(Configuration, TheClisTakeConfigFilesAndEnvironmentOverrides) {
  testing::Platform platform(testing::shared_postgres().create_database());
  const std::string lifecycle = platform.start("lifecycle");
  testing::TempDir dir;
  const std::string good = dir.path() + "/good.yaml", bad = dir.path() + "/bad.yaml";
  std::ofstream(good) << "lifecycle:\n  address: \"" << lifecycle << "\"\n";
  std::ofstream(bad) << "lifecycle:\n  address: \"127.0.0.1:9\"\n";
  const std::vector<std::string> list = {"session-lifecycle", "list"};
  const auto with = [&](std::vector<std::string> extra, const testing::Env& env) {
    std::vector<std::string> argv = list;
    argv.insert(argv.end(), extra.begin(), extra.end());
    return testing::run(argv, env);
  };
  EXPECT_EQ(with({"--config", good}, {}).exit_code, 0);
  EXPECT_EQ(with({}, {{"EXAMISO_CONFIG", good}}).exit_code, 0);
  const auto unreachable = with({"--config", bad}, {});
  EXPECT_EQ(unreachable.exit_code, 1);
  EXPECT_EQ(Json::parse(unreachable.err)["code"], "BACKEND_UNAVAILABLE");
  EXPECT_NE(unreachable.err.find("127.0.0.1:9"), std::string::npos) << unreachable.err;
  // The environment beats the file; the flag beats both.
  EXPECT_EQ(with({"--config", bad}, {{"EXAMISO_LIFECYCLE_ADDRESS", lifecycle}}).exit_code, 0);
  EXPECT_EQ(with({"--config", bad, "--address", lifecycle}, {{"EXAMISO_LIFECYCLE_ADDRESS", "127.0.0.1:9"}}).exit_code,
            0);
  const auto missing = with({"--config", dir.path() + "/none.yaml"}, {});
  EXPECT_EQ(missing.exit_code, 3);
  EXPECT_NE(missing.err.find("none.yaml"), std::string::npos) << missing.err;
}

// ---------------------------------------------------------------- the database goes away

// Every service says at once that it cannot work while PostgreSQL is away
// (BACKEND_UNAVAILABLE, health NOT_SERVING), never hangs, and works again by
// itself once PostgreSQL is back.
class DatabaseOutage : public ::testing::TestWithParam<std::string> {};

grpc::StatusCode health(const std::string& address, const std::string& service) {
  auto stub = grpc::health::v1::Health::NewStub(make_channel(address, service));
  grpc::ClientContext c;
  c.set_deadline(std::chrono::system_clock::now() + 2s);
  grpc::health::v1::HealthCheckResponse r;
  const auto s = stub->Check(&c, {}, &r);
  if (!s.ok()) return s.error_code();
  return r.status() == grpc::health::v1::HealthCheckResponse::SERVING ? grpc::StatusCode::OK
                                                                     : grpc::StatusCode::UNAVAILABLE;
}

TEST_P(DatabaseOutage, IsSaidAtOnceAndOverByItself) {
  const std::string service = GetParam();
  testing::PostgresCluster cluster;
  testing::Platform platform(cluster.create_database());
  for (const auto& s : kDaemons) platform.start(s);
  std::string user;
  const std::string session = platform.create_session("", false, &user);
  const std::string token = Json::parse(platform.sh("session-identity token --user-id " + user).out)["token"];
  const std::string address = platform.address(service);

  // The error code in an answer's JSON (the gateway's envelope or a CLI's),
  // or `otherwise` when it holds none.
  const auto code_in = [](const std::string& text, const std::string& otherwise) {
    const Json j = Json::parse(text, nullptr, false);
    if (!j.is_object()) return otherwise;
    const Json& error = j.contains("error") && j["error"].is_object() ? j["error"] : j;
    return error.value("code", otherwise);
  };
  // One call of the service that needs its database; its error code ("" when it worked).
  const auto call = [&]() -> std::string {
    if (service == "gateway") {
      const HttpResult r = testing::http_as(token, address, "GET", "/v1/sessions");
      return r.status == 200 ? "" : code_in(r.body, "?");
    }
    std::vector<std::string> argv;
    if (service == "identity") argv = {"session-identity", "token", "--user-id", user};  // no database: a control
    if (service == "lifecycle") argv = {"session-lifecycle", "status", "--session-id", session};
    if (service == "environment") argv = {"execution-environment", "list"};
    if (service == "access")
      argv = {"environment-access", "authorize", "--session-id", session, "--user-id", user, "--access-type", "status"};
    if (service == "cleanup") argv = {"cleanup-ttl", "history"};
    const auto r = testing::run(argv, platform.env(), 10s);
    if (r.exit_code == 0) return "";
    return code_in(r.err, "exit " + std::to_string(r.exit_code));
  };
  // identity: its terminal tickets are in the database.
  const auto identity_ticket = [&]() -> std::string {
    auto stub = v1::IdentityService::NewStub(make_channel(address, "identity", "gateway"));
    grpc::ClientContext c;
    c.set_deadline(std::chrono::system_clock::now() + 10s);
    v1::IssueTerminalTicketRequest r;
    r.set_user_id(user);
    r.set_session_id(session);
    v1::IssueTerminalTicketResponse out;
    const auto s = stub->IssueTerminalTicket(&c, r, &out);
    return s.ok() ? "" : s.error_message();
  };
  const auto works = [&] { return service == "identity" ? identity_ticket().empty() : call().empty(); };
  ASSERT_TRUE(works()) << call() << platform.logs();

  cluster.stop();
  const auto t0 = std::chrono::steady_clock::now();
  if (service == "identity") {
    EXPECT_FALSE(identity_ticket().empty());
  } else if (service == "access") {
    // Access decides with lifecycle's answer and logs to its own database: unavailable, never a denial.
    EXPECT_EQ(call(), "BACKEND_UNAVAILABLE");
  } else {
    EXPECT_EQ(call(), "BACKEND_UNAVAILABLE");
  }
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 8s) << "a hang, not an answer";
  if (service == "gateway") {
    EXPECT_TRUE(testing::eventually([&] { return testing::http(address, "GET", "/readyz").status == 503; }, 10s));
  } else {
    EXPECT_TRUE(testing::eventually([&] { return health(address, service) != grpc::StatusCode::OK; }, 10s))
        << service << " still says SERVING";
  }

  cluster.start();
  EXPECT_TRUE(testing::eventually(works, 30s, 200ms)) << service << " did not recover: " << call() << platform.logs();
  if (service != "gateway") {
    EXPECT_TRUE(testing::eventually([&] { return health(address, service) == grpc::StatusCode::OK; }, 10s));
  }
}

INSTANTIATE_TEST_SUITE_P(EveryService, DatabaseOutage,
                         ::testing::Values("identity", "lifecycle", "environment", "access", "cleanup", "gateway"));

// ---------------------------------------------------------------- restarts under an open terminal

// The gateway, then the environment service, restarted while a candidate's
// terminal is open: the connection ends, and the next one finds the same
// shell with its recent output.
TEST(Restarts, ATerminalSurvivesTheGatewayAndTheEnvironmentServiceRestarting) {
  testing::Platform platform(testing::shared_postgres().create_database());
  for (const auto& s : kDaemons) platform.start(s);
  const std::string user = new_uuid();
  const std::string token = Json::parse(platform.sh("session-identity token --user-id " + user).out)["token"];
  const std::string gw = platform.address("gateway");
  const HttpResult created =
      testing::http_as(token, gw, "POST", "/v1/sessions", R"({"exam_id":"a1b2c3d4-e5f6-7890-abcd-ef1234567890"})");
  ASSERT_EQ(created.status, 201) << created.body;
  const std::string session = Json::parse(created.body)["data"]["session_id"];
  ASSERT_TRUE(testing::eventually(
      [&] {
        const auto r = testing::http_as(token, gw, "GET", "/v1/sessions/" + session + "/status");
        return r.status == 200 && Json::parse(r.body)["data"]["lifecycle_state"] == "ready";
      },
      20s));
  const auto open = [&] {
    return WsClient::connect(gw, "/v1/sessions/" + session + "/terminal", {{"Authorization", "Bearer " + token}});
  };
  const auto sees = [](WsClient& ws, const std::string& needle) {
    std::string out;
    while (auto m = ws.receive(10s)) {
      const Json j = Json::parse(*m, nullptr, false);
      if (j.value("type", "") == "output") out += j.value("data", "");
      if (out.find(needle) != std::string::npos) return true;
    }
    return false;
  };
  auto ws = open();
  ws->send(R"({"type":"input","data":"export MARK=kept-$((20+22)); echo set-$MARK\n"})");
  ASSERT_TRUE(sees(*ws, "set-kept-42"));
  // The gateway says it restarts (1012); the environment service's going is
  // a service unavailable (1013).
  for (const auto& [service, code] : {std::pair{"gateway", 1012}, std::pair{"environment", 1013}}) {
    platform.stop(service);
    EXPECT_EQ(ws->wait_closed(10s), code) << service;
    platform.start(service);
    ws = open();
    ASSERT_FALSE(ws->refused()) << service;
    EXPECT_TRUE(sees(*ws, "set-kept-42")) << service << ": no replay";
    ws->send(R"({"type":"input","data":"echo again-$MARK\n"})");
    EXPECT_TRUE(sees(*ws, "again-kept-42")) << service << ": not the same shell";
  }
}

// ---------------------------------------------------------------- tickets

// A browser's terminal ticket works once, within its lifetime (30 s as
// shipped; 1 s here), and never after.
TEST(Tickets, ATicketUnusedWithinItsLifetimeIsRefused) {
  testing::Platform platform(testing::shared_postgres().create_database(),
                             {{"EXAMISO_IDENTITY_TICKET_TTL_SECONDS", "1"},
                              {"EXAMISO_GATEWAY_ALLOWED_ORIGINS", "http://exam.example"}});
  for (const auto& s : kDaemons) platform.start(s);
  const std::string token =
      Json::parse(platform.sh("session-identity token --user-id " + new_uuid()).out)["token"];
  const std::string gw = platform.address("gateway");
  const HttpResult created =
      testing::http_as(token, gw, "POST", "/v1/sessions", R"({"exam_id":"a1b2c3d4-e5f6-7890-abcd-ef1234567890"})");
  const std::string session = Json::parse(created.body)["data"]["session_id"];
  const auto ticket = [&] {
    return Json::parse(testing::http_as(token, gw, "POST", "/v1/sessions/" + session + "/terminal-ticket").body)
        ["data"]["ticket"].get<std::string>();
  };
  const auto connect = [&](const std::string& t) {
    return WsClient::connect(gw, "/v1/sessions/" + session + "/status?ticket=" + t, {{"Origin", "http://exam.example"}});
  };
  auto fresh = connect(ticket());
  EXPECT_TRUE(fresh->receive(5s)) << "a fresh ticket works";
  const std::string late = ticket();
  std::this_thread::sleep_for(2500ms);
  auto stale = connect(late);
  EXPECT_EQ(stale->wait_closed(), 4001);
}

// ---------------------------------------------------------------- production sign-in

// As in production: identity verifies RS256 tokens of an identity provider and
// has no development secret. The development sign-in is refused; a token of
// the provider goes through the gateway.
TEST(ProductionSignIn, Rs256TokensWorkAndTheDevelopmentSignInIsRefused) {
  testing::TempDir dir;
  const std::string key = dir.path() + "/rs256.key", pub = dir.path() + "/rs256.pub";
  ASSERT_EQ(testing::run({"openssl", "genpkey", "-algorithm", "RSA", "-out", key}).exit_code, 0);
  ASSERT_EQ(testing::run({"openssl", "pkey", "-in", key, "-pubout", "-out", pub}).exit_code, 0);
  testing::Platform platform(testing::shared_postgres().create_database(),
                             {{"EXAMISO_IDENTITY_ALGORITHMS", "RS256"},
                              {"EXAMISO_IDENTITY_HS256_SECRET", ""},
                              {"EXAMISO_IDENTITY_DEV_SIGN_IN", "false"},
                              {"EXAMISO_IDENTITY_RS256_PUBLIC_KEY_FILE", pub}});
  for (const auto& s : kDaemons) platform.start(s);
  const std::string gw = platform.address("gateway");
  const HttpResult dev = testing::http(gw, "POST", "/v1/dev/token", R"({"name":"mallory"})",
                                       {{"Content-Type", "application/json"}});
  EXPECT_EQ(dev.status, 403) << dev.body;
  EXPECT_EQ(Json::parse(dev.body)["error"]["code"], "TOKEN_ISSUING_DISABLED");

  std::ifstream in(key);
  const std::string pem((std::istreambuf_iterator<char>(in)), {});
  const std::string user = new_uuid();
  const int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                          std::chrono::system_clock::now().time_since_epoch()).count();
  jwt_t* jwt = nullptr;
  jwt_new(&jwt);
  jwt_add_grants_json(jwt, Json{{"sub", user}, {"iat", now}, {"exp", now + 600}}.dump().c_str());
  jwt_set_alg(jwt, JWT_ALG_RS256, reinterpret_cast<const unsigned char*>(pem.data()), static_cast<int>(pem.size()));
  char* encoded = jwt_encode_str(jwt);
  const std::string token = encoded ? encoded : "";
  free(encoded);
  jwt_free(jwt);
  ASSERT_FALSE(token.empty());
  const HttpResult created =
      testing::http_as(token, gw, "POST", "/v1/sessions", R"({"exam_id":"a1b2c3d4-e5f6-7890-abcd-ef1234567890"})");
  EXPECT_EQ(created.status, 201) << created.body;
  EXPECT_EQ(Json::parse(created.body)["data"]["user_id"], user);
  // Without identity.refresh_secret, refreshing is refused (and says why).
  const HttpResult refresh = testing::http_as(token, gw, "POST", "/v1/auth/refresh");
  EXPECT_EQ(refresh.status, 403);
  EXPECT_EQ(Json::parse(refresh.body)["error"]["code"], "TOKEN_ISSUING_DISABLED");
}

// ---------------------------------------------------------------- full disks

// A candidate who fills their home or /tmp gets "No space left on device" in
// their own shell, which goes on; the other candidate is untouched.
TEST(FullDisks, AFullHomeOrTmpIsTheCandidatesAlone) {
  testing::Platform platform(testing::shared_postgres().create_database());
  platform.start("lifecycle");
  platform.start("environment");
  const std::string small_disks = "00000000-0000-4000-8000-000000000011";  // home 16 MiB, /tmp 8 MiB
  std::vector<std::string> sessions;
  for (int i = 0; i < 2; ++i) {
    sessions.push_back(platform.create_session(small_disks));
    ASSERT_EQ(platform.sh("execution-environment create --session-id " + sessions.back()).exit_code, 0)
        << platform.logs();
  }
  testing::TerminalClient a(platform.address("environment"), sessions[0]);
  testing::TerminalClient b(platform.address("environment"), sessions[1]);
  for (const std::string dir : {"/tmp", "$HOME"}) {
    const size_t mark = a.output_size();
    a.send("dd if=/dev/zero of=" + dir + "/fill bs=1M count=100 2>&1 | head -n 1; echo done-$((1+1))\n");
    ASSERT_TRUE(a.wait_for("done-2", 60s, mark)) << a.output().substr(mark);
    EXPECT_NE(a.output().find("No space left on device", mark), std::string::npos) << a.output().substr(mark);
    const size_t after = a.output_size();
    a.send("rm " + dir + "/fill; echo still-$((2+2))\n");
    EXPECT_TRUE(a.wait_for("still-4", 10s, after)) << "the shell did not go on";
  }
  b.send("echo b-fine-$((3+3)) > /tmp/b && cat /tmp/b\n");
  EXPECT_TRUE(b.wait_for("b-fine-6", 10s));
}

// The host's disk full where sandboxes live: a sandbox needs none of it (its
// home and /tmp are memory of its own), so creates go on and work.
TEST(FullDisks, AFullHostDiskDoesNotStopSandboxes) {
  testing::TempDir small;
  ASSERT_EQ(mount("examiso-test-full", small.path().c_str(), "tmpfs", 0, "size=64k"), 0) << strerror(errno);
  {
    std::ofstream filler(small.path() + "/filler", std::ios::binary);
    const std::string block(4096, 'x');
    while (filler.write(block.data(), static_cast<std::streamsize>(block.size()))) {
    }
  }
  {
    testing::Platform platform(testing::shared_postgres().create_database(),
                               {{"EXAMISO_ENVIRONMENT_STATE_DIR", small.path() + "/sandboxes"}});
    platform.start("lifecycle");
    platform.start("environment");
    const std::string session = platform.create_session();
    const auto r = platform.sh("execution-environment create --session-id " + session);
    ASSERT_EQ(r.exit_code, 0) << r.err << platform.logs();
    testing::TerminalClient t(platform.address("environment"), session);
    t.send("echo works-$((2+5)) > /tmp/w && cat /tmp/w\n");
    EXPECT_TRUE(t.wait_for("works-7", 10s)) << t.output();
    ASSERT_EQ(platform.sh("execution-environment destroy --session-id " + session).exit_code, 0);
  }
  umount2(small.path().c_str(), MNT_DETACH);
}

}  // namespace
}  // namespace examiso
