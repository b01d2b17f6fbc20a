#include "services/lifecycle/session_watch.h"

#include <libpq-fe.h>
#include <poll.h>

#include "common/log.h"
#include "services/lifecycle/session_store.h"

namespace examiso::lifecycle {

SessionWatchHub::SessionWatchHub(std::string database_url, SessionStore* cache)
    : url_(std::move(database_url)), cache_(cache) {
  thread_ = std::thread([this] { run(); });
}

SessionWatchHub::~SessionWatchHub() {
  stop_ = true;
  thread_.join();
}

std::unique_ptr<SessionWatchHub::Subscription> SessionWatchHub::subscribe(const std::string& session_id,
                                                                         std::function<void()> on_change) {
  std::unique_ptr<Subscription> sub(new Subscription(*this, session_id, std::move(on_change)));
  std::lock_guard lock(mutex_);
  subscribers_[session_id].insert(sub.get());
  return sub;
}

SessionWatchHub::Subscription::~Subscription() {
  std::lock_guard lock(hub_.mutex_);
  auto it = hub_.subscribers_.find(session_id_);
  it->second.erase(this);
  if (it->second.empty()) hub_.subscribers_.erase(it);
}

void SessionWatchHub::wait_any(uint64_t& seen, std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  any_change_.wait_for(lock, timeout, [&] { return changes_ != seen; });
  seen = changes_;
}

void SessionWatchHub::dispatch(const std::string& session_id) {
  if (cache_) cache_->forget(session_id);
  std::lock_guard lock(mutex_);
  ++changes_;
  any_change_.notify_all();
  if (auto it = subscribers_.find(session_id); it != subscribers_.end())
    for (Subscription* s : it->second) s->on_change_();
}

void SessionWatchHub::wake_all() {
  std::lock_guard lock(mutex_);
  ++changes_;
  any_change_.notify_all();
  for (auto& [id, subs] : subscribers_)
    for (Subscription* s : subs) s->on_change_();
}

void SessionWatchHub::run() {
  const std::string listen = "LISTEN " + std::string(kChangeChannel);
  PGconn* conn = nullptr;
  while (!stop_) {
    if (!conn || PQstatus(conn) != CONNECTION_OK) {
      if (conn) {
        PQfinish(conn);
        conn = nullptr;
        listening_ = false;
        if (cache_) cache_->set_cache(false);  // changes go unheard from here on
        log::warn("session_watch_disconnected");
      }
      const char* keys[] = {"dbname",          "connect_timeout",     "application_name", "keepalives",
                            "keepalives_idle", "keepalives_interval", "keepalives_count", nullptr};
      const char* values[] = {url_.c_str(), "2", "examiso-lifecycle-watch", "1", "5", "2", "2", nullptr};
      conn = PQconnectdbParams(keys, values, 1);
      PGresult* r = PQstatus(conn) == CONNECTION_OK ? PQexec(conn, listen.c_str()) : nullptr;
      const bool ok = r && PQresultStatus(r) == PGRES_COMMAND_OK;
      PQclear(r);
      if (!ok) {
        PQfinish(conn);
        conn = nullptr;
        std::this_thread::sleep_for(std::chrono::milliseconds(500));
        continue;
      }
      listening_ = true;
      if (cache_) cache_->set_cache(true);
      log::info("session_watch_listening");
      wake_all();  // whatever happened while we were away
    }
    pollfd p{PQsocket(conn), POLLIN, 0};
    if (poll(&p, 1, 200) <= 0) continue;
    if (!PQconsumeInput(conn)) continue;  // the status check above reconnects
    while (PGnotify* n = PQnotifies(conn)) {
      dispatch(n->extra);
      PQfreemem(n);
    }
  }
  if (conn) PQfinish(conn);
}

}  // namespace examiso::lifecycle
