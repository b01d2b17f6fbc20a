#include "services/lifecycle/grpc_environment.h"

#include "common/errors.h"
#include "common/grpc_server.h"

namespace examiso::lifecycle {

GrpcEnvironmentCreator::GrpcEnvironmentCreator(std::string address)
    : address_(std::move(address)), stub_(v1::EnvironmentService::NewStub(make_channel(address_, "environment"))) {}

void GrpcEnvironmentCreator::create(const std::string& session_id, std::chrono::seconds timeout) {
  v1::CreateEnvironmentRequest request;
  request.set_session_id(session_id);
  // The environment service gives up a second before this call does, so
  // that its reason, not a bare deadline, says why; neither passes the
  // provisioning deadline.
  request.set_timeout_seconds(static_cast<int32_t>(std::max<int64_t>(timeout.count() - 1, 1)));
  v1::Environment environment;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::max(timeout, std::chrono::seconds(1)));
  const grpc::Status s = stub_->CreateEnvironment(&context, request, &environment);
  if (!s.ok()) throw from_grpc_status(s, address_);
}

}  // namespace examiso::lifecycle
