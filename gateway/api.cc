#include "gateway/api.h"

#include <algorithm>

#include "common/identity.h"
#include "common/log.h"
#include "common/proto_names.h"
#include "common/proto_time.h"
#include "common/uuid.h"
#include "gateway/terminal.h"

namespace examiso::gateway {
namespace {

// /v1/sessions/{id}/rest (and /v1/admin/sessions/...) -> id and the template path.
struct Match {
  std::string templ;
  std::string id;
};

Match match_path(const std::string& path) {
  for (const std::string prefix : {"/v1/sessions/", "/v1/admin/sessions/"}) {
    if (path.rfind(prefix, 0) != 0 || path.size() == prefix.size()) continue;
    const std::string rest = path.substr(prefix.size());
    const auto slash = rest.find('/');
    const std::string id = rest.substr(0, slash);
    const std::string tail = slash == std::string::npos ? "" : rest.substr(slash);
    return {prefix + "{id}" + tail, id};
  }
  return {path, ""};
}

}  // namespace

HttpResponse ok(Json data, int status) {
  // Moved in, not copied through an initializer list: a room of 1,000 sessions is a large tree.
  Json body = Json::object();
  body["success"] = true;
  body["data"] = std::move(data);
  return {status, compact_json(body), "application/json", {}};
}

const std::vector<Route>& Api::routes() {
  static const std::vector<Route> r{
      {"GET", "/healthz"},
      {"GET", "/readyz"},
      {"GET", "/metrics"},
      {"GET", "/v1/exams"},
      {"POST", "/v1/dev/token"},
      {"POST", "/v1/auth/refresh"},
      {"POST", "/v1/auth/logout"},
      {"POST", "/v1/sessions"},
      {"GET", "/v1/sessions"},
      {"GET", "/v1/sessions/{id}"},
      {"GET", "/v1/sessions/{id}/status"},
      {"POST", "/v1/sessions/{id}/start"},
      {"POST", "/v1/sessions/{id}/terminate"},
      {"POST", "/v1/sessions/{id}/terminal-ticket"},
      {"GET", "/v1/sessions/{id}/terminal"},  // WebSocket
      // Staff (proctor or admin): every one asks access first.
      {"GET", "/v1/admin/sessions"},
      {"GET", "/v1/admin/sessions/{id}"},
      {"POST", "/v1/admin/sessions/{id}/terminate"},
      {"POST", "/v1/admin/sessions/{id}/extend"},
      {"POST", "/v1/admin/sessions/{id}/message"},
      {"GET", "/v1/admin/sessions/{id}/terminal"},  // WebSocket, read-only
      {"POST", "/v1/admin/sessions/{id}/terminal-ticket"},  // for a browser's read-only view
  };
  return r;
}

std::string Api::public_message(const Error& e) {
  const std::string& code = e.code();
  if (code == "ACCESS_DENIED") return "Access denied";
  if (code == "BACKEND_UNAVAILABLE") return "A service is unavailable; try again shortly";
  if (code == "TIMEOUT") return "A service did not answer in time";
  if (e.kind().http >= 500) return "Internal error";
  return e.what();
}

HttpResponse Api::error_response(const Error& e) {
  Json error{{"code", e.code()}, {"message", public_message(e)}};
  // The caller's own active session, so that a client can resume it.
  if (e.code() == "ACTIVE_SESSION_EXISTS" && e.details().contains("session_id"))
    error["session_id"] = e.details()["session_id"];
  HttpResponse r{e.kind().http, compact_json(Json{{"success", false}, {"error", error}}), "application/json", {}};
  if (e.code() == "UNAUTHENTICATED") r.headers.emplace_back("WWW-Authenticate", "Bearer");
  if (e.code() == "RATE_LIMITED") r.headers.emplace_back("Retry-After", "1");
  return r;
}

Api::Api(Backends& backends, Metrics& metrics, ApiOptions options)
    : backends_(backends),
      metrics_(metrics),
      o_(std::move(options)),
      per_ip_(o_.ip_rate, o_.ip_burst),
      per_user_(o_.user_rate, o_.user_burst),
      tokens_(o_.token_cache),
      proxies_(o_.trusted_proxies),
      sockets_(o_.max_websockets_per_user) {}

void Api::handle(HttpRequest request, Respond respond) {
  auto c = std::make_shared<Context>();
  const Match m = match_path(request.path);
  c->route = m.templ;
  c->session_id = m.id;
  c->request = std::move(request);
  c->request.client_ip = proxies_.client(c->request.client_ip, c->request.forwarded_for);
  // Count every answer under its route template (unknown paths as one).
  const bool known = std::any_of(routes().begin(), routes().end(), [&](const Route& r) { return r.path == m.templ; });
  if (!known) c->route = "(unknown)";
  c->respond = [this, route = c->route, started = c->started, respond = std::move(respond)](HttpResponse r) {
    metrics_.request(route, r.status, std::chrono::steady_clock::now() - started);
    respond(std::move(r));
  };
  // What proves no user counts against its address (a user's requests count
  // per user, once authenticated).
  static const std::vector<std::string> anonymous = {"/healthz", "/readyz", "/metrics", "/v1/dev/token",
                                                     "/v1/sessions/{id}/terminal"};
  const bool charged = !known || std::find(anonymous.begin(), anonymous.end(), m.templ) != anonymous.end();
  if (charged && !per_ip_.allow(c->request.client_ip)) return c->fail(Error("RATE_LIMITED", "Too many requests"));
  if (!known) return c->fail(Error("NOT_FOUND", "No such endpoint"));
  const bool method_ok = std::any_of(routes().begin(), routes().end(), [&](const Route& r) {
    return r.path == m.templ && r.method == c->request.method;
  });
  if (!method_ok) {
    std::string allow;
    for (const auto& r : routes())
      if (r.path == m.templ) allow += (allow.empty() ? "" : ", ") + r.method;
    HttpResponse r = error_response(Error("METHOD_NOT_ALLOWED", "Method not allowed here"));
    r.headers.emplace_back("Allow", allow);
    return c->respond(std::move(r));
  }
  dispatch(c);
}

void Api::dispatch(const std::shared_ptr<Context>& c) {
  const std::string key = c->request.method + " " + c->route;
  if (key == "GET /healthz") return c->respond(ok(Json{{"status", "ok"}}));
  if (key == "GET /readyz") {
    return backends_.check_health([c](bool ready, Json services) {
      if (ready) return c->respond(ok(Json{{"ready", true}, {"services", services}}));
      HttpResponse r = error_response(Error("BACKEND_UNAVAILABLE", ""));
      Json body = Json::parse(r.body);
      body["error"]["services"] = services;
      r.body = compact_json(body);
      c->respond(std::move(r));
    });
  }
  if (key == "GET /metrics") return c->respond({200, metrics_.render(), "text/plain; version=0.0.4", {}});
  if (key == "POST /v1/dev/token") return dev_token(c);
  if (key == "POST /v1/auth/refresh") return refresh_token(c);
  if (key == "POST /v1/auth/logout") return revoke_token(c);
  if (key == "GET /v1/sessions/{id}/terminal")
    return c->fail(Error("INVALID_ARGUMENT", "This endpoint is a WebSocket: send an Upgrade request"));
  authenticate(c, [this, c, key](std::string) {
    if (key == "GET /v1/exams") return list_exams(c);
    if (key == "POST /v1/sessions") return create_session(c);
    if (key == "GET /v1/sessions") return list_sessions(c);
    if (key == "GET /v1/sessions/{id}") return get_session(c);
    if (key == "GET /v1/sessions/{id}/status") return get_status(c);
    if (key == "POST /v1/sessions/{id}/start") return start_session(c);
    if (key == "POST /v1/sessions/{id}/terminate") return terminate_session(c);
    if (key == "POST /v1/sessions/{id}/terminal-ticket") return terminal_ticket(c);
    if (key == "GET /v1/admin/sessions") return admin_list_sessions(c);
    if (key == "GET /v1/admin/sessions/{id}") return admin_get_session(c);
    if (key == "POST /v1/admin/sessions/{id}/terminate") return admin_terminate(c);
    if (key == "POST /v1/admin/sessions/{id}/extend") return admin_extend(c);
    if (key == "POST /v1/admin/sessions/{id}/message") return admin_message(c);
    if (key == "POST /v1/admin/sessions/{id}/terminal-ticket") {
      return authorize(c, v1::ACCESS_TYPE_STAFF_VIEW, [this, c] { issue_ticket(c); });
    }
    if (key == "GET /v1/admin/sessions/{id}/terminal") {
      // Staff only, as every admin route (a candidate learns nothing more here).
      return authorize(c, v1::ACCESS_TYPE_STAFF_VIEW, [c] {
        c->fail(Error("INVALID_ARGUMENT", "This endpoint is a WebSocket: send an Upgrade request"));
      });
    }
    c->fail(Error("NOT_FOUND", "No such endpoint"));
  });
}

void Api::unauthenticated(const std::shared_ptr<Context>& c, const std::string& message) {
  per_ip_.allow(c->request.client_ip);  // a failed authentication costs its address
  c->fail(Error("UNAUTHENTICATED", message));
}

std::optional<std::string> Api::bearer(const std::shared_ptr<Context>& c) {
  const std::string& header = c->request.authorization;
  static const std::string prefix = "Bearer ";
  if (header.size() <= prefix.size() || header.compare(0, prefix.size(), prefix) != 0 || header.size() > 8192) {
    unauthenticated(c, "A bearer token is required");
    return std::nullopt;
  }
  std::string token = header.substr(prefix.size());
  // A JWT is base64url and dots: anything else is refused here.
  const bool jwt_chars = std::all_of(token.begin(), token.end(), [](char ch) {
    return std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '_' || ch == '.';
  });
  if (!jwt_chars) {
    unauthenticated(c, "Invalid or expired token");
    return std::nullopt;
  }
  return token;
}

void Api::authenticate(const std::shared_ptr<Context>& c, std::function<void(std::string)> next) {
  const auto found = bearer(c);
  if (!found) return;
  const std::string token = *found;
  const auto proceed = [this, c, next](const Caller& caller) {
    if (!per_user_.allow(caller.user_id)) return c->fail(Error("RATE_LIMITED", "Too many requests"));
    c->user_id = caller.user_id;
    c->roles = caller.roles;
    next(caller.user_id);
  };
  if (auto caller = tokens_.caller(token)) return proceed(*caller);
  // A token not known yet, from an address that failed too often: refused
  // before any more checking (those known go on, whoever shares the address).
  if (per_ip_.exhausted(c->request.client_ip)) return c->fail(Error("RATE_LIMITED", "Too many requests"));
  v1::VerifyTokenRequest request;
  request.set_token(token);
  auto call = backends_.call<v1::VerifyTokenRequest, v1::VerifyTokenResponse>(std::move(request));
  backends_.identity()->VerifyToken(&call->context, &call->request, &call->response,
                                    [this, c, call, token, proceed](grpc::Status s) {
                                      if (!s.ok()) return identity_refused(c, s);
                                      const auto& r = call->response;
                                      const Caller caller{r.user_id(), {r.roles().begin(), r.roles().end()}};
                                      tokens_.remember(token, caller, from_proto(r.expires_at()));
                                      proceed(caller);
                                    });
}

void Api::authorize(const std::shared_ptr<Context>& c, v1::AccessType type, std::function<void()> next) {
  v1::AuthorizeRequest request;
  request.set_session_id(c->session_id);
  request.set_user_id(c->user_id);
  request.set_access_type(type);
  request.set_client_ip(c->request.client_ip);
  for (const auto& role : c->roles) request.add_roles(role);
  auto call = backends_.call<v1::AuthorizeRequest, v1::AuthorizeResponse>(std::move(request));
  backends_.access()->Authorize(&call->context, &call->request, &call->response,
                                [this, c, call, next](grpc::Status s) {
                                  if (!s.ok()) return c->fail(backends_.error(s, "access"));
                                  c->session_id = call->response.session_id();  // canonical from here on
                                  c->status = std::move(*call->response.mutable_status());
                                  next();
                                });
}

void Api::list_exams(const std::shared_ptr<Context>& c) {
  auto call = backends_.call<v1::ListExamsRequest, v1::ListExamsResponse>({});
  backends_.lifecycle()->ListExams(&call->context, &call->request, &call->response, [this, c, call](grpc::Status s) {
    if (!s.ok()) return c->fail(backends_.error(s, "lifecycle"));
    Json exams = Json::array();
    for (const auto& e : call->response.exams())
      exams.push_back(Json{{"exam_id", e.exam_id()}, {"title", e.title()}, {"duration_seconds", e.duration_seconds()}});
    c->respond(ok(Json{{"exams", exams}}));
  });
}

void Api::create_session(const std::shared_ptr<Context>& c) {
  const Json body = Json::parse(c->request.body, nullptr, false);
  if (!body.is_object()) return c->fail(Error("INVALID_JSON", "The request body must be a JSON object"));
  const auto exam = body.find("exam_id");
  if (exam == body.end() || !exam->is_string() || !is_uuid(exam->get<std::string>()))
    return c->fail(Error("INVALID_EXAM_ID", "exam_id must be the UUID of an exam in the catalog"));
  v1::CreateSessionRequest request;
  request.set_user_id(c->user_id);
  request.set_exam_id(exam->get<std::string>());
  request.set_auto_provision(true);
  request.set_actor("gateway");
  auto call = backends_.call<v1::CreateSessionRequest, v1::Session>(std::move(request));
  backends_.lifecycle()->CreateSession(&call->context, &call->request, &call->response,
                                       [this, c, call](grpc::Status s) {
                                         if (!s.ok()) return c->fail(backends_.error(s, "lifecycle"));
                                         const auto& session = call->response;
                                         const std::string base =
                                             (c->request.secure ? "wss://" : "ws://") + c->request.host;
                                         const std::string id = session.session_id();
                                         c->respond(ok(Json{{"session_id", id},
                                                            {"user_id", session.user_id()},
                                                            {"exam_id", session.exam_id()},
                                                            {"status", state_name(session.state())},
                                                            {"websocket_url", base + "/v1/sessions/" + id + "/terminal"},
                                                            {"status_url", base + "/v1/sessions/" + id + "/status"}},
                                                       201));
                                       });
}

void Api::list_sessions(const std::shared_ptr<Context>& c) {
  v1::ListSessionsRequest request;
  request.set_user_id(c->user_id);
  request.set_limit(50);
  respond_sessions(c, std::move(request), [](const v1::Session& x) {
    return Json{{"session_id", x.session_id()},
                {"exam_id", x.exam_id()},
                {"lifecycle_state", state_name(x.state())},
                {"created_at", time_json(x.has_created_at(), x.created_at())},
                {"remaining_seconds", x.remaining_seconds()}};
  });
}

void Api::respond_sessions(const std::shared_ptr<Context>& c, v1::ListSessionsRequest request,
                           std::function<Json(const v1::Session&)> one) {
  auto call = backends_.call<v1::ListSessionsRequest, v1::ListSessionsResponse>(std::move(request));
  backends_.lifecycle()->ListSessions(&call->context, &call->request, &call->response,
                                      [this, c, call, one = std::move(one)](grpc::Status s) {
                                        if (!s.ok()) return c->fail(backends_.error(s, "lifecycle"));
                                        Json data = Json::object();
                                        Json& sessions = data["sessions"] = Json::array();
                                        for (const auto& x : call->response.sessions()) sessions.push_back(one(x));
                                        c->respond(ok(std::move(data)));
                                      });
}

void Api::get_session(const std::shared_ptr<Context>& c) {
  authorize(c, v1::ACCESS_TYPE_DETAILS, [this, c] {
    v1::GetSessionRequest request;
    request.set_session_id(c->session_id);
    auto call = backends_.call<v1::GetSessionRequest, v1::Session>(std::move(request));
    backends_.lifecycle()->GetSession(&call->context, &call->request, &call->response, [this, c, call](grpc::Status s) {
      if (!s.ok()) return c->fail(backends_.error(s, "lifecycle"));
      v1::GetEnvironmentRequest env_request;
      env_request.set_session_id(c->session_id);
      auto env = backends_.call<v1::GetEnvironmentRequest, v1::Environment>(std::move(env_request));
      backends_.environment()->async()->GetEnvironment(
          &env->context, &env->request, &env->response, [this, c, call, env](grpc::Status es) {
            const auto& x = call->response;
            Json environment{{"ready", false}, {"environment_id", nullptr}};
            if (es.ok()) {
              environment = Json{{"ready", env->response.ready()},
                                 {"environment_id", env->response.environment_id()},
                                 {"status", environment_status_name(env->response.status())}};
            } else if (es.error_code() != grpc::StatusCode::NOT_FOUND) {
              return c->fail(backends_.error(es, "environment"));
            }
            c->respond(ok(Json{{"session_id", x.session_id()},
                               {"user_id", x.user_id()},
                               {"exam_id", x.exam_id()},
                               {"lifecycle_state", state_name(x.state())},
                               {"created_at", time_json(x.has_created_at(), x.created_at())},
                               {"started_at", time_json(x.has_started_at(), x.started_at())},
                               {"deadline", time_json(x.has_deadline(), x.deadline())},
                               {"remaining_seconds", x.remaining_seconds()},
                               {"environment", environment}}));
          });
    });
  });
}

void Api::get_status(const std::shared_ptr<Context>& c) {
  // The status the access decision was made on: one lookup, and exactly what was authorized.
  authorize(c, v1::ACCESS_TYPE_STATUS, [c] { c->respond(ok(status_json(c->status))); });
}

void Api::start_session(const std::shared_ptr<Context>& c) {
  authorize(c, v1::ACCESS_TYPE_CONTROL, [this, c] {
    v1::TransitionRequest request;
    request.set_session_id(c->session_id);
    request.set_to(v1::SESSION_STATE_RUNNING);
    request.set_actor("gateway:" + c->user_id);
    auto call = backends_.call<v1::TransitionRequest, v1::TransitionResponse>(std::move(request));
    backends_.lifecycle()->Transition(&call->context, &call->request, &call->response, [this, c, call](grpc::Status s) {
      if (!s.ok()) return c->fail(backends_.error(s, "lifecycle"));
      const auto& x = call->response.session();
      c->respond(ok(Json{{"session_id", x.session_id()},
                         {"lifecycle_state", state_name(x.state())},
                         {"started_at", time_json(x.has_started_at(), x.started_at())},
                         {"deadline", time_json(x.has_deadline(), x.deadline())},
                         {"remaining_seconds", x.remaining_seconds()}}));
    });
  });
}

void Api::terminate_session(const std::shared_ptr<Context>& c) {
  authorize(c, v1::ACCESS_TYPE_CONTROL, [this, c] {
    end_session(c, v1::TERMINATION_REASON_SUBMITTED, "Submitted by the candidate", "gateway:" + c->user_id);
  });
}

void Api::end_session(const std::shared_ptr<Context>& c, v1::TerminationReason why, const std::string& reason,
                      const std::string& actor) {
  v1::TransitionRequest request;
  request.set_session_id(c->session_id);
  request.set_to(v1::SESSION_STATE_TERMINATED);
  request.set_termination_reason(why);
  request.set_reason(reason);
  request.set_actor(actor);
  auto call = backends_.call<v1::TransitionRequest, v1::TransitionResponse>(std::move(request));
  backends_.lifecycle()->Transition(&call->context, &call->request, &call->response, [this, c, call, why](grpc::Status s) {
    if (!s.ok()) {
      const Error e = backends_.error(s, "lifecycle");
      if (e.code() == "INVALID_TRANSITION")
        return c->fail(Error("SESSION_ALREADY_TERMINATED", "The session has already ended"));
      return c->fail(e);
    }
    // Release the environment now; cleanup would within a second anyway.
    v1::DestroyEnvironmentRequest destroy;
    destroy.set_session_id(c->session_id);
    destroy.set_reason(termination_reason_name(why));
    auto d = backends_.call<v1::DestroyEnvironmentRequest, v1::DestroyEnvironmentResponse>(std::move(destroy));
    d->context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(15));
    backends_.environment()->async()->DestroyEnvironment(
        &d->context, &d->request, &d->response, [c, d, call](grpc::Status ds) {
          const auto& session = call->response.session();
          c->respond(ok(Json{{"session_id", call->response.session_id()},
                             {"lifecycle_state", "terminated"},
                             {"termination_reason", termination_reason_name(session.termination_reason())},
                             {"reason", session.reason()},
                             {"terminated_at", time_json(session.has_terminated_at(), session.terminated_at())},
                             {"environment_released", ds.ok() || ds.error_code() == grpc::StatusCode::NOT_FOUND}}));
        });
  });
}

