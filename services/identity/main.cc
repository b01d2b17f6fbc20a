// examiso-identity: the identity service daemon.
#include "common/grpc_server.h"
#include "services/identity/service.h"

int main(int argc, char** argv) {
  using namespace examiso;
  return daemon_main(argc, argv, "identity", [](const Config& config) {
    SystemClock clock;
    const auto policy = identity::TokenPolicy::from_config(config);
    identity::TokenVerifier verifier(policy, clock);
    identity::TokenIssuer issuer(policy, std::chrono::seconds(config.integer("identity.token_ttl_seconds")),
                                 std::chrono::seconds(config.integer("identity.max_token_ttl_seconds")), clock);
    identity::IdentityService service(verifier, issuer);
    GrpcServer server("identity", config.str("identity.listen"));
    server.add(&service, v1::IdentityService::service_full_name());
    server.start();
    server.wait();
  });
}
