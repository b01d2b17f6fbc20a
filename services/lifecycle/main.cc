// examiso-lifecycle: the lifecycle service daemon.
#include "common/service_db.h"
#include "services/lifecycle/service.h"

int main(int argc, char** argv) {
  using namespace examiso;
  return daemon_main(argc, argv, "lifecycle", [](const Config& config) {
    SystemClock clock;
    const auto catalog = lifecycle::ExamCatalog::load(config.str("lifecycle.exam_catalog"));
    PgPool pool(pool_options(config, "examiso-lifecycle"));
    if (!migrate_when_ready(pool, "lifecycle", lifecycle_migrations())) return;
    lifecycle::SessionStore store(pool, catalog, clock);
    lifecycle::SessionWatchHub hub(config.str("database.url"));
    lifecycle::LifecycleService service(store, catalog, hub, clock,
                                        std::chrono::milliseconds(config.integer("lifecycle.watch_heartbeat_ms")));
    GrpcServer server("lifecycle", config.str("lifecycle.listen"));
    server.add(&service, v1::LifecycleService::service_full_name());
    server.start();
    DatabaseHealth health(pool, server);
    server.wait();
  });
}
