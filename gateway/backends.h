#pragma once
// The services behind the gateway, called asynchronously (gRPC's callback
// API), so that no gateway thread waits on a backend.
#include <grpcpp/grpcpp.h>

#include <functional>
#include <memory>
#include <string>

#include "common/config.h"
#include "common/errors.h"
#include "common/grpc_server.h"
#include "examiso/v1/access.grpc.pb.h"
#include "examiso/v1/environment.grpc.pb.h"
#include "examiso/v1/identity.grpc.pb.h"
#include "examiso/v1/lifecycle.grpc.pb.h"
#include "grpc/health/v1/health.grpc.pb.h"

namespace examiso::gateway {

// One unary call in flight: its context, request and response live here.
template <class Request, class Response>
struct Call {
  grpc::ClientContext context;
  Request request;
  Response response;
};

struct Backend {
  std::string name;
  std::string address;
  std::shared_ptr<grpc::Channel> channel;
};

class Backends final {
 public:
  explicit Backends(const Config& config);

  // The callback ("async") interfaces of the stubs.
  auto* identity() { return identity_->async(); }
  auto* lifecycle() { return lifecycle_->async(); }
  auto* access() { return access_->async(); }
  v1::EnvironmentService::Stub* environment() { return environment_.get(); }

  // A call whose context carries the configured deadline.
  template <class Request, class Response>
  std::shared_ptr<Call<Request, Response>> call(Request request) {
    auto c = std::make_shared<Call<Request, Response>>();
    c->request = std::move(request);
    c->context.set_deadline(std::chrono::system_clock::now() + timeout_);
    return c;
  }

  // The contract error for a failed call to `service`.
  Error error(const grpc::Status& status, const std::string& service) const;

  // Whether every backend's health service answers SERVING; calls `done`
  // with a per-service summary.
  void check_health(std::function<void(bool ready, Json services)> done);

 private:
  std::chrono::milliseconds timeout_;
  std::vector<Backend> backends_;
  std::unique_ptr<v1::IdentityService::Stub> identity_;
  std::unique_ptr<v1::LifecycleService::Stub> lifecycle_;
  std::unique_ptr<v1::AccessService::Stub> access_;
  std::unique_ptr<v1::EnvironmentService::Stub> environment_;
  std::unique_ptr<CallbackKeepAwake> awake_;
};

}  // namespace examiso::gateway
