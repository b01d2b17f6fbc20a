// examiso-environment: the environment service daemon (runs as root for the
// local driver's sandboxes; nothing else does).
#include <unistd.h>

#include <cmath>
#include <filesystem>

#include "common/files.h"
#include "common/log.h"
#include "common/service_db.h"
#include "services/environment/grpc_sessions.h"
#include "services/environment/kube_driver.h"
#include "services/environment/local_driver.h"
#include "services/environment/service.h"

int main(int argc, char** argv) {
  using namespace examiso;
  return daemon_main(argc, argv, "environment", [](const Config& config) {
    SystemClock clock;
    const std::string driver_name = config.str("environment.driver");
    std::unique_ptr<environment::SandboxDriver> driver;
    std::string node = config.str("environment.node_name");
    // The keeper: the local driver's sandboxes run it here; the kubernetes
    // driver copies it into each pod.
    const std::string keeper = std::filesystem::read_symlink("/proc/self/exe").parent_path() / "examiso-sandbox";
    const auto replay_bytes = static_cast<size_t>(config.integer("environment.replay_bytes"));
    const double output_rate = config.number("environment.terminal_output_mb_per_s") * 1e6;
    if (!std::isfinite(output_rate) || output_rate < 0 || (output_rate > 0 && output_rate < 1000))
      throw Error("INVALID_ARGUMENT", "environment.terminal_output_mb_per_s must be 0 (no limit) or at least 0.001");
    if (driver_name == "local") {
      if (config.boolean("environment.expedite_rcu")) {
        log::info("rcu_expedited", {{"set", write_file("/sys/kernel/rcu_expedited", "1")}});
      }
      driver = std::make_unique<environment::LocalDriver>(environment::LocalDriverOptions{
          config.str("environment.state_dir"), config.str("environment.cgroup_parent"), keeper, replay_bytes,
          config.integer("environment.max_sandboxes"), config.integer("environment.sandboxes_memory_mb") << 20,
          config.integer("environment.sandboxes_pids"), output_rate});
      if (node.empty()) {
        char host[256] = {};
        gethostname(host, sizeof host - 1);
        node = host;
      }
    } else if (driver_name == "kubernetes") {
      environment::KubeSettings kube;
      kube.kubeconfig = config.str("environment.kube_config");
      kube.server = config.str("environment.kube_server");
      kube.token_file = config.str("environment.kube_token_file");
      kube.ca_file = config.str("environment.kube_ca_file");
      kube.timeout = std::chrono::milliseconds(config.integer("environment.kube_timeout_ms"));
      environment::KubeDriverOptions options;
      options.pod_namespace = config.str("environment.namespace");
      options.deadline_grace_seconds = config.integer("environment.kube_deadline_grace_seconds");
      options.unstarted_seconds = config.integer("environment.kube_unstarted_seconds");
      options.keeper_binary = keeper;
      options.replay_bytes = replay_bytes;
      options.output_rate = output_rate;
      driver = std::make_unique<environment::KubeDriver>(environment::kube_endpoint(kube), options);
      // Every replica sees every pod of the namespace: one node name for all of
      // them, or each would take the others' pods for orphans.
      if (node.empty()) node = "kubernetes/" + config.str("environment.namespace");
    } else {
      throw Error("INVALID_ARGUMENT", "environment.driver must be local or kubernetes, not '" + driver_name + "'");
    }
    PgPool pool(pool_options(config, "examiso-environment"));
    if (!migrate_when_ready(pool, "environment", environment_migrations())) return;
    environment::EnvironmentStore store(pool, clock);
    environment::GrpcSessions sessions(config.str("lifecycle.address"),
                                       std::chrono::milliseconds(config.integer("grpc.call_timeout_ms")));
    environment::Environments environments(
        store, *driver, sessions, clock,
        {config.str("environment.namespace"), node, config.integer("environment.uid_base"),
         config.integer("environment.uid_count"), config.integer("environment.warm_pool_size"),
         driver_name == "kubernetes"});
    environments.reconcile(true);

    environment::EnvironmentService service(environments);
    GrpcServer server("environment", config.str("environment.listen"));
    server.add(&service, v1::EnvironmentService::service_full_name());
    server.start();
    DatabaseHealth health(pool, server);
    std::atomic<bool> stop{false};
    std::thread reconciler([&] {
      const auto every = std::chrono::seconds(config.integer("environment.reconcile_interval_seconds"));
      auto next = std::chrono::steady_clock::now() + every;
      while (!stop) {
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        if (std::chrono::steady_clock::now() < next) continue;
        next = std::chrono::steady_clock::now() + every;
        try {
          std::lock_guard lock(service.reconcile_mutex());
          environments.reconcile(false);
        } catch (const std::exception& e) {
          log::warn("reconcile_failed", {{"message", e.what()}});
        }
      }
    });
    std::thread warm_pool([&] { environments.run_pool(stop); });
    server.wait();
    stop = true;
    environments.wake_pool();
    reconciler.join();
    warm_pool.join();
    if (config.boolean("environment.stop_sandboxes_on_exit")) environments.stop_all("the platform was stopped");
  });
}
