// An exam hall: hundreds of candidates behind one address (the hall's NAT)
// start at once, through the gateway as their browsers would (the catalog, a
// session, its status, a ticket, the terminal). None is refused: what counts
// per address is only what proves no user, and each user has limits of their own.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "common/clock.h"
#include "common/json.h"
#include "common/uuid.h"
#include "services/identity/token.h"
#include "tests/support/eventually.h"
#include "tests/support/http_client.h"
#include "tests/support/platform.h"
#include "tests/support/postgres.h"

namespace examiso {
namespace {

using namespace std::chrono_literals;
using testing::HttpResult;

// The default exam's environment, with a provisioning timeout of 10 minutes:
// this test is about everyone getting in, not how fast. (A 2-core machine
// with both cores busy makes about 2.5 sandboxes a second: 300 take two
// minutes, past the default exam's 60 s. Speed: bench/.)
const std::string kExam = "00000000-0000-4000-8000-000000000012";
const std::string kOrigin = "http://hall.example";
constexpr int kCandidates = 300;
constexpr int kThreads = 16;

// Runs `each(i)` for every candidate on kThreads threads.
void for_all(const std::function<void(int)>& each) {
  std::atomic<int> next{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&] {
      for (int i = next++; i < kCandidates; i = next++) each(i);
    });
  for (auto& t : threads) t.join();
}

TEST(Hall, ThreeHundredCandidatesBehindOneAddressStartAtOnce) {
  testing::Platform platform(testing::shared_postgres().create_database(),
                             {{"EXAMISO_GATEWAY_ALLOWED_ORIGINS", kOrigin}});
  for (const char* s : {"identity", "lifecycle", "environment", "access", "cleanup", "gateway"}) platform.start(s);
  const std::string gw = platform.address("gateway");

  SystemClock clock;
  identity::TokenPolicy policy;
  policy.algorithms = {"HS256"};
  policy.hs256_secret = platform.env().at("EXAMISO_IDENTITY_HS256_SECRET");
  policy.dev_sign_in = true;
  const identity::TokenIssuer issuer(policy, 1h, 1h, clock);
  struct Candidate {
    std::string token, session;
  };
  std::vector<Candidate> hall(kCandidates);
  for (auto& c : hall) c.token = issuer.issue(new_uuid(), {}).token;

  std::mutex mutex;
  std::map<int, int> unexpected;  // HTTP status -> how many
  const auto expect = [&](const HttpResult& r, int wanted) {
    if (r.status == wanted) return true;
    std::lock_guard lock(mutex);
    ++unexpected[r.status];
    return false;
  };

  // Everyone arrives at once: the catalog, a session, its status.
  for_all([&](int i) {
    Candidate& c = hall[static_cast<size_t>(i)];
    expect(testing::http_as(c.token, gw, "GET", "/v1/exams"), 200);
    const HttpResult created = testing::http_as(c.token, gw, "POST", "/v1/sessions", Json{{"exam_id", kExam}}.dump());
    if (!expect(created, 201)) return;
    c.session = Json::parse(created.body)["data"]["session_id"];
    expect(testing::http_as(c.token, gw, "GET", "/v1/sessions/" + c.session + "/status"), 200);
  });
  ASSERT_TRUE(unexpected.empty()) << "statuses other than expected (status: count): "
                                  << Json(unexpected).dump() << "\n" << platform.logs().substr(0, 5000);

  // Each waits for their environment, as the page does, then opens the terminal.
  std::atomic<int> ready{0}, typed{0};
  for_all([&](int i) {
    const Candidate& c = hall[static_cast<size_t>(i)];
    // Until ready, or failed: a failed session is not waited for any longer.
    std::string state;
    testing::eventually(
        [&] {
          const HttpResult r = testing::http_as(c.token, gw, "GET", "/v1/sessions/" + c.session + "/status");
          state = r.status == 200 ? Json::parse(r.body)["data"].value("lifecycle_state", "") : "";
          return state == "ready" || state == "failed";
        },
        540s, 500ms);
    if (state != "ready") return;
    ++ready;
    const HttpResult ticket = testing::http_as(c.token, gw, "POST", "/v1/sessions/" + c.session + "/terminal-ticket");
    if (!expect(ticket, 200)) return;
    auto ws = testing::WsClient::connect(
        gw, "/v1/sessions/" + c.session + "/terminal?ticket=" + Json::parse(ticket.body)["data"]["ticket"].get<std::string>(),
        {{"Origin", kOrigin}});
    if (ws->refused()) return (void)expect(*ws->refused(), 101);
    ws->send(R"({"type":"input","data":"echo hall-$((7*6))\n"})");
    std::string output;
    while (auto m = ws->receive(20s)) {
      const Json j = Json::parse(*m, nullptr, false);
      if (j.value("type", "") == "output") output += j.value("data", "");
      if (output.find("hall-42") != std::string::npos) {
        ++typed;
        break;
      }
    }
    ws->close();
  });
  EXPECT_EQ(ready.load(), kCandidates) << platform.logs().substr(0, 5000);
  EXPECT_EQ(typed.load(), kCandidates);
  EXPECT_TRUE(unexpected.empty()) << Json(unexpected).dump();

  // And all submit.
  for_all([&](int i) {
    const Candidate& c = hall[static_cast<size_t>(i)];
    expect(testing::http_as(c.token, gw, "POST", "/v1/sessions/" + c.session + "/terminate"), 200);
  });
  EXPECT_TRUE(unexpected.empty()) << Json(unexpected).dump();
}

}  // namespace
}  // namespace examiso
