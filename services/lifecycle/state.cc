#include "services/lifecycle/state.h"

#include <algorithm>
#include <array>

namespace examiso::lifecycle {
namespace {

constexpr std::array<std::string_view, 6> kStates{"created", "initializing", "ready", "running", "terminated", "failed"};
constexpr std::array<std::string_view, 7> kTerminationReasons{
    "", "submitted", "time_expired", "admin", "abandoned", "environment_lost", "proctor_terminated"};
constexpr std::array<std::string_view, 5> kFailureClasses{"", "init", "runtime", "access", "infra"};

template <class E, size_t N>
std::optional<E> parse(const std::array<std::string_view, N>& names, std::string_view text) {
  if (text.empty()) return std::nullopt;
  const auto it = std::find(names.begin(), names.end(), text);
  if (it == names.end()) return std::nullopt;
  return static_cast<E>(it - names.begin());
}

}  // namespace

std::string_view name(State s) { return kStates[static_cast<size_t>(s)]; }
std::string_view name(TerminationReason r) { return kTerminationReasons[static_cast<size_t>(r)]; }
std::string_view name(FailureClass f) { return kFailureClasses[static_cast<size_t>(f)]; }

std::optional<State> parse_state(std::string_view text) { return parse<State>(kStates, text); }
std::optional<TerminationReason> parse_termination_reason(std::string_view text) {
  return parse<TerminationReason>(kTerminationReasons, text);
}
std::optional<FailureClass> parse_failure_class(std::string_view text) {
  return parse<FailureClass>(kFailureClasses, text);
}

const std::vector<State>& allowed_transitions(State from) {
  using S = State;
  static const std::vector<State> table[] = {
      /* created */ {S::initializing, S::terminated, S::failed},
      /* initializing */ {S::ready, S::terminated, S::failed},
      /* ready */ {S::running, S::terminated, S::failed},
      /* running */ {S::terminated, S::failed},
      /* terminated */ {},
      /* failed */ {},
  };
  return table[static_cast<size_t>(from)];
}

bool can_transition(State from, State to) {
  const auto& allowed = allowed_transitions(from);
  return std::find(allowed.begin(), allowed.end(), to) != allowed.end();
}

std::vector<State> sources_of(State to) {
  std::vector<State> out;
  for (State from : kAllStates)
    if (can_transition(from, to)) out.push_back(from);
  return out;
}

}  // namespace examiso::lifecycle
