#pragma once
// Drives auto-provisioned sessions created -> initializing -> ready, or to
// failed with a classified reason. Level-triggered: each worker claims one
// waiting session at a time from the database (FOR UPDATE SKIP LOCKED, with a
// short lease, so replicas never provision the same session at once and a
// crashed replica's work is taken up again), and keeps no state of its own.
#include <atomic>
#include <thread>
#include <vector>

#include "services/lifecycle/session_store.h"
#include "services/lifecycle/session_watch.h"

namespace examiso::lifecycle {

// The environment service, as the provisioner needs it.
class EnvironmentCreator {
 public:
  virtual ~EnvironmentCreator() = default;
  // Ready when it returns; throws Error (ENVIRONMENT_CREATE_FAILED is final,
  // BACKEND_UNAVAILABLE / TIMEOUT are worth retrying).
  virtual void create(const std::string& session_id, std::chrono::seconds timeout) = 0;
};

struct ProvisionerOptions {
  int workers = 8;
  std::chrono::seconds lease{10};
  std::chrono::milliseconds max_backoff{5000};
};

class Provisioner final {
 public:
  Provisioner(PgPool& pool, SessionStore& store, EnvironmentCreator& environments, SessionWatchHub& hub,
              const Clock& clock, ProvisionerOptions options);
  ~Provisioner();

  void start();
  void stop();

  // Claims one waiting session and takes it one step; false when none waits.
  bool step();

 private:
  struct Claim {
    std::string session_id;
    State state;
    int attempts;
    TimePoint deadline;
  };
  std::optional<Claim> claim();
  void release(const std::string& session_id, std::optional<std::chrono::milliseconds> retry_in);
  void fail(const Claim& c, const std::string& reason, FailureClass failure = FailureClass::init);

  PgPool& pool_;
  SessionStore& store_;
  EnvironmentCreator& environments_;
  SessionWatchHub& hub_;
  const Clock& clock_;
  ProvisionerOptions o_;
  std::atomic<bool> stop_{false};
  std::vector<std::thread> workers_;
};

}  // namespace examiso::lifecycle
