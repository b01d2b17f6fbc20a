// Bearer tokens as anyone may send them: every claim rule, both HS256 keys
// (the development secret and the refresh secret).
#include <cstddef>
#include <cstdint>
#include <string>

#include "common/errors.h"
#include "services/identity/token.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace examiso;
  static const identity::TokenPolicy policy = [] {
    identity::TokenPolicy p;
    p.algorithms = {"HS256"};
    p.hs256_secret = "a-development-secret-of-some-length";
    p.refresh_secret = "identity-own-refresh-secret-0123456789";
    p.issuer = "https://id.example/";
    p.audience = "examiso";
    return p;
  }();
  static const ManualClock clock(from_micros(1770460125000000));
  static const identity::TokenVerifier verifier(policy, clock);
  try {
    verifier.verify(std::string(reinterpret_cast<const char*>(data), size));
  } catch (const Error& e) {
    if (e.code() != "UNAUTHENTICATED") __builtin_trap();  // a token is accepted or refused, nothing else
  }
  return 0;
}
