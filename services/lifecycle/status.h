#pragma once
// What a candidate is shown about a session: its display state, message,
// progress and the remaining time on the server-owned clock.
#include <string>

#include "services/lifecycle/session_store.h"

namespace examiso::lifecycle {

struct DisplayStatus {
  std::string display_state;  // creating, initializing, ready, running, terminated, error
  std::string message;        // for the candidate
  int current_step = 0;
  int total_steps = 3;
  std::string step_description;
  bool environment_ready = false;
  int64_t remaining_seconds = 0;
  // Still being made after kProvisioningDelayed: the candidate is told so.
  bool delayed = false;
  // Failed sessions only:
  std::string error_reason;       // a stable code for the failure class
  bool recoverable = false;       // whether starting again can help
  std::string technical_message;  // for operators, never for candidates
};

// The full duration before `running`, the time to the deadline (rounded up)
// while running, 0 once the session has ended.
int64_t remaining_seconds(const Session& session, TimePoint now);

DisplayStatus display_status(const Session& session, TimePoint now);

// How long making a session ready may take before its status says that it
// takes longer than usual (the candidate hears of it within 10 s).
inline constexpr std::chrono::seconds kProvisioningDelayed{8};

// When the session's status changes by the clock alone (it becomes delayed),
// if it still will.
std::optional<TimePoint> status_changes_at(const Session& session, TimePoint now);

}  // namespace examiso::lifecycle
