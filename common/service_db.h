#pragma once
// What every service that owns tables does around its database: open the pool
// from the config, wait for PostgreSQL and migrate at start-up, and say
// explicitly (logs and gRPC health) when the database goes away and comes back.
#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "common/config.h"
#include "common/db.h"
#include "common/grpc_server.h"
#include "common/migrate.h"

namespace examiso {

PgPoolOptions pool_options(const Config& config, const std::string& application_name);

// Retries every second (logging) until the database answers, then applies
// `migrations`. False if a shutdown signal arrived first.
bool migrate_when_ready(PgPool& pool, std::string_view service, const std::vector<Migration>& migrations);

class DatabaseHealth final {
 public:
  DatabaseHealth(PgPool& pool, GrpcServer& server);
  ~DatabaseHealth();

 private:
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace examiso
