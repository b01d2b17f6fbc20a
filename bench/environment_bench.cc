// The environment service with real sandboxes:
//   create -> ready (targets: p50 < 30 ms, p99 < 100 ms; 50 concurrent creates all ready within 2 s),
//   keystroke echo through Attach (target: p99 < 2 ms),
//   output throughput through Attach (target: >= 50 MB/s),
//   200 concurrent live sandboxes, and host memory per idle sandbox.
#include <benchmark/benchmark.h>
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <functional>
#include <thread>

#include "bench/latency.h"
#include "bench/targets.h"
#include "bench/terminal_output.h"
#include "common/json.h"
#include "common/uuid.h"
#include "examiso/v1/environment.grpc.pb.h"
#include "examiso/v1/lifecycle.grpc.pb.h"
#include "services/environment/sandbox/cgroup.h"
#include "tests/support/platform.h"
#include "tests/support/postgres.h"
#include "tests/support/terminal.h"
#include "common/grpc_server.h"

namespace {

using namespace examiso;

// The default exam (with its setup script) unless told otherwise.
struct World {
  testing::PostgresCluster cluster{true};
  testing::Platform platform{cluster.create_database(),
                             {{"EXAMISO_LOG_LEVEL", "warn"},
                              {"EXAMISO_LIFECYCLE_EXAM_CATALOG", std::string(EXAMISO_SOURCE_DIR) + "/config/exams.yaml"}}};
  std::string lifecycle = platform.start("lifecycle");
  std::string environment = platform.start("environment");
  std::unique_ptr<v1::LifecycleService::Stub> sessions =
      v1::LifecycleService::NewStub(make_channel(lifecycle, "lifecycle"));
  std::unique_ptr<v1::EnvironmentService::Stub> environments =
      v1::EnvironmentService::NewStub(make_channel(environment, "environment"));

