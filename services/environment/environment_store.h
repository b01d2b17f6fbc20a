#pragma once
// Execution environment records in PostgreSQL.
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/db.h"
#include "common/migrate.h"

namespace examiso {

// The environment service's schema: migrations/*.sql, embedded at build time.
std::vector<Migration> environment_migrations();

namespace environment {

enum class Status { pending, creating, running, terminating, destroyed, error };
std::string_view name(Status s);

struct EnvironmentRecord {
  std::string environment_id;
  std::string session_id;
  std::string pod_name;
  std::string pod_namespace;
  std::string driver;
  std::string node;
  int64_t host_uid = 0;
  Status status = Status::pending;
  std::string error_reason;
  TimePoint created_at;
  std::optional<TimePoint> ready_at, destroyed_at;
  TimePoint updated_at;
  std::string pool_key;  // made for the warm pool (session_id empty until claimed)
};

class EnvironmentStore final {
 public:
  EnvironmentStore(PgPool& pool, const Clock& clock) : pool_(pool), clock_(clock) {}

  // The newest record of a session (live or not).
  std::optional<EnvironmentRecord> latest(const std::string& session_id);
  std::optional<EnvironmentRecord> by_id(const std::string& environment_id);

  // Inserts a `creating` record (a pooled one when session_id is empty).
  // Nullopt when the session already has a live one; a taken pod name or uid
  // is retried with the next candidate.
  std::optional<EnvironmentRecord> insert_creating(EnvironmentRecord record, int64_t uid_base, int64_t uid_count);

  // A pooled environment, still nobody's, becomes `terminating`; false when it
  // is no longer there to retire (claimed, or gone).
  bool start_retiring(const std::string& environment_id);

  EnvironmentRecord set_status(const std::string& environment_id, Status status, const std::string& error_reason = "");
  // The same, only from one of `from` (a reconcile that looked a moment ago
  // must not undo a destroy made since); false when it was in none of them.
  bool set_status_from(const std::string& environment_id, const std::vector<Status>& from, Status status,
                       const std::string& error_reason = "");

  // Gives the oldest running pooled environment of `pool_key` on `node` to the
  // session, named `pod_name`. Nullopt when there is none, or when the session
  // already has a live environment or another one has that name.
  std::optional<EnvironmentRecord> claim(const std::string& pool_key, const std::string& node,
                                         const std::string& session_id, const std::string& pod_name);

  // `pooled`: also the warm pool's environments (no session yet).
  // `current_only`: only records that are their session's newest.
  std::vector<EnvironmentRecord> list(const std::vector<Status>& statuses, const std::string& node, int limit,
                                      bool pooled = true, bool current_only = false);

 private:
  PgPool& pool_;
  const Clock& clock_;
};

}  // namespace environment
}  // namespace examiso
