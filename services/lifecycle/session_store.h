#pragma once
// Sessions in PostgreSQL: creation, compare-and-set transitions with their
// history, lookups. Every change is one statement (row, history and
// notification together), so it is durable before anyone is told of it.
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/clock.h"
#include "common/db.h"
#include "common/migrate.h"
#include "services/lifecycle/catalog.h"
#include "services/lifecycle/state.h"

namespace examiso {

// The lifecycle service's schema: migrations/*.sql, embedded at build time.
std::vector<Migration> lifecycle_migrations();

namespace lifecycle {

// The PostgreSQL channel that carries the id of every changed session.
inline constexpr std::string_view kChangeChannel = "examiso_session_changed";

struct Session {
  std::string session_id;
  std::string user_id;
  std::string exam_id;
  State state = State::created;
  std::optional<State> previous_state;
  TerminationReason termination_reason = TerminationReason::none;
  FailureClass failure_class = FailureClass::none;
  std::string reason;  // free text of the transition into `state`
  bool auto_provision = false;
  int64_t duration_seconds = 0;
  int64_t provisioning_timeout_seconds = 0;
  TimePoint created_at;
  TimePoint updated_at;  // when it entered `state`
  std::optional<TimePoint> initializing_at, ready_at, started_at, terminated_at, deadline;
  int64_t version = 0;
  int64_t extended_seconds = 0;  // more time staff gave, in all
  int terminals_open = 0;        // the candidate's terminal connections open now
  std::optional<TimePoint> last_seen_at;  // the last connect or disconnect
};

struct CreateRequest {
  std::string session_id;  // empty: a new UUID
  std::string user_id;
  std::string exam_id;  // empty: the catalog's default exam
  bool auto_provision = false;
  std::string actor;
};

struct TransitionRequest {
  std::string session_id;
  State to = State::created;
  std::string reason;
  TerminationReason termination_reason = TerminationReason::none;  // terminated: default admin
  FailureClass failure_class = FailureClass::none;                 // failed: default infra
  std::string actor;
  std::vector<State> expected_from;  // when not empty: only from these states
};

struct TransitionResult {
  Session session;
  State previous_state = State::created;
};

struct ExtendRequest {
  std::string session_id;
  int64_t seconds = 0;
  std::string reason;
  std::string actor;
};

struct HistoryEntry {
  // Or "extend" (`seconds` more time), "message" (staff's, the reason), "connect" or
  // "disconnect" (the candidate's terminal; the reason says where from, or why).
  std::string kind = "transition";
  int64_t seconds = 0;
  std::optional<State> from;  // none for creation
  State to = State::created;
  std::string reason;
  TerminationReason termination_reason = TerminationReason::none;
  FailureClass failure_class = FailureClass::none;
  std::string actor;
  TimePoint at;
};

struct SessionFilter {
  std::string user_id;  // empty: every user
  std::vector<State> states;
  std::optional<TimePoint> deadline_before;
  std::optional<TimePoint> state_entered_before;
  int limit = 100;
  bool soonest_deadline_first = false;  // else newest first
  std::string exam_id{};                 // empty: every exam
};

class SessionStore final {
 public:
  // `max_extension_seconds`: the most extra time a session may be given in all.
  SessionStore(PgPool& pool, const ExamCatalog& catalog, const Clock& clock, int64_t max_extension_seconds = 3600)
      : pool_(pool), catalog_(catalog), clock_(clock), max_extension_seconds_(max_extension_seconds) {}

  // INVALID_IDENTITY, INVALID_EXAM_ID, INVALID_ARGUMENT, ACTIVE_SESSION_EXISTS
  // (details.session_id: the user's active one), SESSION_EXISTS.
  Session create(const CreateRequest& request);

  // INVALID_IDENTITY, INVALID_ARGUMENT, SESSION_NOT_FOUND, INVALID_TRANSITION
  // (details: current_state, requested_state, allowed_transitions).
  TransitionResult transition(const TransitionRequest& request);

  // More time: a running session's deadline moves, an unstarted one's
  // duration grows. INVALID_IDENTITY, INVALID_ARGUMENT (seconds, reason, past
  // the most in all), SESSION_NOT_FOUND, INVALID_TRANSITION (ended, or its
  // time is up).
  Session extend(const ExtendRequest& request);

  // A staff message for the candidate, in the session's history before it is
  // sent. Only while the session has a terminal (ready or running):
  // SESSION_NOT_READY before, SESSION_TERMINATED after; INVALID_ARGUMENT,
  // SESSION_NOT_FOUND.
  HistoryEntry record_message(std::string_view session_id, std::string_view text, std::string_view actor);

  // The candidate's terminal connected or disconnected: counted, the time
  // kept as last seen, and the event in the session's history (whatever its
  // state: a drop after the end is still an event). SESSION_NOT_FOUND,
  // INVALID_ARGUMENT.
  void record_connection(std::string_view session_id, bool connected, std::string_view detail, std::string_view actor);

  // SESSION_NOT_FOUND. `owner`: when set, a copy in memory answers only if the
  // session is this user's (see set_cache); anyone else's costs a database
  // read, as an unknown id does.
  Session get(std::string_view session_id, std::optional<std::string_view> owner = std::nullopt);
  std::vector<Session> list(const SessionFilter& filter);
  std::vector<HistoryEntry> history(std::string_view session_id);

  // get() may answer from memory while the cache is on. Whoever turns it on
  // must hear of every change (SessionWatchHub: on while it LISTENs, off when
  // its connection drops) and forget() each changed session. This store's own
  // transitions are forgotten as they commit (a session is never kept before it
  // exists: a read of it fails). Turning it on or off empties it.
  void set_cache(bool on);
  void forget(const std::string& session_id);

 private:
  [[noreturn]] void transition_refused(PgConnection& conn, const std::string& session_id, State to);

  struct Cache {
    std::mutex mutex;
    bool on = false;
    // Counts forgets: a read from the database is kept only if none happened
    // while it ran, so a change heard of during the read cannot be lost.
    uint64_t generation = 0;
    std::unordered_map<std::string, Session> sessions;
  };

  PgPool& pool_;
  const ExamCatalog& catalog_;
  const Clock& clock_;
  int64_t max_extension_seconds_;
  Cache cache_;
};

// Rejects text a session field cannot hold: too long, or with NUL bytes.
void check_text(std::string_view field, std::string_view value, size_t max_bytes);

}  // namespace lifecycle
}  // namespace examiso
