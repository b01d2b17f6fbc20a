// execution-environment: create, inspect and destroy a session's environment.
#include "common/cli.h"
#include "common/proto_names.h"
#include "examiso/v1/environment.grpc.pb.h"

int main(int argc, char** argv) {
  using namespace examiso;
  cli::Command cmd("execution-environment", "Create, inspect and destroy exam environments", "environment");
  std::string session_id;
  int timeout = 60;
  std::string reason;

  const auto describe = [](const v1::Environment& e) {
    return Json{{"environment_id", e.environment_id()},
                {"session_id", e.session_id()},
                {"pod_name", e.pod_name()},
                {"pod_namespace", e.pod_namespace()},
                {"status", environment_status_name(e.status())},
                {"created_at", time_json(e.has_created_at(), e.created_at())},
                {"ready_at", time_json(e.has_ready_at(), e.ready_at())}};
  };

  auto* create = cmd.subcommand("create", "Provision the session's isolated environment", [&] {
    v1::EnvironmentService::Stub stub(cmd.channel());
    v1::CreateEnvironmentRequest request;
    request.set_session_id(session_id);
    request.set_timeout_seconds(timeout);
    return describe(cmd.call(&v1::EnvironmentService::Stub::CreateEnvironment, stub, request,
                             std::chrono::seconds(timeout + 5)));
  });
  create->add_option("--session-id", session_id, "the exam session (UUID)");
  create->add_option("--timeout", timeout, "give up after this many seconds (default 60)")->check(CLI::Range(1, 3600));

  auto* status = cmd.subcommand("status", "Show the session's environment", [&] {
    v1::EnvironmentService::Stub stub(cmd.channel());
    v1::GetEnvironmentRequest request;
    request.set_session_id(session_id);
    const auto e = cmd.call(&v1::EnvironmentService::Stub::GetEnvironment, stub, request);
    Json out = describe(e);
    out["ready"] = e.ready();
    out["driver"] = e.driver();
    if (!e.error_reason().empty()) out["error_reason"] = e.error_reason();
    if (e.has_destroyed_at()) out["destroyed_at"] = time_json(true, e.destroyed_at());
    return out;
  });
  status->add_option("--session-id", session_id, "the exam session (UUID)");

  auto* destroy = cmd.subcommand("destroy", "Destroy the session's environment (destroying twice is fine)", [&] {
    v1::EnvironmentService::Stub stub(cmd.channel());
    v1::DestroyEnvironmentRequest request;
    request.set_session_id(session_id);
    request.set_reason(reason.empty() ? "cli" : reason);
    const auto r = cmd.call(&v1::EnvironmentService::Stub::DestroyEnvironment, stub, request, std::chrono::seconds(30));
    return Json{{"environment_id", r.environment_id()},
                {"session_id", r.session_id()},
                {"destroyed_at", time_json(r.has_destroyed_at(), r.destroyed_at())}};
  });
  destroy->add_option("--session-id", session_id, "the exam session (UUID)");
  destroy->add_option("--reason", reason, "why, for the log");

  auto* list = cmd.subcommand("list", "List environments, newest first", [&] {
    v1::EnvironmentService::Stub stub(cmd.channel());
    v1::ListEnvironmentsRequest request;
    request.set_limit(100);
    const auto r = cmd.call(&v1::EnvironmentService::Stub::ListEnvironments, stub, request);
    Json out = Json::array();
    for (const auto& e : r.environments()) out.push_back(describe(e));
    return Json{{"environments", out}};
  });
  (void)list;

  return cmd.run(argc, argv);
}
