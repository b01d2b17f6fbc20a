// examiso-identity: the identity service daemon.
#include "common/service_db.h"
#include "services/identity/service.h"

int main(int argc, char** argv) {
  using namespace examiso;
  return daemon_main(argc, argv, "identity", [](const Config& config) {
    SystemClock clock;
    const auto policy = identity::TokenPolicy::from_config(config);
    identity::TokenVerifier verifier(policy, clock);
    identity::TokenIssuer issuer(policy, std::chrono::seconds(config.integer("identity.token_ttl_seconds")),
                                 std::chrono::seconds(config.integer("identity.max_token_ttl_seconds")), clock);
    PgPool pool(pool_options(config, "examiso-identity"));
    if (!migrate_when_ready(pool, "identity", identity_migrations())) return;
    identity::TicketStore tickets(pool, clock, std::chrono::seconds(config.integer("identity.ticket_ttl_seconds")));
    identity::RevocationStore revocations(pool, clock);
    identity::IdentityService service(verifier, issuer, tickets, revocations);
    GrpcServer server("identity", config.str("identity.listen"));
    server.add(&service, v1::IdentityService::service_full_name());
    server.start();
    DatabaseHealth health(pool, server);
    server.wait();
  });
}
