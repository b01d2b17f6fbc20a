#include "services/lifecycle/service.h"

#include <atomic>
#include <random>

#include "common/identity.h"
#include "common/proto_time.h"
#include "common/rpc.h"
#include "services/lifecycle/status.h"

namespace examiso::lifecycle {
namespace {

// Domain enums and proto enums share their order; proto adds UNSPECIFIED = 0.
v1::SessionState proto_enum(State s) { return static_cast<v1::SessionState>(static_cast<int>(s) + 1); }
v1::TerminationReason proto_enum(TerminationReason r) { return static_cast<v1::TerminationReason>(r); }
v1::FailureClass proto_enum(FailureClass f) { return static_cast<v1::FailureClass>(f); }

std::optional<State> domain_state(v1::SessionState s) {
  if (s <= v1::SESSION_STATE_UNSPECIFIED || s > v1::SESSION_STATE_FAILED) return std::nullopt;
  return static_cast<State>(static_cast<int>(s) - 1);
}

State required_state(v1::SessionState s, const char* field) {
  const auto state = domain_state(s);
  if (!state) throw Error("INVALID_ARGUMENT", std::string(field) + " must name a session state", Json{{"field", field}});
  return *state;
}

template <class Enum, class Proto>
Enum checked_enum(Proto value, int max, const char* field) {
  if (static_cast<int>(value) < 0 || static_cast<int>(value) > max)
    throw Error("INVALID_ARGUMENT", std::string("unknown ") + field, Json{{"field", field}});
  return static_cast<Enum>(value);
}


void fill(v1::Session* out, const Session& s, TimePoint now) {
  out->set_session_id(s.session_id);
  out->set_user_id(s.user_id);
  out->set_exam_id(s.exam_id);
  out->set_state(proto_enum(s.state));
  out->set_termination_reason(proto_enum(s.termination_reason));
  out->set_failure_class(proto_enum(s.failure_class));
  out->set_reason(s.reason);
  out->set_auto_provision(s.auto_provision);
  out->set_duration_seconds(s.duration_seconds);
  *out->mutable_created_at() = to_proto(s.created_at);
  if (s.initializing_at) *out->mutable_initializing_at() = to_proto(*s.initializing_at);
  if (s.ready_at) *out->mutable_ready_at() = to_proto(*s.ready_at);
  if (s.started_at) *out->mutable_started_at() = to_proto(*s.started_at);
  if (s.terminated_at) *out->mutable_terminated_at() = to_proto(*s.terminated_at);
  if (s.deadline) *out->mutable_deadline() = to_proto(*s.deadline);
  *out->mutable_updated_at() = to_proto(s.updated_at);
  out->set_remaining_seconds(remaining_seconds(s, now));
  out->set_version(s.version);
  out->set_extended_seconds(s.extended_seconds);
  out->set_connected(s.terminals_open > 0);
  if (s.last_seen_at) *out->mutable_last_seen_at() = to_proto(*s.last_seen_at);
  *out->mutable_provisioning_deadline() = to_proto(s.created_at + std::chrono::seconds(s.provisioning_timeout_seconds));
}

void fill(v1::SessionStatus* out, const Session& s, TimePoint now) {
  const DisplayStatus d = display_status(s, now);
  out->set_session_id(s.session_id);
  out->set_user_id(s.user_id);
  out->set_lifecycle_state(proto_enum(s.state));
  out->set_display_state(d.display_state);
  out->set_message(d.message);
  out->mutable_progress()->set_current_step(d.current_step);
  out->mutable_progress()->set_total_steps(d.total_steps);
  out->mutable_progress()->set_step_description(d.step_description);
  out->set_environment_ready(d.environment_ready);
  out->set_remaining_seconds(d.remaining_seconds);
  out->set_delayed(d.delayed);
  *out->mutable_updated_at() = to_proto(s.updated_at);
  out->set_error_reason(d.error_reason);
  out->set_recoverable(d.recoverable);
  out->set_failure_class(proto_enum(s.failure_class));
  out->set_termination_reason(proto_enum(s.termination_reason));
  if (s.deadline) *out->mutable_deadline() = to_proto(*s.deadline);
  out->set_version(s.version);
  out->set_technical_message(d.technical_message);
}

void fill(v1::SessionTransition* t, const HistoryEntry& h) {
  if (h.from) t->set_from_state(proto_enum(*h.from));
  t->set_to_state(proto_enum(h.to));
  t->set_reason(h.reason);
  t->set_termination_reason(proto_enum(h.termination_reason));
  t->set_failure_class(proto_enum(h.failure_class));
  t->set_actor(h.actor);
  *t->mutable_at() = to_proto(h.at);
  t->set_kind(h.kind);
  t->set_seconds(h.seconds);
}

void fill(v1::Exam* out, const Exam& e) {
  out->set_exam_id(e.exam_id);
  out->set_title(e.title);
  out->set_duration_seconds(e.duration_seconds);
  out->set_provisioning_timeout_seconds(e.provisioning_timeout_seconds);
  auto* env = out->mutable_environment();
  env->set_image(e.environment.image);
  env->set_memory_limit_bytes(e.environment.memory_limit_bytes);
  env->set_pids_limit(e.environment.pids_limit);
  env->set_cpu_millis(e.environment.cpu_millis);
  env->set_home_size_bytes(e.environment.home_size_bytes);
  env->set_tmp_size_bytes(e.environment.tmp_size_bytes);
  for (const auto& a : e.environment.egress_allow) env->mutable_network()->add_egress_allow(a);
  env->set_setup_script(e.environment.setup_script);
  env->set_runtime_class(e.environment.runtime_class);
}

}  // namespace

grpc::Status LifecycleService::CreateSession(grpc::ServerContext*, const v1::CreateSessionRequest* request,
                                             v1::Session* response) {
  return handle_rpc([&] {
    const Session s = store_.create({request->session_id(), request->user_id(), request->exam_id(),
                                     request->auto_provision(), request->actor()});
    fill(response, s, clock_.now());
  });
}

grpc::Status LifecycleService::Transition(grpc::ServerContext*, const v1::TransitionRequest* request,
                                          v1::TransitionResponse* response) {
  return handle_rpc([&] {
    TransitionRequest t;
    t.session_id = request->session_id();
    t.to = required_state(request->to(), "to");
    t.reason = request->reason();
    t.termination_reason =
        checked_enum<TerminationReason>(request->termination_reason(), 6, "termination_reason");
    t.failure_class = checked_enum<FailureClass>(request->failure_class(), 4, "failure_class");
    t.actor = request->actor();
    if (request->expected_from() != v1::SESSION_STATE_UNSPECIFIED)
      t.expected_from = {required_state(request->expected_from(), "expected_from")};
    const TransitionResult r = store_.transition(t);
    response->set_session_id(r.session.session_id);
    response->set_previous_state(proto_enum(r.previous_state));
    response->set_current_state(proto_enum(r.session.state));
    *response->mutable_transitioned_at() = to_proto(r.session.updated_at);
    fill(response->mutable_session(), r.session, clock_.now());
  });
}

grpc::Status LifecycleService::GetSession(grpc::ServerContext*, const v1::GetSessionRequest* request,
                                          v1::Session* response) {
  return handle_rpc([&] { fill(response, store_.get(request->session_id()), clock_.now()); });
}

grpc::Status LifecycleService::ListSessions(grpc::ServerContext*, const v1::ListSessionsRequest* request,
                                            v1::ListSessionsResponse* response) {
  return handle_rpc([&] {
    SessionFilter f;
    f.user_id = request->user_id();
    for (int s : request->states()) f.states.push_back(required_state(static_cast<v1::SessionState>(s), "states"));
    if (request->has_deadline_before()) f.deadline_before = from_proto(request->deadline_before());
    if (request->has_state_entered_before()) f.state_entered_before = from_proto(request->state_entered_before());
    f.limit = request->limit() == 0 ? 100 : request->limit();
    f.soonest_deadline_first = request->soonest_deadline_first();
    f.exam_id = request->exam_id();
    const TimePoint now = clock_.now();
    for (const Session& s : store_.list(f)) fill(response->add_sessions(), s, now);
  });
}

grpc::Status LifecycleService::GetStatus(grpc::ServerContext*, const v1::GetStatusRequest* request,
                                         v1::SessionStatus* response) {
  return handle_rpc([&] {
    const std::string& caller = request->caller_user_id();
    const auto owner = caller.empty() ? std::nullopt : std::optional<std::string_view>(caller);
    fill(response, store_.get(request->session_id(), owner), clock_.now());
  });
}

struct LifecycleService::Watch {
  std::mutex mutex;
  WatchReactor* reactor = nullptr;
  std::string session_id;
  std::unique_ptr<SessionWatchHub::Subscription> subscription;
  std::atomic<bool> changed{false};  // set by the hub, outside `mutex`
  Session session;                   // the last one sent
  v1::SessionStatus out;
  bool writing = false;
  bool finished = false;
  SteadyTime next_beat;
};

class LifecycleService::WatchReactor final : public grpc::ServerWriteReactor<v1::SessionStatus> {
 public:
  WatchReactor(LifecycleService& service, std::shared_ptr<Watch> watch)
      : service_(service), watch_(std::move(watch)) {}

