// The quickstart (docs/quickstart.md, the seed's walkthrough), steps 1 to 8 and
// its three error scenarios, typed as a new user types them (without `npx`),
// against the running platform. Step 6 (the terminal over WebSocket) belongs to
// the gateway's tests.
#include <gtest/gtest.h>

#include <fstream>
#include <regex>

#include "common/json.h"
#include "common/uuid.h"
#include "tests/support/platform.h"
#include "tests/support/postgres.h"

namespace examiso {
namespace {

const std::string kUser = "550e8400-e29b-41d4-a716-446655440000";
const std::string kSession = "6ba7b810-9dad-11d1-80b4-00c04fd430c8";

// The commands, exactly as the quickstart prints them (minus `npx `).
const std::vector<std::string> kSteps{
    // 1
    "session-identity validate \\\n  --user-id \"550e8400-e29b-41d4-a716-446655440000\" \\\n"
    "  --session-id \"6ba7b810-9dad-11d1-80b4-00c04fd430c8\"",
    // 2.1
    "session-lifecycle transition \\\n  --session-id \"6ba7b810-9dad-11d1-80b4-00c04fd430c8\" \\\n  --to created",
    // 2.2
    "execution-environment create \\\n  --session-id \"6ba7b810-9dad-11d1-80b4-00c04fd430c8\" \\\n  --timeout 60",
    // 2.3
    "session-lifecycle transition \\\n  --session-id \"6ba7b810-9dad-11d1-80b4-00c04fd430c8\" \\\n  --to ready",
    // 3
    "session-status get \\\n  --session-id \"6ba7b810-9dad-11d1-80b4-00c04fd430c8\"",
    // 4
    "environment-access authorize \\\n  --session-id \"6ba7b810-9dad-11d1-80b4-00c04fd430c8\" \\\n"
    "  --user-id \"550e8400-e29b-41d4-a716-446655440000\"",
    // 5
    "session-lifecycle transition \\\n  --session-id \"6ba7b810-9dad-11d1-80b4-00c04fd430c8\" \\\n  --to running",
    // 7
    "session-lifecycle transition \\\n  --session-id \"6ba7b810-9dad-11d1-80b4-00c04fd430c8\" \\\n  --to terminated \\\n"
    "  --reason \"Exam time expired\"",
    "execution-environment destroy \\\n  --session-id \"6ba7b810-9dad-11d1-80b4-00c04fd430c8\"",
    // 8
    "cleanup-ttl check \\\n  --session-id \"6ba7b810-9dad-11d1-80b4-00c04fd430c8\"",
};
const std::string kUnauthorized =
    "environment-access authorize \\\n  --session-id \"user-b-session-id\" \\\n  --user-id \"user-a-id\"";
const std::string kInvalidTransition =
    "session-lifecycle transition \\\n  --session-id \"6ba7b810-9dad-11d1-80b4-00c04fd430c8\" \\\n  --to running";
const std::string kMissingIdentity = "session-identity validate --session-id \"some-session\"";

void expect_subset(const Json& expected, const Json& actual) {
  for (const auto& [key, value] : expected.items()) {
    ASSERT_TRUE(actual.contains(key)) << key << " missing in " << actual.dump();
    EXPECT_EQ(actual[key], value) << key;
  }
}

bool iso8601(const Json& v) {
  return v.is_string() && std::regex_match(v.get<std::string>(), std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)"));
}

TEST(Quickstart, EveryCommandIsTheDocumentsOwn) {
  std::ifstream in(std::string(EXAMISO_SOURCE_DIR) + "/docs/quickstart.md");
  std::string doc((std::istreambuf_iterator<char>(in)), {});
  doc = std::regex_replace(doc, std::regex("npx "), "");
  auto all = kSteps;
  all.insert(all.end(), {kUnauthorized, kInvalidTransition, kMissingIdentity});
  for (const auto& command : all) EXPECT_NE(doc.find(command), std::string::npos) << command;
}

TEST(Quickstart, StepsOneToEightAndTheErrorScenarios) {
  testing::Platform platform(testing::shared_postgres().create_database());
  for (const char* s : {"identity", "lifecycle", "environment", "access", "cleanup"}) platform.start(s);
  // The operator's shell names the candidate, as the quickstart's orchestrator would.
  const testing::Env shell{{"EXAMISO_USER_ID", kUser}};
  std::vector<Json> out;
  for (size_t i = 0; i < kSteps.size(); ++i) {
    const auto r = platform.sh(kSteps[i], shell);
    ASSERT_EQ(r.exit_code, 0) << kSteps[i] << "\n" << r.err << platform.logs();
    EXPECT_EQ(r.err, "") << kSteps[i];
    out.push_back(Json::parse(r.out));
  }
  // 1: the whole document, byte for byte.
  EXPECT_EQ(platform.sh(kSteps[0]).out, R"({
  "valid": true,
  "identity": {
    "user_id": "550e8400-e29b-41d4-a716-446655440000",
    "exam_session_id": "6ba7b810-9dad-11d1-80b4-00c04fd430c8",
    "environment_id": null
  }
}
)");
  // 2.1
  expect_subset({{"session_id", kSession}, {"current_state", "created"}}, out[1]);
  // 2.2
  expect_subset({{"session_id", kSession},
                 {"pod_name", "exam-6ba7b810"},
                 {"pod_namespace", "exam-sessions"},
                 {"status", "running"}},
                out[2]);
  EXPECT_TRUE(is_uuid(out[2]["environment_id"].get<std::string>()));
  EXPECT_TRUE(iso8601(out[2]["ready_at"]));
  // 2.3
  expect_subset({{"session_id", kSession}, {"previous_state", "initializing"}, {"current_state", "ready"}}, out[3]);
  // 3
  expect_subset({{"session_id", kSession},
                 {"display_state", "ready"},
                 {"message", "Your exam environment is ready"},
                 {"environment_ready", true},
                 {"remaining_seconds", 7200}},
                out[4]);
  // 4: the whole document.
  EXPECT_EQ(out[5], Json({{"authorized", true}, {"session_id", kSession}, {"user_id", kUser}}));
  // 5, 7
  expect_subset({{"previous_state", "ready"}, {"current_state", "running"}}, out[6]);
  expect_subset({{"previous_state", "running"}, {"current_state", "terminated"}}, out[7]);
  expect_subset({{"environment_id", out[2]["environment_id"]}, {"session_id", kSession}}, out[8]);
  EXPECT_TRUE(iso8601(out[8]["destroyed_at"]));
  // 8: the whole document.
  EXPECT_EQ(out[9], Json({{"session_id", kSession},
                          {"should_cleanup", false},
                          {"reason", "Session already terminated and cleaned"},
                          {"ttl_remaining_seconds", 0}}));

