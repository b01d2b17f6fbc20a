#pragma once
// Query strings: percent-encoding both ways.
#include <map>
#include <string>
#include <string_view>

namespace examiso {

// Every byte but A-Z a-z 0-9 - _ . ~ as %XX.
std::string url_encode(std::string_view text);
// %XX decoded and '+' as a space (form and query encoding); a malformed %
// stays as it is.
std::string percent_decode(std::string_view text);

// A request target split: the path exactly as sent, the query decoded (a key
// twice: the last one counts).
struct RequestTarget {
  std::string path;
  std::map<std::string, std::string> query;
};
RequestTarget split_target(std::string_view target);

}  // namespace examiso
