// session-identity: validate identities, mint development tokens, check tokens.
#include <iostream>

#include "common/cli.h"
#include "common/proto_time.h"
#include "examiso/v1/identity.grpc.pb.h"

int main(int argc, char** argv) {
  using namespace examiso;
  cli::Command cmd("session-identity", "Validate exam identities and work with bearer tokens", "identity");
  std::string user_id, session_id, environment_id, token;
  std::vector<std::string> roles;
  int64_t ttl = 0;
  bool raw = false;

  auto* validate = cmd.subcommand("validate", "Check that an identity is complete and well-formed", [&] {
    v1::IdentityService::Stub stub(cmd.channel());
    v1::ValidateIdentityRequest request;
    request.set_user_id(user_id);
    request.set_exam_session_id(session_id);
    request.set_environment_id(environment_id);
    const auto r = cmd.call(&v1::IdentityService::Stub::ValidateIdentity, stub, request);
    const auto& id = r.identity();
    return Json{{"valid", r.valid()},
                {"identity",
                 {{"user_id", id.user_id()},
                  {"exam_session_id", id.exam_session_id()},
                  {"environment_id", id.has_environment_id() ? Json(id.environment_id()) : Json()}}}};
  });
  validate->add_option("--user-id", user_id, "the candidate's user id (UUID)");
  validate->add_option("--session-id", session_id, "the exam session id (UUID)");
  validate->add_option("--environment-id", environment_id, "the environment id (UUID), once provisioned");

  auto* issue = cmd.subcommand("token", "Mint a development token (needs identity.dev_sign_in)", [&] {
    v1::IdentityService::Stub stub(cmd.channel());
    v1::IssueTokenRequest request;
    request.set_user_id(user_id);
    request.set_ttl_seconds(ttl);
    for (const auto& role : roles) request.add_roles(role);
    const auto r = cmd.call(&v1::IdentityService::Stub::IssueToken, stub, request);
    if (raw) return Json(r.token());
    return Json{{"token", r.token()},
                {"user_id", r.user_id()},
                {"roles", std::vector<std::string>(r.roles().begin(), r.roles().end())},
                {"expires_at", iso8601(from_proto(r.expires_at()))}};
  });
  issue->add_option("--user-id", user_id, "the user the token is for (UUID)")->required();
  issue->add_option("--ttl", ttl, "lifetime in seconds (default: identity.token_ttl_seconds)");
  issue->add_option("--role", roles, "candidate (default), proctor or admin; may be repeated")
      ->check(CLI::IsMember({"candidate", "proctor", "admin"}));
  issue->add_flag("--raw", raw, "print the bare token, for $(...) in a shell");

  auto* verify = cmd.subcommand("verify", "Verify a bearer token and print whose it is", [&] {
    v1::IdentityService::Stub stub(cmd.channel());
    v1::VerifyTokenRequest request;
    request.set_token(token);
    const auto r = cmd.call(&v1::IdentityService::Stub::VerifyToken, stub, request);
    return Json{{"valid", true},
                {"user_id", r.user_id()},
                {"algorithm", r.algorithm()},
                {"roles", std::vector<std::string>(r.roles().begin(), r.roles().end())},
                {"expires_at", iso8601(from_proto(r.expires_at()))}};
  });
  verify->add_option("--token", token, "the JWT")->required();

  auto* revoke = cmd.subcommand("revoke", "Revoke a valid token (it is refused from then on)", [&] {
    v1::IdentityService::Stub stub(cmd.channel());
    v1::RevokeTokenRequest request;
    request.set_token(token);
    const auto r = cmd.call(&v1::IdentityService::Stub::RevokeToken, stub, request);
    return Json{{"revoked", true}, {"user_id", r.user_id()}};
  });
  revoke->add_option("--token", token, "the JWT")->required();

  return cmd.run(argc, argv);
}
