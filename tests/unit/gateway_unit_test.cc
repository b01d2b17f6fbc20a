// The gateway's pieces that need no server: limits, trusted proxies, the
// terminal's messages, request targets. Its threaded parts (the limiters, the
// token cache) are hammered from several threads: TSan runs this binary.
#include <gtest/gtest.h>

#include <thread>

#include "common/errors.h"
#include "common/url.h"
#include "gateway/limits.h"
#include "gateway/terminal.h"

namespace examiso::gateway {
namespace {

TEST(RateLimiter, AllowsTheBurstThenRefillsAndExhaustedTakesNothing) {
  RateLimiter limiter(1000, 3);
  EXPECT_FALSE(limiter.exhausted("a"));
  EXPECT_FALSE(limiter.exhausted("a"));  // looking takes nothing
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(limiter.allow("a")) << i;
  EXPECT_FALSE(limiter.allow("a"));
  EXPECT_TRUE(limiter.exhausted("a"));
  EXPECT_TRUE(limiter.allow("b"));  // each key its own bucket
  std::this_thread::sleep_for(std::chrono::milliseconds(20));  // 1000/s: 20 tokens' worth, capped at 3
  EXPECT_TRUE(limiter.allow("a"));
}

TEST(TrustedProxies, BelieveOnlyTheNearestHopsOfTrustedProxies) {
  const TrustedProxies none({});
  EXPECT_EQ(none.client("10.1.2.3", "198.51.100.7"), "10.1.2.3");
  const TrustedProxies lb({"10.0.0.0/8", "2001:db8::/32", "192.0.2.1"});
  EXPECT_TRUE(lb.contains("10.255.0.1"));
  EXPECT_FALSE(lb.contains("11.0.0.1"));
  EXPECT_TRUE(lb.contains("2001:db8:1::5"));
  EXPECT_TRUE(lb.contains("::ffff:10.0.0.9"));  // an IPv4-mapped peer
  EXPECT_TRUE(lb.contains("192.0.2.1"));
  EXPECT_FALSE(lb.contains("192.0.2.2"));
  EXPECT_FALSE(lb.contains("not an address"));
  EXPECT_EQ(lb.client("10.0.0.1", "198.51.100.7"), "198.51.100.7");
  EXPECT_EQ(lb.client("10.0.0.1", "203.0.113.9, 198.51.100.7, 10.0.0.2"), "198.51.100.7");
  EXPECT_EQ(lb.client("10.0.0.1", " 198.51.100.7 ,10.3.3.3"), "198.51.100.7");
  EXPECT_EQ(lb.client("10.0.0.1", ""), "10.0.0.1");
  EXPECT_EQ(lb.client("10.0.0.1", "garbage, 10.0.0.2"), "10.0.0.2");  // not an address: nothing left of it
  EXPECT_EQ(lb.client("198.51.100.1", "10.0.0.2"), "198.51.100.1");  // not from a proxy: ignored
  for (const char* bad : {"10.0.0.0/33", "10.0.0.0/", "10.0.0.0/x", "example.com", "2001:db8::/129", ""})
    EXPECT_THROW(TrustedProxies({bad}), Error) << bad;
}

TEST(TokenCache, KeepsOnlySuccessesAndNeverPastTheirExpiry) {
  TokenCache cache(std::chrono::seconds(30));
  EXPECT_FALSE(cache.caller("t"));
  cache.remember("t", {"u", {"proctor"}}, std::chrono::system_clock::now() + std::chrono::hours(1));
  ASSERT_TRUE(cache.caller("t"));
  EXPECT_EQ(cache.caller("t")->user_id, "u");
  EXPECT_TRUE(cache.caller("t")->staff()) << "the roles are kept with the user";
  cache.forget("t");
  EXPECT_FALSE(cache.caller("t"));
  cache.remember("old", {"u", {"candidate"}}, std::chrono::system_clock::now() - std::chrono::seconds(1));
  EXPECT_FALSE(cache.caller("old"));
}

TEST(Caller, IsStaffOnlyAsProctorOrAdmin) {
  EXPECT_FALSE((Caller{"u", {"candidate"}}.staff()));
  EXPECT_FALSE((Caller{"u", {}}.staff()));
  EXPECT_TRUE((Caller{"u", {"candidate", "proctor"}}.staff()));
  EXPECT_TRUE((Caller{"u", {"admin"}}.staff()));
}

// Several gateway threads at once (TSan watches this one).
TEST(Limits, AreSafeFromManyThreads) {
  RateLimiter limiter(1e6, 1e6);
  TokenCache cache(std::chrono::seconds(30));
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 2000; ++i) {
        const std::string key = std::to_string((t + i) % 16);
        limiter.allow(key);
        limiter.exhausted(key);
        cache.remember(key, {"u" + key, {"candidate"}}, std::chrono::system_clock::now() + std::chrono::minutes(1));
        cache.caller(key);
        if (i % 100 == 0) cache.forget(key);
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_FALSE(limiter.exhausted("0"));
}

TEST(TerminalMessage, IsInputOrAResizeWithinBoundsOrNothing) {
  const auto input = terminal_message(R"({"type":"input","data":"ls\n"})");
  ASSERT_TRUE(input);
  EXPECT_EQ(input->input(), "ls\n");
  const auto resize = terminal_message(R"({"type":"resize","cols":100000,"rows":-3})");
  ASSERT_TRUE(resize);
  EXPECT_EQ(resize->resize().cols(), 1000u);
  EXPECT_EQ(resize->resize().rows(), 1u);
  // The first two: a crash the fuzzer found (a missing key read past the object).
  for (const char* nothing : {R"({"type":"input","dat[":"ls"})", R"({"type":"resize","cols":80})", "", "[]", "null",
                              R"({"type":"input","data":5})", R"({"type":"paste"})",
                              R"({"type":"resize","cols":"80","rows":24})", "{\"type\":\"input\""})
    EXPECT_FALSE(terminal_message(nothing)) << nothing;
}

TEST(RequestTarget, SplitsThePathAndDecodesTheQuery) {
  const RequestTarget t = split_target("/v1/sessions/x/terminal?ticket=a%20b&x&ticket=c+d&%zz=1");
  EXPECT_EQ(t.path, "/v1/sessions/x/terminal");
  EXPECT_EQ(t.query.at("ticket"), "c d");  // the last one counts
  EXPECT_EQ(t.query.at("x"), "");
  EXPECT_EQ(t.query.at("%zz"), "1");
  EXPECT_EQ(split_target("/healthz").path, "/healthz");
  EXPECT_TRUE(split_target("/a?").query.empty());
}

TEST(Utf8Text, CarriesACutSequenceAndReplacesWhatIsNotUtf8) {
  std::string carry;
  EXPECT_EQ(utf8_text(carry, "a\xc3"), "a");
  EXPECT_EQ(utf8_text(carry, "\xa9z"), "\xc3\xa9z");
  EXPECT_EQ(utf8_text(carry, "\xff" "a"), "\xef\xbf\xbd" "a");
}

}  // namespace
}  // namespace examiso::gateway
