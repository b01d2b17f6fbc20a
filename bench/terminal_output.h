#pragma once
// The shell commands the terminal benchmarks time, about `bytes` of output each
// (bench/terminal/load.js types the same ones): 64-byte lines, or one long line.
// Lines are the slower kind: a pty turns each "\n" into "\r\n" with a write of its own.
#include <cstddef>
#include <string>

namespace examiso::bench {

inline std::string output_command(bool long_line, size_t bytes) {
  if (long_line) return "head -c " + std::to_string(bytes / 4 * 3) + " /dev/zero | base64 -w 0";
  return "yes 0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ | head -c " + std::to_string(bytes);
}

}  // namespace examiso::bench
