#include "common/json.h"

#include <algorithm>

#include "common/errors.h"

namespace examiso {
namespace {

bool is_container(const Json& v) { return v.is_object() || v.is_array(); }

void print(const Json& v, int indent, std::string& out) {
  const std::string pad(indent + 2, ' ');
  if (v.is_object() && !v.empty()) {
    out += "{\n";
    bool first = true;
    for (const auto& [key, item] : v.items()) {
      if (!first) out += ",\n";
      first = false;
      out += pad + compact_json(key) + ": ";
      print(item, indent + 2, out);
    }
    out += "\n" + std::string(indent, ' ') + "}";
  } else if (v.is_array() && std::any_of(v.begin(), v.end(), is_container)) {
    out += "[\n";
    for (size_t i = 0; i < v.size(); ++i) {
      if (i) out += ",\n";
      out += pad;
      print(v[i], indent + 2, out);
    }
    out += "\n" + std::string(indent, ' ') + "]";
  } else if (v.is_array()) {
    out += "[";
    for (size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + compact_json(v[i]);
    out += "]";
  } else {
    out += compact_json(v);
  }
}

}  // namespace

std::string pretty_json(const Json& value) {
  std::string out;
  print(value, 0, out);
  return out;
}

std::string compact_json(const Json& value) {
  return value.dump(-1, ' ', false, Json::error_handler_t::replace);
}

Json parse_json(std::string_view text, std::string_view what) {
  try {
    return Json::parse(text);
  } catch (const Json::parse_error& e) {
    throw Error("INVALID_JSON", std::string(what) + " is not valid JSON",
                Json{{"position", e.byte}});
  }
}

}  // namespace examiso

namespace examiso {

bool is_valid_utf8(std::string_view text) {
  size_t i = 0;
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
  while (i < text.size()) {
    const unsigned char c = byte(i);
    size_t len;
    uint32_t cp;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xe0) == 0xc0) {
      len = 2, cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      len = 3, cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      len = 4, cp = c & 0x07;
    } else {
      return false;
    }
    if (i + len > text.size()) return false;
    for (size_t k = 1; k < len; ++k) {
      if ((byte(i + k) & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (byte(i + k) & 0x3f);
    }
    // Overlong forms, surrogates and code points past U+10FFFF are invalid.
    static constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    i += len;
  }
  return true;
}

}  // namespace examiso
