// The exam catalog, whatever it holds: loaded and checked, or refused naming
// file, line and field.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <fstream>
#include <string>

#include "common/errors.h"
#include "services/lifecycle/catalog.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace examiso;
  static const std::string path = "/dev/shm/examiso-fuzz-catalog-" + std::to_string(getpid()) + ".yaml";
  std::ofstream(path, std::ios::binary | std::ios::trunc).write(reinterpret_cast<const char*>(data), size);
  try {
    const auto catalog = lifecycle::ExamCatalog::load(path);
    for (const auto& exam : catalog.exams())
      if (!catalog.find(exam.exam_id)) __builtin_trap();
  } catch (const Error& e) {
    if (e.code() != "INVALID_ARGUMENT") __builtin_trap();
  }
  return 0;
}
