#pragma once
// Whole-file reads and writes through descriptors opened close-on-exec, so
// that no file the platform opens is ever inherited by a process it starts (a
// sandbox made while another thread writes a cgroup's limits, say).
// Dependency-free: the statically linked keeper uses it too.
#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>

namespace examiso {

// The file's bytes; nullopt when it cannot be opened or read.
std::optional<std::string> read_file(const std::string& path);

// Writes `data` in one go (truncating, creating with `mode`); false on any
// failure (errno says which).
bool write_file(const std::string& path, std::string_view data, mode_t mode = 0644);

// The leading integer of a file ("123\n"); nullopt when there is none.
std::optional<long long> read_number(const std::string& path);

}  // namespace examiso
