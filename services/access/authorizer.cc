#include "services/access/authorizer.h"

#include <algorithm>

#include "common/errors.h"
#include "common/identity.h"
#include "common/json.h"
#include "common/log.h"
#include "common/uuid.h"

namespace examiso::access {
namespace {

constexpr std::string_view kTypes[] = {"terminal", "status", "details", "control", "staff_view", "staff_act"};
// Looked up in place of a malformed id, so that every path does the same work.
const std::string kNobody = "00000000-0000-0000-0000-000000000000";

// What the log keeps of a requested value: bounded, valid UTF-8, no NULs.
std::string loggable(std::string_view v) {
  std::string s(v.substr(0, 100));
  for (char& c : s)
    if (c == '\0') c = '?';
  return is_valid_utf8(s) ? s : "(not UTF-8)";
}

}  // namespace

std::string_view name(AccessType t) { return kTypes[static_cast<size_t>(t)]; }

LogWriter::LogWriter(PgPool& pool) : pool_(pool), thread_([this] { run(); }) {}

LogWriter::~LogWriter() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  work_.notify_one();
  thread_.join();
}

void LogWriter::write(std::vector<Param> row) {
  std::unique_lock lock(mutex_);
  if (stopping_) throw Error("BACKEND_UNAVAILABLE", "the access log is closing");
  const std::shared_ptr<Batch> batch = open_;
  batch->rows.push_back(std::move(row));
  if (batch->rows.size() == 1) work_.notify_one();  // the writer may be idle
  batch->written.wait(lock, [&] { return batch->done; });
  if (batch->error) std::rethrow_exception(batch->error);
}

void LogWriter::run() {
  constexpr size_t kColumns = 7;
  for (;;) {
    std::shared_ptr<Batch> batch;
    {
      std::unique_lock lock(mutex_);
      work_.wait(lock, [&] { return stopping_ || !open_->rows.empty(); });
      if (open_->rows.empty()) return;  // stopping, nothing left
      batch = std::exchange(open_, std::make_shared<Batch>());
    }
    try {
      std::string sql =
          "INSERT INTO access_log (at, session_id, user_id, access_type, granted, denial_reason, client_ip) VALUES ";
      std::vector<Param> params;
      for (size_t r = 0; r < batch->rows.size(); ++r) {
        sql += r ? ", (" : "(";
        for (size_t c = 0; c < kColumns; ++c)
          sql += (c ? ", $" : "$") + std::to_string(r * kColumns + c + 1);
        sql += ")";
        for (auto& p : batch->rows[r]) params.push_back(std::move(p));
      }
      auto conn = pool_.acquire();
      conn->exec(sql, params);
    } catch (...) {
      batch->error = std::current_exception();
    }
    std::lock_guard lock(mutex_);
    batch->done = true;
    batch->written.notify_all();
  }
}

static bool staff(const std::vector<std::string>& roles) {
  return std::find(roles.begin(), roles.end(), "proctor") != roles.end() ||
         std::find(roles.begin(), roles.end(), "admin") != roles.end();
}

Decision Authorizer::authorize(const AccessRequest& request) {
  const bool for_staff = request.type == AccessType::staff_view || request.type == AccessType::staff_act;
  // Staff may ask about the whole room (no session): nothing to look up.
  const bool room = for_staff && request.session_id.empty();
  const auto session_id = canonical_uuid(request.session_id);
  const auto user_id = canonical_uuid(request.user_id);
  auto facts = room ? std::nullopt : sessions_.find(session_id.value_or(kNobody), user_id.value_or(kNobody));

  Decision d;
  if (for_staff && !user_id) {
    d.denial_reason = "malformed_user_id";
  } else if (for_staff && !staff(request.roles)) {
    d.denial_reason = "not_staff";
  } else if (room && request.type == AccessType::staff_view) {
    d.granted = true;
    d.user_id = *user_id;
  } else if (!session_id) {
    d.denial_reason = "malformed_session_id";
  } else if (!user_id) {
    d.denial_reason = "malformed_user_id";
  } else if (!facts) {
    d.denial_reason = "session_not_found";
  } else if (!for_staff && facts->user_id != *user_id) {
    d.denial_reason = "not_owner";
  } else if (request.type == AccessType::terminal && facts->state != "ready" && facts->state != "running") {
    d.denial_reason = "state_" + facts->state;
  } else {
    d.granted = true;
    d.session_id = *session_id;
    d.user_id = *user_id;
    d.state = facts->state;
    d.status = std::move(facts->status);
  }

  writer_.write({sql_time(clock_.now()), loggable(request.session_id), loggable(request.user_id),
                 std::string(name(request.type)), d.granted,
                 d.denial_reason.empty() ? std::nullopt : std::optional(d.denial_reason),
                 loggable(request.client_ip)});
  if (!d.granted)
    log::info("access_denied", {{"session_id", loggable(request.session_id)},
                                {"user_id", loggable(request.user_id)},
                                {"access_type", name(request.type)},
                                {"reason", d.denial_reason}});
  return d;
}

std::vector<LogEntry> Authorizer::log(const std::string& session_id, int limit) {
  require_limit(limit, 10000);
  auto conn = pool_.acquire();
  const PgResult r = conn->exec(
      "SELECT session_id, user_id, access_type, granted, coalesce(denial_reason, ''), client_ip,"
      " (EXTRACT(EPOCH FROM at) * 1000000)::bigint FROM access_log"
      " WHERE ($1::text IS NULL OR session_id = $1) ORDER BY id DESC LIMIT $2",
      {session_id.empty() ? std::nullopt : std::optional(loggable(session_id)), limit});
  std::vector<LogEntry> out;
  for (int i = 0; i < r.rows(); ++i)
    out.push_back({r.str(i, 0), r.str(i, 1), r.str(i, 2), r.str(i, 4), r.str(i, 5), r.boolean(i, 3), *r.time(i, 6)});
  return out;
}

}  // namespace examiso::access
