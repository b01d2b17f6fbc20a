#pragma once
// PostgreSQL over libpq: a connection pool that reconnects by itself and
// turns a missing database into BACKEND_UNAVAILABLE at once, never a hang.
#include <libpq-fe.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "common/errors.h"

namespace examiso {

// A failed statement: BACKEND_UNAVAILABLE when the database could not be
// reached, INTERNAL_ERROR otherwise; `sqlstate` says exactly what happened.
class DbError : public Error {
 public:
  DbError(std::string code, const std::string& message, std::string sqlstate, std::string constraint = "")
      : Error(std::move(code), message), sqlstate_(std::move(sqlstate)), constraint_(std::move(constraint)) {}
  const std::string& sqlstate() const { return sqlstate_; }
  const std::string& constraint() const { return constraint_; }  // of a violated constraint
  bool unique_violation() const { return sqlstate_ == "23505"; }

 private:
  std::string sqlstate_;
  std::string constraint_;
};

// A statement parameter in text form; nullopt is SQL NULL.
class Param {
 public:
  Param(std::nullopt_t) {}
  Param(std::string_view v) : value_(std::string(v)) {}
  Param(const std::string& v) : value_(v) {}
  Param(const char* v) : value_(std::string(v)) {}
  Param(int64_t v) : value_(std::to_string(v)) {}
  Param(int v) : value_(std::to_string(v)) {}
  Param(bool v) : value_(v ? "true" : "false") {}
  template <class T>
  Param(const std::optional<T>& v) {
    if (v) value_ = Param(*v).value_;
  }
  const std::optional<std::string>& value() const { return value_; }

 private:
  std::optional<std::string> value_;
};

// Timestamps cross into SQL as text with microseconds ('2026-02-07 10:28:45.123456+00')
// and come back as microseconds ((EXTRACT(EPOCH FROM col) * 1000000)::bigint), so
// that the injected Clock is the only source of time.
std::string sql_time(TimePoint t);
inline std::optional<std::string> sql_time(const std::optional<TimePoint>& t) {
  return t ? std::optional(sql_time(*t)) : std::nullopt;
}

class PgResult final {
 public:
  explicit PgResult(PGresult* r) : r_(r, PQclear) {}
  int rows() const { return PQntuples(r_.get()); }
  bool null(int row, int col) const { return PQgetisnull(r_.get(), row, col); }
  std::string_view text(int row, int col) const {
    return {PQgetvalue(r_.get(), row, col), static_cast<size_t>(PQgetlength(r_.get(), row, col))};
  }
  std::string str(int row, int col) const { return std::string(text(row, col)); }
  std::optional<std::string> opt(int row, int col) const {
    return null(row, col) ? std::nullopt : std::optional(str(row, col));
  }
  int64_t integer(int row, int col) const;
  // A timestamp column selected as microseconds since the epoch, or nullopt.
  std::optional<TimePoint> time(int row, int col) const {
    return null(row, col) ? std::nullopt : std::optional(from_micros(integer(row, col)));
  }
  bool boolean(int row, int col) const { return text(row, col) == "t"; }
  int64_t affected() const;  // rows touched by INSERT/UPDATE/DELETE

 private:
  std::unique_ptr<PGresult, void (*)(PGresult*)> r_;
};

class PgConnection final {
 public:
  // `settings`: more server settings for this connection, e.g. "-c synchronous_commit=off".
  PgConnection(const std::string& url, int connect_timeout_seconds, int statement_timeout_ms,
               const std::string& application_name, const std::string& settings = "");
  ~PgConnection();
  PgConnection(const PgConnection&) = delete;
  PgConnection& operator=(const PgConnection&) = delete;

  PgResult exec(std::string_view sql, const std::vector<Param>& params = {});
  // exec() through a statement prepared once per connection: for hot paths
  // whose plan does not depend on the parameters.
  PgResult exec_prepared(const std::string& sql, const std::vector<Param>& params);
  // Several statements without parameters (migrations).
  PgResult script(std::string_view sql);
  bool healthy() const { return conn_ && PQstatus(conn_) == CONNECTION_OK && !broken_; }
  // healthy(), and the server has not closed the connection meanwhile.
  bool alive();
  PGconn* raw() { return conn_; }

 private:
  PgResult check(PGresult* raw);

  PGconn* conn_ = nullptr;
  bool broken_ = false;
  std::map<std::string, std::string, std::less<>> prepared_;  // sql -> statement name
};

// Runs `body` inside BEGIN/COMMIT; rolls back if it throws.
template <class F>
auto transaction(PgConnection& conn, F&& body) {
  conn.exec("BEGIN");
  try {
    if constexpr (std::is_void_v<decltype(body())>) {
      body();
      conn.exec("COMMIT");
    } else {
      auto result = body();
      conn.exec("COMMIT");
      return result;
    }
  } catch (...) {
    if (conn.healthy()) {
      try {
        conn.exec("ROLLBACK");
      } catch (const DbError&) {
      }
    }
    throw;
  }
}

struct PgPoolOptions {
  std::string url;
  int size = 8;
  int connect_timeout_seconds = 2;
  int statement_timeout_ms = 5000;
  std::string settings;  // see PgConnection
  std::string application_name = "examiso";
  std::chrono::milliseconds acquire_timeout{2000};
};

class PgPool final {
 public:
  explicit PgPool(PgPoolOptions options);

  class Lease final {
   public:
    Lease(PgPool& pool, std::unique_ptr<PgConnection> conn) : pool_(&pool), conn_(std::move(conn)) {}
    Lease(Lease&& other) noexcept = default;
    ~Lease();
    PgConnection& operator*() { return *conn_; }
    PgConnection* operator->() { return conn_.get(); }

   private:
    PgPool* pool_;
    std::unique_ptr<PgConnection> conn_;
  };

  // A healthy connection, reconnecting as needed. Throws DbError
  // BACKEND_UNAVAILABLE when the database cannot be reached or the pool stays
  // exhausted past acquire_timeout.
  Lease acquire();

  // Whether the database answers `SELECT 1` now.
  bool ping();

 private:
  void release(std::unique_ptr<PgConnection> conn);

  PgPoolOptions options_;
  std::mutex mutex_;
  std::condition_variable available_;
  std::vector<std::unique_ptr<PgConnection>> idle_;
  int open_ = 0;  // leased + idle
};

}  // namespace examiso
