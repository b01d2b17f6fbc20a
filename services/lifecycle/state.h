#pragma once
// The session state machine of the contract, and the names of its states and
// reasons as users see them.
#include <optional>
#include <string_view>
#include <vector>

namespace examiso::lifecycle {

enum class State { created, initializing, ready, running, terminated, failed };
enum class TerminationReason { none, submitted, time_expired, admin, abandoned, environment_lost, proctor_terminated };
enum class FailureClass { none, init, runtime, access, infra };

std::string_view name(State s);
std::string_view name(TerminationReason r);  // "" for none
std::string_view name(FailureClass f);       // "" for none

std::optional<State> parse_state(std::string_view text);
std::optional<TerminationReason> parse_termination_reason(std::string_view text);
std::optional<FailureClass> parse_failure_class(std::string_view text);

// The states `from` may move to, in the contract's order.
const std::vector<State>& allowed_transitions(State from);
bool can_transition(State from, State to);
// The states from which `to` can be reached.
std::vector<State> sources_of(State to);

inline bool is_terminal(State s) { return s == State::terminated || s == State::failed; }

constexpr State kAllStates[] = {State::created, State::initializing, State::ready,
                                State::running, State::terminated,   State::failed};

}  // namespace examiso::lifecycle
