// Bearer tokens: the accepted forms, and each attack a forged token tries.
#include <gtest/gtest.h>
#include <jwt.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include <fstream>
#include <random>

#include "common/errors.h"
#include "services/identity/token.h"
#include "tests/support/process.h"

namespace examiso::identity {
namespace {

const std::string kUser = "550e8400-e29b-41d4-a716-446655440000";
const std::string kSecret = "a-development-secret-of-some-length";
const TimePoint kNow = from_micros(1770460125000000);

std::string b64url(std::string_view in) {
  static constexpr char table[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (unsigned char c : in) {
    acc = (acc << 8) | c;
    bits += 8;
    while (bits >= 6) out += table[(acc >> (bits -= 6)) & 63];
  }
  if (bits) out += table[(acc << (6 - bits)) & 63];
  return out;
}

std::string hmac_sha256(std::string_view key, std::string_view data) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
       data.size(), mac, &len);
  return std::string(reinterpret_cast<char*>(mac), len);
}

// A hand-built HS256-style token: any header, any claims, any key.
std::string forge(const Json& header, const Json& claims, std::string_view key) {
  const std::string signing_input = b64url(header.dump()) + "." + b64url(claims.dump());
  return signing_input + "." + b64url(hmac_sha256(key, signing_input));
}

int64_t now_s() { return std::chrono::duration_cast<std::chrono::seconds>(kNow.time_since_epoch()).count(); }

Json claims(int64_t exp_offset = 600) { return Json{{"sub", kUser}, {"iat", now_s()}, {"exp", now_s() + exp_offset}}; }

struct KeyPair {
  std::string private_pem, public_pem;
};

KeyPair generate(bool ec) {
  EVP_PKEY* key = ec ? EVP_EC_gen("P-256") : EVP_RSA_gen(2048);
  BIO* priv = BIO_new(BIO_s_mem());
  BIO* pub = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(priv, key, nullptr, nullptr, 0, nullptr, nullptr);
  PEM_write_bio_PUBKEY(pub, key);
  char* data = nullptr;
  KeyPair pair;
  long n = BIO_get_mem_data(priv, &data);
  pair.private_pem.assign(data, n);
  n = BIO_get_mem_data(pub, &data);
  pair.public_pem.assign(data, n);
  BIO_free(priv);
  BIO_free(pub);
  EVP_PKEY_free(key);
  return pair;
}

// Signs with libjwt, as an identity provider would.
std::string sign(jwt_alg_t alg, const std::string& key, const Json& claims) {
  jwt_t* jwt = nullptr;
  jwt_new(&jwt);
  jwt_add_grants_json(jwt, claims.dump().c_str());
  jwt_set_alg(jwt, alg, reinterpret_cast<const unsigned char*>(key.data()), static_cast<int>(key.size()));
  char* out = jwt_encode_str(jwt);
  std::string token = out ? out : "";
  free(out);
  jwt_free(jwt);
  return token;
}

class TokenTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    rsa_ = new KeyPair(generate(false));
    ec_ = new KeyPair(generate(true));
  }
  static void TearDownTestSuite() {
    delete rsa_;
    delete ec_;
  }

  TokenPolicy policy(std::vector<std::string> algorithms) const {
    TokenPolicy p;
    p.algorithms = std::move(algorithms);
    p.hs256_secret = kSecret;
    p.dev_sign_in = true;
    p.rs256_public_pem = rsa_->public_pem;
    p.es256_public_pem = ec_->public_pem;
    return p;
  }

  // The reason a token is rejected, or "accepted".
  std::string outcome(const TokenPolicy& p, const std::string& token) const {
    try {
      TokenVerifier(p, clock_).verify(token);
      return "accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), "UNAUTHENTICATED");
      return e.details().value("reason", "");
    }
  }

  ManualClock clock_{kNow};
  static KeyPair* rsa_;
  static KeyPair* ec_;
};
KeyPair* TokenTest::rsa_ = nullptr;
KeyPair* TokenTest::ec_ = nullptr;

TEST_F(TokenTest, AcceptsEachConfiguredAlgorithm) {
  const auto p = policy({"HS256", "RS256", "ES256"});
  TokenVerifier verifier(p, clock_);
  for (const auto& [alg, token] : {std::pair{"HS256", sign(JWT_ALG_HS256, kSecret, claims())},
                                   std::pair{"RS256", sign(JWT_ALG_RS256, rsa_->private_pem, claims())},
                                   std::pair{"ES256", sign(JWT_ALG_ES256, ec_->private_pem, claims())}}) {
    const VerifiedToken v = verifier.verify(token);
    EXPECT_EQ(v.user_id, kUser) << alg;
    EXPECT_EQ(v.algorithm, alg);
    EXPECT_EQ(v.expires_at, kNow + std::chrono::seconds(600));
  }
}

