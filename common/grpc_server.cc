#include "common/grpc_server.h"

#include <absl/synchronization/mutex.h>
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <signal.h>
#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <thread>

#include "common/errors.h"
#include "common/internal_tls.h"
#include "common/log.h"
#include "grpc/health/v1/health.grpc.pb.h"

namespace examiso {
namespace {

sigset_t shutdown_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  return set;
}

}  // namespace

void block_shutdown_signals() {
  // Debian's Abseil checks every mutex acquisition for lock-order cycles, a
  // debugging aid that costs gRPC measurable CPU per call.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  const sigset_t set = shutdown_signals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

bool wait_for_shutdown_signal(std::chrono::milliseconds timeout) {
  const sigset_t set = shutdown_signals();
  const auto secs = std::chrono::duration_cast<std::chrono::seconds>(timeout);
  const timespec ts{secs.count(), static_cast<long>((timeout - secs).count() * 1'000'000)};
  const int sig = sigtimedwait(&set, nullptr, &ts);
  if (sig > 0) log::info("shutting_down", {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"}});
  return sig > 0;
}

GrpcServer::GrpcServer(std::string name, std::string listen) : name_(std::move(name)), listen_(std::move(listen)) {}

void GrpcServer::add(grpc::Service* service, std::string full_name) {
  services_.emplace_back(service, std::move(full_name));
}

void GrpcServer::start() {
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(listen_, internal_tls::server_credentials(), &port_);
  builder.SetMaxReceiveMessageSize(4 << 20);
  // gRPC shares a port between processes by default (SO_REUSEPORT): a second
  // daemon on a taken port would get some of the first one's calls. Refuse it.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  // Handler threads stay once made: the default (two spare pollers) makes and
  // ends a thread per burst of calls, which costs more than the calls.
  builder.SetSyncServerOption(grpc::ServerBuilder::SyncServerOption::NUM_CQS, 1);
  builder.SetSyncServerOption(grpc::ServerBuilder::SyncServerOption::MIN_POLLERS, 1);
  builder.SetSyncServerOption(grpc::ServerBuilder::SyncServerOption::MAX_POLLERS, 64);
  for (auto& [service, name] : services_) builder.RegisterService(service);
  server_ = builder.BuildAndStart();
  if (!server_ || port_ == 0) throw Error("INTERNAL_ERROR", name_ + " cannot listen on " + listen_);
  awake_ = std::make_unique<CallbackKeepAwake>(server_->InProcessChannel({}));
  set_serving(true);
  const std::string host = listen_.substr(0, listen_.rfind(':'));
  log::info("listening", {{"address", host + ":" + std::to_string(port_)}});
}

CallbackKeepAwake::CallbackKeepAwake(const std::shared_ptr<grpc::Channel>& channel)
    : stub_(grpc::health::v1::Health::NewStub(channel)), thread_([this] {
        std::unique_lock lock(mutex_);
        while (!cv_.wait_for(lock, std::chrono::milliseconds(500), [&] { return stop_; })) {
          struct Call {
            grpc::ClientContext context;
            grpc::health::v1::HealthCheckRequest request;
            grpc::health::v1::HealthCheckResponse response;
          };
          auto call = std::make_shared<Call>();
          call->context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(1));
          ++in_flight_;
          stub_->async()->Check(&call->context, &call->request, &call->response, [this, call](grpc::Status) {
            std::lock_guard done(mutex_);
            if (--in_flight_ == 0) cv_.notify_all();
          });
        }
      }) {}

CallbackKeepAwake::~CallbackKeepAwake() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
  std::unique_lock lock(mutex_);
  cv_.wait(lock, [&] { return in_flight_ == 0; });  // each ends within its 1 s deadline
}

void GrpcServer::wait() {
  std::thread watcher([this] {
    const sigset_t set = shutdown_signals();
    const timespec tick{0, 100'000'000};
    while (!stopping_) {
      const int sig = sigtimedwait(&set, nullptr, &tick);
      if (sig > 0) {
        log::info("shutting_down", {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"}});
        break;
      }
    }
    set_serving(false);
    awake_.reset();  // its checks end before the server does
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  });
  server_->Wait();
  stopping_ = true;
  watcher.join();
  log::info("stopped");
}

void GrpcServer::stop() { stopping_ = true; }

void GrpcServer::set_serving(bool serving) {
  if (!server_) return;
  auto* health = server_->GetHealthCheckService();
  health->SetServingStatus(serving);
  for (auto& [service, name] : services_) health->SetServingStatus(name, serving);
}

int daemon_main(int argc, char** argv, std::string_view service, const std::function<void(const Config&)>& body) {
  block_shutdown_signals();
  // A descriptor per connection, terminal and sandbox: hundreds of candidates
  // need more than the usual soft limit of 1024.
  rlimit files{};
  if (getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
    files.rlim_cur = files.rlim_max;
    setrlimit(RLIMIT_NOFILE, &files);
  }
  log::set_service(service);
  CLI::App app("examiso " + std::string(service) + " service");
  std::string config_path;
  if (const char* env = std::getenv("EXAMISO_CONFIG")) config_path = env;
  app.add_option("--config", config_path, "configuration file (default: $EXAMISO_CONFIG, else built-in defaults)");
  bool print_config = false;
  app.add_flag("--print-config", print_config, "print every configuration key with its default, and exit");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (print_config) {
    std::fputs(documented_config().c_str(), stdout);
    return 0;
  }
  try {
    const Config config = Config::load(config_path);
    log::set_level(log::parse_level(config.str("log.level")));
    internal_tls::configure(config, std::string(service));
    body(config);
    return 0;
  } catch (const Error& e) {
    log::error("fatal", {{"code", e.code()}, {"message", e.what()}});
  } catch (const std::exception& e) {
    log::error("fatal", {{"code", "INTERNAL_ERROR"}, {"message", e.what()}});
  }
  return 1;
}

std::shared_ptr<grpc::Channel> make_channel(const std::string& address, const std::string& service,
                                           const std::string& as) {
  grpc::ChannelArguments args;
  // Only `service`'s certificate will do, whatever the address.
  if (internal_tls::enabled()) args.SetSslTargetNameOverride(service);
  // Reconnect quickly once a restarted service is back. (Not the minimum
  // connect timeout, GRPC_ARG_MIN_RECONNECT_BACKOFF_MS: at 100 ms, a service
  // busy for longer than a second, 30 sandboxes being made at once on two
  // cores, was taken for gone: "timed out before receiving SETTINGS frame",
  // and the call failed as unavailable. A service that is down refuses the
  // connection at once anyway.)
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  return grpc::CreateCustomChannel(address, internal_tls::channel_credentials(as), args);
}

}  // namespace examiso
