#include "services/environment/grpc_sessions.h"

#include "common/errors.h"
#include "common/grpc_server.h"
#include "common/proto_names.h"
#include "common/proto_time.h"

namespace examiso::environment {
namespace {

EnvironmentSpec spec_of(const v1::Exam& exam) {
  EnvironmentSpec spec;
  const auto& e = exam.environment();
  spec.image = e.image();
  spec.memory_limit_bytes = e.memory_limit_bytes();
  spec.pids_limit = e.pids_limit();
  spec.cpu_millis = e.cpu_millis();
  spec.home_size_bytes = e.home_size_bytes();
  spec.tmp_size_bytes = e.tmp_size_bytes();
  spec.egress_allow.assign(e.network().egress_allow().begin(), e.network().egress_allow().end());
  spec.setup_script = e.setup_script();
  spec.runtime_class = e.runtime_class();
  spec.duration_seconds = exam.duration_seconds();
  return spec;
}

}  // namespace

GrpcSessions::GrpcSessions(std::string address, std::chrono::milliseconds timeout)
    : address_(std::move(address)), timeout_(timeout), stub_(v1::LifecycleService::NewStub(make_channel(address_, "lifecycle"))) {}

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
  info.spec = spec_of(exam);
  return info;
}

std::vector<Sessions::Exam> GrpcSessions::exams() {
  v1::ListExamsResponse response;
  grpc::ClientContext c;
  c.set_deadline(std::chrono::system_clock::now() + timeout_);
  if (const auto s = stub_->ListExams(&c, v1::ListExamsRequest(), &response); !s.ok())
    throw from_grpc_status(s, address_);
  std::vector<Exam> out;
  for (const auto& exam : response.exams())
    out.push_back({exam.exam_id(), exam.provisioning_timeout_seconds(), spec_of(exam)});
  return out;
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

std::map<std::string, TimePoint> GrpcSessions::running_deadlines() {
  v1::ListSessionsRequest request;
  request.add_states(v1::SESSION_STATE_RUNNING);
  request.set_limit(10000);
  v1::ListSessionsResponse response;
  grpc::ClientContext c;
  c.set_deadline(std::chrono::system_clock::now() + timeout_);
  if (const auto s = stub_->ListSessions(&c, request, &response); !s.ok()) throw from_grpc_status(s, address_);
  std::map<std::string, TimePoint> out;
  for (const auto& session : response.sessions())
    if (session.has_deadline()) out[session.session_id()] = from_proto(session.deadline());
  return out;
}

}  // namespace examiso::environment
