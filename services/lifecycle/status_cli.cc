// session-status: what a candidate is shown about a session, once or live.
#include <iostream>

#include "common/cli.h"
#include "common/proto_names.h"
#include "examiso/v1/lifecycle.grpc.pb.h"

namespace {

// The candidate's view, plus the technical message an operator needs.
examiso::Json operator_status(const examiso::v1::SessionStatus& s) {
  examiso::Json out = examiso::status_json(s);
  out.erase("lifecycle_state");
  out.erase("termination_reason");
  if (s.display_state() == "error") out["technical_message"] = s.technical_message();
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace examiso;
  cli::Command cmd("session-status", "Show the live status of an exam session", "lifecycle");
  std::string session_id;

  auto* get = cmd.subcommand("get", "Show the status once", [&] {
    v1::LifecycleService::Stub stub(cmd.channel());
    v1::GetStatusRequest request;
    request.set_session_id(session_id);
    return operator_status(cmd.call(&v1::LifecycleService::Stub::GetStatus, stub, request));
  });
  get->add_option("--session-id", session_id, "the exam session (UUID)");

  auto* watch = cmd.subcommand("watch", "Print each change as one JSON line until the session ends", [&] {
    v1::LifecycleService::Stub stub(cmd.channel());
    v1::WatchSessionRequest request;
    request.set_session_id(session_id);
    grpc::ClientContext context;
    auto reader = stub.WatchSession(&context, request);
    v1::SessionStatus status;
    Json last;
    while (reader->Read(&status)) {
      last = operator_status(status);
      std::cout << compact_json(last) << std::endl;
    }
    const grpc::Status end = reader->Finish();
    if (!end.ok()) throw from_grpc_status(end, cmd.address());
    return Json{{"session_id", session_id}, {"watch_ended", true}, {"display_state", last.value("display_state", "")}};
  });
  watch->add_option("--session-id", session_id, "the exam session (UUID)");

  return cmd.run(argc, argv);
}
