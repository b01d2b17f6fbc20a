#include "services/environment/driver.h"

namespace examiso::environment {

std::string Terminal::absorb(sandbox::FrameReader& reader, bool& ended) {
  using sandbox::FrameType;
  std::string out;
  while (auto f = reader.next()) {
    if (f->type == FrameType::taken) {
      taken_ = ended = true;
      break;
    }
    if (f->type == FrameType::message) {
      news_.messages.push_back(std::move(f->payload));
    } else if (f->type == FrameType::watchers) {
      news_.watchers = static_cast<uint32_t>(std::strtoul(f->payload.c_str(), nullptr, 10));
    } else if (out.empty()) {
      out = std::move(f->payload);
    } else {
      out += f->payload;
    }
  }
  if (reader.corrupt()) ended = true;
  return out;
}

}  // namespace examiso::environment