void Api::terminal_ticket(const std::shared_ptr<Context>& c) {
  authorize(c, v1::ACCESS_TYPE_STATUS, [this, c] { issue_ticket(c); });
}

// A ticket for the caller (already authorized) and the session; a staff
// member's carries their roles.
void Api::issue_ticket(const std::shared_ptr<Context>& c) {
  v1::IssueTerminalTicketRequest request;
  request.set_user_id(c->user_id);
  request.set_session_id(c->session_id);
  if (c->route.rfind("/v1/admin/", 0) == 0)
    for (const auto& role : c->roles) request.add_roles(role);
  auto call = backends_.call<v1::IssueTerminalTicketRequest, v1::IssueTerminalTicketResponse>(std::move(request));
  backends_.identity()->IssueTerminalTicket(&call->context, &call->request, &call->response,
                                            [this, c, call](grpc::Status s) {
                                              if (!s.ok()) return c->fail(backends_.error(s, "identity"));
                                              c->respond(ok(Json{{"ticket", call->response.ticket()},
                                                                 {"expires_at", time_json(true, call->response.expires_at())}}));
                                            });
}

void Api::dev_token(const std::shared_ptr<Context>& c) {
  const Json body = Json::parse(c->request.body.empty() ? "{}" : c->request.body, nullptr, false);
  if (!body.is_object()) return c->fail(Error("INVALID_JSON", "The request body must be a JSON object"));
  // Development sign-in (identity only issues tokens with a development
  // secret): a name always maps to the same user, so signing in again finds
  // that candidate's session; no name is a new user.
  v1::IssueTokenRequest request;
  request.set_user_id(new_uuid());
  if (body.contains("name")) {
    const Json& name = body["name"];
    if (!name.is_string() || name.get<std::string>().empty() || name.get<std::string>().size() > 64)
      return c->fail(Error("INVALID_ARGUMENT", "name must be a string of 1 to 64 characters", Json{{"field", "name"}}));
    request.set_user_id(name_based_uuid("examiso development user", name.get<std::string>()));
  }
  // A development proctor or administrator (identity checks the name).
  if (body.contains("role")) {
    if (!body["role"].is_string())
      return c->fail(Error("INVALID_ARGUMENT", "role must be candidate, proctor or admin", Json{{"field", "role"}}));
    request.add_roles(body["role"].get<std::string>());
  }
  auto call = backends_.call<v1::IssueTokenRequest, v1::IssueTokenResponse>(std::move(request));
  backends_.identity()->IssueToken(&call->context, &call->request, &call->response, [this, c, call](grpc::Status s) {
    if (!s.ok()) return c->fail(backends_.error(s, "identity"));
    c->respond(ok(token_json(call->response)));
  });
}

