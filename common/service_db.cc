#include "common/service_db.h"

#include "common/log.h"

namespace examiso {

PgPoolOptions pool_options(const Config& config, const std::string& application_name) {
  PgPoolOptions o;
  o.url = config.str("database.url");
  o.size = static_cast<int>(config.integer("database.pool_size"));
  o.connect_timeout_seconds = static_cast<int>(config.integer("database.connect_timeout_seconds"));
  o.statement_timeout_ms = static_cast<int>(config.integer("database.statement_timeout_ms"));
  o.application_name = application_name;
  return o;
}

bool migrate_when_ready(PgPool& pool, std::string_view service, const std::vector<Migration>& migrations) {
  for (int attempt = 0;; ++attempt) {
    try {
      auto conn = pool.acquire();
      apply_migrations(*conn, service, migrations);
      log::info("database_ready");
      return true;
    } catch (const DbError& e) {
      if (e.code() != "BACKEND_UNAVAILABLE") throw;
      if (attempt % 10 == 0) log::warn("waiting_for_database", {{"message", e.what()}});
    }
    if (wait_for_shutdown_signal(std::chrono::seconds(1))) return false;
  }
}

DatabaseHealth::DatabaseHealth(PgPool& pool, GrpcServer& server) {
  thread_ = std::thread([this, &pool, &server] {
    bool up = true;
    while (!stop_) {
      const bool now_up = pool.ping();
      if (now_up != up) {
        if (now_up) {
          log::info("database_available");
        } else {
          log::error("database_unavailable");
        }
        server.set_serving(now_up);
        up = now_up;
      }
      for (int i = 0; i < 10 && !stop_; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  });
}

DatabaseHealth::~DatabaseHealth() {
  stop_ = true;
  thread_.join();
}

}  // namespace examiso
