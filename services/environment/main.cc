// examiso-environment: the environment service daemon (runs as root for the
// local driver's sandboxes; nothing else does).
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "common/log.h"
#include "common/service_db.h"
#include "services/environment/grpc_sessions.h"
#include "services/environment/local_driver.h"
#include "services/environment/service.h"

int main(int argc, char** argv) {
  using namespace examiso;
  return daemon_main(argc, argv, "environment", [](const Config& config) {
    SystemClock clock;
    if (config.str("environment.driver") != "local")
      throw Error("INVALID_ARGUMENT", "environment.driver must be local (kubernetes arrives with its own issue)");
    if (config.boolean("environment.expedite_rcu")) {
      std::ofstream rcu("/sys/kernel/rcu_expedited");
      rcu << "1";
      rcu.flush();
      log::info("rcu_expedited", {{"set", static_cast<bool>(rcu)}});
    }
    std::string keeper = std::filesystem::read_symlink("/proc/self/exe").parent_path() / "examiso-sandbox";
    environment::LocalDriver driver({config.str("environment.state_dir"), config.str("environment.cgroup_parent"),
                                     keeper, static_cast<size_t>(config.integer("environment.replay_bytes"))});
    PgPool pool(pool_options(config, "examiso-environment"));
    if (!migrate_when_ready(pool, "environment", environment_migrations())) return;
    environment::EnvironmentStore store(pool, clock);
    environment::GrpcSessions sessions(config.str("lifecycle.address"),
                                       std::chrono::milliseconds(config.integer("grpc.call_timeout_ms")));
    std::string node = config.str("environment.node_name");
    if (node.empty()) {
      char host[256] = {};
      gethostname(host, sizeof host - 1);
      node = host;
    }
    environment::Environments environments(
        store, driver, sessions, clock,
        {config.str("environment.namespace"), node, config.integer("environment.uid_base"),
         config.integer("environment.uid_count"), config.integer("environment.warm_pool_size")});
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
  });
}
