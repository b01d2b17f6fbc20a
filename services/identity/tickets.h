#pragma once
// Terminal tickets: what a browser presents instead of an Authorization
// header when it opens a terminal WebSocket. Random, short-lived, bound to a
// user and a session, and consumed on first use (by any gateway replica).
#include <chrono>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/db.h"
#include "common/migrate.h"

namespace examiso {

// The identity service's schema: migrations/*.sql, embedded at build time.
std::vector<Migration> identity_migrations();

namespace identity {

struct Ticket {
  std::string ticket;
  TimePoint expires_at;
};

class TicketStore final {
 public:
  TicketStore(PgPool& pool, const Clock& clock, std::chrono::seconds ttl) : pool_(pool), clock_(clock), ttl_(ttl) {}

  // INVALID_IDENTITY; INVALID_ARGUMENT for a role not in kRoles.
  Ticket issue(const std::string& user_id, const std::string& session_id, const std::vector<std::string>& roles = {});

  struct Holder {
    std::string user_id;
    std::vector<std::string> roles;  // as issued (none for a candidate's)
  };
  // The ticket's holder; UNAUTHENTICATED when unknown, expired, used, or for another session.
  Holder redeem(const std::string& ticket, const std::string& session_id);

 private:
  PgPool& pool_;
  const Clock& clock_;
  std::chrono::seconds ttl_;
};

}  // namespace identity
}  // namespace examiso
