#pragma once
// Time is injected: services read it from a Clock so that expiry and TTL
// tests move a ManualClock instead of sleeping.
#include <atomic>
#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace examiso {

using TimePoint = std::chrono::system_clock::time_point;

class Clock {
 public:
  virtual ~Clock() = default;
  virtual TimePoint now() const = 0;
};

class SystemClock final : public Clock {
 public:
  TimePoint now() const override { return std::chrono::system_clock::now(); }
};

class ManualClock final : public Clock {
 public:
  explicit ManualClock(TimePoint start) : now_(start.time_since_epoch().count()) {}
  TimePoint now() const override { return TimePoint(TimePoint::duration(now_.load())); }
  void advance(std::chrono::microseconds by) { now_ += std::chrono::duration_cast<TimePoint::duration>(by).count(); }
  void set(TimePoint t) { now_ = t.time_since_epoch().count(); }

 private:
  std::atomic<TimePoint::rep> now_;
};

// 2026-02-07T10:28:45.000Z: ISO-8601 UTC with milliseconds, as the contract shows.
std::string iso8601(TimePoint t);

// Parses what iso8601() writes (and the same without fraction); nullopt otherwise.
std::optional<TimePoint> parse_iso8601(std::string_view text);

// Microseconds since the Unix epoch, the form timestamps take in SQL parameters.
inline int64_t to_micros(TimePoint t) {
  return std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
}
inline TimePoint from_micros(int64_t us) {
  return TimePoint(std::chrono::duration_cast<TimePoint::duration>(std::chrono::microseconds(us)));
}

}  // namespace examiso
