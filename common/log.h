#pragma once
// Structured logs: one JSON object per line on stderr, e.g.
// {"ts":"...","level":"info","service":"lifecycle","event":"transition","session_id":"..."}
#include <string_view>

#include "common/json.h"

namespace examiso::log {

enum class Level { debug, info, warn, error };

void set_service(std::string_view service);
void set_level(Level level);
Level parse_level(std::string_view name);  // throws Error INVALID_ARGUMENT

void write(Level level, std::string_view event, const Json& fields);

inline void debug(std::string_view event, const Json& fields = Json::object()) { write(Level::debug, event, fields); }
inline void info(std::string_view event, const Json& fields = Json::object()) { write(Level::info, event, fields); }
inline void warn(std::string_view event, const Json& fields = Json::object()) { write(Level::warn, event, fields); }
inline void error(std::string_view event, const Json& fields = Json::object()) { write(Level::error, event, fields); }

}  // namespace examiso::log
