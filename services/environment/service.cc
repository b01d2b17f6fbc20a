#include "services/environment/service.h"

#include <atomic>
#include <thread>

#include "common/proto_time.h"
#include "common/rpc.h"

namespace examiso::environment {
namespace {

uint16_t clamp_size(uint32_t v, uint16_t fallback) {
  if (v == 0) return fallback;
  return static_cast<uint16_t>(std::min<uint32_t>(v, 1000));
}

}  // namespace

void EnvironmentService::fill(v1::Environment* out, const EnvironmentRecord& r) {
  out->set_environment_id(r.environment_id);
  out->set_session_id(r.session_id);
  out->set_pod_name(r.pod_name);
  out->set_pod_namespace(r.pod_namespace);
  out->set_status(static_cast<v1::EnvironmentStatus>(static_cast<int>(r.status) + 1));
  out->set_ready(environments_.ready(r));
  out->set_driver(r.driver);
  *out->mutable_created_at() = to_proto(r.created_at);
  if (r.ready_at) *out->mutable_ready_at() = to_proto(*r.ready_at);
  if (r.destroyed_at) *out->mutable_destroyed_at() = to_proto(*r.destroyed_at);
  out->set_error_reason(r.error_reason);
}

grpc::Status EnvironmentService::CreateEnvironment(grpc::ServerContext*, const v1::CreateEnvironmentRequest* request,
                                                   v1::Environment* response) {
  return handle_rpc([&] {
    fill(response, environments_.create(request->session_id(), std::chrono::seconds(request->timeout_seconds())));
  });
}

grpc::Status EnvironmentService::GetEnvironment(grpc::ServerContext*, const v1::GetEnvironmentRequest* request,
                                                v1::Environment* response) {
  return handle_rpc([&] { fill(response, environments_.get(request->session_id())); });
}

grpc::Status EnvironmentService::DestroyEnvironment(grpc::ServerContext*, const v1::DestroyEnvironmentRequest* request,
                                                    v1::DestroyEnvironmentResponse* response) {
  return handle_rpc([&] {
    const DestroyResult r = environments_.destroy(request->session_id(), request->reason());
    response->set_environment_id(r.record.environment_id);
    response->set_session_id(r.record.session_id);
    if (r.record.destroyed_at) *response->mutable_destroyed_at() = to_proto(*r.record.destroyed_at);
  });
}

grpc::Status EnvironmentService::ListEnvironments(grpc::ServerContext*, const v1::ListEnvironmentsRequest* request,
                                                  v1::ListEnvironmentsResponse* response) {
  return handle_rpc([&] {
    std::vector<Status> statuses;
    for (int s : request->statuses()) {
      if (s < 1 || s > 6) throw Error("INVALID_ARGUMENT", "unknown environment status", Json{{"field", "statuses"}});
      statuses.push_back(static_cast<Status>(s - 1));
    }
    for (const auto& r : environments_.list(statuses, request->limit() ? request->limit() : 100))
      fill(response->add_environments(), r);
  });
}

grpc::Status EnvironmentService::Attach(grpc::ServerContext* context,
                                        grpc::ServerReaderWriter<v1::AttachResponse, v1::AttachRequest>* stream) {
  return handle_rpc([&] {
    v1::AttachRequest first;
    if (!stream->Read(&first) || !first.has_start())
      throw Error("INVALID_ARGUMENT", "The first Attach message must be `start`");
    const auto& start = first.start();
    auto terminal = environments_.attach(start.session_id(), clamp_size(start.size().cols(), 80),
                                         clamp_size(start.size().rows(), 24));
    // Client to terminal on its own thread; a client that ends its side has
    // detached, which leaves the shell running.
    std::atomic<bool> detached{false};
    std::thread input([&] {
      v1::AttachRequest m;
      while (stream->Read(&m)) {
        if (m.has_resize()) {
          terminal->resize(clamp_size(m.resize().cols(), 80), clamp_size(m.resize().rows(), 24));
        } else if (m.message_case() == v1::AttachRequest::kInput && !terminal->write(m.input())) {
          break;
        }
      }
      detached = true;
      terminal->close();
    });
    v1::AttachResponse out;
    bool ended = false;
    while (!context->IsCancelled()) {
      auto chunk = terminal->read(std::chrono::milliseconds(200));
      if (!chunk) {
        ended = !detached;
        break;
      }
      if (chunk->empty()) continue;
      out.set_output(std::move(*chunk));
      if (!stream->Write(out)) break;
    }
    if (ended) {
      out.mutable_ended()->set_reason("the environment ended");
      stream->Write(out);
    }
    if (!detached) context->TryCancel();  // unblocks the input thread
    input.join();
  });
}

}  // namespace examiso::environment

namespace examiso::environment {

grpc::Status EnvironmentService::ReconcileEnvironments(grpc::ServerContext*, const v1::ReconcileEnvironmentsRequest*,
                                                       v1::ReconcileEnvironmentsResponse* response) {
  return handle_rpc([&] {
    std::lock_guard lock(reconcile_mutex_);
    const ReconcileReport r = environments_.reconcile(false);
    for (const auto& id : r.destroyed_orphans) response->add_destroyed_orphan_ids(id);
    for (const auto& id : r.lost_sessions) response->add_lost_session_ids(id);
  });
}

}  // namespace examiso::environment