  std::string new_session() {
    v1::CreateSessionRequest r;
    r.set_user_id(new_uuid());
    v1::Session s;
    grpc::ClientContext c;
    sessions->CreateSession(&c, r, &s);
    return s.session_id();
  }
  bool create(const std::string& session) {
    v1::CreateEnvironmentRequest r;
    r.set_session_id(session);
    v1::Environment e;
    grpc::ClientContext c;
    return environments->CreateEnvironment(&c, r, &e).ok() && e.status() == v1::ENVIRONMENT_STATUS_RUNNING;
  }
  void destroy(const std::string& session) {
    v1::DestroyEnvironmentRequest r;
    r.set_session_id(session);
    v1::DestroyEnvironmentResponse out;
    grpc::ClientContext c;
    environments->DestroyEnvironment(&c, r, &out);
  }
};

World& world() {
  static World w;
  return w;
}

void BM_CreateToReady(benchmark::State& state) {
  World& w = world();
  bench::Latencies latencies;
  std::vector<std::string> made;
  for (auto _ : state) {
    state.PauseTiming();
    const std::string session = w.new_session();
    state.ResumeTiming();
    const auto start = std::chrono::steady_clock::now();
    if (!w.create(session)) state.SkipWithError("create failed");
    latencies.add(std::chrono::steady_clock::now() - start);
    made.push_back(session);
  }
  latencies.report(state);
  for (const auto& s : made) w.destroy(s);
}
BENCHMARK(BM_CreateToReady)->Iterations(100)->UseRealTime()->Unit(benchmark::kMillisecond);

void BM_FiftyConcurrentCreates(benchmark::State& state) {
  World& w = world();
  for (auto _ : state) {
    state.PauseTiming();
    std::vector<std::string> sessions;
    for (int i = 0; i < 50; ++i) sessions.push_back(w.new_session());
    state.ResumeTiming();
    std::atomic<int> ready{0};
    std::vector<std::thread> threads;
    const auto start = std::chrono::steady_clock::now();
    for (const auto& s : sessions) threads.emplace_back([&, s] { ready += w.create(s); });
    for (auto& t : threads) t.join();
    state.counters["all_ready_ms"] =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    state.counters["ready"] = ready.load();
    state.PauseTiming();
    for (const auto& s : sessions) w.destroy(s);
    state.ResumeTiming();
  }
}
BENCHMARK(BM_FiftyConcurrentCreates)->Iterations(1)->UseRealTime()->Unit(benchmark::kMillisecond);

void BM_KeystrokeEcho(benchmark::State& state) {
  World& w = world();
  const std::string session = w.new_session();
  w.create(session);
  testing::TerminalClient t(w.environment, session);
  t.send("stty -echo; cat\n");  // cat echoes each line back: one round trip per keystroke line
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  bench::Latencies latencies;
  int i = 0;
  for (auto _ : state) {
    const std::string token = "k" + std::to_string(++i) + "\n";
    const size_t mark = t.output_size();
    const auto start = std::chrono::steady_clock::now();
    t.send(token);
    if (!t.wait_for("k" + std::to_string(i) + "\r\n", std::chrono::seconds(2), mark)) state.SkipWithError("no echo");
    latencies.add(std::chrono::steady_clock::now() - start);
  }
  latencies.report(state);
  w.destroy(session);
}
BENCHMARK(BM_KeystrokeEcho)->Iterations(3000)->UseRealTime()->Unit(benchmark::kMicrosecond);

void BM_OutputThroughput(benchmark::State& state) {
  World& w = world();
  const std::string session = w.new_session();
  w.create(session);
  testing::TerminalClient t(w.environment, session);
  t.send("echo ready-$((1+1))\n");
  t.wait_for("ready-2", std::chrono::seconds(5));
  for (auto _ : state) {
    const size_t before = t.output_size();
    const auto start = std::chrono::steady_clock::now();
    t.send(bench::output_command(state.range(0) == 0, 100'000'000) + "; echo; echo done-$((3+4))\n");
    if (!t.wait_for("done-7", std::chrono::seconds(60), before)) state.SkipWithError("no end");
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const double bytes = static_cast<double>(t.output_size() - before);
    state.counters["MB_per_s"] = bytes / secs / 1e6;
    state.counters["MB"] = bytes / 1e6;
  }
  w.destroy(session);
}
// 0: one long line, 1: 64-byte lines
BENCHMARK(BM_OutputThroughput)->Arg(0)->Arg(1)->Iterations(1)->UseRealTime()->Unit(benchmark::kMillisecond);

// A candidate printing as fast as their sandbox lets them, beside another
// typing: the typist's echo p99 with the flood, against the same without it
// in the same run. The flood may add at most 10 ms.
double echo_p99_ms(testing::TerminalClient& t, int keys, int& counter) {
  std::vector<double> ms;
  for (int k = 0; k < keys; ++k) {
    const std::string token = "e" + std::to_string(++counter);
    const size_t mark = t.output_size();
    const auto start = std::chrono::steady_clock::now();
    t.send(token + "\n");
    if (!t.wait_for(token + "\r\n", std::chrono::seconds(5), mark)) return 5000;
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // typing, not a stream of keys
  }
  std::sort(ms.begin(), ms.end());
  return ms[std::min(ms.size() - 1, static_cast<size_t>(0.99 * static_cast<double>(ms.size())))];
}

void BM_EchoBesideAFlood(benchmark::State& state) {
  World& w = world();
  const std::string typist = w.new_session(), flooder = w.new_session();
  w.create(typist);
  w.create(flooder);
  testing::TerminalClient t(w.environment, typist);
  testing::TerminalClient f(w.environment, flooder);
  t.send("stty -echo; cat\n");
  f.send("echo flood-$((1+1))\n");
  f.wait_for("flood-2", std::chrono::seconds(5));
  f.discard_output();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  int counter = 0;
  for (auto _ : state) {
    const double quiet = echo_p99_ms(t, 300, counter);
    const size_t before = f.discarded_bytes();
    const auto flood_start = std::chrono::steady_clock::now();
    f.send("yes 'a line of output that a candidate floods the terminal with, as fast as it goes'\n");
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    const double loud = echo_p99_ms(t, 300, counter);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - flood_start).count();
    f.send("\x03");
    state.counters["quiet_p99_ms"] = quiet;
    state.counters["flood_p99_ms"] = loud;
    state.counters["flood_MB_per_s"] = static_cast<double>(f.discarded_bytes() - before) / secs / 1e6;
    bench::target("environment: a typist's echo p99 beside a flood, over quiet p99 + 10 ms", loud, quiet + 10, 1.0,
                  "ms");
  }
  w.destroy(typist);
  w.destroy(flooder);
}
BENCHMARK(BM_EchoBesideAFlood)->Iterations(1)->UseRealTime()->Unit(benchmark::kMillisecond);

