#pragma once
// Sessions, as the lifecycle service answers over gRPC.
#include <grpcpp/grpcpp.h>

#include "examiso/v1/lifecycle.grpc.pb.h"
#include "services/environment/environments.h"

namespace examiso::environment {

class GrpcSessions final : public Sessions {
 public:
  GrpcSessions(std::string address, std::chrono::milliseconds timeout);
  Info get(const std::string& session_id) override;
  std::vector<Exam> exams() override;
  void start_initializing(const std::string& session_id) override;
  std::map<std::string, TimePoint> running_deadlines() override;

 private:
  std::string address_;
  std::chrono::milliseconds timeout_;
  std::unique_ptr<v1::LifecycleService::Stub> stub_;
};

}  // namespace examiso::environment