Json Api::token_json(const v1::IssueTokenResponse& token) {
  return Json{{"token", token.token()},
              {"user_id", token.user_id()},
              {"roles", std::vector<std::string>(token.roles().begin(), token.roles().end())},
              {"expires_at", time_json(true, token.expires_at())}};
}

void Api::identity_refused(const std::shared_ptr<Context>& c, const grpc::Status& s) {
  const Error e = backends_.error(s, "identity");
  if (e.code() == "UNAUTHENTICATED") return unauthenticated(c, "Invalid or expired token");
  c->fail(e);
}

std::optional<std::string> Api::token_for_identity(const std::shared_ptr<Context>& c) {
  if (!per_ip_.exhausted(c->request.client_ip)) return bearer(c);
  c->fail(Error("RATE_LIMITED", "Too many requests"));
  return std::nullopt;
}

void Api::refresh_token(const std::shared_ptr<Context>& c) {
  const auto token = token_for_identity(c);
  if (!token) return;
  v1::RefreshTokenRequest request;
  request.set_token(*token);
  auto call = backends_.call<v1::RefreshTokenRequest, v1::IssueTokenResponse>(std::move(request));
  backends_.identity()->RefreshToken(&call->context, &call->request, &call->response, [this, c, call](grpc::Status s) {
    if (!s.ok()) return identity_refused(c, s);
    c->respond(ok(token_json(call->response)));
  });
}

