#include "gateway/backends.h"

#include <atomic>
#include <mutex>

#include "common/grpc_server.h"

namespace examiso::gateway {

Backends::Backends(const Config& config) : timeout_(config.integer("grpc.call_timeout_ms")) {
  for (const char* name : {"identity", "lifecycle", "environment", "access"}) {
    const std::string address = config.str(std::string(name) + ".address");
    backends_.push_back({name, address, make_channel(address, name)});
  }
  identity_ = v1::IdentityService::NewStub(backends_[0].channel);
  lifecycle_ = v1::LifecycleService::NewStub(backends_[1].channel);
  environment_ = v1::EnvironmentService::NewStub(backends_[2].channel);
  access_ = v1::AccessService::NewStub(backends_[3].channel);
  // This process's gRPC traffic all runs on the callback API (see CallbackKeepAwake).
  awake_ = std::make_unique<CallbackKeepAwake>(backends_[0].channel);
}

Error Backends::error(const grpc::Status& status, const std::string& service) const {
  for (const auto& b : backends_)
    if (b.name == service) return from_grpc_status(status, b.address);
  return from_grpc_status(status, service);
}

void Backends::check_health(std::function<void(bool, Json)> done) {
  struct State {
    std::mutex mutex;
    Json services = Json::object();
    bool ready = true;
    size_t left;
    std::function<void(bool, Json)> done;
    std::vector<std::unique_ptr<grpc::health::v1::Health::Stub>> stubs;
  };
  auto state = std::make_shared<State>();
  state->left = backends_.size();
  state->done = std::move(done);
  for (const auto& b : backends_) {
    state->stubs.push_back(grpc::health::v1::Health::NewStub(b.channel));
    auto c = call<grpc::health::v1::HealthCheckRequest, grpc::health::v1::HealthCheckResponse>({});
    c->context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(1));
    state->stubs.back()->async()->Check(&c->context, &c->request, &c->response, [state, c, name = b.name](grpc::Status s) {
      const bool serving = s.ok() && c->response.status() == grpc::health::v1::HealthCheckResponse::SERVING;
      std::unique_lock lock(state->mutex);
      state->services[name] = serving ? "serving" : "unavailable";
      state->ready = state->ready && serving;
      if (--state->left == 0) {
        lock.unlock();
        state->done(state->ready, state->services);
      }
    });
  }
}

}  // namespace examiso::gateway
