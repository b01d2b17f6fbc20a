#include "common/json.h"

#include <array>
#include <cstring>

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

void append_json_string(std::string& out, std::string_view text) {
  // How each byte is written: 0 as it is, 'u' as \u00XX, else a backslash and it.
  static constexpr auto kEscape = [] {
    std::array<char, 256> t{};
    for (int c = 0; c < 0x20; ++c) t[c] = 'u';
    t['"'] = '"', t['\\'] = '\\', t['\n'] = 'n', t['\r'] = 'r', t['\t'] = 't', t['\b'] = 'b', t['\f'] = 'f';
    return t;
  }();
  static constexpr char kHex[] = "0123456789abcdef";
  // One pass to size, one to write: no reallocation, no per-escape append.
  size_t extra = 0;
  for (const char ch : text) {
    const char e = kEscape[static_cast<unsigned char>(ch)];
    extra += e == 0 ? 0 : e == 'u' ? 5 : 1;
  }
  const size_t start = out.size();
  out.resize(start + text.size() + extra + 2);
  char* p = out.data() + start;
  *p++ = '"';
  for (const char ch : text) {
    const unsigned char c = static_cast<unsigned char>(ch);
    const char e = kEscape[c];
    if (e == 0) {
      *p++ = ch;
    } else if (e == 'u') {
      *p++ = '\\', *p++ = 'u', *p++ = '0', *p++ = '0', *p++ = kHex[c >> 4], *p++ = kHex[c & 0xf];
    } else {
      *p++ = '\\', *p++ = e;
    }
  }
  *p = '"';
}

bool is_valid_utf8(std::string_view text) {
  size_t i = 0;
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
  while (i < text.size()) {
    // ASCII, eight bytes at a time.
    if (i + 8 <= text.size()) {
      uint64_t word;
      std::memcpy(&word, text.data() + i, 8);
      if ((word & 0x8080808080808080ULL) == 0) {
        i += 8;
        continue;
      }
    }
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