void Api::revoke_token(const std::shared_ptr<Context>& c) {
  const auto token = token_for_identity(c);
  if (!token) return;
  v1::RevokeTokenRequest request;
  request.set_token(*token);
  auto call = backends_.call<v1::RevokeTokenRequest, v1::RevokeTokenResponse>(std::move(request));
  backends_.identity()->RevokeToken(&call->context, &call->request, &call->response,
                                    [this, c, call, token = *token](grpc::Status s) {
                                      if (!s.ok()) return identity_refused(c, s);
                                      tokens_.forget(token);
                                      c->respond(ok(Json{{"revoked", true}}));
                                    });
}

bool Api::websocket_route(const std::string& path) {
  const Match m = match_path(path);
  return m.templ == "/v1/sessions/{id}/terminal" || m.templ == "/v1/sessions/{id}/status" ||
         m.templ == "/v1/admin/sessions/{id}/terminal";
}

void Api::decide_websocket(HttpRequest request, DecideWs decide) {
  const Match m = match_path(request.path);
  auto c = std::make_shared<Context>();
  c->route = m.templ;
  c->session_id = m.id;
  c->request = std::move(request);
  c->request.client_ip = proxies_.client(c->request.client_ip, c->request.forwarded_for);
  c->on_error = [decide](const Error& e) {
    WsDecision d;
    d.close_code = static_cast<uint16_t>(e.kind().ws_close);
    d.close_reason = public_message(e);
    decide(std::move(d));
  };
  // Cross-site WebSocket hijacking: a browser page from elsewhere is refused.
  if (!c->request.origin.empty() &&
      std::find(o_.allowed_origins.begin(), o_.allowed_origins.end(), c->request.origin) == o_.allowed_origins.end()) {
    WsDecision d;
    d.refuse = error_response(Error("ACCESS_DENIED", "Origin not allowed"));
    return decide(std::move(d));
  }
  if (per_ip_.exhausted(c->request.client_ip)) return c->fail(Error("RATE_LIMITED", "Too many requests"));
  const bool terminal = m.templ == "/v1/sessions/{id}/terminal";
  const bool observer = m.templ == "/v1/admin/sessions/{id}/terminal";
  const auto proceed = [this, c, terminal, observer, decide](const std::string& user) {
    c->user_id = user;
    // An observer is staff: by their token's roles, or their ticket's (issued
    // on the staff route); a candidate's ticket has none.
    if (observer && c->roles.empty()) return c->fail(Error("ACCESS_DENIED", "Staff only"));
    authorize(c, observer ? v1::ACCESS_TYPE_STAFF_VIEW : v1::ACCESS_TYPE_STATUS, [this, c, terminal, observer,
                                                                                 decide] {
      // A user's sockets are counted: past the cap, refused before the upgrade.
      auto slot = sockets_.take(c->user_id);
      if (!slot) {
        WsDecision d;
        d.refuse = error_response(Error("RATE_LIMITED", "Too many open connections for this user",
                                        Json{{"max_websockets_per_user", o_.max_websockets_per_user}}));
        return decide(std::move(d));
      }
      if (observer) {
        return open_observer(backends_, metrics_, c->session_id, [decide, slot = std::move(slot)](WsDecision d) {
          d.slot = slot;
          decide(std::move(d));
        });
      }
      if (!terminal) {
        WsDecision d;
        d.handler = make_status_stream(backends_, metrics_, c->session_id);
        d.slot = std::move(slot);
        return decide(std::move(d));
      }
      open_terminal(backends_, metrics_, c->session_id, c->user_id, c->request.client_ip,
                    [decide, slot = std::move(slot)](WsDecision d) {
                      d.slot = slot;
                      decide(std::move(d));
                    });
    });
  };
  const auto ticket = c->request.query.find("ticket");
  if (ticket != c->request.query.end()) {
    v1::RedeemTerminalTicketRequest r;
    r.set_ticket(ticket->second);
    r.set_session_id(c->session_id);
    auto call = backends_.call<v1::RedeemTerminalTicketRequest, v1::RedeemTerminalTicketResponse>(std::move(r));
    return backends_.identity()->RedeemTerminalTicket(
        &call->context, &call->request, &call->response, [this, c, call, proceed](grpc::Status s) {
          if (!s.ok()) {
            const Error e = backends_.error(s, "identity");
            if (e.code() == "UNAUTHENTICATED") per_ip_.allow(c->request.client_ip);  // a failure costs its address
            return c->fail(e);
          }
          c->roles = {call->response.roles().begin(), call->response.roles().end()};
          proceed(call->response.user_id());
        });
  }
  authenticate(c, proceed);
}

}  // namespace examiso::gateway
