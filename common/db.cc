#include "common/db.h"

#include <poll.h>

#include <cstdio>
#include <cstdlib>
#include <ctime>

namespace examiso {
namespace {

bool connection_lost(std::string_view sqlstate) {
  // 08: connection exceptions; 57P01-57P03: the server shutting down or starting.
  return sqlstate.starts_with("08") || sqlstate.starts_with("57P");
}

}  // namespace

std::string sql_time(TimePoint t) {
  const int64_t us = to_micros(t);
  const int64_t secs = us >= 0 ? us / 1'000'000 : (us - 999'999) / 1'000'000;
  const std::time_t tt = static_cast<std::time_t>(secs);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02d %02d:%02d:%02d.%06lld+00", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<long long>(us - secs * 1'000'000));
  return buf;
}

int64_t PgResult::integer(int row, int col) const {
  return std::strtoll(PQgetvalue(r_.get(), row, col), nullptr, 10);
}

int64_t PgResult::affected() const {
  const char* n = PQcmdTuples(r_.get());
  return n && *n ? std::strtoll(n, nullptr, 10) : 0;
}

PgConnection::PgConnection(const std::string& url, int connect_timeout_seconds, int statement_timeout_ms,
                           const std::string& application_name, const std::string& settings) {
  const std::string timeout = std::to_string(connect_timeout_seconds);
  const std::string options = "-c statement_timeout=" + std::to_string(statement_timeout_ms) + " " + settings;
  // Later keys override what the URL says; keepalives notice a vanished server.
  const char* keys[] = {"dbname", "connect_timeout", "options", "application_name", "keepalives",
                        "keepalives_idle", "keepalives_interval", "keepalives_count", nullptr};
  const char* values[] = {url.c_str(), timeout.c_str(), options.c_str(), application_name.c_str(), "1", "5", "2",
                          "2", nullptr};
  conn_ = PQconnectdbParams(keys, values, 1);
  if (PQstatus(conn_) != CONNECTION_OK) {
    std::string why = PQerrorMessage(conn_);
    while (!why.empty() && (why.back() == '\n' || why.back() == ' ')) why.pop_back();
    PQfinish(conn_);
    conn_ = nullptr;
    throw DbError("BACKEND_UNAVAILABLE", "database unavailable: " + why, "08001");
  }
}

bool PgConnection::alive() {
  if (!healthy()) return false;
  // An idle connection has nothing to read unless the server closed it (or sent
  // a notification): poll without blocking, then let libpq look.
  pollfd p{PQsocket(conn_), POLLIN, 0};
  if (poll(&p, 1, 0) > 0 && (PQconsumeInput(conn_) == 0 || PQstatus(conn_) != CONNECTION_OK)) broken_ = true;
  return healthy();
}

PgConnection::~PgConnection() {
  if (conn_) PQfinish(conn_);
}

PgResult PgConnection::exec(std::string_view sql, const std::vector<Param>& params) {
  if (!conn_ || broken_) throw DbError("BACKEND_UNAVAILABLE", "database connection lost", "08006");
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const auto& p : params) values.push_back(p.value() ? p.value()->c_str() : nullptr);
  const std::string statement(sql);
  return check(PQexecParams(conn_, statement.c_str(), static_cast<int>(values.size()), nullptr, values.data(),
                            nullptr, nullptr, 0));
}

PgResult PgConnection::exec_prepared(const std::string& sql, const std::vector<Param>& params) {
  if (!conn_ || broken_) throw DbError("BACKEND_UNAVAILABLE", "database connection lost", "08006");
  auto it = prepared_.find(sql);
  if (it == prepared_.end()) {
    const std::string name = "examiso_" + std::to_string(prepared_.size() + 1);
    check(PQprepare(conn_, name.c_str(), sql.c_str(), 0, nullptr));
    it = prepared_.emplace(sql, name).first;
  }
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const auto& p : params) values.push_back(p.value() ? p.value()->c_str() : nullptr);
  return check(PQexecPrepared(conn_, it->second.c_str(), static_cast<int>(values.size()), values.data(), nullptr,
                              nullptr, 0));
}

PgResult PgConnection::script(std::string_view sql) {
  if (!conn_ || broken_) throw DbError("BACKEND_UNAVAILABLE", "database connection lost", "08006");
  return check(PQexec(conn_, std::string(sql).c_str()));
}

PgResult PgConnection::check(PGresult* raw) {
  PgResult result(raw);
  const ExecStatusType status = raw ? PQresultStatus(raw) : PGRES_FATAL_ERROR;
  if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) return result;

  const char* state = raw ? PQresultErrorField(raw, PG_DIAG_SQLSTATE) : nullptr;
  const std::string sqlstate = state ? state : "08006";
  std::string message = raw ? PQresultErrorMessage(raw) : PQerrorMessage(conn_);
  while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
  if (PQstatus(conn_) != CONNECTION_OK || connection_lost(sqlstate)) {
    broken_ = true;
    throw DbError("BACKEND_UNAVAILABLE", "database unavailable: " + message, sqlstate);
  }
  const char* constraint = PQresultErrorField(raw, PG_DIAG_CONSTRAINT_NAME);
  throw DbError("INTERNAL_ERROR", "database error " + sqlstate + ": " + message, sqlstate,
                constraint ? constraint : "");
}

PgPool::PgPool(PgPoolOptions options) : options_(std::move(options)) {}

PgPool::Lease::~Lease() {
  if (conn_) pool_->release(std::move(conn_));
}

void PgPool::release(std::unique_ptr<PgConnection> conn) {
  std::lock_guard lock(mutex_);
  // A broken connection or one left inside a transaction is dropped, not reused.
  if (conn->healthy() && PQtransactionStatus(conn->raw()) == PQTRANS_IDLE) {
    idle_.push_back(std::move(conn));
  } else {
    --open_;
    conn.reset();
  }
  available_.notify_one();
}

PgPool::Lease PgPool::acquire() {
  std::unique_lock lock(mutex_);
  const auto deadline = std::chrono::steady_clock::now() + options_.acquire_timeout;
  for (;;) {
    while (!idle_.empty()) {
      auto conn = std::move(idle_.back());
      idle_.pop_back();
      if (conn->alive()) return Lease(*this, std::move(conn));
      --open_;
    }
    if (open_ < options_.size) {
      ++open_;
      lock.unlock();
      try {
        auto conn = std::make_unique<PgConnection>(options_.url, options_.connect_timeout_seconds,
                                                   options_.statement_timeout_ms, options_.application_name,
                                                   options_.settings);
        return Lease(*this, std::move(conn));
      } catch (...) {
        lock.lock();
        --open_;
        available_.notify_one();
        throw;
      }
    }
    if (available_.wait_until(lock, deadline) == std::cv_status::timeout)
      throw DbError("BACKEND_UNAVAILABLE", "database pool exhausted: no connection free within " +
                                               std::to_string(options_.acquire_timeout.count()) + " ms",
                    "53300");
  }
}

bool PgPool::ping() {
  try {
    auto conn = acquire();
    conn->exec("SELECT 1");
    return true;
  } catch (const DbError&) {
    return false;
  }
}

}  // namespace examiso
