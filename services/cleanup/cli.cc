// cleanup-ttl: is a session due for cleanup, and sweeping by hand.
#include "common/cli.h"
#include "common/proto_names.h"
#include "examiso/v1/cleanup.grpc.pb.h"

namespace {

examiso::Json sweep_json(const examiso::v1::SweepResponse& r, bool with_actions) {
  using examiso::Json;
  Json out{{"sweep_started_at", examiso::time_json(r.has_sweep_started_at(), r.sweep_started_at())},
           {"sweep_completed_at", examiso::time_json(r.has_sweep_completed_at(), r.sweep_completed_at())},
           {"sessions_checked", r.sessions_checked()},
           {"sessions_cleaned", r.sessions_cleaned()},
           {"cleaned_session_ids", Json(std::vector<std::string>(r.cleaned_session_ids().begin(),
                                                                 r.cleaned_session_ids().end()))},
           {"dry_run", r.dry_run()}};
  if (with_actions) {
    Json actions = Json::array();
    for (const auto& a : r.actions())
      actions.push_back(Json{{"session_id", a.session_id()}, {"action", a.action()}, {"detail", a.detail()}});
    out["actions"] = actions;
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace examiso;
  cli::Command cmd("cleanup-ttl", "Check whether sessions are due for cleanup, and sweep", "cleanup");
  std::string session_id;
  bool dry_run = false, verbose = false;
  int limit = 10;

  auto* check = cmd.subcommand("check", "Is this session due for cleanup?", [&] {
    v1::CleanupService::Stub stub(cmd.channel());
    v1::CheckRequest request;
    request.set_session_id(session_id);
    const auto r = cmd.call(&v1::CleanupService::Stub::Check, stub, request);
    return Json{{"session_id", r.session_id()},
                {"should_cleanup", r.should_cleanup()},
                {"reason", r.reason()},
                {"ttl_remaining_seconds", r.ttl_remaining_seconds()}};
  });
  check->add_option("--session-id", session_id, "the exam session (UUID)");

  auto* sweep = cmd.subcommand("sweep", "End what is due and release what is left", [&] {
    v1::CleanupService::Stub stub(cmd.channel());
    v1::SweepRequest request;
    request.set_dry_run(dry_run);
    return sweep_json(cmd.call(&v1::CleanupService::Stub::Sweep, stub, request, std::chrono::seconds(60)), verbose);
  });
  sweep->add_flag("--dry-run", dry_run, "only say what would be cleaned");
  sweep->add_flag("--verbose", verbose, "list each action");

  auto* history = cmd.subcommand("history", "Recent sweeps, newest first", [&] {
    v1::CleanupService::Stub stub(cmd.channel());
    v1::ListSweepsRequest request;
    request.set_limit(limit);
    const auto r = cmd.call(&v1::CleanupService::Stub::ListSweeps, stub, request);
    Json out = Json::array();
    for (const auto& s : r.sweeps()) out.push_back(sweep_json(s, true));
    return Json{{"sweeps", out}};
  });
  history->add_option("--limit", limit, "at most this many (default 10)")->check(CLI::Range(1, 1000));

  return cmd.run(argc, argv);
}
