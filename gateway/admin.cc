// The staff API (/v1/admin/...): proctors and administrators see the room and
// act on a session. The access service decides every request from the token's
// roles and logs it like any other decision; a candidate gets 403 here.
#include <algorithm>
#include <cctype>
#include <functional>
#include <optional>

#include "common/clock.h"
#include "common/identity.h"
#include "common/json.h"
#include "common/proto_names.h"
#include "common/proto_time.h"
#include "common/uuid.h"
#include "gateway/api.h"

namespace examiso::gateway {
namespace {

// A room's list is one gRPC answer: 1,000 sessions with their reasons stay
// well inside its 4 MB.
constexpr int kMostRoomSize = 1000;
constexpr size_t kMostReasonBytes = 1000;
constexpr size_t kMostMessageBytes = 2000;  // as the environment service takes

// A termination reason's name, or null for none.
Json reason_json(v1::TerminationReason r) { return r ? Json(termination_reason_name(r)) : Json(); }

// The staff's view of a session, as JSON text written straight out: the room
// lists up to 1,000 of them, and building a tree of them first took most of
// its time.
void append_session(std::string& out, const v1::Session& x) {
  const auto key = [&](const char* k) {
    out += '"';
    out += k;
    out += "\":";
  };
  const auto text = [&](const char* k, const std::string& v) {
    key(k);
    append_json_string(out, v);
    out += ',';
  };
  const auto time = [&](const char* k, bool set, const google::protobuf::Timestamp& t) {
    key(k);
    if (set) {
      append_json_string(out, iso8601(from_proto(t)));
    } else {
      out += "null";
    }
    out += ',';
  };
  const auto number = [&](const char* k, const std::string& v) {
    key(k);
    out += v;
    out += ',';
  };
  out += '{';
  text("session_id", x.session_id());
  text("user_id", x.user_id());
  text("exam_id", x.exam_id());
  text("lifecycle_state", state_name(x.state()));
  if (x.termination_reason()) {
    text("termination_reason", termination_reason_name(x.termination_reason()));
  } else {
    number("termination_reason", "null");
  }
  text("reason", x.reason());
  time("created_at", x.has_created_at(), x.created_at());
  time("started_at", x.has_started_at(), x.started_at());
  time("deadline", x.has_deadline(), x.deadline());
  time("terminated_at", x.has_terminated_at(), x.terminated_at());
  number("remaining_seconds", std::to_string(x.remaining_seconds()));
  number("extended_seconds", std::to_string(x.extended_seconds()));
  number("connected", x.connected() ? "true" : "false");
  time("last_seen_at", x.has_last_seen_at(), x.last_seen_at());
  out.back() = '}';
}

Json session_json(const v1::Session& x) {
  std::string text;
  append_session(text, x);
  return Json::parse(text);
}

Json transition_json(const v1::SessionTransition& x) {
  return Json{{"kind", x.kind()},
              {"seconds", x.seconds()},
              {"from_state", x.from_state() ? Json(state_name(x.from_state())) : Json()},
              {"to_state", state_name(x.to_state())},
              {"reason", x.reason()},
              {"termination_reason", reason_json(x.termination_reason())},
              {"actor", x.actor()},
              {"at", time_json(x.has_at(), x.at())}};
}

Json decision_json(const v1::AccessLogEntry& x) {
  return Json{{"user_id", x.user_id()},
              {"access_type", access_type_name(x.access_type())},
              {"granted", x.granted()},
              {"denial_reason", x.denial_reason()},
              {"client_ip", x.client_ip()},
              {"at", time_json(x.has_at(), x.at())}};
}

// The request body's text `field`: 1 to `most` bytes, or nullopt (the
// request has failed).
std::optional<std::string> text_of(const Json& body, const std::string& field, size_t most,
                                   const std::function<void(const Error&)>& fail) {
  const Json text = body.is_object() ? body.value(field, Json()) : Json();
  if (text.is_string() && !text.get<std::string>().empty() && text.get<std::string>().size() <= most)
    return text.get<std::string>();
  fail(Error("INVALID_ARGUMENT", field + " must be a string of 1 to " + std::to_string(most) + " bytes",
             Json{{"field", field}}));
  return std::nullopt;
}

std::optional<std::string> reason_of(const Json& body, const std::function<void(const Error&)>& fail) {
  return text_of(body, "reason", kMostReasonBytes, fail);
}

// A query parameter, or "" when absent.
std::string query(const HttpRequest& r, const std::string& key) {
  const auto it = r.query.find(key);
  return it == r.query.end() ? "" : it->second;
}

}  // namespace

// GET /v1/admin/sessions?exam_id=&state=&limit=: the room, newest first.
void Api::admin_list_sessions(const std::shared_ptr<Context>& c) {
  v1::ListSessionsRequest request;
  const std::string exam = query(c->request, "exam_id"), state = query(c->request, "state"),
                    limit = query(c->request, "limit");
  if (!exam.empty() && !is_uuid(exam))
    return c->fail(Error("INVALID_ARGUMENT", "exam_id must be an exam's UUID", Json{{"field", "exam_id"}}));
  request.set_exam_id(exam);
  if (!state.empty()) {
    const auto s = parse_state_name(state);
    if (!s)
      return c->fail(Error("INVALID_ARGUMENT",
                           "state must be created, initializing, ready, running, terminated or failed",
                           Json{{"field", "state"}}));
    request.add_states(*s);
  }
  int size = kMostRoomSize;
  if (!limit.empty()) {
    const bool digits = limit.size() <= 4 && std::all_of(limit.begin(), limit.end(), ::isdigit);
    size = digits ? std::stoi(limit) : 0;
    if (size < 1 || size > kMostRoomSize)
      return c->fail(Error("INVALID_ARGUMENT", "limit must be between 1 and " + std::to_string(kMostRoomSize),
                           Json{{"field", "limit"}}));
  }
  request.set_limit(size);
  authorize(c, v1::ACCESS_TYPE_STAFF_VIEW, [this, c, request = std::move(request)]() mutable {
    auto call = backends_.call<v1::ListSessionsRequest, v1::ListSessionsResponse>(std::move(request));
    backends_.lifecycle()->ListSessions(&call->context, &call->request, &call->response, [this, c, call](
                                                                                             grpc::Status s) {
      if (!s.ok()) return c->fail(backends_.error(s, "lifecycle"));
      std::string body = R"({"success":true,"data":{"sessions":[)";
      body.reserve(call->response.sessions_size() * 512);
      for (const auto& x : call->response.sessions()) {
        append_session(body, x);
        body += ',';
      }
      if (body.back() == ',') body.pop_back();
      c->respond({200, std::move(body += "]}}"), "application/json", {}});
    });
  });
}

// GET /v1/admin/sessions/{id}: the session, its transitions (oldest first)
// and the access decisions about it (newest first).
void Api::admin_get_session(const std::shared_ptr<Context>& c) {
  authorize(c, v1::ACCESS_TYPE_STAFF_VIEW, [this, c] {
    v1::GetSessionRequest request;
    request.set_session_id(c->session_id);
    auto session = backends_.call<v1::GetSessionRequest, v1::Session>(std::move(request));
    backends_.lifecycle()->GetSession(&session->context, &session->request, &session->response, [this, c, session](
                                                                                                    grpc::Status s) {
      if (!s.ok()) return c->fail(backends_.error(s, "lifecycle"));
      v1::ListTransitionsRequest t;
      t.set_session_id(c->session_id);
      auto history = backends_.call<v1::ListTransitionsRequest, v1::ListTransitionsResponse>(std::move(t));
      backends_.lifecycle()->ListTransitions(&history->context, &history->request, &history->response, [this, c, session,
                                                                                                          history](
                                                                                                             grpc::Status
                                                                                                                 hs) {
        if (!hs.ok()) return c->fail(backends_.error(hs, "lifecycle"));
        v1::ListAccessLogRequest a;
        a.set_session_id(c->session_id);
        a.set_limit(200);
        auto log = backends_.call<v1::ListAccessLogRequest, v1::ListAccessLogResponse>(std::move(a));
        backends_.access()->ListAccessLog(&log->context, &log->request, &log->response, [this, c, session, history,
                                                                                           log](grpc::Status ls) {
          if (!ls.ok()) return c->fail(backends_.error(ls, "access"));
          Json transitions = Json::array(), decisions = Json::array();
          for (const auto& x : history->response.transitions()) transitions.push_back(transition_json(x));
          for (const auto& x : log->response.entries()) decisions.push_back(decision_json(x));
          c->respond(ok(Json{{"session", session_json(session->response)},
                             {"transitions", std::move(transitions)},
                             {"access_decisions", std::move(decisions)}}));
        });
      });
    });
  });
}

// POST /v1/admin/sessions/{id}/terminate {"reason"}: the attempt ends as
// proctor_terminated, with who and why in its history.
void Api::admin_terminate(const std::shared_ptr<Context>& c) {
  const Json body = Json::parse(c->request.body, nullptr, false);
  if (!body.is_object()) return c->fail(Error("INVALID_JSON", "The request body must be a JSON object"));
  const auto reason = reason_of(body, [c](const Error& e) { c->fail(e); });
  if (!reason) return;
  authorize(c, v1::ACCESS_TYPE_STAFF_ACT, [this, c, reason = *reason] {
    end_session(c, v1::TERMINATION_REASON_PROCTOR_TERMINATED, reason, "staff:" + c->user_id);
  });
}

// POST /v1/admin/sessions/{id}/extend {"seconds", "reason"}: more time. The
// deadline moves for everyone who keeps it (the candidate's countdown and
// terminal follow through the session's status stream, cleanup reads it).
void Api::admin_extend(const std::shared_ptr<Context>& c) {
  const Json body = Json::parse(c->request.body, nullptr, false);
  if (!body.is_object()) return c->fail(Error("INVALID_JSON", "The request body must be a JSON object"));
  const Json seconds = body.value("seconds", Json());
  if (!seconds.is_number_integer() || seconds.get<int64_t>() < 1)
    return c->fail(Error("INVALID_ARGUMENT", "seconds must be a whole number, 1 or more", Json{{"field", "seconds"}}));
  const auto reason = reason_of(body, [c](const Error& e) { c->fail(e); });
  if (!reason) return;
  v1::ExtendSessionRequest request;
  request.set_seconds(seconds.get<int64_t>());
  request.set_reason(*reason);
  authorize(c, v1::ACCESS_TYPE_STAFF_ACT, [this, c, request = std::move(request)]() mutable {
    request.set_session_id(c->session_id);
    request.set_actor("staff:" + c->user_id);
    auto call = backends_.call<v1::ExtendSessionRequest, v1::Session>(std::move(request));
    backends_.lifecycle()->ExtendSession(&call->context, &call->request, &call->response,
                                         [this, c, call](grpc::Status s) {
                                           if (!s.ok()) return c->fail(backends_.error(s, "lifecycle"));
                                           c->respond(ok(session_json(call->response)));
                                         });
  });
}

// POST /v1/admin/sessions/{id}/message {"text"}: the candidate's terminal
// shows it (a `notice` on its socket; kept for the next connection when none
// is open). It is in the session's history, with who sent it, before it goes.
void Api::admin_message(const std::shared_ptr<Context>& c) {
  const Json body = Json::parse(c->request.body, nullptr, false);
  if (!body.is_object()) return c->fail(Error("INVALID_JSON", "The request body must be a JSON object"));
  const auto text = text_of(body, "text", kMostMessageBytes, [c](const Error& e) { c->fail(e); });
  if (!text) return;
  authorize(c, v1::ACCESS_TYPE_STAFF_ACT, [this, c, text = *text] {
    v1::RecordMessageRequest record;
    record.set_session_id(c->session_id);
    record.set_text(text);
    record.set_actor("staff:" + c->user_id);
    auto call = backends_.call<v1::RecordMessageRequest, v1::SessionTransition>(std::move(record));
    backends_.lifecycle()->RecordMessage(&call->context, &call->request, &call->response, [this, c, call](
                                                                                              grpc::Status s) {
      if (!s.ok()) return c->fail(backends_.error(s, "lifecycle"));
      v1::SendMessageRequest send;
      send.set_session_id(c->session_id);
      send.set_text(call->request.text());
      auto sent = backends_.call<v1::SendMessageRequest, v1::SendMessageResponse>(std::move(send));
      backends_.environment()->async()->SendMessage(&sent->context, &sent->request, &sent->response, [this, c, call,
                                                                                             sent](grpc::Status es) {
        if (!es.ok()) return c->fail(backends_.error(es, "environment"));
        c->respond(ok(Json{{"delivered", sent->response.delivered()}, {"message", transition_json(call->response)}}));
      });
    });
  });
}

}  // namespace examiso::gateway
