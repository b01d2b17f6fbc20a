#include "services/identity/token.h"

#include <jwt.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <memory>

#include "common/files.h"
#include "common/errors.h"
#include "common/identity.h"
#include "common/json.h"
#include "common/uuid.h"

namespace examiso::identity {
namespace {

constexpr size_t kMaxTokenLength = 8192;
constexpr std::string_view kAlgorithms[] = {"HS256", "RS256", "ES256"};

[[noreturn]] void reject(std::string_view reason, const std::string& message) {
  throw Error("UNAUTHENTICATED", message, Json{{"reason", reason}});
}

// Unpadded base64url, as JWS requires; nullopt for anything else.
std::optional<std::string> base64url_decode(std::string_view in) {
  static const auto table = [] {
    std::array<int8_t, 256> t{};
    t.fill(-1);
    const std::string_view alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    for (size_t i = 0; i < alphabet.size(); ++i) t[static_cast<unsigned char>(alphabet[i])] = static_cast<int8_t>(i);
    return t;
  }();
  if (in.size() % 4 == 1) return std::nullopt;
  std::string out(in.size() * 3 / 4, '\0');
  size_t n = 0;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    const int v = table[static_cast<unsigned char>(c)];
    if (v < 0) return std::nullopt;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[n++] = static_cast<char>((acc >> bits) & 0xff);
    }
  }
  out.resize(n);
  return out;
}

// Claims are looked up, never printed: an unordered object parses faster.
using Claims = nlohmann::json;

Claims decode_part(std::string_view part) {
  const auto text = base64url_decode(part);
  if (!text) reject("malformed", "Token is malformed");
  Claims value = Claims::parse(*text, nullptr, false);
  if (!value.is_object()) reject("malformed", "Token is malformed");
  return value;
}

// HS256 is the hot path (every gateway request in development): one HMAC and a
// constant-time compare, without libjwt's extra parsing.
bool hs256_valid(std::string_view signing_input, std::string_view signature, const std::string& secret) {
  const auto expected = base64url_decode(signature);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (!expected || !HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
                         reinterpret_cast<const unsigned char*>(signing_input.data()), signing_input.size(), mac, &len))
    return false;
  return expected->size() == len && CRYPTO_memcmp(expected->data(), mac, len) == 0;
}

// RS256 and ES256 through libjwt, which must agree on the pinned algorithm.
bool libjwt_valid(std::string_view token, const std::string& algorithm, const std::string& key) {
  jwt_t* raw = nullptr;
  const std::string text(token);
  const int rc = jwt_decode(&raw, text.c_str(), reinterpret_cast<const unsigned char*>(key.data()),
                            static_cast<int>(key.size()));
  std::unique_ptr<jwt_t, void (*)(jwt_t*)> jwt(raw, jwt_free);
  const char* verified = rc == 0 && jwt ? jwt_alg_str(jwt_get_alg(jwt.get())) : nullptr;
  return verified && algorithm == verified;
}

std::string read_key_file(const std::string& path, std::string_view key) {
  auto text = read_file(path);
  if (!text) throw Error("INVALID_ARGUMENT", std::string(key) + ": cannot read " + path);
  return std::move(*text);
}

bool known_role(std::string_view role) { return std::find(std::begin(kRoles), std::end(kRoles), role) != std::end(kRoles); }

// The known roles a `roles` claim names, in kRoles' order; candidate when
// none. Staff roles count only from a token meant for this platform (`trusted`):
// otherwise an identity provider's token for another of its applications,
// with an admin role there, would be staff here.
std::vector<std::string> roles_claim(const Claims& claims, bool trusted) {
  std::vector<std::string> roles;
  const auto it = claims.find("roles");
  if (it != claims.end()) {
    if (!it->is_array() || !std::all_of(it->begin(), it->end(), [](const Claims& r) { return r.is_string(); }))
      reject("malformed_roles", "Token claim 'roles' is not a list of strings");
    for (std::string_view role : kRoles)
      if ((trusted || role == "candidate") && std::find(it->begin(), it->end(), role) != it->end())
        roles.emplace_back(role);
  }
  if (roles.empty()) roles.emplace_back("candidate");
  return roles;
}

std::optional<int64_t> numeric_claim(const Claims& claims, const char* name) {
  auto it = claims.find(name);
  if (it == claims.end()) return std::nullopt;
  if (!it->is_number()) reject("malformed", std::string("Token claim '") + name + "' is not a number");
  return static_cast<int64_t>(it->get<double>());
}

}  // namespace

