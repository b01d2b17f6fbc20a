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

// Environments made from equal settings are interchangeable: one pool.
std::string pool_key(const EnvironmentSpec& s) {
  std::string text = s.image + '\n' + std::to_string(s.memory_limit_bytes) + '\n' + std::to_string(s.pids_limit) +
                     '\n' + std::to_string(s.cpu_millis) + '\n' + std::to_string(s.home_size_bytes) + '\n' +
                     std::to_string(s.tmp_size_bytes) + '\n' + s.runtime_class + '\n' +
                     std::to_string(s.duration_seconds) + '\n';
  for (const auto& e : s.egress_allow) text += e + ',';
  return sha256_hex(text + '\n' + s.setup_script).substr(0, 32);
}

constexpr auto kPoolRetryAfterFailure = std::chrono::seconds(30);
// Longer than any create may take (timeouts are at most 3600 s).
constexpr auto kLongestCreate = std::chrono::seconds(3700);
// The pool is made up when claims pause: while candidates arrive, the CPU is
// theirs (making an environment costs ~30 ms of CPU; claiming one, ~1 ms).
constexpr auto kPoolQuietAfterClaim = std::chrono::milliseconds(300);

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

  // Every arrival, pooled or not, holds the pool's refilling back a moment.
  last_claim_ = std::chrono::steady_clock::now().time_since_epoch().count();
  if (auto claimed = claim_pooled(session_id, session.spec)) return *claimed;

  const auto inserted = store_.insert_creating(new_record(session_id, "exam-" + session_id.substr(0, 8)), o_.uid_base,
                                               o_.uid_count);
  if (!inserted) return wait_for_creation(session_id, deadline);  // a concurrent create won
  return provision(*inserted, session.spec, deadline);
}

EnvironmentRecord Environments::new_record(const std::string& session_id, const std::string& pod_name) const {
  EnvironmentRecord record;
  record.environment_id = new_uuid();
  record.session_id = session_id;
  record.pod_name = pod_name;
  record.pod_namespace = o_.pod_namespace;
  record.driver = driver_.name();
  record.node = o_.node;
  return record;
}

EnvironmentRecord Environments::provision(const EnvironmentRecord& inserted, EnvironmentSpec spec,
                                          std::chrono::steady_clock::time_point deadline) {
  spec.environment_id = inserted.environment_id;
  spec.session_id = inserted.session_id;
  spec.name = inserted.pod_name;
  spec.host_uid = static_cast<uid_t>(inserted.host_uid);
  spec.pooled = inserted.session_id.empty();
  const auto started = std::chrono::steady_clock::now();
  try {
    driver_.create(spec, deadline);
  } catch (const std::exception& e) {
    // Whatever went wrong, the record says so: never left `creating`.
    const auto* error = dynamic_cast<const Error*>(&e);
    const std::string reason = error ? error->details().value("reason", std::string(e.what())) : e.what();
    store_.set_status(inserted.environment_id, Status::error, reason);
    log::warn("environment_create_failed",
              {{"session_id", inserted.session_id}, {"environment_id", inserted.environment_id}, {"reason", reason}});
    if (error && (error->code() == "ENVIRONMENT_CREATE_FAILED" || error->code() == "ENVIRONMENT_CAPACITY_REACHED"))
      throw;
    throw Error("ENVIRONMENT_CREATE_FAILED", "Environment could not be created: " + reason, Json{{"reason", reason}});
  }
  EnvironmentRecord ready = store_.set_status(inserted.environment_id, Status::running);
  log::info(spec.pooled ? "environment_pooled" : "environment_created",
            {{"session_id", ready.session_id},
             {"environment_id", ready.environment_id},
             {"pod_name", ready.pod_name},
             {"ms", std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started)
                        .count()}});
  return ready;
}

