#pragma once
#include "examiso/v1/lifecycle.grpc.pb.h"
#include "services/lifecycle/session_store.h"
#include "services/lifecycle/session_watch.h"

namespace examiso::lifecycle {

// Adapts the lifecycle RPCs to the session store; nothing more.
class LifecycleService final : public v1::LifecycleService::Service {
 public:
  LifecycleService(SessionStore& store, const ExamCatalog& catalog, SessionWatchHub& hub, const Clock& clock,
                   std::chrono::milliseconds heartbeat)
      : store_(store), catalog_(catalog), hub_(hub), clock_(clock), heartbeat_(heartbeat) {}

  grpc::Status CreateSession(grpc::ServerContext*, const v1::CreateSessionRequest* request,
                             v1::Session* response) override;
  grpc::Status Transition(grpc::ServerContext*, const v1::TransitionRequest* request,
                          v1::TransitionResponse* response) override;
  grpc::Status GetSession(grpc::ServerContext*, const v1::GetSessionRequest* request, v1::Session* response) override;
  grpc::Status ListSessions(grpc::ServerContext*, const v1::ListSessionsRequest* request,
                            v1::ListSessionsResponse* response) override;
  grpc::Status GetStatus(grpc::ServerContext*, const v1::GetStatusRequest* request,
                         v1::SessionStatus* response) override;
  grpc::Status WatchSession(grpc::ServerContext* context, const v1::WatchSessionRequest* request,
                            grpc::ServerWriter<v1::SessionStatus>* writer) override;
  grpc::Status ListTransitions(grpc::ServerContext*, const v1::ListTransitionsRequest* request,
                               v1::ListTransitionsResponse* response) override;
  grpc::Status ListExams(grpc::ServerContext*, const v1::ListExamsRequest* request,
                         v1::ListExamsResponse* response) override;
  grpc::Status GetExam(grpc::ServerContext*, const v1::GetExamRequest* request, v1::Exam* response) override;

 private:
  SessionStore& store_;
  const ExamCatalog& catalog_;
  SessionWatchHub& hub_;
  const Clock& clock_;
  std::chrono::milliseconds heartbeat_;
};

}  // namespace examiso::lifecycle
