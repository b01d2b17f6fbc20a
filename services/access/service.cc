#include "services/access/service.h"

#include "common/errors.h"
#include "common/grpc_server.h"
#include "common/proto_names.h"
#include "common/proto_time.h"
#include "common/rpc.h"

namespace examiso::access {

GrpcSessionLookup::GrpcSessionLookup(std::string address, std::chrono::milliseconds timeout)
    : address_(std::move(address)), timeout_(timeout), stub_(v1::LifecycleService::NewStub(make_channel(address_, "lifecycle"))) {}

std::optional<SessionFacts> GrpcSessionLookup::find(const std::string& session_id, const std::string& user_id) {
  v1::GetStatusRequest request;
  request.set_session_id(session_id);
  request.set_caller_user_id(user_id);
  SessionFacts facts;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + timeout_);
  const grpc::Status s = stub_->GetStatus(&context, request, &facts.status);
  if (s.error_code() == grpc::StatusCode::NOT_FOUND) return std::nullopt;
  if (!s.ok()) {
    const Error e = from_grpc_status(s, address_);
    if (e.code() == "BACKEND_UNAVAILABLE" || e.code() == "TIMEOUT") throw e;
    return std::nullopt;  // anything else about the id: no such session for this purpose
  }
  facts.user_id = facts.status.user_id();
  facts.state = state_name(facts.status.lifecycle_state());
  return facts;
}

grpc::Status AccessService::Authorize(grpc::ServerContext*, const v1::AuthorizeRequest* request,
                                      v1::AuthorizeResponse* response) {
  return handle_rpc([&] {
    AccessType type = AccessType::terminal;  // unspecified: the strictest
    switch (request->access_type()) {
      case v1::ACCESS_TYPE_STATUS: type = AccessType::status; break;
      case v1::ACCESS_TYPE_DETAILS: type = AccessType::details; break;
      case v1::ACCESS_TYPE_CONTROL: type = AccessType::control; break;
      case v1::ACCESS_TYPE_STAFF_VIEW: type = AccessType::staff_view; break;
      case v1::ACCESS_TYPE_STAFF_ACT: type = AccessType::staff_act; break;
      default: break;
    }
    Decision d = authorizer_.authorize({request->session_id(), request->user_id(), type, request->client_ip(),
                                        {request->roles().begin(), request->roles().end()}});
    if (!d.granted) throw Error("ACCESS_DENIED", "Access denied");
    response->set_authorized(true);
    response->set_session_id(d.session_id);
    response->set_user_id(d.user_id);
    response->set_state(parse_state_name(d.state).value_or(v1::SESSION_STATE_UNSPECIFIED));
    *response->mutable_status() = std::move(d.status);
  });
}

grpc::Status AccessService::ListAccessLog(grpc::ServerContext*, const v1::ListAccessLogRequest* request,
                                          v1::ListAccessLogResponse* response) {
  return handle_rpc([&] {
    for (const LogEntry& e : authorizer_.log(request->session_id(), request->limit() ? request->limit() : 100)) {
      auto* out = response->add_entries();
      out->set_session_id(e.session_id);
      out->set_user_id(e.user_id);
      out->set_access_type(parse_access_type_name(e.access_type).value_or(v1::ACCESS_TYPE_UNSPECIFIED));
      out->set_granted(e.granted);
      out->set_denial_reason(e.denial_reason);
      out->set_client_ip(e.client_ip);
      *out->mutable_at() = to_proto(e.at);
    }
  });
}

}  // namespace examiso::access
