#pragma once
// The exam catalog: config/exams.yaml, loaded and checked at start-up. A
// mistake stops the service with a message naming the file, line and field.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace examiso::lifecycle {

struct EnvironmentSettings {
  std::string image;  // kubernetes driver
  int64_t memory_limit_bytes = 512ll << 20;
  int64_t pids_limit = 256;
  int64_t cpu_millis = 1000;
  int64_t home_size_bytes = 256ll << 20;
  int64_t tmp_size_bytes = 64ll << 20;
  std::vector<std::string> egress_allow;  // empty: no network beyond loopback
  std::string setup_script;
  std::string runtime_class;
};

struct Exam {
  std::string exam_id;
  std::string title;
  int64_t duration_seconds = 0;
  int64_t provisioning_timeout_seconds = 60;
  EnvironmentSettings environment;
};

class ExamCatalog final {
 public:
  // Throws Error INVALID_ARGUMENT "<file>:<line>: <field>: <problem>".
  static ExamCatalog load(const std::string& path);

  const Exam* find(std::string_view exam_id) const;  // canonical or any-case UUID
  const Exam& default_exam() const { return exams_[default_index_]; }
  const std::vector<Exam>& exams() const { return exams_; }

 private:
  std::vector<Exam> exams_;
  size_t default_index_ = 0;
};

}  // namespace examiso::lifecycle
