// Token verification throughput on one core (target: HS256 >= 100,000/s).
#include <benchmark/benchmark.h>

#include "bench/targets.h"
#include "services/identity/token.h"

namespace {

using namespace examiso;

identity::TokenPolicy policy() {
  identity::TokenPolicy p;
  p.algorithms = {"HS256"};
  p.hs256_secret = "benchmark-secret-benchmark-secret";
  p.dev_sign_in = true;
  return p;
}

void BM_VerifyHs256(benchmark::State& state) {
  SystemClock clock;
  const auto p = policy();
  identity::TokenIssuer issuer(p, std::chrono::seconds(3600), std::chrono::seconds(3600), clock);
  identity::TokenVerifier verifier(p, clock);
  const std::string token = issuer.issue("550e8400-e29b-41d4-a716-446655440000", std::chrono::seconds(0)).token;
  for (auto _ : state) benchmark::DoNotOptimize(verifier.verify(token));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_VerifyHs256);

void BM_RejectForgedHs256(benchmark::State& state) {
  SystemClock clock;
  const auto p = policy();
  identity::TokenIssuer issuer(p, std::chrono::seconds(3600), std::chrono::seconds(3600), clock);
  identity::TokenVerifier verifier(p, clock);
  std::string token = issuer.issue("550e8400-e29b-41d4-a716-446655440000", std::chrono::seconds(0)).token;
  token.back() = token.back() == 'A' ? 'B' : 'A';
  for (auto _ : state) {
    try {
      verifier.verify(token);
    } catch (const std::exception&) {
    }
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RejectForgedHs256);

}  // namespace

EXAMISO_BENCH_MAIN();
