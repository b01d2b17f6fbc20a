#include "gateway/limits.h"

#include <algorithm>

namespace examiso::gateway {

bool RateLimiter::allow(const std::string& key) {
  const auto now = std::chrono::steady_clock::now();
  std::lock_guard lock(mutex_);
  if (now - last_purge_ > std::chrono::seconds(60)) {
    std::erase_if(buckets_, [&](const auto& kv) { return now - kv.second.at > std::chrono::seconds(60); });
    last_purge_ = now;
  }
  auto [it, fresh] = buckets_.try_emplace(key, Bucket{burst_, now});
  Bucket& b = it->second;
  b.tokens = std::min(burst_, b.tokens + std::chrono::duration<double>(now - b.at).count() * rate_);
  b.at = now;
  if (b.tokens < 1) return false;
  b.tokens -= 1;
  return true;
}

std::optional<std::string> TokenCache::user(const std::string& token) {
  std::lock_guard lock(mutex_);
  const auto it = entries_.find(token);
  if (it == entries_.end()) return std::nullopt;
  if (std::chrono::steady_clock::now() >= it->second.until) {
    entries_.erase(it);
    return std::nullopt;
  }
  return it->second.user_id;
}

void TokenCache::remember(const std::string& token, const std::string& user_id,
                          std::chrono::system_clock::time_point expires) {
  const auto left = std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      expires - std::chrono::system_clock::now());
  const auto keep = std::min<std::chrono::steady_clock::duration>(keep_, left);
  if (keep <= std::chrono::steady_clock::duration::zero()) return;
  std::lock_guard lock(mutex_);
  if (entries_.size() > 100000) entries_.clear();  // bounded, simply
  entries_[token] = {user_id, std::chrono::steady_clock::now() + keep};
}

}  // namespace examiso::gateway
