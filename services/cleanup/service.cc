#include "services/cleanup/service.h"

#include "common/proto_time.h"
#include "common/rpc.h"

namespace examiso::cleanup {
namespace {

void fill(v1::SweepResponse* out, const SweepResult& r) {
  *out->mutable_sweep_started_at() = to_proto(r.started_at);
  *out->mutable_sweep_completed_at() = to_proto(r.completed_at);
  out->set_sessions_checked(r.sessions_checked);
  out->set_sessions_cleaned(r.sessions_cleaned);
  for (const auto& id : r.cleaned_session_ids) out->add_cleaned_session_ids(id);
  out->set_dry_run(r.dry_run);
  for (const auto& a : r.actions) {
    auto* action = out->add_actions();
    action->set_session_id(a.session_id);
    action->set_action(a.action);
    action->set_detail(a.detail);
  }
}

}  // namespace

grpc::Status CleanupService::Check(grpc::ServerContext*, const v1::CheckRequest* request,
                                   v1::CheckResponse* response) {
  return handle_rpc([&] {
    const CheckResult c = sweeper_.check(request->session_id());
    response->set_session_id(c.session_id);
    response->set_should_cleanup(c.should_cleanup);
    response->set_reason(c.reason);
    response->set_ttl_remaining_seconds(c.ttl_remaining_seconds);
  });
}

grpc::Status CleanupService::Sweep(grpc::ServerContext*, const v1::SweepRequest* request,
                                   v1::SweepResponse* response) {
  return handle_rpc([&] { fill(response, sweeper_.sweep(request->dry_run())); });
}

grpc::Status CleanupService::ListSweeps(grpc::ServerContext*, const v1::ListSweepsRequest* request,
                                        v1::ListSweepsResponse* response) {
  return handle_rpc([&] {
    for (const auto& r : sweeper_.history(request->limit() ? request->limit() : 20)) fill(response->add_sweeps(), r);
  });
}

}  // namespace examiso::cleanup
