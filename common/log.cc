#include "common/log.h"

#include <atomic>
#include <cstdio>
#include <mutex>
#include <string>

#include "common/clock.h"
#include "common/errors.h"

namespace examiso::log {
namespace {

constexpr std::string_view kNames[] = {"debug", "info", "warn", "error"};

std::mutex g_mutex;
std::string g_service = "examiso";
std::atomic<Level> g_level{Level::info};

}  // namespace

void set_service(std::string_view service) {
  std::lock_guard lock(g_mutex);
  g_service = service;
}

void set_level(Level level) { g_level = level; }

Level parse_level(std::string_view name) {
  for (size_t i = 0; i < std::size(kNames); ++i)
    if (kNames[i] == name) return static_cast<Level>(i);
  throw Error("INVALID_ARGUMENT", "log.level must be one of debug, info, warn, error, not '" + std::string(name) + "'");
}

void write(Level level, std::string_view event, const Json& fields) {
  if (level < g_level.load()) return;
  Json line{{"ts", iso8601(std::chrono::system_clock::now())}, {"level", kNames[static_cast<int>(level)]}};
  std::lock_guard lock(g_mutex);
  line["service"] = g_service;
  line["event"] = event;
  for (const auto& [key, value] : fields.items()) line[key] = value;
  const std::string text = compact_json(line) + "\n";
  std::fwrite(text.data(), 1, text.size(), stderr);
  std::fflush(stderr);
}

}  // namespace examiso::log
