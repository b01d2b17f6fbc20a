#pragma once
// Revoked tokens (signed out before they expire), by hash, kept only until
// the token would have expired anyway.
#include <string>

#include "common/clock.h"
#include "common/db.h"

namespace examiso::identity {

class RevocationStore final {
 public:
  RevocationStore(PgPool& pool, const Clock& clock) : pool_(pool), clock_(clock) {}

  void revoke(const std::string& token, TimePoint expires_at);
  bool revoked(const std::string& token);

 private:
  PgPool& pool_;
  const Clock& clock_;
};

}  // namespace examiso::identity
