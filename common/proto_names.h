#pragma once
// Proto enums as users see them: SESSION_STATE_READY is "ready".
#include <optional>
#include <string>
#include <string_view>

#include "common/clock.h"
#include "common/json.h"
#include "examiso/v1/access.pb.h"
#include "examiso/v1/common.pb.h"
#include "examiso/v1/environment.pb.h"
#include "examiso/v1/lifecycle.pb.h"

namespace google::protobuf {
class Timestamp;
}

namespace examiso {

std::string state_name(v1::SessionState s);
std::string termination_reason_name(v1::TerminationReason r);  // "" when unspecified
std::string failure_class_name(v1::FailureClass f);            // "" when unspecified
std::string environment_status_name(v1::EnvironmentStatus s);
std::string access_type_name(v1::AccessType t);  // "" when unspecified

std::optional<v1::SessionState> parse_state_name(std::string_view name);
std::optional<v1::TerminationReason> parse_termination_reason_name(std::string_view name);
std::optional<v1::FailureClass> parse_failure_class_name(std::string_view name);
std::optional<v1::AccessType> parse_access_type_name(std::string_view name);

// ISO-8601 for a set timestamp, null for an unset one.
Json time_json(bool set, const google::protobuf::Timestamp& t);

// The status a candidate sees (no technical message): the gateway's REST and
// WebSocket answers; `session-status` shows it too.
Json status_json(const v1::SessionStatus& s);

}  // namespace examiso
