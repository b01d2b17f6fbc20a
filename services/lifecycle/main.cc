// examiso-lifecycle: the lifecycle service daemon.
#include "common/service_db.h"
#include "services/lifecycle/grpc_environment.h"
#include "services/lifecycle/provisioner.h"
#include "services/lifecycle/service.h"

namespace {
bool provisioner_enabled(const examiso::Config& config) {
  return config.integer("lifecycle.provisioner_workers") > 0;
}
}  // namespace

int main(int argc, char** argv) {
  using namespace examiso;
  return daemon_main(argc, argv, "lifecycle", [](const Config& config) {
    SystemClock clock;
    const auto catalog = lifecycle::ExamCatalog::load(config.str("lifecycle.exam_catalog"));
    PgPool pool(pool_options(config, "examiso-lifecycle"));
    if (!migrate_when_ready(pool, "lifecycle", lifecycle_migrations())) return;
    lifecycle::SessionStore store(pool, catalog, clock, config.integer("lifecycle.max_extension_seconds"));
    lifecycle::SessionWatchHub hub(config.str("database.url"), &store);
    lifecycle::LifecycleService service(store, catalog, hub, clock,
                                        std::chrono::milliseconds(config.integer("lifecycle.watch_heartbeat_ms")));
    lifecycle::GrpcEnvironmentCreator environments(config.str("environment.address"));
    lifecycle::Provisioner provisioner(
        pool, store, environments, hub, clock,
        {static_cast<int>(config.integer("lifecycle.provisioner_workers")),
         std::chrono::seconds(config.integer("lifecycle.provision_lease_seconds")), std::chrono::milliseconds(5000)});
    GrpcServer server("lifecycle", config.str("lifecycle.listen"));
    server.add(&service, v1::LifecycleService::service_full_name());
    server.start();
    DatabaseHealth health(pool, server);
    if (provisioner_enabled(config)) provisioner.start();
    server.wait();
    provisioner.stop();
  });
}