// A ready environment from the warm pool, now the session's; nullopt when the
// pool has none (or this driver keeps no pool).
std::optional<EnvironmentRecord> Environments::claim_pooled(const std::string& session_id,
                                                            const EnvironmentSpec& spec) {
  if (o_.pool_size <= 0 || !driver_.pools()) return std::nullopt;
  const std::string key = pool_key(spec);
  for (int attempt = 0; attempt < 3; ++attempt) {
    const auto started = std::chrono::steady_clock::now();
    auto record = store_.claim(key, o_.node, session_id, "exam-" + session_id.substr(0, 8));
    if (!record) return std::nullopt;
    pool_wanted_.notify_one();
    try {
      driver_.claim(record->environment_id, record->pod_name);
      log::info("environment_claimed",
                {{"session_id", session_id},
                 {"environment_id", record->environment_id},
                 {"pod_name", record->pod_name},
                 {"ms", std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                              started).count()}});
      return record;
    } catch (const Error& e) {
      // A pooled sandbox that died waiting: it is not this session's, try another.
      log::warn("environment_claim_failed",
                {{"session_id", session_id}, {"environment_id", record->environment_id}, {"reason", e.what()}});
      driver_.destroy(record->environment_id);
      store_.set_status(record->environment_id, Status::error, e.what());
    }
  }
  return std::nullopt;
}

void Environments::run_pool(const std::atomic<bool>& stop) {
  while (!stop) {
    try {
      refill_pool(stop);
    } catch (const std::exception& e) {
      log::warn("pool_refill_failed", {{"message", e.what()}});
    }
    std::unique_lock lock(pool_mutex_);
    pool_wanted_.wait_for(lock, std::chrono::seconds(1));
  }
}

void Environments::refill_pool(const std::atomic<bool>& stop) {
  if (o_.pool_size <= 0 || !driver_.pools()) return;
  std::map<std::string, Sessions::Exam> wanted;  // by pool key
  for (auto& exam : sessions_.exams()) wanted.emplace(pool_key(exam.spec), std::move(exam));
  std::map<std::string, int64_t> have;
  for (const auto& r : store_.list({Status::creating, Status::running}, o_.node, 100000)) {
    if (!r.session_id.empty() || r.pool_key.empty() || r.driver != driver_.name()) continue;
    if (wanted.count(r.pool_key)) {
      ++have[r.pool_key];
    } else {
      retire(r, "its exam is no longer in the catalog");
    }
  }
  for (const auto& [key, exam] : wanted) {
    if (std::chrono::steady_clock::now() < pool_failed_until_[key]) continue;
    for (int64_t n = have[key]; n < o_.pool_size && !stop; ++n) {
      for (;;) {
        const auto quiet_at = std::chrono::steady_clock::time_point(std::chrono::steady_clock::duration(last_claim_)) +
                              kPoolQuietAfterClaim;
        if (stop || std::chrono::steady_clock::now() >= quiet_at) break;
        std::this_thread::sleep_until(quiet_at);
      }
      EnvironmentRecord record = new_record("", "pool-" + new_uuid().substr(0, 8));
      record.pool_key = key;
      const auto inserted = store_.insert_creating(record, o_.uid_base, o_.uid_count);
      try {
        provision(*inserted, exam.spec,
                  std::chrono::steady_clock::now() + std::chrono::seconds(exam.provisioning_timeout_seconds));
      } catch (const std::exception&) {
        // A setup that fails fails for every candidate: not again at once.
        pool_failed_until_[key] = std::chrono::steady_clock::now() + kPoolRetryAfterFailure;
        break;
      }
    }
  }
}

