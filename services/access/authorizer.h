#pragma once
// Who may reach a session: its owner, in a state that allows the access; and
// staff (proctor or admin), any session or the whole room.
// Every decision is logged; every denial looks the same to the caller and
// costs the same work (one session lookup, one log row), whatever its cause.
#include <condition_variable>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "common/db.h"
#include "common/migrate.h"
#include "examiso/v1/lifecycle.pb.h"

namespace examiso {

// The access service's schema: migrations/*.sql, embedded at build time.
std::vector<Migration> access_migrations();

namespace access {

enum class AccessType { terminal, status, details, control, staff_view, staff_act };
std::string_view name(AccessType t);

struct SessionFacts {
  std::string user_id;
  std::string state;        // lifecycle state name
  v1::SessionStatus status;  // as the lifecycle service reported it
};

// The lifecycle service, as the authorizer needs it.
class SessionLookup {
 public:
  virtual ~SessionLookup() = default;
  // nullopt when there is no such session; throws BACKEND_UNAVAILABLE.
  // `user_id`: who asks; another user's session must take as long to find as
  // an unknown one.
  virtual std::optional<SessionFacts> find(const std::string& session_id, const std::string& user_id) = 0;
};

struct AccessRequest {
  std::string session_id;
  std::string user_id;
  AccessType type = AccessType::terminal;
  std::string client_ip;
  std::vector<std::string> roles;  // verified by identity; staff types need proctor or admin
};

struct Decision {
  bool granted = false;
  std::string denial_reason;  // for the log only
  std::string session_id;     // canonical, when granted
  std::string user_id;
  std::string state;
  v1::SessionStatus status;
};

struct LogEntry {
  std::string session_id, user_id, access_type, denial_reason, client_ip;
  bool granted = false;
  TimePoint at;
};

// The access log's writer: group commit. A decision waits until its row is
// written, together with every row that arrived while the previous batch was
// being written (one INSERT per batch instead of one per decision).
class LogWriter final {
 public:
  explicit LogWriter(PgPool& pool);
  ~LogWriter();

  // Blocks until `row` (the access_log columns after `id`) is written; throws
  // BACKEND_UNAVAILABLE when it cannot be.
  void write(std::vector<Param> row);

 private:
  struct Batch {
    std::vector<std::vector<Param>> rows;
    bool done = false;
    std::exception_ptr error;
    std::condition_variable written;  // only this batch's callers wait here
  };
  void run();

  PgPool& pool_;
  std::mutex mutex_;
  std::condition_variable work_;  // the writer waits here for rows
  std::shared_ptr<Batch> open_ = std::make_shared<Batch>();
  bool stopping_ = false;
  std::thread thread_;
};

class Authorizer final {
 public:
  Authorizer(PgPool& pool, SessionLookup& sessions, const Clock& clock)
      : pool_(pool), sessions_(sessions), clock_(clock), writer_(pool) {}

  // The decision, logged. Throws BACKEND_UNAVAILABLE when it cannot look the
  // session up or write the log (failing closed).
  Decision authorize(const AccessRequest& request);

  std::vector<LogEntry> log(const std::string& session_id, int limit);

 private:
  PgPool& pool_;
  SessionLookup& sessions_;
  const Clock& clock_;
  LogWriter writer_;
};

}  // namespace access
}  // namespace examiso
