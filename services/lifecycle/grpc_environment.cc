#include "services/lifecycle/grpc_environment.h"

#include "common/errors.h"
#include "common/grpc_server.h"

namespace examiso::lifecycle {

GrpcEnvironmentCreator::GrpcEnvironmentCreator(std::string address)
    : address_(std::move(address)), stub_(v1::EnvironmentService::NewStub(make_channel(address_))) {}

void GrpcEnvironmentCreator::create(const std::string& session_id, std::chrono::seconds timeout) {
  v1::CreateEnvironmentRequest request;
  request.set_session_id(session_id);
  request.set_timeout_seconds(static_cast<int32_t>(std::max<int64_t>(timeout.count(), 1)));
  v1::Environment environment;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + timeout + std::chrono::seconds(3));
  const grpc::Status s = stub_->CreateEnvironment(&context, request, &environment);
  if (!s.ok()) throw from_grpc_status(s, address_);
}

}  // namespace examiso::lifecycle
