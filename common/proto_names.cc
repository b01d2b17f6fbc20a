#include "common/proto_names.h"

#include <algorithm>
#include <cctype>

#include "common/proto_time.h"

namespace examiso {
namespace {

std::string lower_without(std::string full, std::string_view prefix) {
  if (full.rfind(prefix, 0) == 0) full.erase(0, prefix.size());
  std::transform(full.begin(), full.end(), full.begin(), [](unsigned char c) { return std::tolower(c); });
  return full;
}

// Parses "ready" into SESSION_STATE_READY with the generated *_Parse function.
template <class E>
std::optional<E> parse_with(bool (*parse)(const std::string&, E*), std::string_view prefix, std::string_view name) {
  if (name.empty() || name.size() > 64) return std::nullopt;
  std::string full(prefix);
  for (char c : name) {
    if (!std::islower(static_cast<unsigned char>(c)) && c != '_') return std::nullopt;
    full += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  E value{};
  if (!parse(full, &value) || full.ends_with("_UNSPECIFIED")) return std::nullopt;
  return value;
}

}  // namespace

std::string state_name(v1::SessionState s) { return lower_without(v1::SessionState_Name(s), "SESSION_STATE_"); }

std::string termination_reason_name(v1::TerminationReason r) {
  return r == v1::TERMINATION_REASON_UNSPECIFIED ? ""
                                                 : lower_without(v1::TerminationReason_Name(r), "TERMINATION_REASON_");
}

std::string failure_class_name(v1::FailureClass f) {
  return f == v1::FAILURE_CLASS_UNSPECIFIED ? "" : lower_without(v1::FailureClass_Name(f), "FAILURE_CLASS_");
}

std::string environment_status_name(v1::EnvironmentStatus s) {
  return lower_without(v1::EnvironmentStatus_Name(s), "ENVIRONMENT_STATUS_");
}

std::string access_type_name(v1::AccessType t) {
  return t == v1::ACCESS_TYPE_UNSPECIFIED ? "" : lower_without(v1::AccessType_Name(t), "ACCESS_TYPE_");
}

std::optional<v1::SessionState> parse_state_name(std::string_view name) {
  return parse_with<v1::SessionState>(v1::SessionState_Parse, "SESSION_STATE_", name);
}

std::optional<v1::TerminationReason> parse_termination_reason_name(std::string_view name) {
  return parse_with<v1::TerminationReason>(v1::TerminationReason_Parse, "TERMINATION_REASON_", name);
}

std::optional<v1::FailureClass> parse_failure_class_name(std::string_view name) {
  return parse_with<v1::FailureClass>(v1::FailureClass_Parse, "FAILURE_CLASS_", name);
}

std::optional<v1::AccessType> parse_access_type_name(std::string_view name) {
  return parse_with<v1::AccessType>(v1::AccessType_Parse, "ACCESS_TYPE_", name);
}

Json time_json(bool set, const google::protobuf::Timestamp& t) {
  return set ? Json(iso8601(from_proto(t))) : Json();
}

Json status_json(const v1::SessionStatus& s) {
  Json out{{"session_id", s.session_id()},
           {"lifecycle_state", state_name(s.lifecycle_state())},
           {"display_state", s.display_state()},
           {"message", s.message()},
           {"progress",
            {{"current_step", s.progress().current_step()},
             {"total_steps", s.progress().total_steps()},
             {"step_description", s.progress().step_description()}}},
           {"environment_ready", s.environment_ready()},
           {"remaining_seconds", s.remaining_seconds()},
           {"delayed", s.delayed()},
           {"updated_at", time_json(s.has_updated_at(), s.updated_at())}};
  if (s.display_state() == "error") {
    out["error_reason"] = s.error_reason();
    out["recoverable"] = s.recoverable();
  }
  if (s.termination_reason()) out["termination_reason"] = termination_reason_name(s.termination_reason());
  return out;
}

}  // namespace examiso
