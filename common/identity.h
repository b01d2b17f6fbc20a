#pragma once
// Identity is always explicit: every operation names user_id, exam_session_id
// and, once provisioned, environment_id, as UUIDs. Shared by every service so
// that each checks its own input the same way.
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

namespace examiso {

struct IdentityField {
  std::string_view name;   // as reported: user_id, exam_session_id, environment_id
  std::string_view value;  // empty means absent
  bool required = true;
};

// The canonical (lower-case) values, in order; "" for an absent optional one.
// Throws Error INVALID_IDENTITY: every missing field first and alone
// (details.missing_fields), else every malformed one (details.invalid_fields).
std::vector<std::string> check_identity(std::initializer_list<IdentityField> fields);

// Only the presence part of check_identity: every missing field, in order.
void check_identity_present(std::initializer_list<IdentityField> fields);

// check_identity for one required field.
std::string require_uuid(std::string_view name, std::string_view value);

// A list's `limit` (1..max), or INVALID_ARGUMENT naming the field.
int require_limit(int limit, int max);

}  // namespace examiso
