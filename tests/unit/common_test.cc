// common/: JSON printing, UUIDs, the error table, configuration, time,
// identity checks.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <fstream>
#include <set>

#include "common/clock.h"
#include "common/config.h"
#include "common/errors.h"
#include "common/identity.h"
#include "common/json.h"
#include "common/uuid.h"
#include "tests/support/process.h"

namespace examiso {
namespace {

TEST(PrettyJson, PrintsLikeTheContractExamples) {
  const Json v{{"error", true},
               {"code", "INVALID_IDENTITY"},
               {"details", {{"missing_fields", {"user_id"}}, {"none", Json::array()}, {"empty", Json::object()}}},
               {"environment_id", nullptr},
               {"list", Json::array({Json{{"a", 1}}})}};
  EXPECT_EQ(pretty_json(v),
            "{\n"
            "  \"error\": true,\n"
            "  \"code\": \"INVALID_IDENTITY\",\n"
            "  \"details\": {\n"
            "    \"missing_fields\": [\"user_id\"],\n"
            "    \"none\": [],\n"
            "    \"empty\": {}\n"
            "  },\n"
            "  \"environment_id\": null,\n"
            "  \"list\": [\n"
            "    {\n"
            "      \"a\": 1\n"
            "    }\n"
            "  ]\n"
            "}");
}

TEST(PrettyJson, ReplacesInvalidUtf8InsteadOfThrowing) {
  EXPECT_EQ(compact_json(Json("a\xff" "b")), "\"a\xef\xbf\xbd" "b\"");
}

TEST(Utf8, AcceptsValidAndRejectsInvalid) {
  EXPECT_TRUE(is_valid_utf8("plain"));
  EXPECT_TRUE(is_valid_utf8("h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80"));
  EXPECT_FALSE(is_valid_utf8("\xff"));
  EXPECT_FALSE(is_valid_utf8("\xc3"));              // truncated
  EXPECT_FALSE(is_valid_utf8("\xc0\xaf"));          // overlong '/'
  EXPECT_FALSE(is_valid_utf8("\xed\xa0\x80"));      // surrogate
  EXPECT_FALSE(is_valid_utf8("\xf4\x90\x80\x80"));  // past U+10FFFF
}

TEST(JsonString, EscapesLikeTheJsonLibrary) {
  std::string all;
  for (int c = 1; c < 128; ++c) all += static_cast<char>(c);
  for (const std::string& text : {std::string(), all, std::string("h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80 \"q\" \\ \x1b[0m")}) {
    std::string out = "x";
    append_json_string(out, text);
    EXPECT_EQ(out, "x" + Json(text).dump()) << text;
    EXPECT_EQ(Json::parse(out.substr(1)).get<std::string>(), text);
  }
}

TEST(Uuid, GeneratesDistinctVersion4Ids) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    const std::string id = new_uuid();
    ASSERT_TRUE(is_uuid(id)) << id;
    EXPECT_EQ(id[14], '4');
    EXPECT_NE(std::string("89ab").find(id[19]), std::string::npos);
    seen.insert(id);
  }
  EXPECT_EQ(seen.size(), 1000u);
}

TEST(Uuid, ParsesAnyVersionAndLowerCases) {
  EXPECT_EQ(canonical_uuid("6BA7B810-9DAD-11D1-80B4-00C04FD430C8"), "6ba7b810-9dad-11d1-80b4-00c04fd430c8");
  EXPECT_TRUE(is_uuid("550e8400-e29b-41d4-a716-446655440000"));
  EXPECT_TRUE(is_uuid("0190a6e1-7c3a-7b2e-9f4d-1a2b3c4d5e6f"));  // version 7
  for (const char* bad : {"", "some-session", "6ba7b8109dad11d180b400c04fd430c8", "6ba7b810-9dad-11d1-80b4-00c04fd430c",
                          "6ba7b810-9dad-11d1-80b4-00c04fd430c8 ", "{6ba7b810-9dad-11d1-80b4-00c04fd430c8}",
                          "6ba7b810_9dad-11d1-80b4-00c04fd430c8", "6ba7b810-9dad-11d1-80b4-00c04fd430g8"})
    EXPECT_FALSE(is_uuid(bad)) << bad;
}

TEST(Uuid, NameBasedIdsAreStableValidAndDistinct) {
  const std::string a = name_based_uuid("space", "alice");
  EXPECT_TRUE(is_uuid(a));
  EXPECT_EQ(a[14], '8');
  EXPECT_NE(std::string("89ab").find(a[19]), std::string::npos);
  EXPECT_EQ(name_based_uuid("space", "alice"), a);
  EXPECT_NE(name_based_uuid("space", "bob"), a);
  EXPECT_NE(name_based_uuid("other", "alice"), a);
}

