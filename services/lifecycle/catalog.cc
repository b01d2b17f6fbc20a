#include "services/lifecycle/catalog.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <regex>
#include <set>

#include "common/files.h"
#include "common/errors.h"
#include "common/uuid.h"

namespace examiso::lifecycle {
namespace {

class Reader {
 public:
  explicit Reader(std::string path) : path_(std::move(path)) {}

  [[noreturn]] void fail(const YAML::Node& at, const std::string& field, const std::string& problem) const {
    throw Error("INVALID_ARGUMENT", "exam catalog " + path_ + ":" + std::to_string(at.Mark().line + 1) + ": " +
                                        field + ": " + problem);
  }

  // Every key of `map` must be one of `known`.
  void only(const YAML::Node& map, const std::string& where, std::initializer_list<std::string_view> known) const {
    if (!map.IsMap()) fail(map, where, "expected a mapping");
    for (const auto& entry : map) {
      const std::string key = entry.first.Scalar();
      if (std::find(known.begin(), known.end(), key) == known.end())
        fail(entry.first, where.empty() ? key : where + "." + key, "unknown field");
    }
  }

  std::string text(const YAML::Node& map, const std::string& where, const char* key, bool required) const {
    const YAML::Node v = map[key];
    if (!v) {
      if (required) fail(map, where + "." + key, "is required");
      return "";
    }
    if (!v.IsScalar()) fail(v, where + "." + key, "expected text");
    return v.Scalar();
  }

  int64_t number(const YAML::Node& map, const std::string& where, const char* key, int64_t fallback, int64_t min,
                 int64_t max, bool required = false) const {
    const YAML::Node v = map[key];
    const std::string field = where + "." + key;
    if (!v) {
      if (required) fail(map, field, "is required");
      return fallback;
    }
    int64_t n = 0;
    if (!v.IsScalar() || !YAML::convert<int64_t>::decode(v, n)) fail(v, field, "expected a whole number");
    if (n < min || n > max)
      fail(v, field, "must be between " + std::to_string(min) + " and " + std::to_string(max));
    return n;
  }

  EnvironmentSettings environment(const YAML::Node& node, const std::string& where) const {
    EnvironmentSettings e;
    if (!node) return e;
    only(node, where,
         {"image", "memory_mb", "pids", "cpu_millis", "home_mb", "tmp_mb", "network", "setup_script", "runtime_class"});
    e.image = text(node, where, "image", false);
    e.memory_limit_bytes = number(node, where, "memory_mb", 512, 16, 65536) << 20;
    e.pids_limit = number(node, where, "pids", 256, 8, 65536);
    e.cpu_millis = number(node, where, "cpu_millis", 1000, 10, 64000);
    e.home_size_bytes = number(node, where, "home_mb", 256, 1, 65536) << 20;
    e.tmp_size_bytes = number(node, where, "tmp_mb", 64, 1, 65536) << 20;
    e.setup_script = text(node, where, "setup_script", false);
    e.runtime_class = text(node, where, "runtime_class", false);
    if (const YAML::Node net = node["network"]) {
      only(net, where + ".network", {"egress_allow"});
      if (const YAML::Node allow = net["egress_allow"]) {
        if (!allow.IsSequence()) fail(allow, where + ".network.egress_allow", "expected a list");
        for (const auto& item : allow) {
          // An IPv4 CIDR, optionally with a TCP port: 10.0.0.0/8 or 10.0.0.0/8:443.
          static const std::regex kAllow(R"re(((25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(25[0-5]|2[0-4]\d|1?\d?\d)/(3[0-2]|[12]?\d)(:([1-9]\d{0,4}))?)re");
          std::smatch m;
          if (!item.IsScalar() || !std::regex_match(item.Scalar(), m, kAllow) ||
              (m[6].matched && std::stoi(m[6].str()) > 65535))
            fail(item, where + ".network.egress_allow", "expected CIDR or CIDR:port entries (e.g. 10.0.0.0/8:443)");
          e.egress_allow.push_back(item.Scalar());
        }
      }
    }
    return e;
  }

 private:
  std::string path_;
};

}  // namespace

ExamCatalog ExamCatalog::load(const std::string& path) {
  YAML::Node root;
  const auto text = read_file(path);
  if (!text) throw Error("INVALID_ARGUMENT", "exam catalog " + path + ": cannot be read");
  try {
    root = YAML::Load(*text);
  } catch (const YAML::Exception& e) {
    throw Error("INVALID_ARGUMENT", "exam catalog " + path + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
  const Reader r(path);
  r.only(root, "", {"default_exam", "exams"});
  const YAML::Node list = root["exams"];
  if (!list || !list.IsSequence() || list.size() == 0) r.fail(root, "exams", "must list at least one exam");

  ExamCatalog catalog;
  std::set<std::string> ids;
  for (size_t i = 0; i < list.size(); ++i) {
    const YAML::Node node = list[i];
    const std::string where = "exams[" + std::to_string(i) + "]";
    r.only(node, where, {"id", "title", "duration_seconds", "provisioning_timeout_seconds", "environment"});
    Exam exam;
    const auto id = canonical_uuid(r.text(node, where, "id", true));
    if (!id) r.fail(node["id"], where + ".id", "must be a UUID");
    if (!ids.insert(*id).second) r.fail(node["id"], where + ".id", "duplicate exam id " + *id);
    exam.exam_id = *id;
    exam.title = r.text(node, where, "title", true);
    if (exam.title.empty()) r.fail(node["title"], where + ".title", "must not be empty");
    exam.duration_seconds = r.number(node, where, "duration_seconds", 0, 1, 7 * 86400, true);
    exam.provisioning_timeout_seconds = r.number(node, where, "provisioning_timeout_seconds", 60, 1, 3600);
    exam.environment = r.environment(node["environment"], where + ".environment");
    catalog.exams_.push_back(std::move(exam));
  }
  if (const YAML::Node d = root["default_exam"]) {
    const Exam* exam = d.IsScalar() ? catalog.find(d.Scalar()) : nullptr;
    if (!exam) r.fail(d, "default_exam", "is not one of the exams");
    catalog.default_index_ = static_cast<size_t>(exam - catalog.exams_.data());
  }
  return catalog;
}

const Exam* ExamCatalog::find(std::string_view exam_id) const {
  const auto id = canonical_uuid(exam_id);
  if (!id) return nullptr;
  for (const auto& e : exams_)
    if (e.exam_id == *id) return &e;
  return nullptr;
}

}  // namespace examiso::lifecycle
