#include "services/lifecycle/provisioner.h"

#include "common/errors.h"
#include "common/log.h"

namespace examiso::lifecycle {

Provisioner::Provisioner(PgPool& pool, SessionStore& store, EnvironmentCreator& environments, SessionWatchHub& hub,
                         const Clock& clock, ProvisionerOptions options)
    : pool_(pool), store_(store), environments_(environments), hub_(hub), clock_(clock), o_(options) {}

Provisioner::~Provisioner() { stop(); }

void Provisioner::start() {
  for (int i = 0; i < o_.workers; ++i) {
    workers_.emplace_back([this] {
      uint64_t seen = 0;
      while (!stop_) {
        bool worked = false;
        try {
          worked = step();
        } catch (const std::exception& e) {
          log::warn("provisioner_step_failed", {{"message", e.what()}});
          std::this_thread::sleep_for(std::chrono::milliseconds(500));
        }
        // Nothing to do: wait for any session to change (a new one, say), or
        // poll now and then for backoffs and leases that ran out.
        if (!worked) hub_.wait_any(seen, std::chrono::milliseconds(500));
      }
    });
  }
}

void Provisioner::stop() {
  stop_ = true;
  for (auto& w : workers_) w.join();
  workers_.clear();
}

std::optional<Provisioner::Claim> Provisioner::claim() {
  static const std::string sql =
      "UPDATE sessions SET provision_lease_until = $1, provision_attempts = provision_attempts + 1"
      " WHERE session_id = (SELECT session_id FROM sessions"
      "  WHERE auto_provision AND state IN ('created', 'initializing')"
      "  AND (provision_lease_until IS NULL OR provision_lease_until < $2)"
      "  AND (provision_next_at IS NULL OR provision_next_at <= $2)"
      "  ORDER BY created_at LIMIT 1 FOR UPDATE SKIP LOCKED)"
      " RETURNING session_id::text, state, provision_attempts,"
      " (EXTRACT(EPOCH FROM created_at + make_interval(secs => provisioning_timeout_seconds)) * 1000000)::bigint";
  const TimePoint now = clock_.now();
  auto conn = pool_.acquire();
  const PgResult r = conn->exec_prepared(sql, {sql_time(now + o_.lease), sql_time(now)});
  if (r.rows() == 0) return std::nullopt;
  return Claim{r.str(0, 0), parse_state(r.text(0, 1)).value_or(State::created), static_cast<int>(r.integer(0, 2)),
               *r.time(0, 3)};
}

void Provisioner::release(const std::string& session_id, std::optional<std::chrono::milliseconds> retry_in) {
  static const std::string sql =
      "UPDATE sessions SET provision_lease_until = NULL, provision_next_at = $2 WHERE session_id = $1";
  auto conn = pool_.acquire();
  conn->exec_prepared(sql, {session_id, retry_in ? std::optional(sql_time(clock_.now() + *retry_in)) : std::nullopt});
}

void Provisioner::fail(const Claim& c, const std::string& reason, FailureClass failure) {
  TransitionRequest t;
  t.session_id = c.session_id;
  t.to = State::failed;
  t.reason = reason.substr(0, 1900);
  t.failure_class = failure;
  t.actor = "provisioner";
  t.expected_from = {State::created, State::initializing};
  try {
    store_.transition(t);
  } catch (const Error& e) {
    if (e.code() != "INVALID_TRANSITION") throw;  // it moved on meanwhile: nothing to fail
  }
}

bool Provisioner::step() {
  const auto c = claim();
  if (!c) return false;
  const auto left = std::chrono::duration_cast<std::chrono::seconds>(c->deadline - clock_.now());
  if (left.count() <= 0) {
    fail(*c, "provisioning did not finish within the exam's provisioning timeout");
    return true;
  }
  try {
    environments_.create(c->session_id, left);
    TransitionRequest t;
    t.session_id = c->session_id;
    t.to = State::ready;
    t.actor = "provisioner";
    t.expected_from = {State::initializing};
    try {
      store_.transition(t);
    } catch (const Error& e) {
      if (e.code() != "INVALID_TRANSITION") throw;
    }
    // No release: a session past initializing is never claimed again, and
    // one write fewer per session counts when many start at once.
  } catch (const Error& e) {
    const std::string code = e.code();
    if (code == "ENVIRONMENT_CREATE_FAILED") {
      fail(*c, e.details().value("reason", std::string(e.what())));
    } else if (code == "SESSION_TERMINATED" || code == "INVALID_TRANSITION" || code == "SESSION_NOT_FOUND") {
      release(c->session_id, std::nullopt);  // the session moved on without us
    } else {
      // Worth another try, later: capped exponential backoff, the last try three
      // seconds before the provisioning deadline (a service back by then
      // still makes the candidate's exam; a claim late by two seconds still
      // finds one whole second, where less fails above without its cause);
      // with no time left for one, the session fails with what was wrong. (It used to fail as soon as the next
      // backoff passed the deadline: five seconds early, before the candidate
      // had been told of the delay on a busy machine.)
      constexpr std::chrono::milliseconds kLastTry{3000};
      const auto left_ms = std::chrono::duration_cast<std::chrono::milliseconds>(c->deadline - clock_.now());
      const auto backoff = std::min<std::chrono::milliseconds>(
          {o_.max_backoff, std::chrono::milliseconds(200) * (1 << std::min(c->attempts, 10)), left_ms - kLastTry});
      if (left_ms <= kLastTry) {
        const bool down = code == "BACKEND_UNAVAILABLE";
        fail(*c,
             down ? "the environment service was unavailable: " + std::string(e.what())
                  : "provisioning did not finish within the exam's provisioning timeout (" + code + ")",
             down ? FailureClass::infra : FailureClass::init);
        return true;
      }
      log::warn("provisioning_retry", {{"session_id", c->session_id},
                                       {"attempt", c->attempts},
                                       {"code", code},
                                       {"message", e.what()},
                                       {"retry_in_ms", backoff.count()}});
      release(c->session_id, backoff);
    }
  }
  return true;
}

}  // namespace examiso::lifecycle
