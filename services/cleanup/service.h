#pragma once
#include "examiso/v1/cleanup.grpc.pb.h"
#include "services/cleanup/sweeper.h"

namespace examiso::cleanup {

// Adapts the cleanup RPCs to the Sweeper.
class CleanupService final : public v1::CleanupService::Service {
 public:
  explicit CleanupService(Sweeper& sweeper) : sweeper_(sweeper) {}
  grpc::Status Check(grpc::ServerContext*, const v1::CheckRequest* request, v1::CheckResponse* response) override;
  grpc::Status Sweep(grpc::ServerContext*, const v1::SweepRequest* request, v1::SweepResponse* response) override;
  grpc::Status ListSweeps(grpc::ServerContext*, const v1::ListSweepsRequest* request,
                          v1::ListSweepsResponse* response) override;

 private:
  Sweeper& sweeper_;
};

}  // namespace examiso::cleanup