void Environments::retire(const EnvironmentRecord& r, const std::string& reason) {
  if (!store_.start_retiring(r.environment_id)) return;  // claimed meanwhile: a session's now
  driver_.destroy(r.environment_id);
  store_.set_status(r.environment_id, Status::destroyed);
  log::info("environment_retired", {{"environment_id", r.environment_id}, {"reason", reason}});
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

std::vector<EnvironmentRecord> Environments::list(const std::vector<Status>& statuses, int limit,
                                                  bool current_only) {
  require_limit(limit, 10000);
  return store_.list(statuses, "", limit, false, current_only);
}

std::string Environments::running_environment(const std::string& session_id_in) {
  const std::string session_id = require_uuid("exam_session_id", session_id_in);
  const auto r = store_.latest(session_id);
  if (!r) throw Error("ENVIRONMENT_NOT_FOUND", "No environment for this session", Json{{"session_id", session_id}});
  if (r->status == Status::pending || r->status == Status::creating)
    throw Error("SESSION_NOT_READY", "The environment is still being created");
  if (r->status != Status::running) throw Error("SESSION_TERMINATED", "The environment has ended");
  return r->environment_id;
}

std::unique_ptr<Terminal> Environments::attach(const std::string& session_id, uint16_t cols, uint16_t rows) {
  return driver_.attach(running_environment(session_id), cols, rows);
}

std::unique_ptr<Terminal> Environments::observe(const std::string& session_id) {
  auto terminal = driver_.open_observer(running_environment(session_id));
  if (!terminal->send(sandbox::encode_frame(sandbox::FrameType::view, "")))
    throw Error("ENVIRONMENT_NOT_FOUND", "The environment's terminal is not running");
  return terminal;
}

bool Environments::send_message(const std::string& session_id, const std::string& text) {
  // UTF-8: a proto string is.
  if (text.empty() || text.size() > kMaxMessageBytes)
    throw Error("INVALID_ARGUMENT", "A message is 1 to " + std::to_string(kMaxMessageBytes) + " bytes of text",
                Json{{"field", "text"}});
  auto terminal = driver_.open_observer(running_environment(session_id));
  if (!terminal->send(sandbox::encode_frame(sandbox::FrameType::message, text)))
    throw Error("ENVIRONMENT_NOT_FOUND", "The environment's terminal is not running");
  // The keeper's answer: "delivered" or "queued".
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  while (std::chrono::steady_clock::now() < until) {
    if (!terminal->read(std::chrono::milliseconds(100))) break;
    if (auto news = terminal->news(); !news.messages.empty()) return news.messages.front() == "delivered";
  }
  throw Error("ENVIRONMENT_NOT_FOUND", "The environment's terminal did not take the message");
}

void Environments::stop_all(const std::string& reason) {
  for (const auto& r : store_.list({Status::pending, Status::creating, Status::running, Status::terminating}, o_.node,
                                   100000)) {
    if (r.driver != driver_.name()) continue;
    driver_.destroy(r.environment_id);
    if (r.session_id.empty()) {
      store_.set_status(r.environment_id, Status::destroyed);
    } else {
      store_.set_status(r.environment_id, Status::error, reason);
    }
  }
  for (const auto& id : driver_.list()) driver_.destroy(id);  // what has no record
  log::info("environments_stopped", {{"reason", reason}});
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
    // A create no longer under way: on a node of its own, every one found at
    // start-up; where replicas share the node (kubernetes), only one older
    // than any create may take (the others may be another replica's).
    const bool creating = r.status == Status::creating || r.status == Status::pending;
    const bool interrupted =
        creating && (o_.shared_node ? r.updated_at < clock_.now() - kLongestCreate : starting);
    if (interrupted || r.status == Status::terminating) {
      driver_.destroy(r.environment_id);
      if (!store_.set_status_from(r.environment_id, {r.status}, interrupted ? Status::error : Status::destroyed,
                                  "interrupted while being created"))
        continue;  // finished meanwhile by whoever was at it
      log::warn("environment_reconciled", {{"environment_id", r.environment_id},
                                           {"session_id", r.session_id},
                                           {"action", interrupted ? "failed_interrupted_create" : "finished_destroy"}});
    } else if (r.status == Status::running && !driver_.alive(r.environment_id)) {
      // Destroyed meanwhile (its record says so now): not lost.
      if (!store_.set_status_from(r.environment_id, {Status::running}, Status::error, "sandbox vanished")) continue;
      driver_.destroy(r.environment_id);
      if (!r.session_id.empty()) report.lost_sessions.push_back(r.session_id);
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
  if (driver_.follows_deadlines()) follow_deadlines(records);
  return report;
}

void Environments::follow_deadlines(const std::vector<EnvironmentRecord>& records) {
  const auto deadlines = sessions_.running_deadlines();
  std::map<std::string, TimePoint> followed;
  for (const auto& r : records) {
    const auto d = deadlines.find(r.session_id);
    if (r.status != Status::running || d == deadlines.end()) continue;
    const auto known = deadlines_followed_.find(r.environment_id);
    try {
      if (known == deadlines_followed_.end() || known->second != d->second)
        driver_.follow_deadline(r.environment_id, d->second);
      followed[r.environment_id] = d->second;
    } catch (const std::exception& e) {
      log::warn("deadline_not_followed", {{"environment_id", r.environment_id}, {"message", e.what()}});
    }
  }
  deadlines_followed_ = std::move(followed);
}

}  // namespace examiso::environment
