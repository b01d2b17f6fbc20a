#include "gateway/terminal.h"

#include <grpcpp/alarm.h>

#include <deque>
#include <mutex>

#include "common/log.h"
#include "common/proto_names.h"
#include "common/proto_time.h"
#include "gateway/api.h"

namespace examiso::gateway {
namespace {

constexpr size_t kHighWater = 1 << 20;   // stop reading the terminal past this much unsent output
constexpr size_t kInputLimit = 4 << 20;  // input waiting for the terminal beyond this ends the connection

bool ended(v1::SessionState s) { return s == v1::SESSION_STATE_TERMINATED || s == v1::SESSION_STATE_FAILED; }

// Accepts the upgrade and closes at once with the error's code (browsers see
// nothing else), as Api::decide_websocket does.
void close_with(DecideWs& decide, const Error& e) {
  WsDecision d;
  d.close_code = static_cast<uint16_t>(e.kind().ws_close);
  d.close_reason = Api::public_message(e);
  decide(std::move(d));
}

// /v1/sessions/{id}/status
class StatusStream final : public WsHandler,
                           public grpc::ClientReadReactor<v1::SessionStatus>,
                           public std::enable_shared_from_this<StatusStream> {
 public:
  StatusStream(Backends& backends, Metrics& metrics, std::string session_id)
      : backends_(backends), metrics_(metrics) {
    request_.set_session_id(std::move(session_id));
  }

  void start(std::shared_ptr<WsPeer> peer) override {
    peer_ = std::move(peer);
    self_ = shared_from_this();
    metrics_.websocket_opened("status");
    backends_.lifecycle()->WatchSession(&context_, &request_, this);
    StartRead(&status_);
    StartCall();
  }
  void on_message(std::string) override {}
  void on_drained() override {}
  void on_closed() override { context_.TryCancel(); }

  void OnReadDone(bool ok) override {
    if (!ok) return;
    peer_->send(compact_json(Json{{"type", "status_update"}, {"data", status_json(status_)}}));
    last_ = status_.lifecycle_state();
    StartRead(&status_);
  }

  void OnDone(const grpc::Status& s) override {
    if (!s.ok() && s.error_code() != grpc::StatusCode::CANCELLED) {
      const Error e = backends_.error(s, "lifecycle");
      peer_->send(compact_json(Json{{"type", "error"},
                                    {"data", {{"code", e.code()},
                                              {"message", Api::public_message(e)},
                                              {"recoverable", e.code() != "ACCESS_DENIED"}}}}));
      peer_->close(1011, "status unavailable");
    } else {
      peer_->close(1000, ended(last_) ? "session ended" : "");
    }
    metrics_.websocket_closed("status");
    peer_.reset();
    self_.reset();  // the last callback: this may go now
  }

 private:
  Backends& backends_;
  Metrics& metrics_;
  grpc::ClientContext context_;
  v1::WatchSessionRequest request_;
  v1::SessionStatus status_;
  v1::SessionState last_ = v1::SESSION_STATE_UNSPECIFIED;
  std::shared_ptr<WsPeer> peer_;
  std::shared_ptr<StatusStream> self_;
};

using SystemTime = TimePoint;

std::optional<SystemTime> deadline_of(bool set, const google::protobuf::Timestamp& t) {
  return set ? std::optional(from_proto(t)) : std::nullopt;
}

// What the candidate is told at the deadline, by the gateway's own clock
// (whoever terminates the session, and whenever).
const Json& time_expired() {
  static const Json j{{"type", "termination"}, {"reason", "time_expired"}, {"message", "Your exam time has expired"}};
  return j;
}

// /v1/sessions/{id}/terminal: WebSocket <-> environment.Attach, plus the
// session's status (remaining time, termination) from WatchSession, and the
// deadline kept by the gateway's own clock. An observer's
// (/v1/admin/sessions/{id}/terminal) is the same, read-only: what it sends is
// dropped here, and the environment service attaches it as an observer.
class TerminalBridge final : public WsHandler, public std::enable_shared_from_this<TerminalBridge> {
 public:
  // `user_id` and `client_ip`: the candidate's (empty for an observer).
  TerminalBridge(Backends& backends, Metrics& metrics, std::string session_id, std::optional<SystemTime> deadline,
                 bool observer, std::string user_id = "", std::string client_ip = "")
      : backends_(backends),
        metrics_(metrics),
        session_id_(std::move(session_id)),
        user_id_(std::move(user_id)),
        client_ip_(std::move(client_ip)),
        deadline_(deadline),
        observer_(observer),
        kind_(observer ? "observer" : "terminal"),
        attach_(*this),
        watch_(*this) {}

