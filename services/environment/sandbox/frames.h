#pragma once
// The keeper's socket protocol: frames of [type: 1 byte][length: 4 bytes,
// big-endian][payload]. Keeper to client: output, notice, claimed, taken (the
// terminal was opened by a newer client, the last frame this one gets). Client to
// keeper: input, resize (cols and rows as two big-endian uint16), claim (the
// hostname a pooled sandbox takes when a session claims it; the environment
// service's only, never forwarded from a terminal client).
//
// The keeper's second socket is for staff (--observe-socket): a connection's
// first frame says what it is. `view`: a read-only observer, sent the replay
// and then the live output, whatever it sends ignored; the candidate's client
// gets `watchers` (the number of observers, in decimal) whenever it changes.
// `message`: a proctor's message for the candidate, answered with a `message`
// frame saying "delivered" (to the client attached now) or "queued" (kept for
// the next one), and closed. The candidate's client gets the text in a
// `message` frame.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace examiso::sandbox {

enum class FrameType : char {
  output = 'o',
  notice = 'n',
  input = 'i',
  resize = 'r',
  claim = 'c',
  claimed = 'C',
  taken = 'x',
  view = 'v',
  message = 'm',
  watchers = 'w',
};

struct Frame {
  FrameType type;
  std::string payload;
};

constexpr size_t kMaxFramePayload = 1 << 20;

std::string encode_frame(FrameType type, std::string_view payload);
std::string encode_resize(uint16_t cols, uint16_t rows);
bool decode_resize(std::string_view payload, uint16_t& cols, uint16_t& rows);

// Accumulates bytes and yields complete frames.
class FrameReader final {
 public:
  void feed(std::string_view bytes) { buffer_.append(bytes); }
  // The next complete frame; nullopt when more bytes are needed. Sets
  // `corrupt` for an oversized or unknown frame.
  std::optional<Frame> next();
  bool corrupt() const { return corrupt_; }

 private:
  std::string buffer_;
  size_t offset_ = 0;
  bool corrupt_ = false;
};

// Blocking helpers over a socket; false on error or end of stream.
bool write_all(int fd, std::string_view bytes);

}  // namespace examiso::sandbox
