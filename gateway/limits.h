#pragma once
// Per-key token buckets (a user, an address): `rate` requests per second on
// average, up to `burst` at once.
#include <chrono>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

namespace examiso::gateway {

class RateLimiter final {
 public:
  RateLimiter(double rate, double burst) : rate_(rate), burst_(burst) {}
  bool allow(const std::string& key);

 private:
  struct Bucket {
    double tokens;
    std::chrono::steady_clock::time_point at;
  };
  double rate_, burst_;
  std::mutex mutex_;
  std::unordered_map<std::string, Bucket> buckets_;
  std::chrono::steady_clock::time_point last_purge_ = std::chrono::steady_clock::now();
};

// Verified tokens, kept briefly so that each request need not ask the
// identity service again. Only successes are kept, never past their expiry.
class TokenCache final {
 public:
  explicit TokenCache(std::chrono::seconds keep) : keep_(keep) {}
  std::optional<std::string> user(const std::string& token);
  void remember(const std::string& token, const std::string& user_id, std::chrono::system_clock::time_point expires);

 private:
  struct Entry {
    std::string user_id;
    std::chrono::steady_clock::time_point until;
  };
  std::chrono::seconds keep_;
  std::mutex mutex_;
  std::unordered_map<std::string, Entry> entries_;
};

}  // namespace examiso::gateway