  void start(std::shared_ptr<WsPeer> peer) override {
    metrics_.websocket_opened(kind_);
    if (deadline_ && *deadline_ <= std::chrono::system_clock::now()) {
      // Past its time (nobody has terminated it yet): no terminal any more.
      closing_ = true;
      peer->send(compact_json(time_expired()));
      peer->close(1000, "session ended");
      metrics_.websocket_closed(kind_);
      return;
    }
    peer_ = std::move(peer);
    self_ = shared_from_this();
    record_connection(true, "from " + client_ip_);
    if (deadline_) arm(*deadline_);
    attach_.begin();
    watch_.begin();
  }

  void on_message(std::string text) override {
    if (observer_) return;  // an observer never types into the candidate's shell
    metrics_.terminal_bytes(false, text.size());
    auto r = terminal_message(text);
    if (!r) {
      peer_send(Json{{"type", "error"},
                     {"data", {{"code", "INVALID_ARGUMENT"},
                               {"message", "expected {\"type\":\"input\",\"data\":...} or "
                                           "{\"type\":\"resize\",\"cols\":...,\"rows\":...}"},
                               {"recoverable", true}}}});
      return;
    }
    if (!attach_.write(std::move(*r))) finish(1008, "input faster than the terminal takes it");
  }

  void on_drained() override { attach_.resume(); }

  void on_closed() override {
    {
      std::lock_guard lock(mutex_);
      if (!closing_) why_closed_ = "the connection closed";
      closing_ = true;  // the client is gone: nothing more to tell it
    }
    attach_.context.TryCancel();
    watch_.context.TryCancel();
    attach_.release();
    disarm();
  }

 private:
  void peer_send(const Json& message) {
    std::lock_guard lock(mutex_);
    if (peer_) peer_->send(compact_json(message));
  }

  void finish(uint16_t code, const std::string& reason, const Json& last_message = Json()) {
    std::unique_ptr<grpc::Alarm> alarm;  // cancelled as it goes, after the lock
    {
      std::lock_guard lock(mutex_);
      if (closing_ || !peer_) return;
      closing_ = true;
      why_closed_ = reason.empty() ? std::to_string(code) : reason;
      if (!last_message.is_null()) peer_->send(compact_json(last_message));
      peer_->close(code, reason);
      attach_.context.TryCancel();
      watch_.context.TryCancel();
      alarm = std::move(alarm_);
    }
    attach_.release();
  }

  // The deadline, by this gateway's clock: a new one replaces the old (an
  // extension), whose alarm is cancelled as it goes.
  void arm(SystemTime deadline) {
    {
      std::lock_guard lock(mutex_);
      if (closing_ || armed_ == deadline) return;  // the usual case: every status repeats it
    }
    auto alarm = std::make_unique<grpc::Alarm>();
    std::weak_ptr<TerminalBridge> weak = shared_from_this();
    alarm->Set(deadline, [weak](bool fired) {
      if (auto self = weak.lock(); self && fired) self->finish(1000, "session ended", time_expired());
    });
    std::lock_guard lock(mutex_);
    if (closing_ || armed_ == deadline) return;  // `alarm` goes, cancelled
    armed_ = deadline;
    std::swap(alarm, alarm_);
  }

