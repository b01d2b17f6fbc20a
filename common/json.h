#pragma once
// JSON as users see it: insertion-ordered objects, printed the way the
// contract's examples are (two-space indent, arrays of scalars on one line).
#include <nlohmann/json.hpp>
#include <string>

namespace examiso {

using Json = nlohmann::ordered_json;

std::string pretty_json(const Json& value);

// Compact, with invalid UTF-8 replaced rather than thrown on.
std::string compact_json(const Json& value);

// Parses `text`, or throws examiso::Error INVALID_JSON naming `what`.
Json parse_json(std::string_view text, std::string_view what);

}  // namespace examiso

namespace examiso {

bool is_valid_utf8(std::string_view text);

// Appends `text` (valid UTF-8) as a quoted JSON string: the fast path for
// large strings (terminal output) that nlohmann's serializer walks slowly.
void append_json_string(std::string& out, std::string_view text);

}  // namespace examiso