TokenPolicy TokenPolicy::from_config(const Config& config) {
  TokenPolicy p;
  p.algorithms = config.list("identity.algorithms");
  p.hs256_secret = config.str("identity.hs256_secret");
  p.dev_sign_in = config.boolean("identity.dev_sign_in");
  if (p.dev_sign_in && p.hs256_secret.empty())
    throw Error("INVALID_ARGUMENT", "identity.dev_sign_in needs identity.hs256_secret to sign with");
  p.refresh_secret = config.str("identity.refresh_secret");
  if (!p.refresh_secret.empty() && p.refresh_secret.size() < 16)
    throw Error("INVALID_ARGUMENT", "identity.refresh_secret is shorter than 16 bytes");
  if (const auto& f = config.str("identity.rs256_public_key_file"); !f.empty())
    p.rs256_public_pem = read_key_file(f, "identity.rs256_public_key_file");
  if (const auto& f = config.str("identity.es256_public_key_file"); !f.empty())
    p.es256_public_pem = read_key_file(f, "identity.es256_public_key_file");
  p.issuer = config.str("identity.issuer");
  p.audience = config.str("identity.audience");
  p.leeway = std::chrono::seconds(config.integer("identity.leeway_seconds"));
  if (p.algorithms.empty()) throw Error("INVALID_ARGUMENT", "identity.algorithms must name at least one algorithm");
  for (const auto& alg : p.algorithms) {
    if (std::find(std::begin(kAlgorithms), std::end(kAlgorithms), alg) == std::end(kAlgorithms))
      throw Error("INVALID_ARGUMENT", "identity.algorithms: unsupported algorithm '" + alg + "' (HS256, RS256, ES256)");
  }
  for (const auto& alg : p.algorithms) {
    if (alg == "HS256" && p.hs256_secret.size() < 16)
      throw Error("INVALID_ARGUMENT", "identity.algorithms has HS256 but identity.hs256_secret is shorter than 16 bytes");
    if (alg == "RS256" && p.rs256_public_pem.empty())
      throw Error("INVALID_ARGUMENT", "identity.algorithms has RS256 but identity.rs256_public_key_file is not set");
    if (alg == "ES256" && p.es256_public_pem.empty())
      throw Error("INVALID_ARGUMENT", "identity.algorithms has ES256 but identity.es256_public_key_file is not set");
  }
  return p;
}

TokenVerifier::TokenVerifier(TokenPolicy policy, const Clock& clock) : policy_(std::move(policy)), clock_(clock) {}

const std::string& TokenVerifier::key_for(std::string_view algorithm) const {
  if (algorithm == "HS256") return policy_.hs256_secret;
  if (algorithm == "RS256") return policy_.rs256_public_pem;
  return policy_.es256_public_pem;
}

VerifiedToken TokenVerifier::verify(std::string_view token) const {
  if (token.empty() || token.size() > kMaxTokenLength) reject("malformed", "Token is malformed");
  const size_t dot1 = token.find('.');
  const size_t dot2 = dot1 == std::string_view::npos ? dot1 : token.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos || token.find('.', dot2 + 1) != std::string_view::npos)
    reject("malformed", "Token is malformed");

  // Pin the algorithm before any signature check.
  const Claims header = decode_part(token.substr(0, dot1));
  const auto alg = header.find("alg");
  const bool pinned = alg != header.end() && alg->is_string() &&
                      std::find(policy_.algorithms.begin(), policy_.algorithms.end(), alg->get<std::string>()) !=
                          policy_.algorithms.end();
  const bool refreshed = alg != header.end() && *alg == "HS256" && !policy_.refresh_secret.empty();
  if (!pinned && !refreshed) reject("algorithm_not_accepted", "Token algorithm is not accepted");
  const std::string algorithm = alg->get<std::string>();

  const auto signing_input = token.substr(0, dot2), signature = token.substr(dot2 + 1);
  const bool signed_ok = algorithm != "HS256" ? libjwt_valid(token, algorithm, key_for(algorithm))
                                              : (pinned && hs256_valid(signing_input, signature, policy_.hs256_secret)) ||
                                                    (refreshed && hs256_valid(signing_input, signature,
                                                                              policy_.refresh_secret));
  if (!signed_ok) reject("bad_signature", "Token signature is invalid");

  const Claims claims = decode_part(token.substr(dot1 + 1, dot2 - dot1 - 1));
  const int64_t now = std::chrono::duration_cast<std::chrono::seconds>(clock_.now().time_since_epoch()).count();
  const int64_t leeway = policy_.leeway.count();
  const auto exp = numeric_claim(claims, "exp");
  if (!exp) reject("missing_exp", "Token has no expiry");
  if (now > *exp + leeway) reject("expired", "Token has expired");
  if (const auto nbf = numeric_claim(claims, "nbf"); nbf && now + leeway < *nbf)
    reject("not_yet_valid", "Token is not valid yet");
  if (const auto iat = numeric_claim(claims, "iat"); iat && now + leeway < *iat)
    reject("issued_in_future", "Token was issued in the future");
  if (!policy_.issuer.empty() && claims.value("iss", Claims()) != policy_.issuer)
    reject("wrong_issuer", "Token issuer is not accepted");
  if (!policy_.audience.empty()) {
    const Claims aud = claims.value("aud", Claims());
    const bool ok = aud == policy_.audience ||
                    (aud.is_array() && std::find(aud.begin(), aud.end(), policy_.audience) != aud.end());
    if (!ok) reject("wrong_audience", "Token audience is not accepted");
  }

  Claims user = claims.value("sub", Claims());
  if (!user.is_string()) user = claims.value("user_id", Claims());
  if (!user.is_string() || user.get<std::string>().empty()) reject("missing_user_id", "Token names no user");
  const auto user_id = canonical_uuid(user.get<std::string>());
  if (!user_id) reject("invalid_user_id", "Token user id is not a UUID");
  // Meant for this platform: signed with identity's own key (HS256: the
  // development or refresh secret), or with issuer and audience both checked.
  const bool ours = algorithm == "HS256" || (!policy_.issuer.empty() && !policy_.audience.empty());
  return VerifiedToken{*user_id, TimePoint(std::chrono::seconds(*exp)), algorithm, roles_claim(claims, ours)};
}

