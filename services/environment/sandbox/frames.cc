#include "services/environment/sandbox/frames.h"

#include <errno.h>
#include <poll.h>
#include <unistd.h>

namespace examiso::sandbox {

std::string encode_frame(FrameType type, std::string_view payload) {
  std::string out;
  out.reserve(5 + payload.size());
  out += static_cast<char>(type);
  const uint32_t n = static_cast<uint32_t>(payload.size());
  out += static_cast<char>(n >> 24);
  out += static_cast<char>(n >> 16);
  out += static_cast<char>(n >> 8);
  out += static_cast<char>(n);
  out.append(payload);
  return out;
}

std::string encode_resize(uint16_t cols, uint16_t rows) {
  const char p[4] = {static_cast<char>(cols >> 8), static_cast<char>(cols), static_cast<char>(rows >> 8),
                     static_cast<char>(rows)};
  return encode_frame(FrameType::resize, std::string_view(p, 4));
}

bool decode_resize(std::string_view payload, uint16_t& cols, uint16_t& rows) {
  if (payload.size() != 4) return false;
  const auto b = [&](size_t i) { return static_cast<uint16_t>(static_cast<unsigned char>(payload[i])); };
  cols = static_cast<uint16_t>(b(0) << 8 | b(1));
  rows = static_cast<uint16_t>(b(2) << 8 | b(3));
  return true;
}

std::optional<Frame> FrameReader::next() {
  if (corrupt_ || buffer_.size() - offset_ < 5) return std::nullopt;
  const auto b = [&](size_t i) { return static_cast<uint32_t>(static_cast<unsigned char>(buffer_[offset_ + i])); };
  const char type = buffer_[offset_];
  const uint32_t n = b(1) << 24 | b(2) << 16 | b(3) << 8 | b(4);
  if (n > kMaxFramePayload || std::string_view("onircCxvmw").find(type) == std::string_view::npos) {
    corrupt_ = true;
    return std::nullopt;
  }
  if (buffer_.size() - offset_ < 5 + n) return std::nullopt;
  Frame f{static_cast<FrameType>(type), buffer_.substr(offset_ + 5, n)};
  offset_ += 5 + n;
  if (offset_ > 65536 || offset_ == buffer_.size()) {
    buffer_.erase(0, offset_);
    offset_ = 0;
  }
  return f;
}

bool write_all(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n > 0) {
      bytes.remove_prefix(static_cast<size_t>(n));
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && errno == EAGAIN) {
      pollfd p{fd, POLLOUT, 0};
      if (poll(&p, 1, 5000) <= 0) return false;  // a client that stops reading is dropped
    } else {
      return false;
    }
  }
  return true;
}

}  // namespace examiso::sandbox
