#include "services/environment/grpc_sessions.h"

#include "common/errors.h"
#include "common/grpc_server.h"
#include "common/proto_names.h"

namespace examiso::environment {

GrpcSessions::GrpcSessions(std::string address, std::chrono::milliseconds timeout)
    : address_(std::move(address)), timeout_(timeout), stub_(v1::LifecycleService::NewStub(make_channel(address_))) {}

Sessions::Info GrpcSessions::get(const std::string& session_id) {
  v1::GetSessionRequest request;
  request.set_session_id(session_id);
  v1::Session session;
  grpc::ClientContext c1;
  c1.set_deadline(std::chrono::system_clock::now() + timeout_);
  if (const auto s = stub_->GetSession(&c1, request, &session); !s.ok()) throw from_grpc_status(s, address_);

  v1::GetExamRequest exam_request;
  exam_request.set_exam_id(session.exam_id());
  v1::Exam exam;
  grpc::ClientContext c2;
  c2.set_deadline(std::chrono::system_clock::now() + timeout_);
  if (const auto s = stub_->GetExam(&c2, exam_request, &exam); !s.ok()) throw from_grpc_status(s, address_);

  Info info;
  info.session_id = session.session_id();
  info.state = state_name(session.state());
  info.provisioning_timeout_seconds = exam.provisioning_timeout_seconds();
  const auto& e = exam.environment();
  info.spec.image = e.image();
  info.spec.memory_limit_bytes = e.memory_limit_bytes();
  info.spec.pids_limit = e.pids_limit();
  info.spec.cpu_millis = e.cpu_millis();
  info.spec.home_size_bytes = e.home_size_bytes();
  info.spec.tmp_size_bytes = e.tmp_size_bytes();
  info.spec.egress_allow.assign(e.network().egress_allow().begin(), e.network().egress_allow().end());
  info.spec.setup_script = e.setup_script();
  info.spec.runtime_class = e.runtime_class();
  info.spec.duration_seconds = exam.duration_seconds();
  return info;
}

void GrpcSessions::start_initializing(const std::string& session_id) {
  v1::TransitionRequest request;
  request.set_session_id(session_id);
  request.set_to(v1::SESSION_STATE_INITIALIZING);
  request.set_expected_from(v1::SESSION_STATE_CREATED);
  request.set_actor("environment");
  v1::TransitionResponse response;
  grpc::ClientContext c;
  c.set_deadline(std::chrono::system_clock::now() + timeout_);
  const auto s = stub_->Transition(&c, request, &response);
  if (s.ok()) return;
  const Error e = from_grpc_status(s, address_);
  // Someone else moved it first: fine if it is initializing now.
  if (e.code() == "INVALID_TRANSITION" && e.details().value("current_state", "") == "initializing") return;
  throw e;
}

}  // namespace examiso::environment
