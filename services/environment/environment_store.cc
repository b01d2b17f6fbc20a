#include "services/environment/environment_store.h"

#include <random>

#include "common/errors.h"

namespace examiso::environment {
namespace {

constexpr std::string_view kStatuses[] = {"pending", "creating", "running", "terminating", "destroyed", "error"};

Status parse_status(std::string_view text) {
  for (size_t i = 0; i < std::size(kStatuses); ++i)
    if (kStatuses[i] == text) return static_cast<Status>(i);
  return Status::error;
}

std::string micros(std::string_view column) {
  return "(EXTRACT(EPOCH FROM " + std::string(column) + ") * 1000000)::bigint";
}

const std::string& columns() {
  static const std::string c = "environment_id::text, session_id::text, pod_name, pod_namespace, driver, node,"
                               " coalesce(host_uid, 0), status, coalesce(error_reason, ''), " +
                               micros("created_at") + ", " + micros("ready_at") + ", " + micros("destroyed_at") + ", " +
                               micros("updated_at") + ", coalesce(pool_key, '')";
  return c;
}

EnvironmentRecord read(const PgResult& r, int row) {
  EnvironmentRecord e;
  e.environment_id = r.str(row, 0);
  e.session_id = r.str(row, 1);
  e.pod_name = r.str(row, 2);
  e.pod_namespace = r.str(row, 3);
  e.driver = r.str(row, 4);
  e.node = r.str(row, 5);
  e.host_uid = r.integer(row, 6);
  e.status = parse_status(r.text(row, 7));
  e.error_reason = r.str(row, 8);
  e.created_at = *r.time(row, 9);
  e.ready_at = r.time(row, 10);
  e.destroyed_at = r.time(row, 11);
  e.updated_at = *r.time(row, 12);
  e.pool_key = r.str(row, 13);
  return e;
}

}  // namespace

std::string_view name(Status s) { return kStatuses[static_cast<size_t>(s)]; }

std::optional<EnvironmentRecord> EnvironmentStore::latest(const std::string& session_id) {
  static const std::string sql = "SELECT " + columns() +
                                 " FROM execution_environments WHERE session_id = $1"
                                 " ORDER BY created_at DESC LIMIT 1";
  auto conn = pool_.acquire();
  const PgResult r = conn->exec_prepared(sql, {session_id});
  if (r.rows() == 0) return std::nullopt;
  return read(r, 0);
}

std::optional<EnvironmentRecord> EnvironmentStore::by_id(const std::string& environment_id) {
  static const std::string sql = "SELECT " + columns() + " FROM execution_environments WHERE environment_id = $1";
  auto conn = pool_.acquire();
  const PgResult r = conn->exec_prepared(sql, {environment_id});
  if (r.rows() == 0) return std::nullopt;
  return read(r, 0);
}

std::optional<EnvironmentRecord> EnvironmentStore::insert_creating(EnvironmentRecord e, int64_t uid_base,
                                                                   int64_t uid_count) {
  static const std::string sql =
      "INSERT INTO execution_environments (environment_id, session_id, pod_name, pod_namespace, driver, node,"
      " host_uid, status, created_at, updated_at, pool_key)"
      " VALUES ($1, $2, $3, $4, $5, $6, $7, 'creating', $8, $8, $9)"
      " RETURNING " + columns();
  thread_local std::mt19937_64 rng(std::random_device{}());
  const std::string base_name = e.pod_name;
  auto conn = pool_.acquire();
  for (int attempt = 0; attempt < 50; ++attempt) {
    const int64_t uid = uid_base + static_cast<int64_t>(rng() % static_cast<uint64_t>(uid_count));
    try {
      const PgResult r = conn->exec_prepared(
          sql, {e.environment_id, e.session_id.empty() ? std::optional<std::string>() : e.session_id, e.pod_name,
                e.pod_namespace, e.driver, e.node, uid, sql_time(clock_.now()),
                e.pool_key.empty() ? std::optional<std::string>() : e.pool_key});
      return read(r, 0);
    } catch (const DbError& err) {
      if (err.constraint() == "environments_one_live_per_session") return std::nullopt;
      if (err.constraint() == "environments_live_pod_name") {
        // Two live sessions share the first 8 hex digits: take more of the id.
        e.pod_name = base_name + "-" + e.session_id.substr(9, 4);
        if (attempt > 0) e.pod_name = base_name + "-" + e.environment_id.substr(0, 8);
        continue;
      }
      if (err.constraint() == "environments_live_host_uid") continue;
      throw;
    }
  }
  throw Error("INTERNAL_ERROR", "no free sandbox uid or name after 50 attempts");
}

std::optional<EnvironmentRecord> EnvironmentStore::claim(const std::string& pool_key, const std::string& node,
                                                        const std::string& session_id, const std::string& pod_name) {
  // SKIP LOCKED: concurrent claims take different environments, none waits.
  static const std::string sql =
      "UPDATE execution_environments SET session_id = $3, pod_name = $4, created_at = $5, ready_at = $5,"
      " updated_at = $5 WHERE environment_id = (SELECT environment_id FROM execution_environments"
      " WHERE session_id IS NULL AND status = 'running' AND node = $2 AND pool_key = $1"
      " ORDER BY created_at LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING " + columns();
  auto conn = pool_.acquire();
  try {
    const PgResult r = conn->exec_prepared(sql, {pool_key, node, session_id, pod_name, sql_time(clock_.now())});
    if (r.rows() == 0) return std::nullopt;
    return read(r, 0);
  } catch (const DbError& err) {
    if (err.constraint() == "environments_one_live_per_session" || err.constraint() == "environments_live_pod_name")
      return std::nullopt;
    throw;
  }
}

bool EnvironmentStore::start_retiring(const std::string& environment_id) {
  static const std::string sql =
      "UPDATE execution_environments SET status = 'terminating', updated_at = $2"
      " WHERE environment_id = $1 AND session_id IS NULL AND status IN ('creating', 'running')";
  auto conn = pool_.acquire();
  return conn->exec_prepared(sql, {environment_id, sql_time(clock_.now())}).affected() == 1;
}

namespace {

// An environment's status change; $5: the statuses it may come from (NULL: any).
// A destroyed environment keeps the time it was first destroyed.
const std::string& status_update() {
  static const std::string sql =
      "UPDATE execution_environments SET status = $2, updated_at = $3,"
      " error_reason = CASE WHEN $2 = 'error' THEN $4 ELSE error_reason END,"
      " ready_at = CASE WHEN $2 = 'running' THEN $3::timestamptz ELSE ready_at END,"
      " destroyed_at = CASE WHEN $2 = 'destroyed' THEN coalesce(destroyed_at, $3::timestamptz) ELSE destroyed_at END"
      " WHERE environment_id = $1 AND ($5::text[] IS NULL OR status = ANY($5::text[])) RETURNING " + columns();
  return sql;
}

std::string status_array(const std::vector<Status>& statuses) {
  std::string array = "{";
  for (size_t i = 0; i < statuses.size(); ++i) array += (i ? "," : "") + std::string(name(statuses[i]));
  return array + "}";
}

}  // namespace

EnvironmentRecord EnvironmentStore::set_status(const std::string& environment_id, Status status,
                                               const std::string& error_reason) {
  auto conn = pool_.acquire();
  const PgResult r = conn->exec_prepared(status_update(), {environment_id, name(status), sql_time(clock_.now()),
                                                           error_reason.substr(0, 2000), std::optional<std::string>()});
  if (r.rows() == 0) throw Error("ENVIRONMENT_NOT_FOUND", "Environment not found");
  return read(r, 0);
}

bool EnvironmentStore::set_status_from(const std::string& environment_id, const std::vector<Status>& from,
                                       Status status, const std::string& error_reason) {
  auto conn = pool_.acquire();
  return conn->exec_prepared(status_update(), {environment_id, name(status), sql_time(clock_.now()),
                                               error_reason.substr(0, 2000), status_array(from)})
             .rows() == 1;
}

std::vector<EnvironmentRecord> EnvironmentStore::list(const std::vector<Status>& statuses, const std::string& node,
                                                      int limit, bool pooled, bool current_only) {
  const std::string array = status_array(statuses);
  auto conn = pool_.acquire();
  const PgResult r = conn->exec(
      "SELECT " + columns() +
          " FROM execution_environments e WHERE ($1::text[] IS NULL OR status = ANY($1::text[]))"
          " AND ($2::text IS NULL OR node = $2) AND ($4::boolean OR session_id IS NOT NULL)"
          " AND NOT ($5::boolean AND EXISTS (SELECT 1 FROM execution_environments n"
          "  WHERE n.session_id = e.session_id AND n.created_at > e.created_at))"
          " ORDER BY created_at DESC LIMIT $3",
      {statuses.empty() ? std::optional<std::string>() : array, node.empty() ? std::optional<std::string>() : node,
       limit, pooled, current_only});
  std::vector<EnvironmentRecord> out;
  for (int i = 0; i < r.rows(); ++i) out.push_back(read(r, i));
  return out;
}

}  // namespace examiso::environment