TEST_F(TokenTest, TakesTheUserFromSubOrUserIdAndLowerCasesIt) {
  const auto p = policy({"HS256"});
  Json c = claims();
  c.erase("sub");
  c["user_id"] = "550E8400-E29B-41D4-A716-446655440000";
  EXPECT_EQ(TokenVerifier(p, clock_).verify(sign(JWT_ALG_HS256, kSecret, c)).user_id, kUser);
}

TEST_F(TokenTest, RejectsAlgNone) {
  const std::string unsigned_token = b64url(R"({"alg":"none","typ":"JWT"})") + "." + b64url(claims().dump()) + ".";
  EXPECT_EQ(outcome(policy({"HS256", "RS256", "ES256"}), unsigned_token), "algorithm_not_accepted");
  const std::string lower = b64url(R"({"alg":"None"})") + "." + b64url(claims().dump()) + ".";
  EXPECT_EQ(outcome(policy({"HS256"}), lower), "algorithm_not_accepted");
}

// The classic confusion: the attacker signs HS256 with the server's RSA
// public key as the HMAC secret.
TEST_F(TokenTest, RejectsHs256SignedWithTheRsaPublicKey) {
  const std::string token = forge(Json{{"alg", "HS256"}, {"typ", "JWT"}}, claims(), rsa_->public_pem);
  EXPECT_EQ(outcome(policy({"RS256"}), token), "algorithm_not_accepted");
  // Even with HS256 also accepted, the HMAC key is the secret, not the PEM.
  EXPECT_EQ(outcome(policy({"RS256", "HS256"}), token), "bad_signature");
}

TEST_F(TokenTest, RejectsATamperedPayload) {
  const std::string token = sign(JWT_ALG_HS256, kSecret, claims());
  const auto dot1 = token.find('.'), dot2 = token.rfind('.');
  Json evil = claims();
  evil["sub"] = "6ba7b810-9dad-11d1-80b4-00c04fd430c8";
  const std::string tampered = token.substr(0, dot1 + 1) + b64url(evil.dump()) + token.substr(dot2);
  EXPECT_EQ(outcome(policy({"HS256"}), tampered), "bad_signature");
  const std::string rs = sign(JWT_ALG_RS256, rsa_->private_pem, claims());
  const std::string rs_tampered =
      rs.substr(0, rs.find('.') + 1) + b64url(evil.dump()) + rs.substr(rs.rfind('.'));
  EXPECT_EQ(outcome(policy({"RS256"}), rs_tampered), "bad_signature");
}

TEST_F(TokenTest, RejectsAWrongSecretOrKey) {
  EXPECT_EQ(outcome(policy({"HS256"}), sign(JWT_ALG_HS256, "another-secret-of-enough-length", claims())),
            "bad_signature");
  const KeyPair other = generate(true);
  EXPECT_EQ(outcome(policy({"ES256"}), sign(JWT_ALG_ES256, other.private_pem, claims())), "bad_signature");
}

TEST_F(TokenTest, ChecksTimeClaimsWithLeeway) {
  const auto p = policy({"HS256"});
  EXPECT_EQ(outcome(p, sign(JWT_ALG_HS256, kSecret, claims(-31))), "expired");
  EXPECT_EQ(outcome(p, sign(JWT_ALG_HS256, kSecret, claims(-29))), "accepted");  // within 30 s leeway
  Json no_exp = claims();
  no_exp.erase("exp");
  EXPECT_EQ(outcome(p, sign(JWT_ALG_HS256, kSecret, no_exp)), "missing_exp");
  Json string_exp = claims();
  string_exp["exp"] = "tomorrow";
  EXPECT_EQ(outcome(p, sign(JWT_ALG_HS256, kSecret, string_exp)), "malformed");
  Json future_nbf = claims();
  future_nbf["nbf"] = now_s() + 120;
  EXPECT_EQ(outcome(p, sign(JWT_ALG_HS256, kSecret, future_nbf)), "not_yet_valid");
  Json future_iat = claims();
  future_iat["iat"] = now_s() + 120;
  EXPECT_EQ(outcome(p, sign(JWT_ALG_HS256, kSecret, future_iat)), "issued_in_future");
}

TEST_F(TokenTest, RejectsTokensWithoutAUsableUserId) {
  const auto p = policy({"HS256"});
  Json none = claims();
  none.erase("sub");
  EXPECT_EQ(outcome(p, sign(JWT_ALG_HS256, kSecret, none)), "missing_user_id");
  Json bad = claims();
  bad["sub"] = "alice";
  EXPECT_EQ(outcome(p, sign(JWT_ALG_HS256, kSecret, bad)), "invalid_user_id");
}

