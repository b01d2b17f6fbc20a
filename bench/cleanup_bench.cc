// Access and cleanup against real services and a durable PostgreSQL:
//   Authorize p99 (target < 2 ms),
//   a sweep over 100,000 sessions of which 1,000 are due (target < 2 s),
//   denials that take the same time whether the session is someone else's or
//   unknown (an attacker must not tell them apart: quartiles within 15%).
#include <benchmark/benchmark.h>
#include <grpcpp/grpcpp.h>

#include "bench/latency.h"
#include "bench/targets.h"
#include "common/db.h"
#include "common/uuid.h"
#include "examiso/v1/access.grpc.pb.h"
#include "examiso/v1/cleanup.grpc.pb.h"
#include "examiso/v1/lifecycle.grpc.pb.h"
#include "tests/support/platform.h"
#include "tests/support/postgres.h"
#include "common/grpc_server.h"

namespace {

using namespace examiso;

struct World {
  testing::PostgresCluster cluster{true};
  std::string url = cluster.create_database();
  // The continuous sweeper stays out of the way: the benchmark sweeps.
  testing::Platform platform{url,
                             {{"EXAMISO_LOG_LEVEL", "warn"},
                              {"EXAMISO_CLEANUP_SWEEP_INTERVAL_MS", "3600000"},
                              {"EXAMISO_LIFECYCLE_PROVISIONER_WORKERS", "0"}}};
  World() {
    for (const char* s : {"lifecycle", "environment", "access", "cleanup"}) platform.start(s);
  }
};

World& world() {
  static World w;
  return w;
}

void BM_Authorize(benchmark::State& state) {
  World& w = world();
  auto lifecycle = v1::LifecycleService::NewStub(
      make_channel(w.platform.address("lifecycle"), "lifecycle"));
  auto access = v1::AccessService::NewStub(
      make_channel(w.platform.address("access"), "access"));
  const std::string user = new_uuid();
  v1::CreateSessionRequest create;
  create.set_user_id(user);
  v1::Session session;
  grpc::ClientContext cc;
  lifecycle->CreateSession(&cc, create, &session);
  bench::Latencies granted, denied;
  int i = 0;
  for (auto _ : state) {
    const bool mine = ++i % 2 == 0;
    v1::AuthorizeRequest r;
    r.set_session_id(session.session_id());
    r.set_user_id(mine ? user : new_uuid());
    r.set_access_type(v1::ACCESS_TYPE_STATUS);
    v1::AuthorizeResponse out;
    grpc::ClientContext c;
    const auto start = std::chrono::steady_clock::now();
    access->Authorize(&c, r, &out);
    (mine ? granted : denied).add(std::chrono::steady_clock::now() - start);
  }
  granted.report(state);
}
BENCHMARK(BM_Authorize)->Iterations(10000)->UseRealTime()->Unit(benchmark::kMicrosecond);

// Someone else's session and an unknown one, interleaved (drift hits both
// alike), over a few thousand calls each after a warm-up.
void BM_DenialTiming(benchmark::State& state) {
  World& w = world();
  auto lifecycle = v1::LifecycleService::NewStub(
      make_channel(w.platform.address("lifecycle"), "lifecycle"));
  auto access = v1::AccessService::NewStub(
      make_channel(w.platform.address("access"), "access"));
  v1::CreateSessionRequest create;
  create.set_user_id(new_uuid());
  v1::Session session;
  grpc::ClientContext cc;
  lifecycle->CreateSession(&cc, create, &session);
  const std::string stranger = new_uuid();
  std::vector<double> theirs, unknown;
  int i = 0;
  for (auto _ : state) {
    const bool pick = ++i % 2 == 0;
    v1::AuthorizeRequest r;
    r.set_session_id(pick ? session.session_id() : new_uuid());
    r.set_user_id(stranger);
    r.set_access_type(v1::ACCESS_TYPE_STATUS);
    v1::AuthorizeResponse out;
    grpc::ClientContext c;
    const auto start = std::chrono::steady_clock::now();
    access->Authorize(&c, r, &out);
    const double us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count();
    if (i > 500) (pick ? theirs : unknown).push_back(us);
  }
  std::sort(theirs.begin(), theirs.end());
  std::sort(unknown.begin(), unknown.end());
  for (double q : {0.25, 0.5, 0.75}) {
    const double a = theirs[static_cast<size_t>(q * (theirs.size() - 1))];
    const double b = unknown[static_cast<size_t>(q * (unknown.size() - 1))];
    state.counters["q" + std::to_string(static_cast<int>(q * 100)) + "_theirs_us"] = a;
    state.counters["q" + std::to_string(static_cast<int>(q * 100)) + "_unknown_us"] = b;
    bench::target("access: denial q" + std::to_string(static_cast<int>(q * 100)) +
                      ", the slower of someone else's and an unknown session vs the faster",
                  std::max(a, b), std::min(a, b), 1.15, "us");
  }
}
BENCHMARK(BM_DenialTiming)->Iterations(6000)->UseRealTime()->Unit(benchmark::kMicrosecond);

void BM_SweepOver100kSessionsWith1000Due(benchmark::State& state) {
  World& w = world();
  for (auto _ : state) {
    state.PauseTiming();
    {
      PgConnection conn(w.url, 5, 600000, "bench");
      conn.exec("DELETE FROM sessions");
      // 99,000 running with time left, 1,000 past their deadline.
      conn.exec(
          "INSERT INTO sessions (session_id, user_id, exam_id, state, duration_seconds, provisioning_timeout_seconds,"
          " created_at, updated_at, started_at, deadline)"
          " SELECT gen_random_uuid(), gen_random_uuid(), 'a1b2c3d4-e5f6-7890-abcd-ef1234567890', 'running', 7200, 60,"
          " now() - interval '1 hour', now() - interval '1 hour', now() - interval '1 hour',"
          " CASE WHEN g <= 1000 THEN now() - interval '1 second' ELSE now() + interval '1 hour' END"
          " FROM generate_series(1, 100000) g");
      conn.exec("ANALYZE sessions");
    }
    auto cleanup = v1::CleanupService::NewStub(
        make_channel(w.platform.address("cleanup"), "cleanup"));
    state.ResumeTiming();
    v1::SweepRequest r;
    v1::SweepResponse out;
    grpc::ClientContext c;
    const auto start = std::chrono::steady_clock::now();
    const auto status = cleanup->Sweep(&c, r, &out);
    state.counters["sweep_ms"] =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    if (!status.ok()) state.SkipWithError(status.error_message().c_str());
    state.counters["sessions_cleaned"] = static_cast<double>(out.sessions_cleaned());
  }
}
BENCHMARK(BM_SweepOver100kSessionsWith1000Due)->Iterations(3)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace

EXAMISO_BENCH_MAIN();
