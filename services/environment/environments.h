#pragma once
// The environment service's rules: one environment per session, created only
// for a session being provisioned, destroyed idempotently, and reconciled with
// what actually runs on this node.
#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "services/environment/driver.h"
#include "services/environment/environment_store.h"

namespace examiso::environment {

// What this service needs from the lifecycle service.
class Sessions {
 public:
  struct Info {
    std::string session_id;
    std::string state;  // lifecycle state name
    int64_t provisioning_timeout_seconds = 60;
    EnvironmentSpec spec;  // the exam's environment settings (ids not filled)
  };
  struct Exam {
    std::string exam_id;
    int64_t provisioning_timeout_seconds = 60;
    EnvironmentSpec spec;
  };
  virtual ~Sessions() = default;
  virtual Info get(const std::string& session_id) = 0;  // SESSION_NOT_FOUND
  virtual std::vector<Exam> exams() = 0;               // the catalog
  // created -> initializing; a session already initializing is fine.
  virtual void start_initializing(const std::string& session_id) = 0;
  // The deadline of every running session, by session id.
  virtual std::map<std::string, TimePoint> running_deadlines() = 0;
};

struct EnvironmentOptions {
  std::string pod_namespace = "exam-sessions";
  std::string node;
  int64_t uid_base = 200000;
  int64_t uid_count = 50000;
  // Environments kept ready per exam before anyone asks (0: none).
  int64_t pool_size = 0;
  // Other replicas of this service see the same environments (kubernetes):
  // a `creating` record may be another's create under way.
  bool shared_node = false;
};

struct ReconcileReport {
  std::vector<std::string> destroyed_orphans;  // environment ids
  std::vector<std::string> lost_sessions;      // session ids whose sandbox vanished
};

struct DestroyResult {
  EnvironmentRecord record;
  bool already_destroyed = false;
};

// The longest message staff may send a candidate.
inline constexpr size_t kMaxMessageBytes = 2000;

class Environments final {
 public:
  Environments(EnvironmentStore& store, SandboxDriver& driver, Sessions& sessions, const Clock& clock,
               EnvironmentOptions options)
      : store_(store), driver_(driver), sessions_(sessions), clock_(clock), o_(std::move(options)) {}

  // Idempotent per session. timeout 0: the exam's provisioning timeout.
  EnvironmentRecord create(const std::string& session_id, std::chrono::seconds timeout);
  EnvironmentRecord get(const std::string& session_id);  // ENVIRONMENT_NOT_FOUND
  DestroyResult destroy(const std::string& session_id, const std::string& reason);
  std::vector<EnvironmentRecord> list(const std::vector<Status>& statuses, int limit, bool current_only = false);
  // SESSION_NOT_READY while creating, ENVIRONMENT_NOT_FOUND / SESSION_TERMINATED otherwise.
  std::unique_ptr<Terminal> attach(const std::string& session_id, uint16_t cols, uint16_t rows);
  // A read-only view of the session's terminal (the recent output, then the
  // live), beside its candidate's.
  std::unique_ptr<Terminal> observe(const std::string& session_id);
  // A staff message for the candidate's terminal; true when delivered to a
  // client attached now, false when kept for the next one.
  bool send_message(const std::string& session_id, const std::string& text);

  // Destroys sandboxes without a live record and marks records whose sandbox
  // vanished as `error`. At start-up (`starting`) records left `creating` or
  // `terminating` by a crash are finished too. A driver that follows
  // deadlines is given each running session's.
  ReconcileReport reconcile(bool starting);

  // Ends every environment of this node, pooled or a session's (whose record
  // then says `error`: its session has lost it). For a development platform
  // stopping, never a production node, where sandboxes outlive the service.
  void stop_all(const std::string& reason);

  // The warm pool: keeps pool_size ready environments per exam of the catalog
  // on this node (made one at a time, woken by each claim), retires those of
  // exams no longer in it. Runs until `stop`.
  void run_pool(const std::atomic<bool>& stop);
  void wake_pool() { pool_wanted_.notify_all(); }

  bool ready(const EnvironmentRecord& record) { return record.status == Status::running && driver_.alive(record.environment_id); }

 private:
  // The session's environment, when it is running; throws what a client is told otherwise.
  std::string running_environment(const std::string& session_id);
  void refill_pool(const std::atomic<bool>& stop);
  void follow_deadlines(const std::vector<EnvironmentRecord>& records);
  EnvironmentRecord new_record(const std::string& session_id, const std::string& pod_name) const;
  // Makes the environment of an inserted record; its status follows.
  EnvironmentRecord provision(const EnvironmentRecord& inserted, EnvironmentSpec spec,
                              std::chrono::steady_clock::time_point deadline);
  std::optional<EnvironmentRecord> claim_pooled(const std::string& session_id, const EnvironmentSpec& spec);
  void retire(const EnvironmentRecord& record, const std::string& reason);
  EnvironmentRecord wait_for_creation(const std::string& session_id, std::chrono::steady_clock::time_point deadline);

  EnvironmentStore& store_;
  SandboxDriver& driver_;
  Sessions& sessions_;
  const Clock& clock_;
  EnvironmentOptions o_;
  std::mutex pool_mutex_;
  std::condition_variable pool_wanted_;
  std::map<std::string, std::chrono::steady_clock::time_point> pool_failed_until_;  // by pool key
  // The deadlines the driver follows already, by environment id (reconcile's
  // own; a restart only makes it look once more).
  std::map<std::string, TimePoint> deadlines_followed_;
  std::atomic<std::chrono::steady_clock::rep> last_claim_{0};
};

}  // namespace examiso::environment
