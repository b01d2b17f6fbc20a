#pragma once
// The gRPC bootstrap every service shares: health service, server reflection
// (grpcurl can list and describe everything), and graceful shutdown on
// SIGTERM/SIGINT.
#include <grpcpp/grpcpp.h>
#include <grpcpp/impl/service_type.h>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/config.h"
#include "grpc/health/v1/health.grpc.pb.h"

namespace examiso {

// Call first in main(), before any thread starts, so that only the server's
// signal watcher receives SIGTERM/SIGINT.
void block_shutdown_signals();

// Sleeps up to `timeout`; true if SIGTERM/SIGINT arrived (for waits before the
// server runs).
bool wait_for_shutdown_signal(std::chrono::milliseconds timeout);

// Keeps gRPC's callback-API threads awake. In gRPC 1.51 they are two threads
// that, after a second with no callback event, sleep 100 ms without polling;
// while both sleep, nothing reads this process's connections (measured: every
// 1.1 s, a 75-100 ms stall of every call, sync ones included, and about one
// keystroke in twelve held up to 95 ms when a candidate types with pauses).
// A health check through the callback API every half second means that
// second never passes. Destroyed, it waits for its last check to end: a check
// still under way when the server it calls has gone ends in gRPC's code after
// its shutdown (a SEGV that AddressSanitizer showed as daemons stopped).
class CallbackKeepAwake final {
 public:
  explicit CallbackKeepAwake(const std::shared_ptr<grpc::Channel>& channel);
  ~CallbackKeepAwake();

 private:
  std::unique_ptr<grpc::health::v1::Health::Stub> stub_;
  std::mutex mutex_;
  std::condition_variable cv_;
  bool stop_ = false;
  int in_flight_ = 0;
  std::thread thread_;
};

class GrpcServer final {
 public:
  GrpcServer(std::string name, std::string listen);

  // `full_name` is the service's proto name, e.g. examiso.v1.IdentityService,
  // under which the health service reports it.
  void add(grpc::Service* service, std::string full_name);

  // Starts listening (throws Error if the address cannot be bound).
  void start();
  // Blocks until a shutdown signal or stop(), then drains calls for up to 5 s.
  void wait();
  void stop();

  // Health as clients see it (e.g. NOT_SERVING while the database is away).
  void set_serving(bool serving);
  int port() const { return port_; }

 private:
  std::string name_;
  std::string listen_;
  std::vector<std::pair<grpc::Service*, std::string>> services_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<CallbackKeepAwake> awake_;  // ended before the server shuts down
  std::atomic<bool> stopping_{false};
  int port_ = 0;
};

// Runs a service process: reads --config (or EXAMISO_CONFIG), sets up logging
// for `service`, runs `body`, and turns any Error into a logged exit 1.
int daemon_main(int argc, char** argv, std::string_view service, const std::function<void(const Config&)>& body);

// A channel to `service` (its role: identity, lifecycle, ...) at `address`
// (host:port), as this process's role or as `as` (see internal_tls.h).
std::shared_ptr<grpc::Channel> make_channel(const std::string& address, const std::string& service,
                                           const std::string& as = "");

}  // namespace examiso
