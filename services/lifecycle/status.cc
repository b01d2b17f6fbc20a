#include "services/lifecycle/status.h"

namespace examiso::lifecycle {
namespace {

struct FailureText {
  const char* error_reason;
  const char* message;
  bool recoverable;
};

FailureText failure_text(FailureClass f) {
  switch (f) {
    case FailureClass::init:
      return {"ENVIRONMENT_INIT_FAILED", "We could not prepare your exam environment. Please start the exam again.",
              true};
    case FailureClass::runtime:
      return {"ENVIRONMENT_FAILED", "Your exam environment stopped working. Please contact your proctor.", false};
    case FailureClass::access:
      return {"ACCESS_FAILED", "We could not connect you to your exam environment. Please reload the page.", true};
    default:
      return {"PLATFORM_UNAVAILABLE", "The exam platform is having trouble. Please try again in a few minutes.", true};
  }
}

const char* termination_message(TerminationReason r) {
  switch (r) {
    case TerminationReason::submitted: return "Your exam was submitted";
    case TerminationReason::time_expired: return "Your exam time has expired";
    case TerminationReason::abandoned: return "Your session was closed because the exam was not started in time";
    case TerminationReason::environment_lost: return "Your exam ended because its environment was lost";
    case TerminationReason::proctor_terminated: return "Your exam was ended by a proctor";
    default: return "Your exam was ended by an administrator";
  }
}

int step_of(State s) {
  switch (s) {
    case State::created: return 1;
    case State::initializing: return 2;
    default: return 3;
  }
}

}  // namespace

int64_t remaining_seconds(const Session& session, TimePoint now) {
  if (is_terminal(session.state)) return 0;
  if (session.state != State::running || !session.deadline) return session.duration_seconds;
  const auto left = std::chrono::duration_cast<std::chrono::microseconds>(*session.deadline - now).count();
  return left <= 0 ? 0 : (left + 999'999) / 1'000'000;
}

namespace {
bool being_made(const Session& s) { return s.state == State::created || s.state == State::initializing; }
}  // namespace

std::optional<TimePoint> status_changes_at(const Session& session, TimePoint now) {
  const TimePoint delayed_at = session.created_at + kProvisioningDelayed;
  if (being_made(session) && delayed_at > now) return delayed_at;
  return std::nullopt;
}

DisplayStatus display_status(const Session& session, TimePoint now) {
  DisplayStatus d;
  d.delayed = being_made(session) && now - session.created_at >= kProvisioningDelayed;
  d.remaining_seconds = remaining_seconds(session, now);
  d.environment_ready = session.state == State::ready || session.state == State::running;
  d.current_step = step_of(session.state);
  switch (session.state) {
    case State::created:
      d.display_state = "creating";
      d.message = "Creating your exam session";
      d.step_description = "Creating your session";
      break;
    case State::initializing:
      d.display_state = "initializing";
      d.message = "Preparing your exam environment";
      d.step_description = "Preparing your exam environment";
      break;
    case State::ready:
      d.display_state = "ready";
      d.message = "Your exam environment is ready";
      d.step_description = "Environment ready";
      break;
    case State::running:
      d.display_state = "running";
      // Past the deadline and not yet terminated (by whoever sweeps next):
      // the time is up all the same.
      d.message = d.remaining_seconds == 0 ? "Your exam time has expired" : "Your exam is in progress";
      d.step_description = "Exam in progress";
      break;
    case State::terminated:
      d.display_state = "terminated";
      d.message = termination_message(session.termination_reason);
      d.step_description = "Exam ended";
      break;
    case State::failed: {
      const FailureText f = failure_text(session.failure_class);
      d.display_state = "error";
      d.message = f.message;
      d.error_reason = f.error_reason;
      d.recoverable = f.recoverable;
      d.technical_message = session.reason;
      d.current_step = step_of(session.previous_state.value_or(State::created));
      d.step_description = "Failed";
      break;
    }
  }
  if (d.delayed) d.message = "This is taking longer than usual. Your exam environment is still being prepared.";
  return d;
}

}  // namespace examiso::lifecycle
