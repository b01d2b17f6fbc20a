#include "services/cleanup/grpc_platform.h"

#include "common/errors.h"
#include "common/grpc_server.h"
#include "common/proto_names.h"
#include "common/proto_time.h"

namespace examiso::cleanup {
namespace {

SessionView view(const v1::Session& s) {
  SessionView v;
  v.session_id = s.session_id();
  v.state = state_name(s.state());
  v.updated_at = from_proto(s.updated_at());
  v.provisioning_deadline = from_proto(s.provisioning_deadline());
  if (s.has_ready_at()) v.ready_at = from_proto(s.ready_at());
  if (s.has_deadline()) v.deadline = from_proto(s.deadline());
  v.remaining_seconds = s.remaining_seconds();
  return v;
}

EnvironmentView view(const v1::Environment& e) {
  return {e.environment_id(), e.session_id(), environment_status_name(e.status())};
}

}  // namespace

GrpcPlatform::GrpcPlatform(std::string lifecycle_address, std::string environment_address,
                           std::chrono::milliseconds timeout)
    : lifecycle_address_(std::move(lifecycle_address)),
      environment_address_(std::move(environment_address)),
      timeout_(timeout),
      lifecycle_(v1::LifecycleService::NewStub(make_channel(lifecycle_address_, "lifecycle"))),
      environment_(v1::EnvironmentService::NewStub(make_channel(environment_address_, "environment"))) {}

void GrpcPlatform::deadline(grpc::ClientContext& c, std::chrono::milliseconds extra) const {
  c.set_deadline(std::chrono::system_clock::now() + timeout_ + extra);
}

std::vector<SessionView> GrpcPlatform::sessions(const SessionQuery& q) {
  v1::ListSessionsRequest request;
  for (const auto& s : q.states) request.add_states(*parse_state_name(s));
  if (q.deadline_before) *request.mutable_deadline_before() = to_proto(*q.deadline_before);
  if (q.entered_before) *request.mutable_state_entered_before() = to_proto(*q.entered_before);
  request.set_limit(q.limit);
  request.set_soonest_deadline_first(q.soonest_deadline_first);
  v1::ListSessionsResponse response;
  grpc::ClientContext c;
  deadline(c);
  if (const auto s = lifecycle_->ListSessions(&c, request, &response); !s.ok())
    throw from_grpc_status(s, lifecycle_address_);
  std::vector<SessionView> out;
  for (const auto& s : response.sessions()) out.push_back(view(s));
  return out;
}

std::optional<SessionView> GrpcPlatform::session(const std::string& session_id) {
  v1::GetSessionRequest request;
  request.set_session_id(session_id);
  v1::Session response;
  grpc::ClientContext c;
  deadline(c);
  const auto s = lifecycle_->GetSession(&c, request, &response);
  if (s.error_code() == grpc::StatusCode::NOT_FOUND) return std::nullopt;
  if (!s.ok()) throw from_grpc_status(s, lifecycle_address_);
  return view(response);
}

bool GrpcPlatform::transition(const std::string& session_id, const std::string& expected_from, const std::string& to,
                              const std::string& termination_reason, const std::string& failure_class,
                              const std::string& reason) {
  v1::TransitionRequest request;
  request.set_session_id(session_id);
  request.set_to(*parse_state_name(to));
  if (!expected_from.empty()) request.set_expected_from(*parse_state_name(expected_from));
  if (!termination_reason.empty()) request.set_termination_reason(*parse_termination_reason_name(termination_reason));
  if (!failure_class.empty()) request.set_failure_class(*parse_failure_class_name(failure_class));
  request.set_reason(reason);
  request.set_actor("cleanup");
  v1::TransitionResponse response;
  grpc::ClientContext c;
  deadline(c);
  const auto s = lifecycle_->Transition(&c, request, &response);
  if (s.ok()) return true;
  const Error e = from_grpc_status(s, lifecycle_address_);
  if (e.code() == "INVALID_TRANSITION" || e.code() == "SESSION_NOT_FOUND") return false;
  throw e;
}

std::vector<EnvironmentView> GrpcPlatform::environments(const std::vector<std::string>& statuses) {
  v1::ListEnvironmentsRequest request;
  for (const auto& name : statuses) {
    std::string upper = "ENVIRONMENT_STATUS_" + name;
    for (char& ch : upper) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    v1::EnvironmentStatus status{};
    if (v1::EnvironmentStatus_Parse(upper, &status)) request.add_statuses(status);
  }
  request.set_limit(10000);
  request.set_current_only(true);
  v1::ListEnvironmentsResponse response;
  grpc::ClientContext c;
  deadline(c);
  if (const auto s = environment_->ListEnvironments(&c, request, &response); !s.ok())
    throw from_grpc_status(s, environment_address_);
  std::vector<EnvironmentView> out;
  for (const auto& e : response.environments()) out.push_back(view(e));
  return out;
}

std::optional<EnvironmentView> GrpcPlatform::environment(const std::string& session_id) {
  v1::GetEnvironmentRequest request;
  request.set_session_id(session_id);
  v1::Environment response;
  grpc::ClientContext c;
  deadline(c);
  const auto s = environment_->GetEnvironment(&c, request, &response);
  if (s.error_code() == grpc::StatusCode::NOT_FOUND) return std::nullopt;
  if (!s.ok()) throw from_grpc_status(s, environment_address_);
  return view(response);
}

bool GrpcPlatform::destroy_environment(const std::string& session_id, const std::string& reason) {
  v1::DestroyEnvironmentRequest request;
  request.set_session_id(session_id);
  request.set_reason(reason);
  v1::DestroyEnvironmentResponse response;
  grpc::ClientContext c;
  deadline(c, std::chrono::seconds(10));
  const auto s = environment_->DestroyEnvironment(&c, request, &response);
  if (s.error_code() == grpc::StatusCode::NOT_FOUND) return false;
  if (!s.ok()) throw from_grpc_status(s, environment_address_);
  return true;
}

std::vector<std::string> GrpcPlatform::reconcile_environments() {
  v1::ReconcileEnvironmentsRequest request;
  v1::ReconcileEnvironmentsResponse response;
  grpc::ClientContext c;
  deadline(c, std::chrono::seconds(10));
  if (const auto s = environment_->ReconcileEnvironments(&c, request, &response); !s.ok())
    throw from_grpc_status(s, environment_address_);
  return {response.destroyed_orphan_ids().begin(), response.destroyed_orphan_ids().end()};
}

}  // namespace examiso::cleanup