TEST(Errors, EveryContractCodeHasItsRow) {
  struct Row {
    const char* code;
    grpc::StatusCode grpc;
    int http, exit, ws;
  };
  for (const Row& r : {Row{"INVALID_USAGE", grpc::StatusCode::INVALID_ARGUMENT, 400, 2, 1008},
                       Row{"INVALID_IDENTITY", grpc::StatusCode::INVALID_ARGUMENT, 400, 3, 1008},
                       Row{"SESSION_NOT_FOUND", grpc::StatusCode::NOT_FOUND, 404, 4, 4003},
                       Row{"ACCESS_DENIED", grpc::StatusCode::PERMISSION_DENIED, 403, 5, 4003},
                       Row{"UNAUTHENTICATED", grpc::StatusCode::UNAUTHENTICATED, 401, 5, 4001},
                       Row{"INVALID_TRANSITION", grpc::StatusCode::FAILED_PRECONDITION, 409, 6, 1008},
                       Row{"ACTIVE_SESSION_EXISTS", grpc::StatusCode::ALREADY_EXISTS, 409, 6, 1008},
                       Row{"SESSION_NOT_READY", grpc::StatusCode::FAILED_PRECONDITION, 409, 6, 4005},
                       Row{"SESSION_TERMINATED", grpc::StatusCode::FAILED_PRECONDITION, 409, 6, 4006},
                       Row{"SESSION_ALREADY_TERMINATED", grpc::StatusCode::FAILED_PRECONDITION, 400, 6, 4006},
                       Row{"BACKEND_UNAVAILABLE", grpc::StatusCode::UNAVAILABLE, 503, 1, 1013},
                       Row{"RATE_LIMITED", grpc::StatusCode::RESOURCE_EXHAUSTED, 429, 1, 1013}}) {
    const ErrorKind& k = error_kind(r.code);
    EXPECT_EQ(k.code, r.code);
    EXPECT_EQ(k.grpc, r.grpc) << r.code;
    EXPECT_EQ(k.http, r.http) << r.code;
    EXPECT_EQ(k.exit_code, r.exit) << r.code;
    EXPECT_EQ(k.ws_close, r.ws) << r.code;
  }
  EXPECT_EQ(error_kind("NO_SUCH_CODE").code, "INTERNAL_ERROR");
}

TEST(Errors, SurviveTheGrpcRoundTripWithDetails) {
  const Error sent("INVALID_TRANSITION", "Cannot transition from 'terminated' to 'running'",
                   Json{{"current_state", "terminated"}, {"allowed_transitions", Json::array()}, {"n", 7200}});
  const grpc::Status status = to_grpc_status(sent);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  const Error got = from_grpc_status(status, "127.0.0.1:1");
  EXPECT_EQ(got.code(), "INVALID_TRANSITION");
  EXPECT_STREQ(got.what(), sent.what());
  EXPECT_EQ(got.details()["current_state"], "terminated");
  EXPECT_EQ(got.details()["allowed_transitions"], Json::array());
  EXPECT_EQ(got.details()["n"], 7200);
}

TEST(Errors, TransportFailuresNameTheAddress) {
  const Error e = from_grpc_status(grpc::Status(grpc::StatusCode::UNAVAILABLE, "connection refused"), "10.0.0.1:50052");
  EXPECT_EQ(e.code(), "BACKEND_UNAVAILABLE");
  EXPECT_NE(std::string(e.what()).find("10.0.0.1:50052"), std::string::npos);
  EXPECT_EQ(e.kind().exit_code, 1);
  // gRPC's own failures say which status and from where, for the log.
  const Error bare = from_grpc_status(grpc::Status(grpc::StatusCode::UNKNOWN, ""), "10.0.0.1:50053");
  EXPECT_EQ(bare.code(), "INTERNAL_ERROR");
  EXPECT_STREQ(bare.what(), "gRPC status 2 from 10.0.0.1:50053");
  const Error said = from_grpc_status(grpc::Status(grpc::StatusCode::DATA_LOSS, "stream reset"), "10.0.0.1:50053");
  EXPECT_STREQ(said.what(), "gRPC status 15 from 10.0.0.1:50053: stream reset");
}

TEST(Clock, FormatsIso8601WithMilliseconds) {
  const TimePoint t = from_micros(1770460125123456);  // 2026-02-07T10:28:45.123456Z
  EXPECT_EQ(iso8601(t), "2026-02-07T10:28:45.123Z");
  EXPECT_EQ(parse_iso8601("2026-02-07T10:28:45.123Z"), from_micros(1770460125123000));
  EXPECT_EQ(parse_iso8601("2026-02-07T10:28:45Z"), from_micros(1770460125000000));
  EXPECT_FALSE(parse_iso8601("2026-02-07 10:28:45"));
  ManualClock clock(t);
  clock.advance(std::chrono::seconds(90));
  EXPECT_EQ(iso8601(clock.now()), "2026-02-07T10:30:15.123Z");
}

