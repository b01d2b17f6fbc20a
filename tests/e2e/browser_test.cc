// The web UI in a real browser against the real platform: the gateway serves
// frontend/dist, and frontend/tests/browser.mjs drives Debian's Chromium
// through playwright-core (sign in, start, ready, type, files, resize, reload,
// another candidate, submit, terminal gone). Screenshots of every step go to
// test-artifacts/browser. `./scripts/dev test` builds the frontend first.
//
// The script drops the connection under a live page, or makes a start that
// cannot progress, by asking this test to stop and start a service: it
// creates the file `stop-<service>` or `start-<service>` in EXAMISO_CONTROL,
// and the file is removed once done. Tokens live 20 s here, with no leeway:
// the page must refresh its sign-in during the exam.
#include <filesystem>
#include <future>
#include <iostream>

#include <gtest/gtest.h>

#include "tests/support/platform.h"
#include "tests/support/postgres.h"
#include "tests/support/process.h"

namespace examiso {
namespace {

const std::string kFrontend = std::string(EXAMISO_SOURCE_DIR) + "/frontend";

TEST(Browser, ACandidateTakesAnExamInTheWebUI) {
  ASSERT_TRUE(std::filesystem::exists(kFrontend + "/dist/index.html"))
      << "frontend/dist is missing: run `npm ci && npm run build` in frontend (./scripts/dev test does)";
  ASSERT_TRUE(std::filesystem::exists(kFrontend + "/node_modules/playwright-core"))
      << "frontend/node_modules is missing: run `npm ci` in frontend (./scripts/dev test does)";
  testing::PostgresCluster cluster;
  // As shipped, with a warm pool: the candidates' environments are made ahead.
  const std::string token_ttl = "20";
  testing::Platform platform(cluster.create_database(), {{"EXAMISO_ENVIRONMENT_WARM_POOL_SIZE", "1"},
                                                         {"EXAMISO_IDENTITY_TOKEN_TTL_SECONDS", token_ttl},
                                                         {"EXAMISO_IDENTITY_LEEWAY_SECONDS", "0"}});
  // The page is opened as http://localhost:<port>: an origin the gateway must
  // allow for WebSockets.
  const std::string gw = platform.address("gateway");
  const std::string port = gw.substr(gw.rfind(':') + 1);
  for (const char* s : {"identity", "lifecycle", "environment", "access", "cleanup"}) platform.start(s);
  const testing::Env gateway_env = {{"EXAMISO_GATEWAY_ALLOWED_ORIGINS", "http://localhost:" + port}};
  platform.start("gateway", gateway_env);
  testing::TempDir control;
  auto script = std::async(std::launch::async, [&] {
    return testing::run({"node", kFrontend + "/tests/browser.mjs"},
                        {{"EXAMISO_URL", "http://localhost:" + port},
                         {"EXAMISO_CONTROL", control.path()},
                        {"EXAMISO_TOKEN_TTL", token_ttl},
                         {"EXAMISO_ARTIFACTS", std::string(EXAMISO_SOURCE_DIR) + "/test-artifacts/browser"}},
                        std::chrono::minutes(4));
  });
  while (script.wait_for(std::chrono::milliseconds(50)) != std::future_status::ready) {
    for (const char* service : {"gateway", "environment"}) {
      const std::filesystem::path stop_request = control.path() + "/stop-" + service;
      const std::filesystem::path start_request = control.path() + "/start-" + service;
      if (std::filesystem::exists(stop_request)) {
        platform.stop(service);
        std::filesystem::remove(stop_request);
      }
      if (std::filesystem::exists(start_request)) {
        platform.start(service, service == std::string("gateway") ? gateway_env : testing::Env{});
        std::filesystem::remove(start_request);
      }
    }
  }
  const auto r = script.get();
  std::cout << r.out;
  EXPECT_EQ(r.exit_code, 0) << r.out << "\n" << r.err << "\n" << platform.logs().substr(0, 20000);
}

}  // namespace
}  // namespace examiso
