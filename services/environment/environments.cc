#include "services/environment/environments.h"

#include <set>
#include <thread>

#include "common/errors.h"
#include "common/identity.h"
#include "common/log.h"
#include "common/uuid.h"

namespace examiso::environment {
namespace {

bool live(Status s) {
  return s == Status::pending || s == Status::creating || s == Status::running || s == Status::terminating;
}

}  // namespace

EnvironmentRecord Environments::create(const std::string& session_id_in, std::chrono::seconds timeout) {
  const std::string session_id = require_uuid("exam_session_id", session_id_in);
  if (timeout.count() < 0 || timeout.count() > 3600)
    throw Error("INVALID_ARGUMENT", "timeout must be between 1 and 3600 seconds", Json{{"field", "timeout"}});
  if (auto existing = store_.latest(session_id); existing && live(existing->status)) {
    if (existing->status == Status::running) return *existing;
    return wait_for_creation(session_id, std::chrono::steady_clock::now() + (timeout.count() ? timeout : std::chrono::seconds(60)));
  }
  Sessions::Info session = sessions_.get(session_id);
  if (session.state == "terminated" || session.state == "failed")
    throw Error("SESSION_TERMINATED", "Session has ended", Json{{"session_id", session_id}});
  if (timeout.count() == 0) timeout = std::chrono::seconds(session.provisioning_timeout_seconds);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  if (session.state != "initializing") sessions_.start_initializing(session_id);

  EnvironmentRecord record;
  record.environment_id = new_uuid();
  record.session_id = session_id;
  record.pod_name = "exam-" + session_id.substr(0, 8);
  record.pod_namespace = o_.pod_namespace;
  record.driver = driver_.name();
  record.node = o_.node;
  const auto inserted = store_.insert_creating(record, o_.uid_base, o_.uid_count);
  if (!inserted) return wait_for_creation(session_id, deadline);  // a concurrent create won

  EnvironmentSpec spec = session.spec;
  spec.environment_id = inserted->environment_id;
  spec.session_id = session_id;
  spec.name = inserted->pod_name;
  spec.host_uid = static_cast<uid_t>(inserted->host_uid);
  const auto started = std::chrono::steady_clock::now();
  try {
    driver_.create(spec, deadline);
  } catch (const Error& e) {
    const std::string reason = e.details().value("reason", std::string(e.what()));
    store_.set_status(inserted->environment_id, Status::error, reason);
    log::warn("environment_create_failed",
              {{"session_id", session_id}, {"environment_id", inserted->environment_id}, {"reason", reason}});
    if (e.code() == "ENVIRONMENT_CREATE_FAILED") throw;
    throw Error("ENVIRONMENT_CREATE_FAILED", "Environment could not be created: " + reason, Json{{"reason", reason}});
  }
  EnvironmentRecord ready = store_.set_status(inserted->environment_id, Status::running);
  log::info("environment_created",
            {{"session_id", session_id},
             {"environment_id", ready.environment_id},
             {"pod_name", ready.pod_name},
             {"ms", std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started)
                        .count()}});
  return ready;
}

EnvironmentRecord Environments::wait_for_creation(const std::string& session_id,
                                                  std::chrono::steady_clock::time_point deadline) {
  for (;;) {
    const auto r = store_.latest(session_id);
    if (r && r->status == Status::running) return *r;
    if (!r || !live(r->status)) {
      const std::string reason = r ? r->error_reason : "the environment disappeared";
      throw Error("ENVIRONMENT_CREATE_FAILED", "Environment could not be created: " + reason, Json{{"reason", reason}});
    }
    if (std::chrono::steady_clock::now() >= deadline)
      throw Error("ENVIRONMENT_CREATE_FAILED", "Environment could not be created: still being created elsewhere",
                  Json{{"reason", "timeout"}});
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

EnvironmentRecord Environments::get(const std::string& session_id_in) {
  const std::string session_id = require_uuid("exam_session_id", session_id_in);
  auto r = store_.latest(session_id);
  if (!r) throw Error("ENVIRONMENT_NOT_FOUND", "No environment for this session", Json{{"session_id", session_id}});
  return *r;
}

DestroyResult Environments::destroy(const std::string& session_id_in, const std::string& reason) {
  const std::string session_id = require_uuid("exam_session_id", session_id_in);
  auto r = store_.latest(session_id);
  if (!r) throw Error("ENVIRONMENT_NOT_FOUND", "No environment for this session", Json{{"session_id", session_id}});
  if (r->status == Status::destroyed) return {*r, true};
  store_.set_status(r->environment_id, Status::terminating);
  driver_.destroy(r->environment_id);
  EnvironmentRecord done = store_.set_status(r->environment_id, Status::destroyed);
  log::info("environment_destroyed",
            {{"session_id", session_id}, {"environment_id", done.environment_id}, {"reason", reason}});
  return {done, false};
}

std::vector<EnvironmentRecord> Environments::list(const std::vector<Status>& statuses, int limit) {
  require_limit(limit, 10000);
  return store_.list(statuses, "", limit);
}

std::unique_ptr<Terminal> Environments::attach(const std::string& session_id_in, uint16_t cols, uint16_t rows) {
  const std::string session_id = require_uuid("exam_session_id", session_id_in);
  const auto r = store_.latest(session_id);
  if (!r) throw Error("ENVIRONMENT_NOT_FOUND", "No environment for this session", Json{{"session_id", session_id}});
  if (r->status == Status::pending || r->status == Status::creating)
    throw Error("SESSION_NOT_READY", "The environment is still being created");
  if (r->status != Status::running) throw Error("SESSION_TERMINATED", "The environment has ended");
  return driver_.attach(r->environment_id, cols, rows);
}

ReconcileReport Environments::reconcile(bool starting) {
  ReconcileReport report;
  // Sandboxes first: a record is always written before its sandbox exists, so
  // a sandbox seen here without a live record below is an orphan.
  const auto sandboxes = driver_.list();
  const auto records = store_.list({Status::pending, Status::creating, Status::running, Status::terminating}, o_.node,
                                   100000);
  std::set<std::string> known;
  for (const auto& r : records) {
    if (r.driver != driver_.name()) continue;
    known.insert(r.environment_id);
    const bool interrupted = starting && (r.status == Status::creating || r.status == Status::pending);
    if (interrupted || r.status == Status::terminating) {
      driver_.destroy(r.environment_id);
      store_.set_status(r.environment_id, interrupted ? Status::error : Status::destroyed,
                        "interrupted while being created");
      log::warn("environment_reconciled", {{"environment_id", r.environment_id},
                                           {"session_id", r.session_id},
                                           {"action", interrupted ? "failed_interrupted_create" : "finished_destroy"}});
    } else if (r.status == Status::running && !driver_.alive(r.environment_id)) {
      driver_.destroy(r.environment_id);
      store_.set_status(r.environment_id, Status::error, "sandbox vanished");
      report.lost_sessions.push_back(r.session_id);
      log::warn("environment_reconciled",
                {{"environment_id", r.environment_id}, {"session_id", r.session_id}, {"action", "marked_lost"}});
    }
  }
  for (const auto& id : sandboxes) {
    if (known.count(id)) continue;
    driver_.destroy(id);
    report.destroyed_orphans.push_back(id);
    log::warn("environment_reconciled", {{"environment_id", id}, {"action", "destroyed_orphan"}});
  }
  return report;
}

}  // namespace examiso::environment
