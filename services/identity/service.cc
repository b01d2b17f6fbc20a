#include "services/identity/service.h"

#include "common/errors.h"
#include "common/identity.h"
#include "common/log.h"
#include "common/proto_time.h"
#include "common/rpc.h"

namespace examiso::identity {
namespace {

// A token made (issued or refreshed): the answer, and a line in the log.
void answer(v1::IssueTokenResponse* response, const IssuedToken& token, const char* event) {
  response->set_token(token.token);
  response->set_user_id(token.user_id);
  *response->mutable_expires_at() = to_proto(token.expires_at);
  for (const auto& role : token.roles) response->add_roles(role);
  log::info(event, {{"user_id", token.user_id}, {"roles", token.roles}, {"expires_at", iso8601(token.expires_at)}});
}

}  // namespace

grpc::Status IdentityService::ValidateIdentity(grpc::ServerContext*, const v1::ValidateIdentityRequest* request,
                                               v1::ValidateIdentityResponse* response) {
  return handle_rpc([&] {
    const auto ids = check_identity({{"user_id", request->user_id()},
                                     {"exam_session_id", request->exam_session_id()},
                                     {"environment_id", request->environment_id(), request->require_environment_id()}});
    response->set_valid(true);
    auto* identity = response->mutable_identity();
    identity->set_user_id(ids[0]);
    identity->set_exam_session_id(ids[1]);
    if (!ids[2].empty()) identity->set_environment_id(ids[2]);
  });
}

VerifiedToken IdentityService::verify(const std::string& token) {
  VerifiedToken verified = verifier_.verify(token);
  if (revocations_.revoked(token))
    throw Error("UNAUTHENTICATED", "Token has been revoked", Json{{"reason", "revoked"}});
  return verified;
}

grpc::Status IdentityService::VerifyToken(grpc::ServerContext*, const v1::VerifyTokenRequest* request,
                                          v1::VerifyTokenResponse* response) {
  return handle_rpc([&] {
    const VerifiedToken token = verify(request->token());
    response->set_user_id(token.user_id);
    *response->mutable_expires_at() = to_proto(token.expires_at);
    response->set_algorithm(token.algorithm);
    for (const auto& role : token.roles) response->add_roles(role);
  });
}

grpc::Status IdentityService::IssueToken(grpc::ServerContext*, const v1::IssueTokenRequest* request,
                                         v1::IssueTokenResponse* response) {
  return handle_rpc([&] {
    answer(response,
           issuer_.issue(request->user_id(), std::chrono::seconds(request->ttl_seconds()),
                         {request->roles().begin(), request->roles().end()}),
           "token_issued");
  });
}

grpc::Status IdentityService::IssueTerminalTicket(grpc::ServerContext*, const v1::IssueTerminalTicketRequest* request,
                                                  v1::IssueTerminalTicketResponse* response) {
  return handle_rpc([&] {
    const Ticket t = tickets_.issue(request->user_id(), request->session_id(),
                                    {request->roles().begin(), request->roles().end()});
    response->set_ticket(t.ticket);
    *response->mutable_expires_at() = to_proto(t.expires_at);
  });
}

grpc::Status IdentityService::RedeemTerminalTicket(grpc::ServerContext*, const v1::RedeemTerminalTicketRequest* request,
                                                   v1::RedeemTerminalTicketResponse* response) {
  return handle_rpc([&] {
    const auto holder = tickets_.redeem(request->ticket(), request->session_id());
    response->set_user_id(holder.user_id);
    for (const auto& role : holder.roles) response->add_roles(role);
  });
}

grpc::Status IdentityService::RefreshToken(grpc::ServerContext*, const v1::RefreshTokenRequest* request,
                                           v1::IssueTokenResponse* response) {
  return handle_rpc([&] {
    answer(response, issuer_.refresh(verify(request->token())), "token_refreshed");
  });
}

grpc::Status IdentityService::RevokeToken(grpc::ServerContext*, const v1::RevokeTokenRequest* request,
                                          v1::RevokeTokenResponse* response) {
  return handle_rpc([&] {
    const VerifiedToken token = verifier_.verify(request->token());
    revocations_.revoke(request->token(), token.expires_at);
    response->set_user_id(token.user_id);
    log::info("token_revoked", {{"user_id", token.user_id}});
  });
}

}  // namespace examiso::identity
