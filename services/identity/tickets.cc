#include "services/identity/tickets.h"

#include <algorithm>

#include "common/errors.h"
#include "common/identity.h"
#include "common/json.h"
#include "common/uuid.h"
#include "services/identity/token.h"

namespace examiso::identity {
namespace {

[[noreturn]] void refuse() { throw Error("UNAUTHENTICATED", "Invalid terminal ticket", Json{{"reason", "ticket"}}); }

}  // namespace

Ticket TicketStore::issue(const std::string& user_id, const std::string& session_id,
                          const std::vector<std::string>& roles) {
  const auto ids = check_identity({{"user_id", user_id}, {"exam_session_id", session_id}});
  std::string array = "{";  // a text[] literal: the roles are known words
  for (const auto& role : roles) {
    if (std::find(std::begin(kRoles), std::end(kRoles), role) == std::end(kRoles))
      throw Error("INVALID_ARGUMENT", "unknown role: " + role, Json{{"field", "roles"}});
    array += (array.size() > 1 ? "," : "") + role;
  }
  Ticket t{random_hex(32), clock_.now() + ttl_};
  static const std::string sql =
      "WITH gone AS (DELETE FROM terminal_tickets WHERE expires_at < $5)"
      " INSERT INTO terminal_tickets (ticket_hash, user_id, session_id, expires_at, roles)"
      " VALUES ($1, $2, $3, $4, $6::text[])";
  auto conn = pool_.acquire();
  conn->exec_prepared(sql, {sha256_hex(t.ticket), ids[0], ids[1], sql_time(t.expires_at), sql_time(clock_.now()),
                            array + "}"});
  return t;
}

TicketStore::Holder TicketStore::redeem(const std::string& ticket, const std::string& session_id) {
  if (ticket.size() != 64 || !is_valid_utf8(ticket)) refuse();
  static const std::string sql =
      "DELETE FROM terminal_tickets WHERE ticket_hash = $1 RETURNING user_id::text, session_id::text,"
      " expires_at > $2, array_to_string(roles, ',')";
  auto conn = pool_.acquire();
  const PgResult r = conn->exec_prepared(sql, {sha256_hex(ticket), sql_time(clock_.now())});
  if (r.rows() == 0 || !r.boolean(0, 2) || r.str(0, 1) != canonical_uuid(session_id).value_or("")) refuse();
  Holder h{r.str(0, 0), {}};
  const std::string roles = r.str(0, 3);
  for (size_t at = 0; at < roles.size();) {
    const size_t comma = std::min(roles.find(',', at), roles.size());
    h.roles.push_back(roles.substr(at, comma - at));
    at = comma + 1;
  }
  return h;
}

}  // namespace examiso::identity