// 200 sandboxes at once, each with a shell that answers; memory per idle one.
void BM_TwoHundredLiveSandboxes(benchmark::State& state) {
  World& w = world();
  for (auto _ : state) {
    std::vector<std::string> sessions;
    for (int i = 0; i < 200; ++i) sessions.push_back(w.new_session());
    std::atomic<int> ready{0};
    std::vector<std::thread> threads;
    for (int k = 0; k < 10; ++k) {
      threads.emplace_back([&, k] {
        for (size_t i = k; i < sessions.size(); i += 10) ready += w.create(sessions[i]);
      });
    }
    for (auto& t : threads) t.join();
    state.counters["ready"] = ready.load();
    int answered = 0;
    for (size_t i = 0; i < sessions.size(); i += 20) {
      testing::TerminalClient t(w.environment, sessions[i]);
      t.send("echo up-$((5*5))\n");
      answered += t.wait_for("up-25", std::chrono::seconds(5)).has_value();
    }
    state.counters["sampled_answering"] = answered;
    std::this_thread::sleep_for(std::chrono::seconds(2));
    // Charged to the sandboxes' cgroups (shell, bwrap, home) plus the keepers' resident memory.
    double cgroup_bytes = 0;
    for (const auto& id : sandbox::cgroup::list(w.platform.cgroup_parent()))
      cgroup_bytes += static_cast<double>(sandbox::cgroup::memory_usage(w.platform.cgroup_parent(), id));
    double keeper_rss = 0;
    const auto ps = testing::run_shell("ps -C examiso-sandbox -o rss= | awk '{s+=$1} END {print s*1024}'");
    keeper_rss = std::atof(ps.out.c_str());
    state.counters["MiB_per_idle_sandbox"] = (cgroup_bytes + keeper_rss) / 200 / (1 << 20);
    // What the cleanup sweep asks each second (every environment, each checked
    // alive; a reconcile), and one more sandbox with 200 on the machine.
    const auto ms_per_call = [](int calls, const std::function<void()>& call) {
      const auto start = std::chrono::steady_clock::now();
      for (int i = 0; i < calls; ++i) call();
      return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count() / calls;
    };
    state.counters["list_all_ms"] = ms_per_call(20, [&] {
      v1::ListEnvironmentsRequest r;
      r.set_limit(1000);
      v1::ListEnvironmentsResponse out;
      grpc::ClientContext c;
      if (!w.environments->ListEnvironments(&c, r, &out).ok() || out.environments_size() < 200)
        state.SkipWithError("list failed");
    });
    state.counters["reconcile_ms"] = ms_per_call(20, [&] {
      v1::ReconcileEnvironmentsRequest r;
      v1::ReconcileEnvironmentsResponse out;
      grpc::ClientContext c;
      if (!w.environments->ReconcileEnvironments(&c, r, &out).ok()) state.SkipWithError("reconcile failed");
    });
    const std::string one_more = w.new_session();
    state.counters["create_with_200_ms"] = ms_per_call(1, [&] { w.create(one_more); });
    sessions.push_back(one_more);
    for (const auto& s : sessions) w.destroy(s);
  }
}
BENCHMARK(BM_TwoHundredLiveSandboxes)->Iterations(1)->UseRealTime()->Unit(benchmark::kSecond);

}  // namespace

EXAMISO_BENCH_MAIN();