  void disarm() {
    std::unique_ptr<grpc::Alarm> alarm;
    std::lock_guard lock(mutex_);
    alarm = std::move(alarm_);
  }

  void finish_ended(const v1::SessionStatus& s) {
    const std::string reason =
        s.lifecycle_state() == v1::SESSION_STATE_FAILED ? "failed" : termination_reason_name(s.termination_reason());
    finish(1000, "session ended", Json{{"type", "termination"}, {"reason", reason}, {"message", s.message()}});
  }

  // The environment's stream ended. Most often the session did: cleanup
  // destroys the environment right after the transition, and the watch's news
  // of that may come second. The session's status decides between the
  // termination message (close 1000) and 4006.
  void environment_ended() {
    {
      std::lock_guard lock(mutex_);
      if (closing_ || !peer_) return;
      ++running_;
    }
    check_.request.set_session_id(session_id_);
    check_.context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
    backends_.lifecycle()->GetStatus(&check_.context, &check_.request, &check_.status, [this](grpc::Status s) {
      if (s.ok() && ended(check_.status.lifecycle_state())) {
        finish_ended(check_.status);
      } else {
        finish(4006, "environment ended");
      }
      reactor_done();
    });
  }

  // The candidate's connections, for the staff (connected, last seen, the
  // history's connects and drops). Not waited for; a failure is logged.
  void record_connection(bool connected, const std::string& detail) {
    if (observer_) return;
    v1::RecordConnectionRequest r;
    r.set_session_id(session_id_);
    r.set_connected(connected);
    r.set_detail(detail);
    r.set_actor("gateway:" + user_id_);
    auto call = backends_.call<v1::RecordConnectionRequest, v1::RecordConnectionResponse>(std::move(r));
    backends_.lifecycle()->RecordConnection(&call->context, &call->request, &call->response, [call](grpc::Status s) {
      if (!s.ok())
        log::warn("connection_not_recorded", {{"session_id", call->request.session_id()},
                                              {"connected", call->request.connected()},
                                              {"code", s.error_code()},
                                              {"message", s.error_message()}});
    });
  }

  void reactor_done() {
    std::unique_lock lock(mutex_);
    if (--running_ > 0) return;
    auto alarm = std::move(alarm_);
    record_connection(false, why_closed_.empty() ? "the connection closed" : why_closed_);
    metrics_.websocket_closed(kind_);
    peer_.reset();
    auto self = std::move(self_);
    lock.unlock();
    // `self` goes out of scope here: the bridge may be destroyed now.
  }

  class Attach final : public grpc::ClientBidiReactor<v1::AttachRequest, v1::AttachResponse> {
   public:
    explicit Attach(TerminalBridge& b) : b_(b) {}
    grpc::ClientContext context;

    // Writes and resumed reads start on the WebSocket's thread, outside any
    // reaction: a hold keeps the call (gRPC frees it before OnDone) until
    // release(), once no more will be started (the read side ended, or the
    // client went). UBSan caught a write into a call already freed.
    void begin() {
      b_.backends_.environment()->async()->Attach(&context, this);
      held_ = true;
      AddHold();
      v1::AttachRequest start;
      start.mutable_start()->set_session_id(b_.session_id_);
      start.mutable_start()->set_observe(b_.observer_);
      write(std::move(start));
      StartRead(&in_);
      StartCall();
    }

    void release() {
      {
        std::lock_guard lock(mutex_);
        if (!held_) return;
        held_ = false;
      }
      RemoveHold();  // may end the call here: not under the lock
    }

    // False when the client sends faster than the terminal takes it, past
    // any reason (a bounded queue, not a growing one).
    bool write(v1::AttachRequest r) {
      std::lock_guard lock(mutex_);
      if (!held_) return true;
      queued_ += r.input().size();
      if (queued_ > kInputLimit) return false;
      queue_.push_back(std::move(r));
      if (!writing_) {
        writing_ = true;
        StartWrite(&queue_.front());
      }
      return true;
    }

    void resume() {
      std::lock_guard lock(mutex_);
      if (paused_ && held_) {
        paused_ = false;
        StartRead(&in_);
      }
    }