TEST(IdentityCheck, ReportsEveryMissingFieldFirstAndAlone) {
  try {
    check_identity({{"user_id", ""}, {"exam_session_id", "some-session"}});
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), "INVALID_IDENTITY");
    EXPECT_STREQ(e.what(), "Missing required identity component: user_id");
    EXPECT_EQ(e.details(), (Json{{"missing_fields", {"user_id"}}}));
  }
  try {
    check_identity({{"user_id", ""}, {"exam_session_id", ""}, {"environment_id", "", false}});
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "Missing required identity components: user_id, exam_session_id");
    EXPECT_EQ(e.details(), (Json{{"missing_fields", {"user_id", "exam_session_id"}}}));
  }
}

TEST(IdentityCheck, ThenEveryMalformedField) {
  try {
    check_identity({{"user_id", "x"}, {"exam_session_id", "6ba7b810-9dad-11d1-80b4-00c04fd430c8"},
                    {"environment_id", std::string(10000, 'a'), false}});
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), "INVALID_IDENTITY");
    EXPECT_EQ(e.details(), (Json{{"invalid_fields", {"user_id", "environment_id"}}}));
  }
  const auto ok = check_identity({{"user_id", "550E8400-E29B-41D4-A716-446655440000"},
                                  {"environment_id", "", false}});
  EXPECT_EQ(ok, (std::vector<std::string>{"550e8400-e29b-41d4-a716-446655440000", ""}));
}

class ConfigTest : public ::testing::Test {
 protected:
  void TearDown() override {
    unsetenv("EXAMISO_IDENTITY_LISTEN");
    unsetenv("DATABASE_URL");
  }
  std::string write(const std::string& text) {
    const std::string path = dir_.path() + "/examiso.yaml";
    std::ofstream(path) << text;
    return path;
  }
  testing::TempDir dir_;
};

TEST_F(ConfigTest, DefaultsThenFileThenEnvironment) {
  EXPECT_EQ(Config::load("").str("identity.listen"), "127.0.0.1:50051");
  const std::string path = write("identity:\n  listen: 0.0.0.0:7000\n  algorithms: [HS256, RS256]\n");
  EXPECT_EQ(Config::load(path).str("identity.listen"), "0.0.0.0:7000");
  EXPECT_EQ(Config::load(path).list("identity.algorithms"), (std::vector<std::string>{"HS256", "RS256"}));
  setenv("EXAMISO_IDENTITY_LISTEN", "127.0.0.1:7001", 1);
  setenv("DATABASE_URL", "postgresql://elsewhere/db", 1);
  const Config config = Config::load(path);
  EXPECT_EQ(config.str("identity.listen"), "127.0.0.1:7001");
  EXPECT_EQ(config.str("database.url"), "postgresql://elsewhere/db");
  EXPECT_EQ(Config::env_name("identity.hs256_secret"), "EXAMISO_IDENTITY_HS256_SECRET");
}

TEST_F(ConfigTest, UnknownKeysAndBadValuesNameFileLineAndKey) {
  const std::string path = write("log:\n  level: info\nidentity:\n  lisen: x\n");
  try {
    Config::load(path);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), path + ":4: unknown key 'identity.lisen'");
  }
  const Config config = Config::load(write("database:\n  pool_size: many\n"));
  try {
    config.integer("database.pool_size");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("database.pool_size must be an integer, not 'many'"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find(":2"), std::string::npos);
  }
  EXPECT_THROW(Config::load(write("identity: [1, 2\n")), Error);
  EXPECT_THROW(Config::load(dir_.path() + "/missing.yaml"), Error);
}

// config/examiso.yaml is the one documented config: every key, with its
// default and what it means, exactly as the registry says.
TEST(ExampleConfig, DocumentsEveryKeyWithItsDefault) {
  const std::string path = std::string(EXAMISO_SOURCE_DIR) + "/config/examiso.yaml";
  std::ifstream in(path);
  const std::string text((std::istreambuf_iterator<char>(in)), {});
  EXPECT_EQ(text, documented_config()) << "regenerate: build/bin/examiso-identity --print-config > config/examiso.yaml";
  // And it means what it says: loading it gives every default.
  const Config loaded = Config::load(path);
  for (const ConfigKey& k : config_keys()) {
    if (k.key == "database.url" && std::getenv("DATABASE_URL")) continue;
    EXPECT_EQ(loaded.str(k.key), k.default_value) << k.key;
  }
}

}  // namespace
}  // namespace examiso
