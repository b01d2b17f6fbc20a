#pragma once
#include <mutex>

#include "examiso/v1/environment.grpc.pb.h"
#include "services/environment/environments.h"
#include "services/environment/terminal_loop.h"

namespace examiso::environment {

// Adapts the environment RPCs to Environments; Attach (on gRPC's callback API)
// bridges a gRPC stream to a Terminal.
class EnvironmentService final : public v1::EnvironmentService::WithCallbackMethod_Attach<v1::EnvironmentService::Service> {
 public:
  explicit EnvironmentService(Environments& environments) : environments_(environments) {}
  // Reconciling runs here and on a timer; one at a time.
  std::mutex& reconcile_mutex() { return reconcile_mutex_; }

  grpc::Status CreateEnvironment(grpc::ServerContext*, const v1::CreateEnvironmentRequest* request,
                                 v1::Environment* response) override;
  grpc::Status GetEnvironment(grpc::ServerContext*, const v1::GetEnvironmentRequest* request,
                              v1::Environment* response) override;
  grpc::Status DestroyEnvironment(grpc::ServerContext*, const v1::DestroyEnvironmentRequest* request,
                                  v1::DestroyEnvironmentResponse* response) override;
  grpc::Status ListEnvironments(grpc::ServerContext*, const v1::ListEnvironmentsRequest* request,
                                v1::ListEnvironmentsResponse* response) override;
  grpc::ServerBidiReactor<v1::AttachRequest, v1::AttachResponse>* Attach(grpc::CallbackServerContext*) override;
  grpc::Status SendMessage(grpc::ServerContext*, const v1::SendMessageRequest* request,
                           v1::SendMessageResponse* response) override;
  grpc::Status ReconcileEnvironments(grpc::ServerContext*, const v1::ReconcileEnvironmentsRequest*,
                                     v1::ReconcileEnvironmentsResponse* response) override;

 private:
  void fill(v1::Environment* out, const EnvironmentRecord& r);

  Environments& environments_;
  std::mutex reconcile_mutex_;
  TerminalLoop loop_;
};

}  // namespace examiso::environment