TEST_F(TokenTest, ChecksIssuerAndAudienceWhenConfigured) {
  auto p = policy({"HS256"});
  p.issuer = "https://idp.example";
  p.audience = "examiso";
  Json c = claims();
  EXPECT_EQ(outcome(p, sign(JWT_ALG_HS256, kSecret, c)), "wrong_issuer");
  c["iss"] = "https://idp.example";
  EXPECT_EQ(outcome(p, sign(JWT_ALG_HS256, kSecret, c)), "wrong_audience");
  c["aud"] = Json::array({"other", "examiso"});
  EXPECT_EQ(outcome(p, sign(JWT_ALG_HS256, kSecret, c)), "accepted");
  c["aud"] = "examiso";
  EXPECT_EQ(outcome(p, sign(JWT_ALG_HS256, kSecret, c)), "accepted");
}

TEST_F(TokenTest, RejectsGarbageWithoutCrashing) {
  const auto p = policy({"HS256", "RS256", "ES256"});
  for (const std::string& junk :
       {std::string(), std::string("."), std::string(".."), std::string("a.b.c"), std::string("a.b.c.d"),
        std::string(9000, 'a'), b64url("[]") + "." + b64url("{}") + ".x", b64url("{\"alg\":7}") + ".e30.",
        std::string("\xff\xfe.\x00.\x01", 7)})
    EXPECT_NE(outcome(p, junk), "accepted");
  std::mt19937 rng(7);
  const std::string valid = sign(JWT_ALG_HS256, kSecret, claims());
  for (int i = 0; i < 2000; ++i) {
    std::string mutated = valid;
    mutated[rng() % mutated.size()] = static_cast<char>(rng());
    if (mutated != valid) {
      EXPECT_NE(outcome(p, mutated), "accepted") << mutated;
    }
  }
}

TEST_F(TokenTest, IssuesTokensThatVerify) {
  const auto p = policy({"HS256"});
  TokenIssuer issuer(p, std::chrono::seconds(3600), std::chrono::seconds(86400), clock_);
  const IssuedToken t = issuer.issue("550E8400-E29B-41D4-A716-446655440000", std::chrono::seconds(0));
  EXPECT_EQ(t.user_id, kUser);
  EXPECT_EQ(t.expires_at, kNow + std::chrono::seconds(3600));
  EXPECT_EQ(TokenVerifier(p, clock_).verify(t.token).user_id, kUser);
  EXPECT_THROW(issuer.issue("not-a-uuid", std::chrono::seconds(60)), Error);
  EXPECT_THROW(issuer.issue(kUser, std::chrono::seconds(-1)), Error);
  EXPECT_THROW(issuer.issue(kUser, std::chrono::seconds(86401)), Error);
}

// Roles: from the `roles` claim (an identity provider's, or one identity
// issued); a token naming none is a candidate's, unknown names are ignored,
// and a claim that is not a list of strings refuses the token. Refreshing
// keeps them; issuing takes only the three known.
TEST_F(TokenTest, CarriesRolesFromTheRolesClaim) {
  auto p = policy({"HS256", "RS256"});
  p.issuer = "https://idp.example";
  p.audience = "examiso";
  TokenVerifier verifier(p, clock_);
  const auto roles_of = [&](const Json& roles) {
    Json c = claims();
    c["iss"] = p.issuer;
    c["aud"] = p.audience;
    if (!roles.is_null()) c["roles"] = roles;
    return verifier.verify(sign(JWT_ALG_RS256, rsa_->private_pem, c)).roles;
  };
  using Roles = std::vector<std::string>;
  EXPECT_EQ(roles_of(Json()), Roles{"candidate"});
  EXPECT_EQ(roles_of(Json::array({"proctor"})), Roles{"proctor"});
  EXPECT_EQ(roles_of(Json::array({"admin", "proctor", "superuser"})), (Roles{"proctor", "admin"}));
  EXPECT_EQ(roles_of(Json::array({"root"})), Roles{"candidate"});
  for (const Json& bad : {Json("admin"), Json::array({1}), Json{{"admin", true}}}) {
    Json c = claims();
    c["iss"] = p.issuer;
    c["aud"] = p.audience;
    c["roles"] = bad;
    EXPECT_EQ(outcome(p, sign(JWT_ALG_HS256, kSecret, c)), "malformed_roles") << bad.dump();
  }

  // An identity provider's token not meant for this platform (no issuer and
  // audience configured to check it by) is never staff here, whatever it says.
  const auto loose = policy({"HS256", "RS256"});
  Json admin = claims();
  admin["roles"] = Json::array({"admin", "proctor"});
  EXPECT_EQ(TokenVerifier(loose, clock_).verify(sign(JWT_ALG_RS256, rsa_->private_pem, admin)).roles,
            Roles{"candidate"});
  // Identity's own tokens are.
  EXPECT_EQ(TokenVerifier(loose, clock_).verify(sign(JWT_ALG_HS256, kSecret, admin)).roles, (Roles{"proctor", "admin"}));

  TokenIssuer issuer(p, std::chrono::seconds(3600), std::chrono::seconds(86400), clock_);
  const IssuedToken proctor = issuer.issue(kUser, std::chrono::seconds(0), {"proctor"});
  EXPECT_EQ(proctor.roles, Roles{"proctor"});
  EXPECT_EQ(verifier.verify(proctor.token).roles, Roles{"proctor"});
  EXPECT_EQ(verifier.verify(issuer.refresh(verifier.verify(proctor.token)).token).roles, Roles{"proctor"});
  EXPECT_EQ(verifier.verify(issuer.issue(kUser, std::chrono::seconds(0)).token).roles, Roles{"candidate"});
  try {
    issuer.issue(kUser, std::chrono::seconds(0), {"superuser"});
    FAIL() << "issued an unknown role";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), "INVALID_ARGUMENT");
    EXPECT_EQ(e.details().value("field", ""), "roles");
  }
}

