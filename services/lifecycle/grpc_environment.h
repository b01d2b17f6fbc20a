#pragma once
// EnvironmentCreator over the environment service's CreateEnvironment.
#include "examiso/v1/environment.grpc.pb.h"
#include "services/lifecycle/provisioner.h"

namespace examiso::lifecycle {

class GrpcEnvironmentCreator final : public EnvironmentCreator {
 public:
  explicit GrpcEnvironmentCreator(std::string address);
  void create(const std::string& session_id, std::chrono::seconds timeout) override;

 private:
  std::string address_;
  std::unique_ptr<v1::EnvironmentService::Stub> stub_;
};

}  // namespace examiso::lifecycle
