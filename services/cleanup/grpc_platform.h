#pragma once
// The sweeper's Platform over the lifecycle and environment services.
#include "examiso/v1/environment.grpc.pb.h"
#include "examiso/v1/lifecycle.grpc.pb.h"
#include "services/cleanup/sweeper.h"

namespace examiso::cleanup {

class GrpcPlatform final : public Platform {
 public:
  GrpcPlatform(std::string lifecycle_address, std::string environment_address, std::chrono::milliseconds timeout);

  std::vector<SessionView> sessions(const SessionQuery& query) override;
  std::optional<SessionView> session(const std::string& session_id) override;
  bool transition(const std::string& session_id, const std::string& expected_from, const std::string& to,
                  const std::string& termination_reason, const std::string& failure_class,
                  const std::string& reason) override;
  std::vector<EnvironmentView> environments(const std::vector<std::string>& statuses) override;
  std::optional<EnvironmentView> environment(const std::string& session_id) override;
  bool destroy_environment(const std::string& session_id, const std::string& reason) override;
  std::vector<std::string> reconcile_environments() override;

 private:
  void deadline(grpc::ClientContext& c, std::chrono::milliseconds extra = {}) const;

  std::string lifecycle_address_, environment_address_;
  std::chrono::milliseconds timeout_;
  std::unique_ptr<v1::LifecycleService::Stub> lifecycle_;
  std::unique_ptr<v1::EnvironmentService::Stub> environment_;
};

}  // namespace examiso::cleanup
