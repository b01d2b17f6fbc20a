#pragma once
// Bearer tokens (JWT). The accepted algorithms are pinned by configuration and
// each has its own key, so `alg: none` and algorithm confusion (an HS256 token
// signed with the RSA public key) cannot pass. libjwt checks signatures only;
// every claim rule lives here.
#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "common/config.h"

namespace examiso::identity {

struct TokenPolicy {
  std::vector<std::string> algorithms;  // from HS256, RS256, ES256
  std::string hs256_secret;
  // Whether IssueToken (the development sign-in, `session-identity token`)
  // mints tokens at all: never on by a secret alone.
  bool dev_sign_in = false;
  // The key identity signs refreshed tokens with where there is no
  // development secret (production: the identity provider's tokens are
  // RS256/ES256 and identity holds no private key of theirs). Tokens signed
  // with it are accepted whatever `algorithms` says: only identity knows it.
  std::string refresh_secret;
  std::string rs256_public_pem;
  std::string es256_public_pem;
  std::string issuer;    // checked when not empty
  std::string audience;  // checked when not empty
  std::chrono::seconds leeway{30};

  // Reads and checks the identity section (key files included). Throws Error
  // INVALID_ARGUMENT for an unknown algorithm or one without its key.
  static TokenPolicy from_config(const Config& config);
};

// What a token's `roles` claim may grant; a token that names none of them is
// a candidate's.
inline constexpr std::string_view kRoles[] = {"candidate", "proctor", "admin"};

struct VerifiedToken {
  std::string user_id;  // canonical UUID from `sub` or `user_id`
  TimePoint expires_at;
  std::string algorithm;
  std::vector<std::string> roles;  // from kRoles, at least one
};

class TokenVerifier final {
 public:
  TokenVerifier(TokenPolicy policy, const Clock& clock);

  // Throws Error UNAUTHENTICATED with details.reason (malformed,
  // algorithm_not_accepted, bad_signature, missing_exp, expired, not_yet_valid,
  // issued_in_future, wrong_issuer, wrong_audience, missing_user_id, invalid_user_id,
  // malformed_roles: `roles` not a list of strings). Staff roles (proctor,
  // admin) count only from a token signed with identity's own HS256 key or
  // one whose issuer and audience are configured and checked.
  VerifiedToken verify(std::string_view token) const;

 private:
  const std::string& key_for(std::string_view algorithm) const;

  TokenPolicy policy_;
  const Clock& clock_;
};

struct IssuedToken {
  std::string token;
  std::string user_id;
  TimePoint expires_at;
  std::vector<std::string> roles;
};

// Development tokens: HS256 with the configured secret; and refreshed ones.
class TokenIssuer final {
 public:
  TokenIssuer(const TokenPolicy& policy, std::chrono::seconds default_ttl, std::chrono::seconds max_ttl,
              const Clock& clock);

  // ttl 0 means the default; no roles: candidate. Throws
  // TOKEN_ISSUING_DISABLED unless the development sign-in is on
  // (identity.dev_sign_in) with a secret, INVALID_IDENTITY for a bad user id,
  // INVALID_ARGUMENT for a bad ttl or a role not in kRoles.
  IssuedToken issue(std::string_view user_id, std::chrono::seconds ttl, std::vector<std::string> roles = {}) const;

  // A new token of the default lifetime for a verified one's user and roles, signed
  // with the development secret or else the refresh secret;
  // TOKEN_ISSUING_DISABLED with neither.
  IssuedToken refresh(const VerifiedToken& token) const;

 private:
  IssuedToken sign(const std::string& user_id, const std::vector<std::string>& roles, std::chrono::seconds ttl,
                   const std::string& secret) const;

  bool dev_sign_in_ = false;

  std::string secret_;
  std::string refresh_secret_;
  std::string issuer_;
  std::string audience_;
  std::chrono::seconds default_ttl_;
  std::chrono::seconds max_ttl_;
  const Clock& clock_;
};

}  // namespace examiso::identity
