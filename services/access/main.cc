// examiso-access: the access service daemon.
#include "common/service_db.h"
#include "services/access/service.h"

int main(int argc, char** argv) {
  using namespace examiso;
  return daemon_main(argc, argv, "access", [](const Config& config) {
    SystemClock clock;
    PgPoolOptions options = pool_options(config, "examiso-access");
    // The access log is written on every request's path: commit without
    // waiting for the disk (a crash may lose the last fraction of a second of
    // log, never corrupt it).
    options.settings = "-c synchronous_commit=off";
    PgPool pool(options);
    if (!migrate_when_ready(pool, "access", access_migrations())) return;
    access::GrpcSessionLookup sessions(config.str("lifecycle.address"),
                                       std::chrono::milliseconds(config.integer("grpc.call_timeout_ms")));
    access::Authorizer authorizer(pool, sessions, clock);
    access::AccessService service(authorizer);
    GrpcServer server("access", config.str("access.listen"));
    server.add(&service, v1::AccessService::service_full_name());
    server.start();
    DatabaseHealth health(pool, server);
    server.wait();
  });
}
