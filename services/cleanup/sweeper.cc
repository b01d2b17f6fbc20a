#include "services/cleanup/sweeper.h"

#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "common/errors.h"
#include "common/identity.h"
#include "common/json.h"
#include "common/log.h"

namespace examiso::cleanup {
namespace {

bool terminal(const std::string& state) { return state == "terminated" || state == "failed"; }

int64_t seconds_until(TimePoint t, TimePoint now) {
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(t - now).count();
  return us <= 0 ? 0 : (us + 999'999) / 1'000'000;
}

// A session's step: the transition to make (if any) and then its environment.
struct Plan {
  SweepAction action;
  std::string expected_from, to, termination_reason, failure_class, reason;
};

}  // namespace

SweepResult Sweeper::sweep(bool dry_run) {
  SweepResult result;
  result.dry_run = dry_run;
  result.started_at = clock_.now();
  const TimePoint now = result.started_at;
  std::vector<Plan> plans;
  std::set<std::string> checked, planned;
  const auto plan = [&](Plan p) {
    if (planned.insert(p.action.session_id).second) plans.push_back(std::move(p));
  };

  for (const auto& s : platform_.sessions({{"running"}, now, std::nullopt})) {
    checked.insert(s.session_id);
    plan({{s.session_id, "terminate_expired", "deadline passed"}, "running", "terminated", "time_expired", "",
          "Exam time expired"});
  }
  for (const auto& s : platform_.sessions({{"created", "initializing"}, std::nullopt, now})) {
    checked.insert(s.session_id);
    if (s.provisioning_deadline <= now)
      plan({{s.session_id, "fail_stuck", "not ready within the provisioning timeout"}, s.state, "failed", "", "init",
            "provisioning did not finish within the exam's provisioning timeout"});
  }
  for (const auto& s : platform_.sessions({{"ready"}, std::nullopt, now - o_.abandon_after})) {
    checked.insert(s.session_id);
    plan({{s.session_id, "terminate_abandoned", "ready but never started"}, "ready", "terminated", "abandoned", "",
          "The exam was not started in time"});
  }
  // Environments whose session has ended or vanished, or that were lost. The
  // sessions still under way come in one call (listed before the
  // environments, so a session newer than the list is asked for on its own,
  // as is one that has ended), not one call per environment.
  std::map<std::string, SessionView> live;
  for (auto& s : platform_.sessions({{"created", "initializing", "ready", "running"}, std::nullopt, std::nullopt}))
    live.emplace(s.session_id, std::move(s));
  for (const auto& e : platform_.environments({"pending", "creating", "running", "terminating", "error"})) {
    if (planned.count(e.session_id)) continue;
    checked.insert(e.session_id);
    const auto known = live.find(e.session_id);
    const auto s = known != live.end() ? std::optional(known->second) : platform_.session(e.session_id);
    if (!s || terminal(s->state)) {
      plan({{e.session_id, "destroy_environment", s ? "session " + s->state : "session gone"}, "", "", "", "", ""});
    } else if (e.status == "error" && (s->state == "ready" || s->state == "running")) {
      plan({{e.session_id, "terminate_lost", "its environment was lost"}, s->state, "terminated", "environment_lost",
            "", "The exam environment was lost"});
    }
  }
  result.sessions_checked = static_cast<int64_t>(checked.size());

  std::mutex mutex;
  if (!dry_run) {
    std::atomic<size_t> next{0};
    std::vector<std::thread> workers;
    for (int w = 0; w < std::max(1, o_.workers); ++w) {
      workers.emplace_back([&] {
        for (size_t i = next++; i < plans.size(); i = next++) {
          const Plan& p = plans[i];
          try {
            bool acted = p.to.empty() ||
                         platform_.transition(p.action.session_id, p.expected_from, p.to, p.termination_reason,
                                              p.failure_class, p.reason);
            if (acted) platform_.destroy_environment(p.action.session_id, p.action.action);
            std::lock_guard lock(mutex);
            result.actions.push_back(p.action);
            if (acted) result.cleaned_session_ids.push_back(p.action.session_id);
          } catch (const Error& e) {
            log::warn("cleanup_step_failed",
                      {{"session_id", p.action.session_id}, {"action", p.action.action}, {"message", e.what()}});
          }
        }
      });
    }
    for (auto& w : workers) w.join();
    for (const auto& id : platform_.reconcile_environments())
      result.actions.push_back({"", "destroy_orphan_sandbox", "environment " + id});
  } else {
    for (const auto& p : plans) {
      result.actions.push_back(p.action);
      result.cleaned_session_ids.push_back(p.action.session_id);
    }
  }
  result.sessions_cleaned = static_cast<int64_t>(result.cleaned_session_ids.size());
  result.completed_at = clock_.now();
  if (!result.actions.empty() || dry_run)
    log::info("sweep", {{"dry_run", dry_run},
                        {"sessions_checked", result.sessions_checked},
                        {"sessions_cleaned", result.sessions_cleaned},
                        {"ms", std::chrono::duration_cast<std::chrono::milliseconds>(result.completed_at -
                                                                                      result.started_at)
                                   .count()}});
  record(result);
  return result;
}

void Sweeper::record(const SweepResult& r) {
  Json actions = Json::array();
  for (const auto& a : r.actions) actions.push_back({{"session_id", a.session_id}, {"action", a.action}, {"detail", a.detail}});
  std::string ids = "{";
  for (size_t i = 0; i < r.cleaned_session_ids.size(); ++i) ids += (i ? "," : "") + r.cleaned_session_ids[i];
  ids += "}";
  auto conn = pool_.acquire();
  static const std::string insert =
      "INSERT INTO cleanup_sweeps (started_at, completed_at, dry_run, sessions_checked, sessions_cleaned,"
      " cleaned_session_ids, actions, replica) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
  conn->exec_prepared(insert, {sql_time(r.started_at), sql_time(r.completed_at), r.dry_run, r.sessions_checked,
                               r.sessions_cleaned, ids, compact_json(actions), o_.replica});
  static const std::string prune = "DELETE FROM cleanup_sweeps WHERE started_at < $1";
  conn->exec_prepared(prune, {sql_time(r.started_at - std::chrono::hours(24 * 7))});
}

std::vector<SweepResult> Sweeper::history(int limit) {
  require_limit(limit, 1000);
  auto conn = pool_.acquire();
  const PgResult r = conn->exec(
      "SELECT (EXTRACT(EPOCH FROM started_at) * 1000000)::bigint, (EXTRACT(EPOCH FROM completed_at) * 1000000)::bigint,"
      " dry_run, sessions_checked, sessions_cleaned, array_to_json(cleaned_session_ids)::text, actions::text"
      " FROM cleanup_sweeps ORDER BY id DESC LIMIT $1",
      {limit});
  std::vector<SweepResult> out;
  for (int i = 0; i < r.rows(); ++i) {
    SweepResult s;
    s.started_at = *r.time(i, 0);
    s.completed_at = *r.time(i, 1);
    s.dry_run = r.boolean(i, 2);
    s.sessions_checked = r.integer(i, 3);
    s.sessions_cleaned = r.integer(i, 4);
    for (const auto& id : Json::parse(r.str(i, 5))) s.cleaned_session_ids.push_back(id);
    for (const auto& a : Json::parse(r.str(i, 6))) s.actions.push_back({a["session_id"], a["action"], a["detail"]});
    out.push_back(std::move(s));
  }
  return out;
}

CheckResult Sweeper::check(const std::string& session_id_in) {
  const std::string session_id = require_uuid("exam_session_id", session_id_in);
  const TimePoint now = clock_.now();
  const auto s = platform_.session(session_id);
  const auto env = platform_.environment(session_id);
  const bool env_live = env && env->status != "destroyed" && env->status != "error";
  CheckResult c{session_id, false, "", 0};
  if (!s) {
    if (!env_live) throw Error("SESSION_NOT_FOUND", "Session not found", Json{{"session_id", session_id}});
    c.should_cleanup = true;
    c.reason = "Session no longer exists; its environment is still allocated";
    return c;
  }
  if (terminal(s->state)) {
    c.should_cleanup = env_live;
    c.reason = env_live ? "Session ended; its environment is still allocated"
                        : "Session already " + s->state + " and cleaned";
    return c;
  }
  if (s->state == "running") {
    c.ttl_remaining_seconds = s->deadline ? seconds_until(*s->deadline, now) : s->remaining_seconds;
    c.should_cleanup = c.ttl_remaining_seconds == 0;
    c.reason = c.should_cleanup ? "Exam time has expired" : "Exam in progress";
  } else if (s->state == "ready") {
    c.ttl_remaining_seconds = seconds_until(s->updated_at + o_.abandon_after, now);
    c.should_cleanup = c.ttl_remaining_seconds == 0;
    c.reason = c.should_cleanup ? "Session was never started" : "Waiting for the candidate to start";
  } else {
    c.ttl_remaining_seconds = seconds_until(s->provisioning_deadline, now);
    c.should_cleanup = c.ttl_remaining_seconds == 0;
    c.reason = c.should_cleanup ? "Provisioning timed out" : "Being provisioned";
  }
  return c;
}

std::optional<TimePoint> Sweeper::next_deadline() {
  const auto soonest = platform_.sessions({{"running"}, std::nullopt, std::nullopt, 1, true});
  if (soonest.empty() || !soonest[0].deadline) return std::nullopt;
  return soonest[0].deadline;
}

}  // namespace examiso::cleanup
