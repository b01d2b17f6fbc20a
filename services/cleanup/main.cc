// examiso-cleanup: the cleanup service daemon, with its continuous sweeper.
#include <unistd.h>

#include "common/log.h"
#include "common/service_db.h"
#include "services/cleanup/grpc_platform.h"
#include "services/cleanup/service.h"

int main(int argc, char** argv) {
  using namespace examiso;
  return daemon_main(argc, argv, "cleanup", [](const Config& config) {
    SystemClock clock;
    PgPool pool(pool_options(config, "examiso-cleanup"));
    if (!migrate_when_ready(pool, "cleanup", cleanup_migrations())) return;
    cleanup::GrpcPlatform platform(config.str("lifecycle.address"), config.str("environment.address"),
                                   std::chrono::milliseconds(config.integer("grpc.call_timeout_ms")));
    char host[256] = {};
    gethostname(host, sizeof host - 1);
    cleanup::Sweeper sweeper(platform, pool, clock,
                             {std::chrono::seconds(config.integer("cleanup.abandon_after_seconds")),
                              static_cast<int>(config.integer("cleanup.workers")),
                              std::string(host) + ":" + std::to_string(getpid())});
    cleanup::CleanupService service(sweeper);
    GrpcServer server("cleanup", config.str("cleanup.listen"));
    server.add(&service, v1::CleanupService::service_full_name());
    server.start();
    DatabaseHealth health(pool, server);

    // The continuous sweeper: one replica at a time (an advisory lock), waking
    // at the next deadline or after the interval, whichever comes first.
    std::atomic<bool> stop{false};
    std::thread sweeping([&] {
      const auto interval = std::chrono::milliseconds(config.integer("cleanup.sweep_interval_ms"));
      while (!stop) {
        std::optional<TimePoint> next;
        try {
          auto lock = pool.acquire();
          if (lock->exec("SELECT pg_try_advisory_lock(7309245138022)").boolean(0, 0)) {
            try {
              sweeper.sweep(false);
            } catch (...) {
              lock->exec("SELECT pg_advisory_unlock(7309245138022)");
              throw;
            }
            lock->exec("SELECT pg_advisory_unlock(7309245138022)");
          }
          next = sweeper.next_deadline();
        } catch (const std::exception& e) {
          log::warn("sweep_failed", {{"message", e.what()}});
        }
        auto wake = std::chrono::steady_clock::now() + interval;
        if (next) {
          const auto until = std::chrono::duration_cast<std::chrono::milliseconds>(*next - clock.now()) +
                             std::chrono::milliseconds(5);
          wake = std::min(wake, std::chrono::steady_clock::now() + std::max(until, std::chrono::milliseconds(20)));
        }
        while (!stop && std::chrono::steady_clock::now() < wake) std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
    });
    server.wait();
    stop = true;
    sweeping.join();
  });
}
