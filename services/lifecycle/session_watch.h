#pragma once
// Change notifications across replicas: one connection per process LISTENs on
// the sessions channel and wakes the subscribers of each changed session.
// After a lost connection every subscriber is woken, since changes may have
// been missed meanwhile. It also keeps the store's cache honest: on only
// while listening, each notified session forgotten.
#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>

namespace examiso::lifecycle {

class SessionStore;

class SessionWatchHub final {
 public:
  // Ending it unsubscribes: once its destructor returns, no call of its
  // on_change is under way.
  class Subscription final {
   public:
    ~Subscription();

   private:
    friend class SessionWatchHub;
    Subscription(SessionWatchHub& hub, std::string session_id, std::function<void()> on_change)
        : hub_(hub), session_id_(std::move(session_id)), on_change_(std::move(on_change)) {}

    SessionWatchHub& hub_;
    std::string session_id_;
    std::function<void()> on_change_;
  };

  // `cache`: a store whose cache this hub turns on and keeps; may be null.
  explicit SessionWatchHub(std::string database_url, SessionStore* cache = nullptr);
  ~SessionWatchHub();

  // `on_change` is called whenever the session may have changed (on the hub's
  // thread, with the hub's lock held: it must not wait, nor end a subscription).
  std::unique_ptr<Subscription> subscribe(const std::string& session_id, std::function<void()> on_change);

  // Waits until any session changed after `seen` (a count this updates), or
  // `timeout` passes.
  void wait_any(uint64_t& seen, std::chrono::milliseconds timeout);
  bool listening() const { return listening_; }

 private:
  void run();
  void dispatch(const std::string& session_id);
  void wake_all();

  std::string url_;
  SessionStore* cache_;
  std::mutex mutex_;
  std::map<std::string, std::set<Subscription*>> subscribers_;
  uint64_t changes_ = 0;
  std::condition_variable any_change_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> listening_{false};
  std::thread thread_;
};

}  // namespace examiso::lifecycle
