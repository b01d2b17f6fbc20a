#include "services/identity/revocations.h"

#include "common/uuid.h"

namespace examiso::identity {

void RevocationStore::revoke(const std::string& token, TimePoint expires_at) {
  static const std::string sql =
      "WITH gone AS (DELETE FROM revoked_tokens WHERE expires_at < $3)"
      " INSERT INTO revoked_tokens (token_hash, expires_at) VALUES ($1, $2) ON CONFLICT DO NOTHING";
  auto conn = pool_.acquire();
  // Kept a day past expiry: a token within the verifier's leeway stays refused.
  conn->exec_prepared(sql, {sha256_hex(token), sql_time(expires_at), sql_time(clock_.now() - std::chrono::hours(24))});
}

bool RevocationStore::revoked(const std::string& token) {
  static const std::string sql = "SELECT 1 FROM revoked_tokens WHERE token_hash = $1";
  auto conn = pool_.acquire();
  return conn->exec_prepared(sql, {sha256_hex(token)}).rows() > 0;
}

}  // namespace examiso::identity
