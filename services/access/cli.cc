// environment-access: may this user reach this session? And the audit log.
#include "common/cli.h"
#include "common/identity.h"
#include "common/proto_names.h"
#include "examiso/v1/access.grpc.pb.h"

int main(int argc, char** argv) {
  using namespace examiso;
  cli::Command cmd("environment-access", "Check who may reach an exam session, and read the access log", "access");
  std::string session_id, user_id, access_type = "terminal", client_ip;
  int limit = 20;

  auto* authorize = cmd.subcommand("authorize", "Ask whether a user may reach a session", [&] {
    // Identity must be named; whether it is well-formed is part of the
    // decision, so that a malformed id is denied like any other.
    check_identity_present({{"exam_session_id", session_id}, {"user_id", user_id}});
    v1::AccessService::Stub stub(cmd.channel());
    v1::AuthorizeRequest request;
    request.set_session_id(session_id);
    request.set_user_id(user_id);
    request.set_access_type(*parse_access_type_name(access_type));
    request.set_client_ip(client_ip.empty() ? "cli" : client_ip);
    const auto r = cmd.call(&v1::AccessService::Stub::Authorize, stub, request);
    return Json{{"authorized", r.authorized()}, {"session_id", r.session_id()}, {"user_id", r.user_id()}};
  });
  authorize->add_option("--session-id", session_id, "the exam session");
  authorize->add_option("--user-id", user_id, "the user asking");
  authorize->add_option("--access-type", access_type, "terminal (default), status, details or control")
      ->check(CLI::IsMember({"terminal", "status", "details", "control"}));
  authorize->add_option("--client-ip", client_ip, "the address the request came from, for the log");

  auto* log = cmd.subcommand("log", "Show recent access decisions, newest first", [&] {
    v1::AccessService::Stub stub(cmd.channel());
    v1::ListAccessLogRequest request;
    request.set_session_id(session_id);
    request.set_limit(limit);
    const auto r = cmd.call(&v1::AccessService::Stub::ListAccessLog, stub, request);
    Json out = Json::array();
    for (const auto& e : r.entries()) {
      out.push_back(Json{{"at", time_json(e.has_at(), e.at())},
                         {"session_id", e.session_id()},
                         {"user_id", e.user_id()},
                         {"access_type", access_type_name(e.access_type())},
                         {"granted", e.granted()},
                         {"denial_reason", e.denial_reason()},
                         {"client_ip", e.client_ip()}});
    }
    return Json{{"entries", out}};
  });
  log->add_option("--session-id", session_id, "only this session");
  log->add_option("--limit", limit, "at most this many (default 20)")->check(CLI::Range(1, 10000));

  return cmd.run(argc, argv);
}