TEST_F(TokenTest, RefusesToIssueWithoutASecret) {
  TokenIssuer issuer(policy({"RS256"}), std::chrono::seconds(3600), std::chrono::seconds(86400), clock_);
  try {
    issuer.issue(kUser, std::chrono::seconds(60));
    FAIL() << "issued";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), "TOKEN_ISSUING_DISABLED");
  }
}

// Production: the identity provider signs RS256 and identity holds no key of
// theirs, so refreshed tokens are signed with identity's own refresh secret;
// they verify, while the development sign-in stays off and no other HS256
// token passes (neither a guessed secret nor the RSA public key as one).
TEST_F(TokenTest, RefreshesProductionTokensWithTheRefreshSecret) {
  TokenPolicy p = policy({"RS256"});
  p.hs256_secret.clear();
  p.refresh_secret = "identity-own-refresh-secret-0123456789";
  const TokenVerifier verifier(p, clock_);
  const VerifiedToken original = verifier.verify(sign(JWT_ALG_RS256, rsa_->private_pem, claims()));
  TokenIssuer issuer(p, std::chrono::seconds(3600), std::chrono::seconds(86400), clock_);
  EXPECT_THROW(issuer.issue(kUser, std::chrono::seconds(60)), Error);
  const IssuedToken fresh = issuer.refresh(original);
  EXPECT_EQ(fresh.expires_at, kNow + std::chrono::seconds(3600));
  EXPECT_EQ(verifier.verify(fresh.token).user_id, kUser);
  EXPECT_EQ(outcome(p, forge({{"alg", "HS256"}}, claims(), "a-guessed-secret")), "bad_signature");
  EXPECT_EQ(outcome(p, forge({{"alg", "HS256"}}, claims(), rsa_->public_pem)), "bad_signature");
  // Without a refresh secret, HS256 is not accepted at all, and nothing refreshes.
  p.refresh_secret.clear();
  EXPECT_EQ(outcome(p, fresh.token), "algorithm_not_accepted");
  try {
    TokenIssuer(p, std::chrono::seconds(3600), std::chrono::seconds(86400), clock_).refresh(original);
    FAIL() << "refreshed without a key";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), "TOKEN_ISSUING_DISABLED");
  }
}

TEST(TokenPolicyConfig, RefusesAlgorithmsWithoutKeys) {
  testing::TempDir dir;
  const std::string path = dir.path() + "/c.yaml";
  std::ofstream(path) << "identity:\n  algorithms: [RS256]\n";
  EXPECT_THROW(TokenPolicy::from_config(Config::load(path)), Error);
  std::ofstream(path) << "identity:\n  algorithms: [HS512]\n  hs256_secret: a-development-secret-of-some-length\n";
  EXPECT_THROW(TokenPolicy::from_config(Config::load(path)), Error);
  std::ofstream(path) << "identity:\n  algorithms: [HS256]\n  hs256_secret: short\n";
  EXPECT_THROW(TokenPolicy::from_config(Config::load(path)), Error);
  std::ofstream(path) << "identity:\n  algorithms: [HS256]\n  hs256_secret: a-development-secret-of-some-length\n";
  EXPECT_EQ(TokenPolicy::from_config(Config::load(path)).algorithms, std::vector<std::string>{"HS256"});
}

}  // namespace
}  // namespace examiso::identity
