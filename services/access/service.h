#pragma once
#include "examiso/v1/access.grpc.pb.h"
#include "examiso/v1/lifecycle.grpc.pb.h"
#include "services/access/authorizer.h"

namespace examiso::access {

// SessionLookup over the lifecycle service's GetStatus.
class GrpcSessionLookup final : public SessionLookup {
 public:
  GrpcSessionLookup(std::string address, std::chrono::milliseconds timeout);
  std::optional<SessionFacts> find(const std::string& session_id, const std::string& user_id) override;

 private:
  std::string address_;
  std::chrono::milliseconds timeout_;
  std::unique_ptr<v1::LifecycleService::Stub> stub_;
};

// Adapts the access RPCs to the Authorizer. Every denial is the same status.
class AccessService final : public v1::AccessService::Service {
 public:
  explicit AccessService(Authorizer& authorizer) : authorizer_(authorizer) {}
  grpc::Status Authorize(grpc::ServerContext* context, const v1::AuthorizeRequest* request,
                         v1::AuthorizeResponse* response) override;
  grpc::Status ListAccessLog(grpc::ServerContext*, const v1::ListAccessLogRequest* request,
                             v1::ListAccessLogResponse* response) override;

 private:
  Authorizer& authorizer_;
};

}  // namespace examiso::access
