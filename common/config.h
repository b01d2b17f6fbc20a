#pragma once
// Configuration: built-in defaults, then one YAML file (a section per
// component), then environment variables. Every key is declared once, with its
// default and meaning, in config_keys(); config/examiso.yaml documents them all.
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace examiso {

struct ConfigKey {
  std::string_view key;            // section.name
  std::string_view default_value;  // as written in YAML
  std::string_view doc;
};

std::span<const ConfigKey> config_keys();

// Every key with its default and meaning, as YAML: what config/examiso.yaml
// holds (`examiso-<service> --print-config` writes it).
std::string documented_config();

class Config final {
 public:
  // Defaults, then the file at `path` (none when empty), then EXAMISO_<SECTION>_<NAME>
  // variables (and DATABASE_URL for database.url). Unknown keys and unreadable
  // files throw Error INVALID_ARGUMENT naming the file, line and key.
  static Config load(const std::string& path);

  // The environment variable that overrides `key`.
  static std::string env_name(std::string_view key);

  const std::string& str(std::string_view key) const;
  int64_t integer(std::string_view key) const;
  double number(std::string_view key) const;
  bool boolean(std::string_view key) const;
  std::vector<std::string> list(std::string_view key) const;  // comma-separated

  void set(std::string_view key, std::string value, std::string origin = "override");

 private:
  [[noreturn]] void bad_value(std::string_view key, std::string_view expected) const;

  std::map<std::string, std::string, std::less<>> values_;
  std::map<std::string, std::string, std::less<>> origins_;
};

}  // namespace examiso
