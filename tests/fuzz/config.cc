// The configuration file, whatever an operator writes in it: accepted (and
// every key then readable as its kind, or refused with a clear error) or
// refused naming file, line and key.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <fstream>
#include <string>

#include "common/config.h"
#include "common/errors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace examiso;
  static const std::string path = "/dev/shm/examiso-fuzz-config-" + std::to_string(getpid()) + ".yaml";
  std::ofstream(path, std::ios::binary | std::ios::trunc).write(reinterpret_cast<const char*>(data), size);
  try {
    const Config config = Config::load(path);
    for (const auto& k : config_keys()) {
      config.str(k.key);
      config.list(k.key);
      try {
        config.integer(k.key);
      } catch (const Error&) {
      }
      try {
        config.number(k.key);
      } catch (const Error&) {
      }
      try {
        config.boolean(k.key);
      } catch (const Error&) {
      }
    }
  } catch (const Error& e) {
    if (e.code() != "INVALID_ARGUMENT") __builtin_trap();
  }
  return 0;
}
