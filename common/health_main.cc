// examiso-health: a service's readiness probe in Kubernetes, where the
// kubelet's own gRPC probe cannot speak TLS. Asks SERVICE at --address for its
// gRPC health as SERVICE itself (its pod holds only its own certificate):
// prints SERVING and exits 0, or prints what it got and exits 1.
//
//   examiso-health --config /etc/examiso/examiso.yaml --address 127.0.0.1:50052 lifecycle
#include <CLI/CLI.hpp>
#include <cstdlib>
#include <iostream>

#include "common/errors.h"
#include "common/grpc_server.h"
#include "common/internal_tls.h"
#include "grpc/health/v1/health.grpc.pb.h"

int main(int argc, char** argv) {
  using namespace examiso;
  CLI::App app("Ask an examiso service whether it serves (a readiness probe)", "examiso-health");
  std::string service, address, config_path;
  if (const char* env = std::getenv("EXAMISO_CONFIG")) config_path = env;
  app.add_option("service", service, "identity, lifecycle, environment, access or cleanup")->required();
  app.add_option("--address", address, "host:port (default: the service's address from the config)");
  app.add_option("--config", config_path, "configuration file (default: $EXAMISO_CONFIG, else built-in defaults)");
  CLI11_PARSE(app, argc, argv);
  try {
    const Config config = Config::load(config_path);
    if (address.empty()) address = config.str(service + ".address");
    internal_tls::configure(config, service);
    auto stub = grpc::health::v1::Health::NewStub(make_channel(address, service));
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
    grpc::health::v1::HealthCheckRequest request;
    grpc::health::v1::HealthCheckResponse response;
    const grpc::Status status = stub->Check(&context, request, &response);
    if (!status.ok()) {
      std::cout << service << " at " << address << ": " << status.error_message() << std::endl;
      return 1;
    }
    std::cout << grpc::health::v1::HealthCheckResponse::ServingStatus_Name(response.status()) << std::endl;
    return response.status() == grpc::health::v1::HealthCheckResponse::SERVING ? 0 : 1;
  } catch (const Error& e) {
    std::cout << e.code() << ": " << e.what() << std::endl;
    return 1;
  }
}
