#pragma once
// The public API: routes that authenticate, ask the access service, call the
// services and translate their answers into the contract's envelope. No
// domain rules live here.
#include <chrono>
#include <string>
#include <vector>

#include "gateway/backends.h"
#include "gateway/http.h"
#include "gateway/limits.h"
#include "gateway/metrics.h"

namespace examiso::gateway {

struct ApiOptions {
  std::vector<std::string> allowed_origins;
  // Per address, requests that prove no user: anonymous ones and failed
  // authentications. A user's requests count per user only, so an exam hall
  // behind one address is not refused as it starts.
  double ip_rate = 100, ip_burst = 200;
  double user_rate = 50, user_burst = 100;
  std::chrono::seconds token_cache{30};
  std::vector<std::string> trusted_proxies;
  int64_t max_websockets_per_user = 16;
};

// The contract's success envelope around `data`.
HttpResponse ok(Json data, int status = 200);

struct Route {
  std::string method;
  std::string path;  // with {id} for a session id
};

class Api final {
 public:
  Api(Backends& backends, Metrics& metrics, ApiOptions options);

  void handle(HttpRequest request, Respond respond);

  static bool websocket_route(const std::string& path);
  // Authenticates and authorizes a WebSocket before the upgrade is accepted.
  void decide_websocket(HttpRequest request, DecideWs decide);

  // Every route the server answers (the OpenAPI document must list them all).
  static const std::vector<Route>& routes();

  // The contract's error envelope for `error` (internal details withheld).
  static HttpResponse error_response(const Error& error);
  // What the public may read of an error: 5xx details stay inside.
  static std::string public_message(const Error& error);

 private:
  // One request on its way (shared by its callbacks).
  struct Context {
    HttpRequest request;
    Respond respond;
    std::string route;
    std::string session_id;  // as in the path
    std::string user_id;     // once authenticated
    std::vector<std::string> roles;  // the token's, once authenticated
    v1::SessionStatus status;  // once authorized: the session as access saw it
    std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();

    // A WebSocket's failures become close codes (a browser sees nothing else).
    std::function<void(const Error&)> on_error;

    void fail(const Error& e) { on_error ? on_error(e) : respond(Api::error_response(e)); }
  };
  void authenticate(const std::shared_ptr<Context>& c, std::function<void(std::string user_id)> next);
  void authorize(const std::shared_ptr<Context>& c, v1::AccessType type, std::function<void()> next);
  void dispatch(const std::shared_ptr<Context>& c);

  void create_session(const std::shared_ptr<Context>& c);
  void list_sessions(const std::shared_ptr<Context>& c);
  // Lists sessions as `request` asks; the answer is {"sessions": [one(x)...]}.
  void respond_sessions(const std::shared_ptr<Context>& c, v1::ListSessionsRequest request,
                        std::function<Json(const v1::Session&)> one);
  void get_session(const std::shared_ptr<Context>& c);
  void get_status(const std::shared_ptr<Context>& c);
  void start_session(const std::shared_ptr<Context>& c);
  void terminate_session(const std::shared_ptr<Context>& c);
  // The session (c->session_id, authorized) ends as `why`; its environment is
  // released at once; the answer is the ended session.
  void end_session(const std::shared_ptr<Context>& c, v1::TerminationReason why, const std::string& reason,
                   const std::string& actor);
  // Staff (gateway/admin.cc).
  void admin_list_sessions(const std::shared_ptr<Context>& c);
  void admin_get_session(const std::shared_ptr<Context>& c);
  void admin_terminate(const std::shared_ptr<Context>& c);
  void admin_extend(const std::shared_ptr<Context>& c);
  void admin_message(const std::shared_ptr<Context>& c);
  void terminal_ticket(const std::shared_ptr<Context>& c);
  void issue_ticket(const std::shared_ptr<Context>& c);
  void list_exams(const std::shared_ptr<Context>& c);
  void dev_token(const std::shared_ptr<Context>& c);
  void refresh_token(const std::shared_ptr<Context>& c);
  void revoke_token(const std::shared_ptr<Context>& c);
  // The bearer token of the request, or nullopt (the caller's address is
  // charged and the request fails UNAUTHENTICATED).
  std::optional<std::string> bearer(const std::shared_ptr<Context>& c);
  // The same for a token that identity checks itself, never the cache (a
  // revoked token is refused): an address that failed too often is refused first.
  std::optional<std::string> token_for_identity(const std::shared_ptr<Context>& c);
  void unauthenticated(const std::shared_ptr<Context>& c, const std::string& message);
  // An identity call's failure: a refusal is a failed authentication, the rest as it is.
  void identity_refused(const std::shared_ptr<Context>& c, const grpc::Status& s);
  static Json token_json(const v1::IssueTokenResponse& token);

  Backends& backends_;
  Metrics& metrics_;
  ApiOptions o_;
  RateLimiter per_ip_, per_user_;
  TokenCache tokens_;
  TrustedProxies proxies_;
  SocketSlots sockets_;
};

}  // namespace examiso::gateway
