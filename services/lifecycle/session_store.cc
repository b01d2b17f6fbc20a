#include "services/lifecycle/session_store.h"

#include "common/identity.h"
#include "common/log.h"
#include "common/uuid.h"

namespace examiso::lifecycle {
namespace {

constexpr size_t kMaxReason = 2000;
constexpr size_t kMaxActor = 200;
constexpr size_t kMaxCached = 20000;  // sessions; a full cache is emptied

std::string micros(std::string_view column) {
  return "(EXTRACT(EPOCH FROM " + std::string(column) + ") * 1000000)::bigint";
}

// The columns every query selects, in the order read_session() reads them.
const std::string& session_columns() {
  static const std::string columns =
      "session_id::text, user_id::text, exam_id, state, previous_state, termination_reason, failure_class, reason, "
      "auto_provision, duration_seconds, provisioning_timeout_seconds, " +
      micros("created_at") + ", " + micros("updated_at") + ", " + micros("initializing_at") + ", " +
      micros("ready_at") + ", " + micros("started_at") + ", " + micros("terminated_at") + ", " + micros("deadline") +
      ", version, extended_seconds, terminals_open, " + micros("last_seen_at");
  return columns;
}

Session read_session(const PgResult& r, int row) {
  Session s;
  s.session_id = r.str(row, 0);
  s.user_id = r.str(row, 1);
  s.exam_id = r.str(row, 2);
  s.state = parse_state(r.text(row, 3)).value_or(State::failed);
  if (!r.null(row, 4)) s.previous_state = parse_state(r.text(row, 4));
  s.termination_reason = parse_termination_reason(r.text(row, 5)).value_or(TerminationReason::none);
  s.failure_class = parse_failure_class(r.text(row, 6)).value_or(FailureClass::none);
  s.reason = r.str(row, 7);
  s.auto_provision = r.boolean(row, 8);
  s.duration_seconds = r.integer(row, 9);
  s.provisioning_timeout_seconds = r.integer(row, 10);
  s.created_at = *r.time(row, 11);
  s.updated_at = *r.time(row, 12);
  s.initializing_at = r.time(row, 13);
  s.ready_at = r.time(row, 14);
  s.started_at = r.time(row, 15);
  s.terminated_at = r.time(row, 16);
  s.deadline = r.time(row, 17);
  s.version = r.integer(row, 18);
  s.extended_seconds = r.integer(row, 19);
  s.terminals_open = static_cast<int>(r.integer(row, 20));
  s.last_seen_at = r.time(row, 21);
  return s;
}

std::optional<std::string> nullable(std::string_view text) {
  return text.empty() ? std::nullopt : std::optional(std::string(text));
}

std::string state_array(const std::vector<State>& states) {
  std::string out = "{";
  for (size_t i = 0; i < states.size(); ++i) out += (i ? "," : "") + std::string(name(states[i]));
  return out + "}";
}

Json state_names(const std::vector<State>& states) {
  Json out = Json::array();
  for (State s : states) out.push_back(name(s));
  return out;
}

}  // namespace

void check_text(std::string_view field, std::string_view value, size_t max_bytes) {
  if (value.size() > max_bytes)
    throw Error("INVALID_ARGUMENT",
                std::string(field) + " is " + std::to_string(value.size()) + " bytes long; at most " +
                    std::to_string(max_bytes) + " are allowed",
                Json{{"field", field}});
  if (value.find('\0') != std::string_view::npos)
    throw Error("INVALID_ARGUMENT", std::string(field) + " must not contain NUL bytes", Json{{"field", field}});
}

Session SessionStore::create(const CreateRequest& request) {
  const auto ids = check_identity({{"user_id", request.user_id}, {"exam_session_id", request.session_id, false}});
  const Exam* exam = request.exam_id.empty() ? &catalog_.default_exam() : catalog_.find(request.exam_id);
  if (!exam) {
    check_text("exam_id", request.exam_id, 200);
    throw Error("INVALID_EXAM_ID", "Unknown exam: " + request.exam_id, Json{{"exam_id", request.exam_id}});
  }
  check_text("actor", request.actor, kMaxActor);
  const std::string session_id = ids[1].empty() ? new_uuid() : ids[1];
  const std::string now = sql_time(clock_.now());
  auto conn = pool_.acquire();
  try {
    static const std::string sql =
        "WITH ins AS ("
        " INSERT INTO sessions (session_id, user_id, exam_id, state, auto_provision, duration_seconds,"
        "  provisioning_timeout_seconds, created_at, updated_at)"
        " VALUES ($1, $2, $3, 'created', $4, $5, $6, $7, $7) RETURNING *),"
        " hist AS (INSERT INTO session_transitions (session_id, to_state, actor, at)"
        "  SELECT session_id, 'created', $8, created_at FROM ins)"
        " SELECT " + session_columns() + ", pg_notify('" + std::string(kChangeChannel) + "', session_id::text) FROM ins";
    const PgResult r = conn->exec_prepared(sql,
        {session_id, ids[0], exam->exam_id, request.auto_provision, exam->duration_seconds,
         exam->provisioning_timeout_seconds, now, request.actor.empty() ? "unknown" : request.actor});
    Session s = read_session(r, 0);
    log::info("session_created", {{"session_id", s.session_id}, {"user_id", s.user_id}, {"exam_id", s.exam_id}});
    return s;
  } catch (const DbError& e) {
    if (e.constraint() == "sessions_one_active_per_user") {
      const PgResult active = conn->exec(
          "SELECT session_id::text FROM sessions WHERE user_id = $1 AND state NOT IN ('terminated', 'failed')",
          {ids[0]});
      throw Error("ACTIVE_SESSION_EXISTS", "User already has an active session",
                  active.rows() ? Json{{"session_id", active.str(0, 0)}} : Json::object());
    }
    if (e.constraint() == "sessions_pkey")
      throw Error("SESSION_EXISTS", "Session " + session_id + " already exists", Json{{"session_id", session_id}});
    throw;
  }
}

TransitionResult SessionStore::transition(const TransitionRequest& request) {
  const std::string session_id = require_uuid("exam_session_id", request.session_id);
  if (request.to == State::created)
    throw Error("INVALID_ARGUMENT", "Sessions enter 'created' only when they are created", Json{{"field", "to"}});
  check_text("reason", request.reason, kMaxReason);
  check_text("actor", request.actor, kMaxActor);
  TerminationReason termination = request.termination_reason;
  FailureClass failure = request.failure_class;
  if (request.to == State::terminated) {
    if (termination == TerminationReason::none) termination = TerminationReason::admin;
  } else if (termination != TerminationReason::none) {
    throw Error("INVALID_ARGUMENT", "A termination reason belongs only to 'terminated'",
                Json{{"field", "termination_reason"}});
  }
  if (request.to == State::failed) {
    if (request.reason.find_first_not_of(" \t\r\n") == std::string::npos)
      throw Error("INVALID_ARGUMENT", "A reason is required to fail a session", Json{{"field", "reason"}});
    if (failure == FailureClass::none) failure = FailureClass::infra;
  } else if (failure != FailureClass::none) {
    throw Error("INVALID_ARGUMENT", "A failure class belongs only to 'failed'", Json{{"field", "failure_class"}});
  }

  std::vector<State> sources = sources_of(request.to);
  if (!request.expected_from.empty()) {
    std::erase_if(sources, [&](State s) {
      return std::find(request.expected_from.begin(), request.expected_from.end(), s) == request.expected_from.end();
    });
  }
  auto conn = pool_.acquire();
  // previous_state = state in SET sees the row as it is when this update wins
  // the row lock, so racing callers each read the true predecessor. The
  // deadline holds whoever sweeps: past it, a running session can only be
  // terminated, and that is then for time_expired.
  static const std::string sql =
      "WITH upd AS ("
      " UPDATE sessions SET previous_state = state, state = $2, reason = $4,"
      "  termination_reason = CASE WHEN $2 = 'terminated' AND state = 'running' AND deadline <= $7::timestamptz"
      "   THEN 'time_expired' ELSE $5 END,"
      "  failure_class = $6, updated_at = $7, version = version + 1,"
      "  initializing_at = CASE WHEN $2 = 'initializing' THEN $7::timestamptz ELSE initializing_at END,"
      "  ready_at = CASE WHEN $2 = 'ready' THEN $7::timestamptz ELSE ready_at END,"
      "  started_at = CASE WHEN $2 = 'running' THEN $7::timestamptz ELSE started_at END,"
      "  deadline = CASE WHEN $2 = 'running' THEN $7::timestamptz + make_interval(secs => duration_seconds)"
      "   ELSE deadline END,"
      "  terminated_at = CASE WHEN $2 IN ('terminated', 'failed') THEN $7::timestamptz ELSE terminated_at END"
      " WHERE session_id = $1 AND state = ANY($3::text[])"
      "  AND NOT (state = 'running' AND deadline <= $7::timestamptz AND $2 <> 'terminated') RETURNING *),"
      " hist AS (INSERT INTO session_transitions"
      "  (session_id, from_state, to_state, reason, termination_reason, failure_class, actor, at)"
      "  SELECT session_id, previous_state, state, reason, termination_reason, failure_class, $8, updated_at FROM upd)"
      " SELECT " + session_columns() + ", pg_notify('" + std::string(kChangeChannel) + "', session_id::text) FROM upd";
  const PgResult r = conn->exec_prepared(
      sql, {session_id, name(request.to), state_array(sources), nullable(request.reason), nullable(name(termination)),
       nullable(name(failure)), sql_time(clock_.now()), request.actor.empty() ? "unknown" : request.actor});
  if (r.rows() == 0) transition_refused(*conn, session_id, request.to);
  TransitionResult result{read_session(r, 0), State::created};
  forget(session_id);
  result.previous_state = result.session.previous_state.value_or(State::created);
  log::info("session_transition", {{"session_id", session_id},
                                   {"user_id", result.session.user_id},
                                   {"from", name(result.previous_state)},
                                   {"to", name(request.to)},
                                   {"actor", request.actor}});
  return result;
}

Session SessionStore::extend(const ExtendRequest& request) {
  const std::string session_id = require_uuid("exam_session_id", request.session_id);
  if (request.seconds < 1 || request.seconds > max_extension_seconds_)
    throw Error("INVALID_ARGUMENT", "seconds must be between 1 and " + std::to_string(max_extension_seconds_),
                Json{{"field", "seconds"}});
  if (request.reason.empty()) throw Error("INVALID_ARGUMENT", "reason is required", Json{{"field", "reason"}});
  check_text("reason", request.reason, kMaxReason);
  check_text("actor", request.actor, kMaxActor);
  auto conn = pool_.acquire();
  // One statement: the row, its history and the news of it, as a transition.
  // The session's duration grows too, so that one not started yet starts
  // with the time it was given.
  static const std::string sql =
      "WITH upd AS ("
      " UPDATE sessions SET duration_seconds = duration_seconds + $2, extended_seconds = extended_seconds + $2,"
      "  deadline = CASE WHEN state = 'running' THEN deadline + make_interval(secs => $2) ELSE deadline END,"
      "  version = version + 1"
      " WHERE session_id = $1 AND state IN ('created', 'initializing', 'ready', 'running')"
      "  AND NOT (state = 'running' AND deadline <= $5::timestamptz) AND extended_seconds + $2 <= $6 RETURNING *),"
      " hist AS (INSERT INTO session_transitions (session_id, from_state, to_state, reason, actor, at, kind, seconds)"
      "  SELECT session_id, state, state, $3, $4, $5::timestamptz, 'extend', $2 FROM upd)"
      " SELECT " + session_columns() + ", pg_notify('" + std::string(kChangeChannel) + "', session_id::text) FROM upd";
  const PgResult r =
      conn->exec_prepared(sql, {session_id, request.seconds, request.reason, request.actor.empty() ? "unknown" : request.actor,
                                sql_time(clock_.now()), max_extension_seconds_});
  if (r.rows() == 0) {
    const PgResult current = conn->exec(
        "SELECT state, deadline <= $2::timestamptz, extended_seconds FROM sessions WHERE session_id = $1",
        {session_id, sql_time(clock_.now())});
    if (current.rows() == 0) throw Error("SESSION_NOT_FOUND", "Session not found", Json{{"session_id", session_id}});
    const State state = parse_state(current.text(0, 0)).value_or(State::failed);
    const bool time_up = state == State::running && !current.null(0, 1) && current.boolean(0, 1);
    if (state == State::terminated || state == State::failed || time_up)
      throw Error("INVALID_TRANSITION", "The session has ended: it cannot be given more time",
                  Json{{"current_state", name(state)}});
    throw Error("INVALID_ARGUMENT",
                "A session may be given " + std::to_string(max_extension_seconds_) + " s more in all; it was given " +
                    std::to_string(current.integer(0, 2)) + " s already",
                Json{{"field", "seconds"}});
  }
  Session s = read_session(r, 0);
  forget(session_id);
  log::info("session_extended", {{"session_id", session_id},
                                 {"seconds", request.seconds},
                                 {"extended_seconds", s.extended_seconds},
                                 {"actor", request.actor}});
  return s;
}

HistoryEntry SessionStore::record_message(std::string_view session_id_in, std::string_view text,
                                          std::string_view actor) {
  const std::string session_id = require_uuid("exam_session_id", session_id_in);
  if (text.empty()) throw Error("INVALID_ARGUMENT", "text is required", Json{{"field", "text"}});
  check_text("text", text, kMaxReason);
  check_text("actor", actor, kMaxActor);
  HistoryEntry h;
  h.kind = "message";
  h.reason = std::string(text);
  h.actor = actor.empty() ? "unknown" : std::string(actor);
  h.at = clock_.now();
  auto conn = pool_.acquire();
  static const std::string sql =
      "INSERT INTO session_transitions (session_id, from_state, to_state, reason, actor, at, kind)"
      " SELECT session_id, state, state, $2, $3, $4::timestamptz, 'message' FROM sessions"
      " WHERE session_id = $1 AND state IN ('ready', 'running') RETURNING to_state";
  const PgResult r = conn->exec_prepared(sql, {session_id, h.reason, h.actor, sql_time(h.at)});
  if (r.rows() == 0) {
    const PgResult current = conn->exec("SELECT state FROM sessions WHERE session_id = $1", {session_id});
    if (current.rows() == 0) throw Error("SESSION_NOT_FOUND", "Session not found", Json{{"session_id", session_id}});
    const State state = parse_state(current.text(0, 0)).value_or(State::failed);
    if (state == State::created || state == State::initializing)
      throw Error("SESSION_NOT_READY", "The session's environment is not ready yet: there is no terminal to tell");
    throw Error("SESSION_TERMINATED", "The session has ended", Json{{"current_state", name(state)}});
  }
  h.to = parse_state(r.text(0, 0)).value_or(State::failed);
  h.from = h.to;
  log::info("session_message", {{"session_id", session_id}, {"actor", h.actor}});
  return h;
}

void SessionStore::record_connection(std::string_view session_id_in, bool connected, std::string_view detail,
                                     std::string_view actor) {
  const std::string session_id = require_uuid("exam_session_id", session_id_in);
  check_text("detail", detail, kMaxReason);
  check_text("actor", actor, kMaxActor);
  auto conn = pool_.acquire();
  // Not a change of the session (its version stays): the notice only keeps
  // every replica's cache of it honest.
  static const std::string sql =
      "WITH upd AS (UPDATE sessions SET terminals_open = GREATEST(terminals_open + $2, 0), last_seen_at = $5::timestamptz"
      "  WHERE session_id = $1 RETURNING session_id, state),"
      " hist AS (INSERT INTO session_transitions (session_id, from_state, to_state, reason, actor, at, kind)"
      "  SELECT session_id, state, state, $3, $4, $5::timestamptz, $6 FROM upd)"
      " SELECT pg_notify('" + std::string(kChangeChannel) + "', session_id::text) FROM upd";
  const PgResult r =
      conn->exec_prepared(sql, {session_id, int64_t{connected ? 1 : -1}, std::string(detail),
                                actor.empty() ? std::string("unknown") : std::string(actor), sql_time(clock_.now()),
                                std::string(connected ? "connect" : "disconnect")});
  if (r.rows() == 0) throw Error("SESSION_NOT_FOUND", "Session not found", Json{{"session_id", session_id}});
  forget(session_id);
}

void SessionStore::transition_refused(PgConnection& conn, const std::string& session_id, State to) {
  const PgResult current = conn.exec("SELECT state, deadline <= $2::timestamptz FROM sessions WHERE session_id = $1",
                                     {session_id, sql_time(clock_.now())});
  if (current.rows() == 0)
    throw Error("SESSION_NOT_FOUND", "Session not found", Json{{"session_id", session_id}});
  const State from = parse_state(current.text(0, 0)).value_or(State::failed);
  if (from == State::running && !current.null(0, 1) && current.boolean(0, 1) && to != State::terminated)
    throw Error("INVALID_TRANSITION", "The exam's time is up: the session can only be terminated",
                Json{{"current_state", name(from)},
                     {"requested_state", name(to)},
                     {"allowed_transitions", state_names({State::terminated})}});
  throw Error("INVALID_TRANSITION",
              "Cannot transition from '" + std::string(name(from)) + "' to '" + std::string(name(to)) + "'",
              Json{{"current_state", name(from)},
                   {"requested_state", name(to)},
                   {"allowed_transitions", state_names(allowed_transitions(from))}});
}

Session SessionStore::get(std::string_view session_id, std::optional<std::string_view> owner) {
  const std::string id = require_uuid("exam_session_id", session_id);
  uint64_t generation = 0;
  {
    std::lock_guard lock(cache_.mutex);
    const auto it = cache_.sessions.find(id);
    if (it != cache_.sessions.end() && (!owner || *owner == it->second.user_id)) return it->second;
    generation = cache_.generation;
  }
  auto conn = pool_.acquire();
  static const std::string sql = "SELECT " + session_columns() + " FROM sessions WHERE session_id = $1";
  const PgResult r = conn->exec_prepared(sql, {id});
  if (r.rows() == 0) throw Error("SESSION_NOT_FOUND", "Session not found", Json{{"session_id", id}});
  Session s = read_session(r, 0);
  std::lock_guard lock(cache_.mutex);
  if (cache_.on && cache_.generation == generation) {
    if (cache_.sessions.size() >= kMaxCached) cache_.sessions.clear();
    cache_.sessions.insert_or_assign(id, s);
  }
  return s;
}

void SessionStore::set_cache(bool on) {
  std::lock_guard lock(cache_.mutex);
  cache_.on = on;
  cache_.sessions.clear();
  ++cache_.generation;
}

void SessionStore::forget(const std::string& session_id) {
  std::lock_guard lock(cache_.mutex);
  cache_.sessions.erase(session_id);
  ++cache_.generation;
}

std::vector<Session> SessionStore::list(const SessionFilter& filter) {
  std::optional<std::string> user;
  if (!filter.user_id.empty()) user = require_uuid("user_id", filter.user_id);
  require_limit(filter.limit, 10000);
  auto conn = pool_.acquire();
  const PgResult r = conn->exec(
      "SELECT " + session_columns() +
          " FROM sessions WHERE ($1::uuid IS NULL OR user_id = $1::uuid)"
          " AND ($2::text[] IS NULL OR state = ANY($2::text[]))"
          " AND ($3::timestamptz IS NULL OR deadline <= $3::timestamptz)"
          " AND ($4::timestamptz IS NULL OR updated_at <= $4::timestamptz)"
          " AND ($6::text IS NULL OR exam_id = $6::text)" +
          (filter.soonest_deadline_first ? " ORDER BY deadline ASC LIMIT $5" : " ORDER BY created_at DESC LIMIT $5"),
      {user, filter.states.empty() ? std::optional<std::string>() : state_array(filter.states),
       sql_time(filter.deadline_before), sql_time(filter.state_entered_before), filter.limit,
       filter.exam_id.empty() ? std::nullopt : std::optional(filter.exam_id)});
  std::vector<Session> out;
  for (int i = 0; i < r.rows(); ++i) out.push_back(read_session(r, i));
  return out;
}

std::vector<HistoryEntry> SessionStore::history(std::string_view session_id) {
  const std::string id = require_uuid("exam_session_id", session_id);
  auto conn = pool_.acquire();
  const PgResult r = conn->exec(
      "SELECT from_state, to_state, coalesce(reason, ''), coalesce(termination_reason, ''),"
      " coalesce(failure_class, ''), actor, " + micros("at") + ", kind, coalesce(seconds, 0)"
          " FROM session_transitions WHERE session_id = $1 ORDER BY id",
      {id});
  if (r.rows() == 0) throw Error("SESSION_NOT_FOUND", "Session not found", Json{{"session_id", id}});
  std::vector<HistoryEntry> out;
  for (int i = 0; i < r.rows(); ++i) {
    HistoryEntry h;
    if (!r.null(i, 0)) h.from = parse_state(r.text(i, 0));
    h.to = parse_state(r.text(i, 1)).value_or(State::failed);
    h.reason = r.str(i, 2);
    h.termination_reason = parse_termination_reason(r.text(i, 3)).value_or(TerminationReason::none);
    h.failure_class = parse_failure_class(r.text(i, 4)).value_or(FailureClass::none);
    h.actor = r.str(i, 5);
    h.at = *r.time(i, 6);
    h.kind = r.str(i, 7);
    h.seconds = r.integer(i, 8);
    out.push_back(std::move(h));
  }
  return out;
}

}  // namespace examiso::lifecycle