    void OnWriteDone(bool ok) override {
      std::lock_guard lock(mutex_);
      queued_ -= queue_.front().input().size();
      queue_.pop_front();
      if (ok && !queue_.empty()) {
        StartWrite(&queue_.front());
      } else {
        writing_ = false;
      }
    }

    void OnReadDone(bool ok) override {
      if (ok && in_.has_ended()) opened_elsewhere_ = in_.ended().opened_elsewhere();
      if (!ok || in_.has_ended()) return release();  // OnDone follows
      const std::string text = utf8_text(carry_, in_.output());
      b_.metrics_.terminal_bytes(true, in_.output().size());
      std::shared_ptr<WsPeer> peer;
      {
        std::lock_guard lock(b_.mutex_);
        peer = b_.peer_;
      }
      if (!peer) return;
      if (in_.message_case() == v1::AttachResponse::kStaffMessage) {
        peer->send(compact_json(Json{{"type", "notice"}, {"text", in_.staff_message()}}));
      } else if (in_.message_case() == v1::AttachResponse::kObservers) {
        peer->send(compact_json(Json{{"type", "watching"}, {"observers", in_.observers()}}));
      } else if (!text.empty()) {
        std::string frame = R"({"type":"output","data":)";
        append_json_string(frame, text);
        peer->send(std::move(frame += '}'));
      }
      // Backpressure: a client that stops reading stops the terminal.
      std::lock_guard lock(mutex_);
      if (peer->queued_bytes() > kHighWater) {
        paused_ = true;
      } else {
        StartRead(&in_);
      }
    }

    void OnDone(const grpc::Status& s) override {
      if (!s.ok() && s.error_code() != grpc::StatusCode::CANCELLED) {
        const Error e = b_.backends_.error(s, "environment");
        log::warn("terminal_attach_failed", {{"session_id", b_.session_id_}, {"code", e.code()}});
        b_.finish(static_cast<uint16_t>(e.kind().ws_close), "terminal unavailable");
      } else if (opened_elsewhere_) {
        // A newer connection (another tab) has the terminal: the session goes on.
        b_.finish(static_cast<uint16_t>(error_kind("TERMINAL_OPENED_ELSEWHERE").ws_close), "opened elsewhere");
      } else {
        b_.environment_ended();
      }
      b_.reactor_done();
    }

   private:
    TerminalBridge& b_;
    std::mutex mutex_;
    std::deque<v1::AttachRequest> queue_;
    size_t queued_ = 0;
    bool writing_ = false, paused_ = false;
    bool held_ = false;  // writes may start (see begin)
    bool opened_elsewhere_ = false;  // the stream's end said so
    v1::AttachResponse in_;
    std::string carry_;
  };

  class Watch final : public grpc::ClientReadReactor<v1::SessionStatus> {
   public:
    explicit Watch(TerminalBridge& b) : b_(b) {}
    grpc::ClientContext context;

    void begin() {
      request_.set_session_id(b_.session_id_);
      b_.backends_.lifecycle()->WatchSession(&context, &request_, this);
      StartRead(&status_);
      StartCall();
    }

    void OnReadDone(bool ok) override {
      if (!ok) return;
      if (ended(status_.lifecycle_state())) return b_.finish_ended(status_);
      if (const auto deadline = deadline_of(status_.has_deadline(), status_.deadline())) b_.arm(*deadline);
      b_.peer_send(Json{{"type", "status"},
                        {"state", state_name(status_.lifecycle_state())},
                        {"remaining_seconds", status_.remaining_seconds()}});
      StartRead(&status_);
    }

    void OnDone(const grpc::Status& s) override {
      if (!s.ok() && s.error_code() != grpc::StatusCode::CANCELLED)
        b_.finish(static_cast<uint16_t>(b_.backends_.error(s, "lifecycle").kind().ws_close), "status unavailable");
      b_.reactor_done();
    }

