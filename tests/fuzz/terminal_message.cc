// What a candidate's browser (or anyone holding a terminal WebSocket) sends:
// every message is input, a resize within 1..1000, or refused.
#include <cstddef>
#include <cstdint>
#include <string>

#include "gateway/terminal.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto r = examiso::gateway::terminal_message(std::string(reinterpret_cast<const char*>(data), size));
  if (r && r->has_resize()) {
    const auto& s = r->resize();
    if (s.cols() < 1 || s.cols() > 1000 || s.rows() < 1 || s.rows() > 1000) __builtin_trap();
  }
  return 0;
}
