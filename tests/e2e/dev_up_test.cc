// `./scripts/dev up`, the README's first command, on the binaries this build
// made: it starts the platform (with https/wss beside http/ws on the
// gateway's port), and Ctrl-C stops everything, its sandboxes included.
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <fstream>

#include "common/json.h"
#include "tests/support/eventually.h"
#include "tests/support/http_client.h"
#include "tests/support/platform.h"
#include "tests/support/postgres.h"

namespace examiso {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// Processes whose command line names `text`.
int processes_naming(const std::string& text) {
  int n = 0;
  for (const auto& e : fs::directory_iterator("/proc")) {
    std::ifstream in(e.path() / "cmdline");
    std::string cmdline((std::istreambuf_iterator<char>(in)), {});
    if (cmdline.find(text) != std::string::npos) ++n;
  }
  return n;
}

TEST(DevUp, CtrlCStopsEveryServiceAndEverySandbox) {
  // The platform's addresses, database and sandbox directory; `up` starts the services.
  testing::Platform platform(testing::shared_postgres().create_database());
  testing::TempDir var;
  testing::Env env = platform.env();
  env["EXAMISO_SKIP_BUILD"] = "1";
  env["EXAMISO_BUILD_DIR"] = fs::path(EXAMISO_BIN_DIR).parent_path().string();
  env["EXAMISO_VAR_DIR"] = var.path();
  testing::Daemon up({std::string(EXAMISO_SOURCE_DIR) + "/scripts/dev", "up"}, env);
  const std::string gw = platform.address("gateway");
  ASSERT_TRUE(testing::wait_http(gw, 60s)) << up.log();
  for (const char* s : {"identity", "lifecycle", "environment", "access", "cleanup"})
    ASSERT_TRUE(testing::wait_serving(platform.address(s), s, 10s)) << s << "\n" << up.log();

  // https on the same port, with the certificate `up` made.
  const auto tls = testing::run({"curl", "-sS", "--cacert", var.path() + "/tls/cert.pem",
                                 "https://localhost:" + gw.substr(gw.rfind(':') + 1) + "/healthz"});
  EXPECT_NE(tls.out.find(R"("status":"ok")"), std::string::npos) << tls.out << tls.err;
  EXPECT_EQ(testing::http(gw, "GET", "/healthz").status, 200);

  // A session with its sandbox, and one made ahead for the warm pool.
  const std::string session = platform.create_session();
  ASSERT_EQ(platform.sh("execution-environment create --session-id " + session).exit_code, 0) << up.log();
  ASSERT_GE(std::distance(fs::directory_iterator(platform.sandbox_dir()), {}), 1);
  ASSERT_GE(processes_naming(platform.sandbox_dir()), 1);

  up.signal(SIGINT);
  EXPECT_EQ(up.wait(30s), 0) << up.log();
  EXPECT_EQ(std::distance(fs::directory_iterator(platform.sandbox_dir()), {}), 0) << "sandboxes left behind";
  EXPECT_TRUE(testing::eventually([&] { return processes_naming(platform.sandbox_dir()) == 0; }, 5s))
      << "keepers or shells left running";
  for (const char* s : {"identity", "lifecycle", "environment", "access", "cleanup"})
    EXPECT_FALSE(testing::wait_serving(platform.address(s), s, 200ms)) << s << " still serves";
}

}  // namespace
}  // namespace examiso
