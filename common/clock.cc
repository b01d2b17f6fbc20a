#include "common/clock.h"

#include <cstdio>
#include <ctime>

namespace examiso {

std::string iso8601(TimePoint t) {
  const int64_t ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  const int64_t secs = ms >= 0 ? ms / 1000 : (ms - 999) / 1000;
  const std::time_t tt = static_cast<std::time_t>(secs);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms - secs * 1000));
  return buf;
}

std::optional<TimePoint> parse_iso8601(std::string_view text) {
  std::tm tm{};
  int millis = 0;
  const std::string s(text);
  int consumed = 0;
  if (std::sscanf(s.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
                  &tm.tm_min, &tm.tm_sec, &consumed) != 6)
    return std::nullopt;
  std::string_view rest = std::string_view(s).substr(consumed);
  if (rest.size() == 5 && rest[0] == '.') {
    if (std::sscanf(s.c_str() + consumed, ".%3d", &millis) != 1) return std::nullopt;
    rest.remove_prefix(4);
  }
  if (rest != "Z") return std::nullopt;
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  const std::time_t secs = timegm(&tm);
  return TimePoint(std::chrono::seconds(secs)) + std::chrono::milliseconds(millis);
}

}  // namespace examiso
