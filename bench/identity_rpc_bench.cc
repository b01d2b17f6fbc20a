// ValidateIdentity over loopback gRPC against the real service (target: p99 < 1 ms).
#include <benchmark/benchmark.h>
#include <grpcpp/grpcpp.h>

#include "bench/latency.h"
#include "bench/targets.h"
#include "examiso/v1/identity.grpc.pb.h"
#include "tests/support/postgres.h"
#include "tests/support/process.h"
#include "common/grpc_server.h"

namespace {

using namespace examiso;

void BM_ValidateIdentityRpc(benchmark::State& state) {
  const std::string address = "127.0.0.1:" + std::to_string(testing::free_port());
  testing::Daemon daemon({"examiso-identity"}, {{"EXAMISO_IDENTITY_LISTEN", address},
                                                {"EXAMISO_IDENTITY_HS256_SECRET", "benchmark-secret-benchmark-secret"},
                                                {"EXAMISO_IDENTITY_DEV_SIGN_IN", "true"},
                                                {"EXAMISO_LOG_LEVEL", "warn"},
                                                {"DATABASE_URL", testing::shared_postgres().create_database()}});
  if (!testing::wait_serving(address, "identity")) {
    state.SkipWithError("identity service did not start");
    return;
  }
  auto stub = v1::IdentityService::NewStub(make_channel(address, "identity"));
  v1::ValidateIdentityRequest request;
  request.set_user_id("550e8400-e29b-41d4-a716-446655440000");
  request.set_exam_session_id("6ba7b810-9dad-11d1-80b4-00c04fd430c8");
  bench::Latencies latencies;
  for (int i = 0; i < 200; ++i) {  // warm up the connection
    grpc::ClientContext context;
    v1::ValidateIdentityResponse response;
    stub->ValidateIdentity(&context, request, &response);
  }
  for (auto _ : state) {
    const auto start = std::chrono::steady_clock::now();
    grpc::ClientContext context;
    v1::ValidateIdentityResponse response;
    const grpc::Status status = stub->ValidateIdentity(&context, request, &response);
    latencies.add(std::chrono::steady_clock::now() - start);
    if (!status.ok()) state.SkipWithError(status.error_message().c_str());
  }
  latencies.report(state);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ValidateIdentityRpc)->Iterations(20000)->UseRealTime()->Unit(benchmark::kMicrosecond);

}  // namespace

EXAMISO_BENCH_MAIN();
