#pragma once
// Query strings: percent-encoding both ways.
#include <string>
#include <string_view>

namespace examiso {

// Every byte but A-Z a-z 0-9 - _ . ~ as %XX.
std::string url_encode(std::string_view text);
// %XX decoded and '+' as a space (form and query encoding); a malformed %
// stays as it is.
std::string percent_decode(std::string_view text);

}  // namespace examiso