TokenIssuer::TokenIssuer(const TokenPolicy& policy, std::chrono::seconds default_ttl, std::chrono::seconds max_ttl,
                         const Clock& clock)
    : issuer_(policy.issuer), audience_(policy.audience), default_ttl_(default_ttl), max_ttl_(max_ttl), clock_(clock) {
  if (std::find(policy.algorithms.begin(), policy.algorithms.end(), "HS256") != policy.algorithms.end())
    secret_ = policy.hs256_secret;
  refresh_secret_ = secret_.empty() ? policy.refresh_secret : secret_;
  dev_sign_in_ = policy.dev_sign_in;
}

IssuedToken TokenIssuer::issue(std::string_view user_id, std::chrono::seconds ttl,
                               std::vector<std::string> roles) const {
  if (!dev_sign_in_)
    throw Error("TOKEN_ISSUING_DISABLED",
                "Token issuing is disabled: the development sign-in is off (identity.dev_sign_in)");
  if (secret_.empty())
    throw Error("TOKEN_ISSUING_DISABLED",
                "Token issuing is disabled: no development signing secret (identity.hs256_secret) is configured");
  const std::string user = require_uuid("user_id", user_id);
  if (ttl.count() == 0) ttl = default_ttl_;
  if (ttl.count() < 0 || ttl > max_ttl_)
    throw Error("INVALID_ARGUMENT", "ttl must be between 1 and " + std::to_string(max_ttl_.count()) + " seconds",
                Json{{"field", "ttl_seconds"}});
  for (const auto& role : roles)
    if (!known_role(role))
      throw Error("INVALID_ARGUMENT", "roles: '" + role + "' is not one of candidate, proctor, admin",
                  Json{{"field", "roles"}});
  if (roles.empty()) roles.emplace_back("candidate");
  return sign(user, roles, ttl, secret_);
}

IssuedToken TokenIssuer::refresh(const VerifiedToken& token) const {
  if (refresh_secret_.empty())
    throw Error("TOKEN_ISSUING_DISABLED",
                "Token refresh is disabled: identity has no key to sign with (identity.refresh_secret)");
  return sign(token.user_id, token.roles, default_ttl_, refresh_secret_);
}

IssuedToken TokenIssuer::sign(const std::string& user, const std::vector<std::string>& roles, std::chrono::seconds ttl,
                              const std::string& secret) const {
  const int64_t now = std::chrono::duration_cast<std::chrono::seconds>(clock_.now().time_since_epoch()).count();
  const int64_t exp = now + ttl.count();
  jwt_t* raw = nullptr;
  if (jwt_new(&raw) != 0) throw Error("INTERNAL_ERROR", "cannot create a token");
  std::unique_ptr<jwt_t, void (*)(jwt_t*)> jwt(raw, jwt_free);
  int rc = jwt_add_grant(raw, "sub", user.c_str());
  rc |= jwt_add_grant_int(raw, "iat", now);
  rc |= jwt_add_grant_int(raw, "exp", exp);
  rc |= jwt_add_grant(raw, "jti", new_uuid().c_str());
  if (!issuer_.empty()) rc |= jwt_add_grant(raw, "iss", issuer_.c_str());
  if (!audience_.empty()) rc |= jwt_add_grant(raw, "aud", audience_.c_str());
  rc |= jwt_add_grants_json(raw, compact_json(Json{{"roles", roles}}).c_str());
  rc |= jwt_set_alg(raw, JWT_ALG_HS256, reinterpret_cast<const unsigned char*>(secret.data()),
                    static_cast<int>(secret.size()));
  char* encoded = rc == 0 ? jwt_encode_str(raw) : nullptr;
  if (!encoded) throw Error("INTERNAL_ERROR", "cannot sign a token");
  IssuedToken out{encoded, user, TimePoint(std::chrono::seconds(exp)), roles};
  free(encoded);
  return out;
}

}  // namespace examiso::identity
