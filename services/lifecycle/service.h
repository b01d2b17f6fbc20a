#pragma once
#include <condition_variable>
#include <memory>
#include <mutex>
#include <queue>
#include <thread>
#include <vector>

#include "examiso/v1/lifecycle.grpc.pb.h"
#include "services/lifecycle/session_store.h"
#include "services/lifecycle/session_watch.h"

namespace examiso::lifecycle {

// Adapts the lifecycle RPCs to the session store. WatchSession runs on gRPC's
// callback API: every stream of the process is served by one watch thread
// (reading the session when it changed or a heartbeat is due, and starting
// the write), so an open stream costs no thread of its own.
class LifecycleService final
    : public v1::LifecycleService::WithCallbackMethod_WatchSession<v1::LifecycleService::Service> {
 public:
  LifecycleService(SessionStore& store, const ExamCatalog& catalog, SessionWatchHub& hub, const Clock& clock,
                   std::chrono::milliseconds heartbeat);
  ~LifecycleService() override;

  grpc::Status CreateSession(grpc::ServerContext*, const v1::CreateSessionRequest* request,
                             v1::Session* response) override;
  grpc::Status Transition(grpc::ServerContext*, const v1::TransitionRequest* request,
                          v1::TransitionResponse* response) override;
  grpc::Status GetSession(grpc::ServerContext*, const v1::GetSessionRequest* request, v1::Session* response) override;
  grpc::Status ListSessions(grpc::ServerContext*, const v1::ListSessionsRequest* request,
                            v1::ListSessionsResponse* response) override;
  grpc::Status GetStatus(grpc::ServerContext*, const v1::GetStatusRequest* request,
                         v1::SessionStatus* response) override;
  grpc::ServerWriteReactor<v1::SessionStatus>* WatchSession(grpc::CallbackServerContext*,
                                                           const v1::WatchSessionRequest* request) override;
  grpc::Status ListTransitions(grpc::ServerContext*, const v1::ListTransitionsRequest* request,
                               v1::ListTransitionsResponse* response) override;
  grpc::Status RecordMessage(grpc::ServerContext*, const v1::RecordMessageRequest* request,
                             v1::SessionTransition* response) override;
  grpc::Status RecordConnection(grpc::ServerContext*, const v1::RecordConnectionRequest* request,
                                v1::RecordConnectionResponse* response) override;
  grpc::Status ExtendSession(grpc::ServerContext*, const v1::ExtendSessionRequest* request,
                             v1::Session* response) override;
  grpc::Status ListExams(grpc::ServerContext*, const v1::ListExamsRequest* request,
                         v1::ListExamsResponse* response) override;
  grpc::Status GetExam(grpc::ServerContext*, const v1::GetExamRequest* request, v1::Exam* response) override;

 private:
  SessionStore& store_;
  const ExamCatalog& catalog_;
  SessionWatchHub& hub_;
  const Clock& clock_;
  std::chrono::milliseconds heartbeat_;

  struct Watch;  // one WatchSession stream
  class WatchReactor;
  using SteadyTime = std::chrono::steady_clock::time_point;
  // The next heartbeat, `beat` from now, or sooner when the session's status
  // changes by the clock alone.
  SteadyTime next_look(const Session& session, std::chrono::milliseconds beat) const;
  // Asks the watch thread to look at `watch` at `at` (or as soon as it can).
  void look_at(const std::shared_ptr<Watch>& watch, SteadyTime at);
  void look(Watch& watch);
  void written(const std::shared_ptr<Watch>& watch, bool ok);
  void run_watches();

  struct Due {
    SteadyTime at;
    std::weak_ptr<Watch> watch;
    bool operator>(const Due& other) const { return at > other.at; }
  };
  std::mutex watches_mutex_;
  std::condition_variable watches_cv_;
  std::priority_queue<Due, std::vector<Due>, std::greater<>> due_;
  bool stopping_ = false;
  std::thread watch_thread_;
};

}  // namespace examiso::lifecycle
