#include "common/identity.h"

#include "common/errors.h"
#include "common/uuid.h"

namespace examiso {
namespace {

std::string joined(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

}  // namespace

void check_identity_present(std::initializer_list<IdentityField> fields) {
  std::vector<std::string> missing;
  for (const auto& f : fields)
    if (f.value.empty() && f.required) missing.emplace_back(f.name);
  if (!missing.empty())
    throw Error("INVALID_IDENTITY",
                std::string("Missing required identity component") + (missing.size() > 1 ? "s: " : ": ") +
                    joined(missing),
                Json{{"missing_fields", missing}});
}

std::vector<std::string> check_identity(std::initializer_list<IdentityField> fields) {
  check_identity_present(fields);
  std::vector<std::string> invalid, values;
  for (const auto& f : fields) {
    if (f.value.empty()) {
      values.emplace_back();
    } else if (auto canonical = canonical_uuid(f.value)) {
      values.push_back(*canonical);
    } else {
      invalid.emplace_back(f.name);
      values.emplace_back();
    }
  }
  if (!invalid.empty())
    throw Error("INVALID_IDENTITY",
                std::string("Malformed identity component") + (invalid.size() > 1 ? "s: " : ": ") + joined(invalid) +
                    (invalid.size() > 1 ? " (expected UUIDs)" : " (expected a UUID)"),
                Json{{"invalid_fields", invalid}});
  return values;
}

std::string require_uuid(std::string_view name, std::string_view value) {
  return check_identity({{name, value}})[0];
}

int require_limit(int limit, int max) {
  if (limit < 1 || limit > max)
    throw Error("INVALID_ARGUMENT", "limit must be between 1 and " + std::to_string(max), Json{{"field", "limit"}});
  return limit;
}

}  // namespace examiso