   private:
    TerminalBridge& b_;
    v1::WatchSessionRequest request_;
    v1::SessionStatus status_;
  };

  Backends& backends_;
  Metrics& metrics_;
  std::string session_id_;
  const std::string user_id_, client_ip_;
  std::optional<SystemTime> deadline_;  // as known when the terminal opened
  const bool observer_;
  const std::string kind_;  // for the metrics
  std::string why_closed_;  // for the history's disconnect (under mutex_)
  std::mutex mutex_;
  std::unique_ptr<grpc::Alarm> alarm_;
  std::optional<SystemTime> armed_;
  std::shared_ptr<WsPeer> peer_;
  std::shared_ptr<TerminalBridge> self_;
  bool closing_ = false;
  int running_ = 2;  // reactors (and the status check) not yet done
  struct {
    grpc::ClientContext context;
    v1::GetStatusRequest request;
    v1::SessionStatus status;
  } check_;
  Attach attach_;
  Watch watch_;
};

}  // namespace

std::optional<v1::AttachRequest> terminal_message(const std::string& text) {
  const Json m = Json::parse(text, nullptr, false);
  if (!m.is_object()) return std::nullopt;
  // Looked up, never indexed: a const Json's [] on a missing key reads past
  // the object (the fuzzer's first find: {"type":"input"} without "data").
  const auto field = [&](const char* key) { return m.contains(key) ? m.at(key) : Json(); };
  const Json type = field("type"), data = field("data"), cols = field("cols"), rows = field("rows");
  v1::AttachRequest r;
  if (type == "input" && data.is_string()) {
    r.set_input(data.get<std::string>());
  } else if (type == "resize" && cols.is_number_integer() && rows.is_number_integer()) {
    r.mutable_resize()->set_cols(static_cast<uint32_t>(std::clamp<int64_t>(cols.get<int64_t>(), 1, 1000)));
    r.mutable_resize()->set_rows(static_cast<uint32_t>(std::clamp<int64_t>(rows.get<int64_t>(), 1, 1000)));
  } else {
    return std::nullopt;
  }
  return r;
}

std::string utf8_text(std::string& carry, std::string_view in) {
  std::string bytes = carry + std::string(in);
  carry.clear();
  // A lead byte near the end whose sequence is not complete yet waits.
  for (size_t back = 1; back <= 3 && back <= bytes.size(); ++back) {
    const unsigned char c = static_cast<unsigned char>(bytes[bytes.size() - back]);
    if ((c & 0xc0) == 0x80) continue;  // continuation: look further back
    const size_t need = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
    if (need > back) {
      carry = bytes.substr(bytes.size() - back);
      bytes.resize(bytes.size() - back);
    }
    break;
  }
  if (is_valid_utf8(bytes)) return bytes;
  // Rare: replace what is not UTF-8.
  std::string out;
  size_t i = 0;
  while (i < bytes.size()) {
    size_t len = 1;
    const unsigned char c = static_cast<unsigned char>(bytes[i]);
    if (c >= 0xf0) len = 4;
    else if (c >= 0xe0) len = 3;
    else if (c >= 0xc0) len = 2;
    if (i + len <= bytes.size() && is_valid_utf8(std::string_view(bytes).substr(i, len))) {
      out.append(bytes, i, len);
      i += len;
    } else {
      out += "\xef\xbf\xbd";
      ++i;
    }
  }
  return out;
}

std::shared_ptr<WsHandler> make_status_stream(Backends& backends, Metrics& metrics, const std::string& session_id) {
  return std::make_shared<StatusStream>(backends, metrics, session_id);
}

void open_terminal(Backends& backends, Metrics& metrics, const std::string& session_id, const std::string& user_id,
                   const std::string& client_ip, DecideWs decide) {
  v1::GetSessionRequest request;
  request.set_session_id(session_id);
  auto call = backends.call<v1::GetSessionRequest, v1::Session>(std::move(request));
  backends.lifecycle()->GetSession(&call->context, &call->request, &call->response, [&backends, &metrics, call,
                                                                                     session_id, user_id, client_ip,
                                                                                     decide](grpc::Status s) mutable {
    if (!s.ok()) return close_with(decide, backends.error(s, "lifecycle"));
    const auto state = call->response.state();
    if (ended(state)) return close_with(decide, Error("SESSION_TERMINATED", "The session has ended"));
    if (state != v1::SESSION_STATE_READY && state != v1::SESSION_STATE_RUNNING)
      return close_with(decide, Error("SESSION_NOT_READY", "The session is not ready yet"));
    // The terminal decision, logged like any other; then attach.
    auto authorize = [&backends, &metrics, session_id, user_id, client_ip,
                      decide](std::optional<SystemTime> deadline) mutable {
      v1::AuthorizeRequest a;
      a.set_session_id(session_id);
      a.set_user_id(user_id);
      a.set_access_type(v1::ACCESS_TYPE_TERMINAL);
      a.set_client_ip(client_ip);
      auto ac = backends.call<v1::AuthorizeRequest, v1::AuthorizeResponse>(std::move(a));
      backends.access()->Authorize(&ac->context, &ac->request, &ac->response,
                                   [&backends, &metrics, ac, session_id, user_id, client_ip, deadline,
                                    decide](grpc::Status as) mutable {
                                     if (!as.ok()) return close_with(decide, backends.error(as, "access"));
                                     WsDecision d;
                                     d.handler = std::make_shared<TerminalBridge>(
                                         backends, metrics, session_id, deadline, false, user_id, client_ip);
                                     decide(std::move(d));
                                   });
    };
    const auto& session = call->response;
    if (state == v1::SESSION_STATE_RUNNING) return authorize(deadline_of(session.has_deadline(), session.deadline()));
    // Connecting to a ready session starts the exam.
    v1::TransitionRequest t;
    t.set_session_id(session_id);
    t.set_to(v1::SESSION_STATE_RUNNING);
    t.set_expected_from(v1::SESSION_STATE_READY);
    t.set_actor("gateway:" + user_id);
    auto tc = backends.call<v1::TransitionRequest, v1::TransitionResponse>(std::move(t));
    backends.lifecycle()->Transition(&tc->context, &tc->request, &tc->response,
                                     [&backends, tc, authorize, decide](grpc::Status ts) mutable {
                                       // Someone else may have started it first: fine (its
                                       // deadline comes with the first status).
                                       if (!ts.ok()) {
                                         const Error e = backends.error(ts, "lifecycle");
                                         if (e.code() != "INVALID_TRANSITION") return close_with(decide, e);
                                         return authorize(std::nullopt);
                                       }
                                       const auto& s = tc->response.session();
                                       authorize(deadline_of(s.has_deadline(), s.deadline()));
                                     });
  });
}

void open_observer(Backends& backends, Metrics& metrics, const std::string& session_id, DecideWs decide) {
  v1::GetSessionRequest request;
  request.set_session_id(session_id);
  auto call = backends.call<v1::GetSessionRequest, v1::Session>(std::move(request));
  backends.lifecycle()->GetSession(&call->context, &call->request, &call->response,
                                   [&backends, &metrics, call, session_id, decide](grpc::Status s) mutable {
                                     if (!s.ok()) return close_with(decide, backends.error(s, "lifecycle"));
                                     const auto& session = call->response;
                                     if (ended(session.state()))
                                       return close_with(decide, Error("SESSION_TERMINATED", "The session has ended"));
                                     if (session.state() != v1::SESSION_STATE_READY &&
                                         session.state() != v1::SESSION_STATE_RUNNING)
                                       return close_with(decide,
                                                         Error("SESSION_NOT_READY", "The session is not ready yet"));
                                     WsDecision d;
                                     d.handler = std::make_shared<TerminalBridge>(
                                         backends, metrics, session_id,
                                         deadline_of(session.has_deadline(), session.deadline()), true);
                                     decide(std::move(d));
                                   });
}

}  // namespace examiso::gateway