  // "Unauthorized Access Attempt": exit 5, exactly the document shown.
  const std::string denied = R"({
  "error": true,
  "code": "ACCESS_DENIED",
  "message": "Access denied",
  "details": {}
}
)";
  auto r = platform.sh(kUnauthorized);
  EXPECT_EQ(r.exit_code, 5);
  EXPECT_EQ(r.err, denied);
  EXPECT_EQ(r.out, "");
  // "Invalid Lifecycle Transition": exit 6.
  r = platform.sh(kInvalidTransition);
  EXPECT_EQ(r.exit_code, 6);
  const Json invalid = Json::parse(r.err);
  expect_subset({{"error", true},
                 {"code", "INVALID_TRANSITION"},
                 {"message", "Cannot transition from 'terminated' to 'running'"}},
                invalid);
  EXPECT_EQ(invalid["details"]["current_state"], "terminated");
  EXPECT_EQ(invalid["details"]["allowed_transitions"], Json::array());
  // "Missing Identity": exit 3, exactly the document shown.
  r = platform.sh(kMissingIdentity);
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_EQ(r.err, R"({
  "error": true,
  "code": "INVALID_IDENTITY",
  "message": "Missing required identity component: user_id",
  "details": {
    "missing_fields": ["user_id"]
  }
}
)");
  // Nothing of the session is left on the machine.
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(platform.sandbox_dir()), {}), 0);
}

}  // namespace
}  // namespace examiso
