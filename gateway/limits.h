#pragma once
// Per-key token buckets (a user, an address): `rate` requests per second on
// average, up to `burst` at once.
#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace examiso::gateway {

class RateLimiter final {
 public:
  RateLimiter(double rate, double burst) : rate_(rate), burst_(burst) {}
  // Takes a request's token; false when there is none left.
  bool allow(const std::string& key);
  // Whether the next allow() would fail, without taking anything.
  bool exhausted(const std::string& key);

 private:
  struct Bucket {
    double tokens;
    std::chrono::steady_clock::time_point at;
  };
  Bucket& refill(const std::string& key);  // under mutex_

  double rate_, burst_;
  std::mutex mutex_;
  std::unordered_map<std::string, Bucket> buckets_;
  std::chrono::steady_clock::time_point last_purge_ = std::chrono::steady_clock::now();
};

// Open WebSockets per user, at most `max` at once: a slot is held for as long
// as its socket is open (the returned handle), and freed with it.
class SocketSlots final {
 public:
  explicit SocketSlots(int64_t max) : max_(max) {}
  // A slot for `user`, or nullptr when they hold `max` already.
  std::shared_ptr<void> take(const std::string& user);

 private:
  int64_t max_;
  std::mutex mutex_;
  std::unordered_map<std::string, int64_t> open_;
};

// The proxies (load balancers) whose X-Forwarded-For is believed: addresses
// or CIDR blocks, IPv4 or IPv6. A client's address is the peer's, unless the
// peer is one of these: then it is the nearest address of X-Forwarded-For,
// read from the right, that is not one of these (what a client writes there
// itself is further left, and never believed).
class TrustedProxies final {
 public:
  // Throws Error INVALID_ARGUMENT naming an entry that is not an address or block.
  explicit TrustedProxies(const std::vector<std::string>& entries);
  bool contains(const std::string& address) const;
  std::string client(const std::string& peer, const std::string& forwarded_for) const;

 private:
  struct Block {
    std::array<uint8_t, 16> bytes;  // IPv4 as IPv4-mapped IPv6
    int bits;
  };
  std::vector<Block> blocks_;
};

// Verified tokens, kept briefly so that each request need not ask the
// identity service again. Only successes are kept, never past their expiry.
struct Caller {
  std::string user_id;
  std::vector<std::string> roles;  // candidate, proctor, admin
  bool staff() const;              // proctor or admin
};

class TokenCache final {
 public:
  explicit TokenCache(std::chrono::seconds keep) : keep_(keep) {}
  std::optional<Caller> caller(const std::string& token);
  void remember(const std::string& token, Caller caller, std::chrono::system_clock::time_point expires);
  void forget(const std::string& token);

 private:
  struct Entry {
    Caller caller;
    std::chrono::steady_clock::time_point until;
  };
  std::chrono::seconds keep_;
  std::mutex mutex_;
  std::unordered_map<std::string, Entry> entries_;
};

}  // namespace examiso::gateway
