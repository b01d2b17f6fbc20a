#pragma once
// Each service applies its own migrations/*.sql (embedded in its binary) in
// file-name order, each once, under an advisory lock so that replicas starting
// together do not race. Applied ones are recorded in schema_migrations with a
// checksum; editing an applied migration is an error, not a silent skip.
#include <string>
#include <string_view>
#include <vector>

namespace examiso {

class PgConnection;

struct Migration {
  std::string version;  // the file name, e.g. 0001_sessions.sql
  std::string sql;
};

// Returns the versions applied by this call.
std::vector<std::string> apply_migrations(PgConnection& conn, std::string_view service,
                                          const std::vector<Migration>& migrations);

}  // namespace examiso
