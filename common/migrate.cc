#include "common/migrate.h"

#include <map>

#include "common/db.h"
#include "common/log.h"
#include "common/uuid.h"

namespace examiso {
namespace {

// One lock for every service's migrations: they are rare and quick.
constexpr std::string_view kLockKey = "7309245138021";

}  // namespace

std::vector<std::string> apply_migrations(PgConnection& conn, std::string_view service,
                                          const std::vector<Migration>& migrations) {
  conn.exec("SELECT pg_advisory_lock($1::bigint)", {kLockKey});
  std::vector<std::string> applied_now;
  try {
    conn.exec(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " service text NOT NULL, version text NOT NULL, checksum text NOT NULL,"
        " applied_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (service, version))");
    std::map<std::string, std::string> applied;
    const PgResult rows = conn.exec("SELECT version, checksum FROM schema_migrations WHERE service = $1", {service});
    for (int i = 0; i < rows.rows(); ++i) applied[rows.str(i, 0)] = rows.str(i, 1);

    for (const auto& m : migrations) {
      const std::string checksum = sha256_hex(m.sql);
      if (auto it = applied.find(m.version); it != applied.end()) {
        if (it->second != checksum)
          throw Error("INTERNAL_ERROR", std::string(service) + " migration " + m.version +
                                            " was changed after it was applied; add a new migration instead");
        continue;
      }
      transaction(conn, [&] {
        conn.script(m.sql);
        conn.exec("INSERT INTO schema_migrations (service, version, checksum) VALUES ($1, $2, $3)",
                  {service, m.version, checksum});
      });
      log::info("migration_applied", {{"migration_service", service}, {"version", m.version}});
      applied_now.push_back(m.version);
    }
  } catch (...) {
    if (conn.healthy()) conn.exec("SELECT pg_advisory_unlock($1::bigint)", {kLockKey});
    throw;
  }
  conn.exec("SELECT pg_advisory_unlock($1::bigint)", {kLockKey});
  return applied_now;
}

}  // namespace examiso