  void OnWriteDone(bool ok) override { service_.written(watch_, ok); }

  void OnCancel() override {
    std::lock_guard lock(watch_->mutex);
    if (watch_->finished || watch_->writing) return;  // a write in flight fails and finishes
    watch_->finished = true;
    Finish(grpc::Status::CANCELLED);
  }

  void OnDone() override {
    watch_->subscription.reset();  // no wake-up is under way once this returns
    {
      std::lock_guard lock(watch_->mutex);
      watch_->reactor = nullptr;
    }
    delete this;
  }

 private:
  LifecycleService& service_;
  std::shared_ptr<Watch> watch_;
};

LifecycleService::LifecycleService(SessionStore& store, const ExamCatalog& catalog, SessionWatchHub& hub,
                                   const Clock& clock, std::chrono::milliseconds heartbeat)
    : store_(store), catalog_(catalog), hub_(hub), clock_(clock), heartbeat_(heartbeat) {
  watch_thread_ = std::thread([this] { run_watches(); });
}

LifecycleService::~LifecycleService() {
  {
    std::lock_guard lock(watches_mutex_);
    stopping_ = true;
  }
  watches_cv_.notify_all();
  watch_thread_.join();
}

grpc::ServerWriteReactor<v1::SessionStatus>* LifecycleService::WatchSession(grpc::CallbackServerContext*,
                                                                             const v1::WatchSessionRequest* request) {
  auto watch = std::make_shared<Watch>();
  auto* reactor = new WatchReactor(*this, watch);
  std::lock_guard lock(watch->mutex);
  watch->reactor = reactor;
  const grpc::Status status = handle_rpc([&] {
    watch->session_id = require_uuid("exam_session_id", request->session_id());
    // Subscribe before the first read so that no change falls in between.
    std::weak_ptr<Watch> weak = watch;
    watch->subscription = hub_.subscribe(watch->session_id, [this, weak] {
      if (auto w = weak.lock()) {
        w->changed = true;
        look_at(w, std::chrono::steady_clock::now());
      }
    });
    watch->session = store_.get(watch->session_id);
  });
  if (!status.ok()) {
    watch->finished = true;
    reactor->Finish(status);
    return reactor;
  }
  fill(&watch->out, watch->session, clock_.now());
  // Each stream beats at a phase of its own: watches opened together (an
  // exam's candidates arriving at once) do not all send in the same instant
  // of every interval.
  thread_local std::mt19937 random{std::random_device{}()};
  watch->next_beat = next_look(watch->session, std::chrono::milliseconds(std::uniform_int_distribution<int64_t>(
                                                   1, heartbeat_.count())(random)));
  watch->writing = true;
  reactor->StartWrite(&watch->out);
  return reactor;
}

LifecycleService::SteadyTime LifecycleService::next_look(const Session& session, std::chrono::milliseconds beat) const {
  const SteadyTime now = std::chrono::steady_clock::now();
  SteadyTime next = now + beat;
  if (const auto changes = status_changes_at(session, clock_.now()))
    next = std::min(next, now + std::chrono::duration_cast<SteadyTime::duration>(*changes - clock_.now()));
  return next;
}

void LifecycleService::look_at(const std::shared_ptr<Watch>& watch, SteadyTime at) {
  {
    std::lock_guard lock(watches_mutex_);
    due_.push({at, watch});
  }
  watches_cv_.notify_one();
}

// On the watch thread: send the session if it changed or a heartbeat is due.
void LifecycleService::look(Watch& w) {
  std::lock_guard lock(w.mutex);
  if (!w.reactor || w.finished || w.writing) return;  // a write's end looks again
  const bool changed = w.changed.exchange(false);
  const bool beat = std::chrono::steady_clock::now() >= w.next_beat;
  if (!changed && !beat) return;  // looked at already
  if (changed) {
    try {
      Session now = store_.get(w.session_id);
      if (now.version == w.session.version && !beat) return;
      w.session = std::move(now);
    } catch (const std::exception&) {
      w.finished = true;
      w.reactor->Finish(handle_rpc([] { throw; }));  // the error as every RPC reports (and logs) it
      return;
    }
  }
  fill(&w.out, w.session, clock_.now());
  w.next_beat = next_look(w.session, heartbeat_);
  w.writing = true;
  w.reactor->StartWrite(&w.out);
}

void LifecycleService::written(const std::shared_ptr<Watch>& watch, bool ok) {
  std::lock_guard lock(watch->mutex);
  watch->writing = false;
  if (watch->finished) return;
  // A terminal session changes no more: its last status ends the stream.
  if (!ok || is_terminal(watch->session.state)) {
    watch->finished = true;
    watch->reactor->Finish(grpc::Status::OK);
    return;
  }
  look_at(watch, watch->changed ? std::chrono::steady_clock::now() : watch->next_beat);
}

void LifecycleService::run_watches() {
  std::unique_lock lock(watches_mutex_);
  while (!stopping_) {
    if (due_.empty()) {
      watches_cv_.wait(lock);
      continue;
    }
    // A copy: the queue may grow (and move its elements) while this waits.
    const SteadyTime at = due_.top().at;
    if (std::chrono::steady_clock::now() < at) {
      watches_cv_.wait_until(lock, at);
      continue;
    }
    auto watch = due_.top().watch.lock();
    due_.pop();
    if (!watch) continue;
    lock.unlock();
    look(*watch);
    watch.reset();  // its last owner may be this thread: ended here, without the lock
    lock.lock();
  }
}

grpc::Status LifecycleService::ExtendSession(grpc::ServerContext*, const v1::ExtendSessionRequest* request,
                                             v1::Session* response) {
  return handle_rpc([&] {
    fill(response, store_.extend({request->session_id(), request->seconds(), request->reason(), request->actor()}),
         clock_.now());
  });
}

grpc::Status LifecycleService::RecordMessage(grpc::ServerContext*, const v1::RecordMessageRequest* request,
                                             v1::SessionTransition* response) {
  return handle_rpc(
      [&] { fill(response, store_.record_message(request->session_id(), request->text(), request->actor())); });
}

grpc::Status LifecycleService::RecordConnection(grpc::ServerContext*, const v1::RecordConnectionRequest* request,
                                                v1::RecordConnectionResponse*) {
  return handle_rpc([&] {
    store_.record_connection(request->session_id(), request->connected(), request->detail(), request->actor());
  });
}

grpc::Status LifecycleService::ListTransitions(grpc::ServerContext*, const v1::ListTransitionsRequest* request,
                                               v1::ListTransitionsResponse* response) {
  return handle_rpc([&] {
    for (const HistoryEntry& h : store_.history(request->session_id())) fill(response->add_transitions(), h);
  });
}

grpc::Status LifecycleService::ListExams(grpc::ServerContext*, const v1::ListExamsRequest*,
                                         v1::ListExamsResponse* response) {
  return handle_rpc([&] {
    for (const Exam& e : catalog_.exams()) fill(response->add_exams(), e);
  });
}

grpc::Status LifecycleService::GetExam(grpc::ServerContext*, const v1::GetExamRequest* request, v1::Exam* response) {
  return handle_rpc([&] {
    const Exam* exam = catalog_.find(request->exam_id());
    if (!exam) throw Error("INVALID_EXAM_ID", "Unknown exam", Json{{"exam_id", request->exam_id().substr(0, 100)}});
    fill(response, *exam);
  });
}

}  // namespace examiso::lifecycle
