#include "gateway/limits.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>

#include "common/errors.h"

namespace examiso::gateway {

RateLimiter::Bucket& RateLimiter::refill(const std::string& key) {
  const auto now = std::chrono::steady_clock::now();
  if (now - last_purge_ > std::chrono::seconds(60)) {
    std::erase_if(buckets_, [&](const auto& kv) { return now - kv.second.at > std::chrono::seconds(60); });
    last_purge_ = now;
  }
  auto [it, fresh] = buckets_.try_emplace(key, Bucket{burst_, now});
  Bucket& b = it->second;
  b.tokens = std::min(burst_, b.tokens + std::chrono::duration<double>(now - b.at).count() * rate_);
  b.at = now;
  return b;
}

bool RateLimiter::allow(const std::string& key) {
  std::lock_guard lock(mutex_);
  Bucket& b = refill(key);
  if (b.tokens < 1) return false;
  b.tokens -= 1;
  return true;
}

bool RateLimiter::exhausted(const std::string& key) {
  std::lock_guard lock(mutex_);
  return refill(key).tokens < 1;
}

std::shared_ptr<void> SocketSlots::take(const std::string& user) {
  std::lock_guard lock(mutex_);
  int64_t& open = open_[user];
  if (open >= max_) return nullptr;
  ++open;
  return std::shared_ptr<void>(this, [this, user](void*) {
    std::lock_guard lock(mutex_);
    if (--open_[user] <= 0) open_.erase(user);
  });
}

void TokenCache::forget(const std::string& token) {
  std::lock_guard lock(mutex_);
  entries_.erase(token);
}

namespace {

std::optional<std::array<uint8_t, 16>> parse_address(const std::string& text) {
  std::array<uint8_t, 16> out{};
  in_addr v4{};
  if (inet_pton(AF_INET, text.c_str(), &v4) == 1) {
    out[10] = out[11] = 0xff;
    std::memcpy(out.data() + 12, &v4, 4);
    return out;
  }
  if (inet_pton(AF_INET6, text.c_str(), out.data()) == 1) return out;
  return std::nullopt;
}

std::string trimmed(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return std::string(s);
}

}  // namespace

TrustedProxies::TrustedProxies(const std::vector<std::string>& entries) {
  for (const auto& entry : entries) {
    const auto slash = entry.find('/');
    const auto address = parse_address(entry.substr(0, slash));
    const bool v4 = entry.find(':') == std::string::npos;
    int bits = 128;
    if (slash != std::string::npos) {
      const std::string prefix = entry.substr(slash + 1);
      const bool digits = !prefix.empty() && prefix.size() <= 3 &&
                          std::all_of(prefix.begin(), prefix.end(), [](char c) { return c >= '0' && c <= '9'; });
      bits = digits ? std::stoi(prefix) + (v4 ? 96 : 0) : -1;
    }
    if (!address || bits < (v4 ? 96 : 0) || bits > 128)
      throw Error("INVALID_ARGUMENT", "gateway.trusted_proxies: '" + entry + "' is not an address or a CIDR block");
    blocks_.push_back({*address, bits});
  }
}

bool TrustedProxies::contains(const std::string& address) const {
  const auto a = parse_address(address);
  if (!a) return false;
  return std::any_of(blocks_.begin(), blocks_.end(), [&](const Block& b) {
    for (int bit = 0; bit < b.bits; ++bit) {
      const uint8_t mask = static_cast<uint8_t>(0x80 >> (bit % 8));
      if (((*a)[bit / 8] & mask) != (b.bytes[bit / 8] & mask)) return false;
    }
    return true;
  });
}

std::string TrustedProxies::client(const std::string& peer, const std::string& forwarded_for) const {
  if (!contains(peer)) return peer;
  std::string client = peer;
  std::string_view rest = forwarded_for;
  while (!rest.empty()) {
    const auto comma = rest.rfind(',');
    const std::string hop = trimmed(comma == std::string_view::npos ? rest : rest.substr(comma + 1));
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(0, comma);
    if (!parse_address(hop)) break;  // not an address: nothing further left is believed
    client = hop;
    if (!contains(hop)) break;
  }
  return client;
}

bool Caller::staff() const {
  return std::find(roles.begin(), roles.end(), "proctor") != roles.end() ||
         std::find(roles.begin(), roles.end(), "admin") != roles.end();
}

std::optional<Caller> TokenCache::caller(const std::string& token) {
  std::lock_guard lock(mutex_);
  const auto it = entries_.find(token);
  if (it == entries_.end()) return std::nullopt;
  if (std::chrono::steady_clock::now() >= it->second.until) {
    entries_.erase(it);
    return std::nullopt;
  }
  return it->second.caller;
}

void TokenCache::remember(const std::string& token, Caller caller, std::chrono::system_clock::time_point expires) {
  const auto left = std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      expires - std::chrono::system_clock::now());
  const auto keep = std::min<std::chrono::steady_clock::duration>(keep_, left);
  if (keep <= std::chrono::steady_clock::duration::zero()) return;
  std::lock_guard lock(mutex_);
  if (entries_.size() > 100000) entries_.clear();  // bounded, simply
  entries_[token] = {std::move(caller), std::chrono::steady_clock::now() + keep};
}

}  // namespace examiso::gateway
