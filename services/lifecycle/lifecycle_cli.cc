// session-lifecycle: create sessions, move them through their states, inspect them.
#include "common/cli.h"
#include "common/proto_names.h"
#include "examiso/v1/lifecycle.grpc.pb.h"

namespace {

const std::vector<std::string> kStates{"created", "initializing", "ready", "running", "terminated", "failed"};

}  // namespace

int main(int argc, char** argv) {
  using namespace examiso;
  cli::Command cmd("session-lifecycle", "Create exam sessions and move them through their lifecycle", "lifecycle");
  std::string session_id, to, reason, user_id, exam_id, termination_reason, failure_class;
  std::vector<std::string> states;
  bool auto_provision = false;
  int limit = 20;

  auto* transition = cmd.subcommand("transition", "Move a session to a state (--to created creates it)", [&] {
    v1::LifecycleService::Stub stub(cmd.channel());
    if (to == "created") {
      v1::CreateSessionRequest request;
      request.set_session_id(session_id);
      request.set_user_id(user_id);
      request.set_exam_id(exam_id);
      request.set_auto_provision(auto_provision);
      request.set_actor("cli");
      const auto s = cmd.call(&v1::LifecycleService::Stub::CreateSession, stub, request);
      return Json{{"session_id", s.session_id()},
                  {"previous_state", nullptr},
                  {"current_state", state_name(s.state())},
                  {"transitioned_at", time_json(s.has_created_at(), s.created_at())},
                  {"user_id", s.user_id()},
                  {"exam_id", s.exam_id()}};
    }
    v1::TransitionRequest request;
    request.set_session_id(session_id);
    request.set_to(*parse_state_name(to));
    request.set_reason(reason);
    if (!termination_reason.empty()) request.set_termination_reason(*parse_termination_reason_name(termination_reason));
    if (!failure_class.empty()) request.set_failure_class(*parse_failure_class_name(failure_class));
    request.set_actor("cli");
    const auto r = cmd.call(&v1::LifecycleService::Stub::Transition, stub, request);
    return Json{{"session_id", r.session_id()},
                {"previous_state", state_name(r.previous_state())},
                {"current_state", state_name(r.current_state())},
                {"transitioned_at", time_json(r.has_transitioned_at(), r.transitioned_at())}};
  });
  transition->add_option("--session-id", session_id, "the exam session (UUID; generated when creating without it)");
  transition->add_option("--to", to, "the target state")->required()->check(CLI::IsMember(kStates));
  transition->add_option("--reason", reason, "why (free text; required for failed)");
  transition->add_option("--user-id", user_id, "creating: the candidate (UUID)")->envname("EXAMISO_USER_ID");
  transition->add_option("--exam-id", exam_id, "creating: the exam (default: the catalog's default exam)");
  transition->add_flag("--auto-provision", auto_provision, "creating: let the platform provision it by itself");
  transition
      ->add_option("--termination-reason", termination_reason, "terminated: submitted, time_expired, admin (default), "
                                                                "abandoned, environment_lost or proctor_terminated")
      ->check(CLI::IsMember({"submitted", "time_expired", "admin", "abandoned", "environment_lost", "proctor_terminated"}));
  transition->add_option("--failure-class", failure_class, "failed: init, runtime, access or infra (default)")
      ->check(CLI::IsMember({"init", "runtime", "access", "infra"}));

  auto* status = cmd.subcommand("status", "Show a session's lifecycle state", [&] {
    v1::LifecycleService::Stub stub(cmd.channel());
    v1::GetSessionRequest request;
    request.set_session_id(session_id);
    const auto s = cmd.call(&v1::LifecycleService::Stub::GetSession, stub, request);
    std::string why = s.reason();
    if (why.empty()) why = termination_reason_name(s.termination_reason());
    if (why.empty()) why = failure_class_name(s.failure_class());
    return Json{{"session_id", s.session_id()},
                {"state", state_name(s.state())},
                {"reason", why.empty() ? Json() : Json(why)},
                {"started_at", time_json(s.has_started_at(), s.started_at())},
                {"last_transition_at", time_json(s.has_updated_at(), s.updated_at())},
                {"user_id", s.user_id()},
                {"exam_id", s.exam_id()},
                {"deadline", time_json(s.has_deadline(), s.deadline())},
                {"remaining_seconds", s.remaining_seconds()}};
  });
  status->add_option("--session-id", session_id, "the exam session (UUID)");

  auto* history = cmd.subcommand("history", "List a session's transitions, oldest first", [&] {
    v1::LifecycleService::Stub stub(cmd.channel());
    v1::ListTransitionsRequest request;
    request.set_session_id(session_id);
    const auto r = cmd.call(&v1::LifecycleService::Stub::ListTransitions, stub, request);
    Json out = Json::array();
    for (const auto& t : r.transitions()) {
      out.push_back(Json{{"from", t.from_state() ? Json(state_name(t.from_state())) : Json()},
                         {"to", state_name(t.to_state())},
                         {"reason", t.reason()},
                         {"termination_reason", termination_reason_name(t.termination_reason())},
                         {"failure_class", failure_class_name(t.failure_class())},
                         {"actor", t.actor()},
                         {"at", time_json(t.has_at(), t.at())}});
    }
    return Json{{"session_id", session_id}, {"transitions", out}};
  });
  history->add_option("--session-id", session_id, "the exam session (UUID)");

  auto* list = cmd.subcommand("list", "List sessions, newest first", [&] {
    v1::LifecycleService::Stub stub(cmd.channel());
    v1::ListSessionsRequest request;
    request.set_user_id(user_id);
    for (const auto& s : states) request.add_states(*parse_state_name(s));
    request.set_limit(limit);
    const auto r = cmd.call(&v1::LifecycleService::Stub::ListSessions, stub, request);
    Json out = Json::array();
    for (const auto& s : r.sessions()) {
      out.push_back(Json{{"session_id", s.session_id()},
                         {"user_id", s.user_id()},
                         {"exam_id", s.exam_id()},
                         {"state", state_name(s.state())},
                         {"created_at", time_json(s.has_created_at(), s.created_at())},
                         {"remaining_seconds", s.remaining_seconds()}});
    }
    return Json{{"sessions", out}};
  });
  list->add_option("--user-id", user_id, "only this user's sessions (UUID)");
  list->add_option("--state", states, "only sessions in these states")->check(CLI::IsMember(kStates));
  list->add_option("--limit", limit, "at most this many (default 20)")->check(CLI::Range(1, 10000));

  return cmd.run(argc, argv);
}
