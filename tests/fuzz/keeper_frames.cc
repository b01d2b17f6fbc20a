// The keeper's frame decoder, fed what a client (or a keeper) may send, in
// pieces as sockets deliver them.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "services/environment/sandbox/frames.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace examiso::sandbox;
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  FrameReader reader;
  // The first byte says where the stream is cut in two.
  const size_t cut = size ? data[0] % (size + 1) : 0;
  for (std::string_view piece : {bytes.substr(0, cut), bytes.substr(cut)}) {
    reader.feed(piece);
    while (auto frame = reader.next()) {
      uint16_t cols = 0, rows = 0;
      if (frame->type == FrameType::resize) decode_resize(frame->payload, cols, rows);
      if (encode_frame(frame->type, frame->payload).size() != frame->payload.size() + 5) __builtin_trap();
    }
    if (reader.corrupt()) break;
  }
  return 0;
}
