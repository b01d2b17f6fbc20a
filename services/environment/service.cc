#include "services/environment/service.h"

#include <deque>
#include <optional>

#include "common/proto_time.h"
#include "common/rpc.h"

namespace examiso::environment {
namespace {

uint16_t clamp_size(uint32_t v, uint16_t fallback) {
  if (v == 0) return fallback;
  return static_cast<uint16_t>(std::min<uint32_t>(v, 1000));
}

}  // namespace

void EnvironmentService::fill(v1::Environment* out, const EnvironmentRecord& r) {
  out->set_environment_id(r.environment_id);
  out->set_session_id(r.session_id);
  out->set_pod_name(r.pod_name);
  out->set_pod_namespace(r.pod_namespace);
  out->set_status(static_cast<v1::EnvironmentStatus>(static_cast<int>(r.status) + 1));
  out->set_ready(environments_.ready(r));
  out->set_driver(r.driver);
  *out->mutable_created_at() = to_proto(r.created_at);
  if (r.ready_at) *out->mutable_ready_at() = to_proto(*r.ready_at);
  if (r.destroyed_at) *out->mutable_destroyed_at() = to_proto(*r.destroyed_at);
  out->set_error_reason(r.error_reason);
}

grpc::Status EnvironmentService::CreateEnvironment(grpc::ServerContext*, const v1::CreateEnvironmentRequest* request,
                                                   v1::Environment* response) {
  return handle_rpc([&] {
    fill(response, environments_.create(request->session_id(), std::chrono::seconds(request->timeout_seconds())));
  });
}

grpc::Status EnvironmentService::GetEnvironment(grpc::ServerContext*, const v1::GetEnvironmentRequest* request,
                                                v1::Environment* response) {
  return handle_rpc([&] { fill(response, environments_.get(request->session_id())); });
}

grpc::Status EnvironmentService::DestroyEnvironment(grpc::ServerContext*, const v1::DestroyEnvironmentRequest* request,
                                                    v1::DestroyEnvironmentResponse* response) {
  return handle_rpc([&] {
    const DestroyResult r = environments_.destroy(request->session_id(), request->reason());
    response->set_environment_id(r.record.environment_id);
    response->set_session_id(r.record.session_id);
    if (r.record.destroyed_at) *response->mutable_destroyed_at() = to_proto(*r.record.destroyed_at);
  });
}

grpc::Status EnvironmentService::SendMessage(grpc::ServerContext*, const v1::SendMessageRequest* request,
                                             v1::SendMessageResponse* response) {
  return handle_rpc(
      [&] { response->set_delivered(environments_.send_message(request->session_id(), request->text())); });
}

grpc::Status EnvironmentService::ListEnvironments(grpc::ServerContext*, const v1::ListEnvironmentsRequest* request,
                                                  v1::ListEnvironmentsResponse* response) {
  return handle_rpc([&] {
    std::vector<Status> statuses;
    for (int s : request->statuses()) {
      if (s < 1 || s > 6) throw Error("INVALID_ARGUMENT", "unknown environment status", Json{{"field", "statuses"}});
      statuses.push_back(static_cast<Status>(s - 1));
    }
    for (const auto& r :
         environments_.list(statuses, request->limit() ? request->limit() : 100, request->current_only()))
      fill(response->add_environments(), r);
  });
}

namespace {

// One Attach call. Output is read when the terminal has some (on the
// TerminalLoop's thread) and written with at most one gRPC write in flight; past
// kMaxPending unsent bytes it stops reading the terminal until the client
// takes them, so the shell then waits on its PTY. A client that ends its side
// has detached, which leaves the shell running; a terminal that ends gets an
// `ended` message. Reactions do not wait, except on a terminal's start (its
// record and socket) and its input (written to a keeper that always reads).
class AttachReactor final : public grpc::ServerBidiReactor<v1::AttachRequest, v1::AttachResponse> {
 public:
  AttachReactor(Environments& environments, TerminalLoop& loop) : environments_(environments), loop_(loop) {
    StartRead(&in_);
  }

  void OnReadDone(bool ok) override {
    if (!terminal_) return start(ok);
    if (!ok) {
      std::lock_guard lock(mutex_);
      return finish(grpc::Status::OK);  // detached
    }
    if (observe_) {
      // An observer's input goes nowhere.
    } else if (in_.has_resize()) {
      terminal_->resize(clamp_size(in_.resize().cols(), 80), clamp_size(in_.resize().rows(), 24));
    } else if (in_.message_case() == v1::AttachRequest::kInput && !terminal_->write(in_.input())) {
      return;  // the terminal is gone: its output's end finishes the call
    }
    StartRead(&in_);
  }

