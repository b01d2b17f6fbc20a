#pragma once
#include "examiso/v1/identity.grpc.pb.h"
#include "services/identity/revocations.h"
#include "services/identity/tickets.h"
#include "services/identity/token.h"

namespace examiso::identity {

// Adapts the identity RPCs to identity checks and tokens; nothing more.
class IdentityService final : public v1::IdentityService::Service {
 public:
  IdentityService(const TokenVerifier& verifier, const TokenIssuer& issuer, TicketStore& tickets,
                  RevocationStore& revocations)
      : verifier_(verifier), issuer_(issuer), tickets_(tickets), revocations_(revocations) {}

  grpc::Status ValidateIdentity(grpc::ServerContext*, const v1::ValidateIdentityRequest* request,
                                v1::ValidateIdentityResponse* response) override;
  grpc::Status VerifyToken(grpc::ServerContext*, const v1::VerifyTokenRequest* request,
                           v1::VerifyTokenResponse* response) override;
  grpc::Status IssueToken(grpc::ServerContext*, const v1::IssueTokenRequest* request,
                          v1::IssueTokenResponse* response) override;
  grpc::Status IssueTerminalTicket(grpc::ServerContext*, const v1::IssueTerminalTicketRequest* request,
                                   v1::IssueTerminalTicketResponse* response) override;
  grpc::Status RedeemTerminalTicket(grpc::ServerContext*, const v1::RedeemTerminalTicketRequest* request,
                                    v1::RedeemTerminalTicketResponse* response) override;
  grpc::Status RefreshToken(grpc::ServerContext*, const v1::RefreshTokenRequest* request,
                            v1::IssueTokenResponse* response) override;
  grpc::Status RevokeToken(grpc::ServerContext*, const v1::RevokeTokenRequest* request,
                           v1::RevokeTokenResponse* response) override;

 private:
  // A valid token that has not been revoked; UNAUTHENTICATED otherwise.
  VerifiedToken verify(const std::string& token);

  const TokenVerifier& verifier_;
  const TokenIssuer& issuer_;
  TicketStore& tickets_;
  RevocationStore& revocations_;
};

}  // namespace examiso::identity
