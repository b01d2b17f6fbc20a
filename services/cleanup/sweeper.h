#pragma once
// Ending what is due and leaving nothing behind, level-triggered: each sweep
// reads what should be from the lifecycle and environment services and takes
// one idempotent step toward it. Transitions are compare-and-set, destroys
// are idempotent, so replicas sweeping at once do not conflict.
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/db.h"
#include "common/migrate.h"

namespace examiso {

// The cleanup service's schema: migrations/*.sql, embedded at build time.
std::vector<Migration> cleanup_migrations();

namespace cleanup {

struct SessionView {
  std::string session_id;
  std::string state;
  TimePoint updated_at;
  TimePoint provisioning_deadline;
  std::optional<TimePoint> ready_at;
  std::optional<TimePoint> deadline;
  int64_t remaining_seconds = 0;
};

struct EnvironmentView {
  std::string environment_id;
  std::string session_id;
  std::string status;
};

struct SessionQuery {
  std::vector<std::string> states;
  std::optional<TimePoint> deadline_before;
  std::optional<TimePoint> entered_before;
  int limit = 10000;
  bool soonest_deadline_first = false;
};

// What the sweeper needs of the lifecycle and environment services.
class Platform {
 public:
  virtual ~Platform() = default;
  virtual std::vector<SessionView> sessions(const SessionQuery& query) = 0;
  virtual std::optional<SessionView> session(const std::string& session_id) = 0;  // nullopt: gone
  // False when the session is no longer in `expected_from` (someone was first).
  virtual bool transition(const std::string& session_id, const std::string& expected_from, const std::string& to,
                          const std::string& termination_reason, const std::string& failure_class,
                          const std::string& reason) = 0;
  // Each session's current environment (its newest), when in `statuses`:
  // an older attempt's record (an interrupted create, say) is history.
  virtual std::vector<EnvironmentView> environments(const std::vector<std::string>& statuses) = 0;
  virtual std::optional<EnvironmentView> environment(const std::string& session_id) = 0;
  // False when the session never had an environment.
  virtual bool destroy_environment(const std::string& session_id, const std::string& reason) = 0;
  virtual std::vector<std::string> reconcile_environments() = 0;  // orphans destroyed
};

struct SweepAction {
  std::string session_id;
  std::string action;  // terminate_expired, fail_stuck, terminate_abandoned, terminate_lost,
                       // destroy_environment, destroy_orphan_sandbox
  std::string detail;
};

struct SweepResult {
  TimePoint started_at, completed_at;
  int64_t sessions_checked = 0;
  int64_t sessions_cleaned = 0;
  std::vector<std::string> cleaned_session_ids;
  bool dry_run = false;
  std::vector<SweepAction> actions;
};

struct CheckResult {
  std::string session_id;
  bool should_cleanup = false;
  std::string reason;
  int64_t ttl_remaining_seconds = 0;
};

struct SweeperOptions {
  std::chrono::seconds abandon_after{900};
  int workers = 8;
  std::string replica;
};

class Sweeper final {
 public:
  Sweeper(Platform& platform, PgPool& pool, const Clock& clock, SweeperOptions options)
      : platform_(platform), pool_(pool), clock_(clock), o_(std::move(options)) {}

  SweepResult sweep(bool dry_run);  // recorded
  CheckResult check(const std::string& session_id);
  // When the next running session is due, if any runs.
  std::optional<TimePoint> next_deadline();
  std::vector<SweepResult> history(int limit);

 private:
  void record(const SweepResult& result);

  Platform& platform_;
  PgPool& pool_;
  const Clock& clock_;
  SweeperOptions o_;
};

}  // namespace cleanup
}  // namespace examiso