  void OnWriteDone(bool ok) override {
    bool resume = false;
    {
      std::lock_guard lock(mutex_);
      writing_ = false;
      if (finished_) {
        if (finish_after_write_) Finish(*std::exchange(finish_after_write_, std::nullopt));
        return;
      }
      if (!ok) return finish(grpc::Status::OK);  // the client is gone
      if (!pending_.empty() || !events_.empty()) {
        write_next();
      } else if (ended_) {
        return end();
      }
      resume = paused_;
      paused_ = false;
    }
    if (resume) loop_.rearm(terminal_->wait_fd());
  }

  void OnDone() override {
    if (terminal_) loop_.remove(terminal_->wait_fd());
    delete this;
  }

 private:
  static constexpr size_t kMaxPending = 256 << 10;

  void start(bool ok) {
    grpc::Status status = handle_rpc([&] {
      if (!ok || !in_.has_start()) throw Error("INVALID_ARGUMENT", "The first Attach message must be `start`");
      const auto& start = in_.start();
      observe_ = start.observe();
      terminal_ = observe_ ? environments_.observe(start.session_id())
                           : environments_.attach(start.session_id(), clamp_size(start.size().cols(), 80),
                                                  clamp_size(start.size().rows(), 24));
    });
    if (!status.ok()) {
      std::lock_guard lock(mutex_);
      return finish(std::move(status));
    }
    loop_.add(terminal_->wait_fd(), [this] {
      auto chunk = terminal_->read(std::chrono::milliseconds(0));
      if (deliver(std::move(chunk), terminal_->news())) loop_.rearm(terminal_->wait_fd());
    });
    StartRead(&in_);
  }

  // Output read from the terminal, or its end (nullopt), and its news. True
  // when more may be read now.
  bool deliver(std::optional<std::string> chunk, Terminal::News news) {
    std::lock_guard lock(mutex_);
    if (finished_ || ended_) return false;
    for (auto& text : news.messages) events_.emplace_back().set_staff_message(std::move(text));
    if (news.watchers) events_.emplace_back().set_observers(*news.watchers);
    if (!chunk) {
      ended_ = true;
      if (!writing_) end();
      return false;
    }
    if (pending_.empty()) {
      pending_ = std::move(*chunk);  // the usual case: no copy
    } else {
      pending_ += *chunk;
    }
    if (!writing_ && (!pending_.empty() || !events_.empty())) write_next();
    paused_ = pending_.size() >= kMaxPending;
    return !paused_;
  }

  // The output waiting, else the next event; under mutex_, with one of them there.
  void write_next() {
    if (!pending_.empty()) {
      out_.set_output(std::move(pending_));
      pending_.clear();
    } else {
      out_ = std::move(events_.front());
      events_.pop_front();
    }
    writing_ = true;
    StartWrite(&out_);
  }

  void end() {
    finished_ = true;
    const bool elsewhere = terminal_->opened_elsewhere();
    out_.mutable_ended()->set_opened_elsewhere(elsewhere);
    out_.mutable_ended()->set_reason(elsewhere ? "the terminal was opened elsewhere" : "the environment ended");
    StartWriteAndFinish(&out_, grpc::WriteOptions(), grpc::Status::OK);
  }

  // Finishes the call once no write is in flight.
  void finish(grpc::Status status) {
    if (finished_) return;
    finished_ = true;
    if (writing_) {
      finish_after_write_ = std::move(status);
    } else {
      Finish(std::move(status));
    }
  }

  Environments& environments_;
  TerminalLoop& loop_;
  std::unique_ptr<Terminal> terminal_;  // set once, by start()
  bool observe_ = false;                // staff's read-only view (set with terminal_)
  v1::AttachRequest in_;
  std::mutex mutex_;
  v1::AttachResponse out_;
  std::string pending_;
  std::deque<v1::AttachResponse> events_;  // messages and observer counts, after pending_
  bool writing_ = false;
  bool paused_ = false;
  bool ended_ = false;
  bool finished_ = false;
  std::optional<grpc::Status> finish_after_write_;
};

}  // namespace

grpc::ServerBidiReactor<v1::AttachRequest, v1::AttachResponse>* EnvironmentService::Attach(
    grpc::CallbackServerContext*) {
  return new AttachReactor(environments_, loop_);
}

}  // namespace examiso::environment

namespace examiso::environment {

grpc::Status EnvironmentService::ReconcileEnvironments(grpc::ServerContext*, const v1::ReconcileEnvironmentsRequest*,
                                                       v1::ReconcileEnvironmentsResponse* response) {
  return handle_rpc([&] {
    std::lock_guard lock(reconcile_mutex_);
    const ReconcileReport r = environments_.reconcile(false);
    for (const auto& id : r.destroyed_orphans) response->add_destroyed_orphan_ids(id);
    for (const auto& id : r.lost_sessions) response->add_lost_session_ids(id);
  });
}

}  // namespace examiso::environment
