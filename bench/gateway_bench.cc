// The gateway against the whole real platform (durable PostgreSQL, real
// sandboxes), with the issue's targets:
//   POST /v1/sessions -> ready, 50 users at once: p99 < 250 ms
//   GET /v1/sessions/{id}/status with wrk, 64 connections: >= 5,000 req/s, p99 < 20 ms
//   terminal echo p99 and output throughput against a Node.js ws + node-pty
//   bridge (bench/terminal/peer.js), side by side: lower p99, >= 1.5x throughput
//   500 terminals open at once, echo p99 < 10 ms (50 of them typing, then all), with the
//   peer under the same load; memory per open terminal
// Needs wrk (apt) and `npm ci` in bench/terminal (./scripts/dev bench does both).
// BENCH_LOGS=FILE keeps the services' logs (at info) of the create part in FILE.
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <barrier>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <fstream>
#include <iostream>
#include <regex>
#include <thread>

#include "bench/latency.h"
#include "bench/targets.h"
#include "bench/terminal_output.h"
#include "common/grpc_server.h"
#include "common/json.h"
#include "common/uuid.h"
#include "examiso/v1/lifecycle.grpc.pb.h"
#include "tests/support/http_client.h"
#include "tests/support/platform.h"
#include "tests/support/postgres.h"

namespace {

using namespace examiso;
using namespace std::chrono_literals;

const std::string kExam = "a1b2c3d4-e5f6-7890-abcd-ef1234567890";
// The catalog: the shipped default exam alone, with a warm pool of 50 ready
// environments (the 50 users of the create part arrive once it is full).
// BENCH_POOL=N sets another size (0: every environment made on demand).
// BENCH_ROUNDS=N: rounds of each terminal measurement, run in turn with the peer's (5).
const int kRounds = std::getenv("BENCH_ROUNDS") ? std::stoi(std::getenv("BENCH_ROUNDS")) : 5;
const size_t kPool = std::getenv("BENCH_POOL") ? std::stoul(std::getenv("BENCH_POOL")) : 50;
const std::string kCatalog = R"yaml(default_exam: a1b2c3d4-e5f6-7890-abcd-ef1234567890
exams:
  - id: a1b2c3d4-e5f6-7890-abcd-ef1234567890
    title: Kubernetes Administrator Practice Lab
    duration_seconds: 7200
    environment:
      memory_mb: 256
      pids: 128
      setup_script: |
        mkdir -p "$HOME/exam"
        printf 'Welcome to your exam environment.\n' > "$HOME/exam/README"
)yaml";

std::string write_catalog(const testing::TempDir& dir) {
  std::ofstream(dir.path() + "/exams.yaml") << kCatalog;
  return dir.path() + "/exams.yaml";
}
const std::string kTerminalDir = std::string(EXAMISO_SOURCE_DIR) + "/bench/terminal";

struct User {
  std::string token, user_id, session;
};

double ms(std::chrono::nanoseconds d) { return d.count() / 1e6; }

double percentile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(q * v.size()))];
}

long rss_kb(pid_t pid) { return testing::proc_status(pid, "VmRSS"); }

long mem_available_kb() {
  std::ifstream in("/proc/meminfo");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("MemAvailable:", 0) == 0) return std::stol(line.substr(13));
  return 0;
}

class Bench {
 public:
  Bench()
      : cluster_(true),
        platform_(cluster_.create_database(),
                  {{"EXAMISO_LOG_LEVEL", std::getenv("BENCH_LOGS") ? "info" : "warn"},
                   {"EXAMISO_LIFECYCLE_EXAM_CATALOG", write_catalog(dir_)},
                   {"EXAMISO_ENVIRONMENT_WARM_POOL_SIZE", std::to_string(kPool)},
                   {"EXAMISO_GATEWAY_RATE_LIMIT_IP_PER_SECOND", "1000000"},
                   {"EXAMISO_GATEWAY_RATE_LIMIT_IP_BURST", "1000000"},
                   {"EXAMISO_GATEWAY_RATE_LIMIT_USER_PER_SECOND", "1000000"},
                   {"EXAMISO_GATEWAY_RATE_LIMIT_USER_BURST", "1000000"},
                   {"EXAMISO_LIFECYCLE_PROVISIONER_WORKERS", "8"},
                   // The shipped interval (the tests' Platform reconciles every second).
                   {"EXAMISO_ENVIRONMENT_RECONCILE_INTERVAL_SECONDS", "10"}}) {
    for (const char* s : {"identity", "lifecycle", "environment", "access", "cleanup", "gateway"}) platform_.start(s);
    gw_ = platform_.address("gateway");
  }

  User new_user() {
    const auto r = testing::http(gw_, "POST", "/v1/dev/token");
    const Json data = Json::parse(r.body)["data"];
    return {data["token"], data["user_id"], ""};
  }

  // Creates the session and waits on its status stream until it is ready.
  double create_until_ready(User& u, const std::function<void()>& before = {}) {
    if (before) before();
    const auto start = std::chrono::steady_clock::now();
    const auto r = testing::http_as(u.token, gw_, "POST", "/v1/sessions", Json{{"exam_id", kExam}}.dump());
    if (r.status != 201) throw std::runtime_error("create: " + r.body);
    u.session = Json::parse(r.body)["data"]["session_id"];
    auto ws = testing::WsClient::connect(gw_, "/v1/sessions/" + u.session + "/status",
                                         {{"Authorization", "Bearer " + u.token}});
    while (auto m = ws->receive(30s)) {
      if (Json::parse(*m)["data"]["lifecycle_state"] == "ready") return ms(std::chrono::steady_clock::now() - start);
    }
    throw std::runtime_error("never ready: " + u.session);
  }

  // `n` users, all at once; their create -> ready times.
  std::vector<double> users_at_once(size_t n, std::vector<User>& users) {
    std::vector<User> batch(n);
    for (auto& u : batch) u = new_user();
    std::vector<double> times(n);
    std::barrier sync(static_cast<std::ptrdiff_t>(n));
    std::vector<std::thread> threads;
    for (size_t i = 0; i < n; ++i)
      threads.emplace_back([&, i] { times[i] = create_until_ready(batch[i], [&] { sync.arrive_and_wait(); }); });
    for (auto& t : threads) t.join();
    users.insert(users.end(), batch.begin(), batch.end());
    return times;
  }

  // Sandboxes that exist and are nobody's yet (the platform is fresh: all of them).
  size_t pooled() {
    size_t n = 0;
    for (const auto& e : std::filesystem::directory_iterator(platform_.sandbox_dir())) n += e.is_directory();
    return n - users_.size();
  }

  void create_ready() {
    const auto filling = std::chrono::steady_clock::now();
    while (pooled() < kPool && std::chrono::steady_clock::now() - filling < 120s) std::this_thread::sleep_for(100ms);
    std::printf("warm pool: %zu ready environments made in %.1f s\n", pooled(),
                ms(std::chrono::steady_clock::now() - filling) / 1000);
    std::vector<User> users;
    const auto times = users_at_once(50, users);
    std::printf("POST /v1/sessions -> ready, 50 users at once, warm pool of %zu: p50 %.1f ms, p99 %.1f ms, max %.1f ms "
                "(target p99 < 250)\n",
                kPool, percentile(times, 0.5), percentile(times, 0.99), percentile(times, 1.0));
    // The next 50 at once, while the pool is still being made up again: most
    // environments are made for them on the spot.
    const auto cold = users_at_once(50, users);
    std::printf("POST /v1/sessions -> ready, 50 more at once, pool emptied: p50 %.1f ms, p99 %.1f ms, max %.1f ms\n",
                percentile(cold, 0.5), percentile(cold, 0.99), percentile(cold, 1.0));
    users_ = users;
    if (const char* dump = std::getenv("BENCH_LOGS")) std::ofstream(dump) << platform_.logs();
  }

  // The pool made up again after the create part: measure nothing while it is being made.
  void settle() {
    const auto start = std::chrono::steady_clock::now();
    while (pooled() < kPool && std::chrono::steady_clock::now() - start < 120s) std::this_thread::sleep_for(100ms);
    std::this_thread::sleep_for(500ms);
  }

  void status_wrk() {
    if (users_.empty()) users_at_once(1, users_);
    settle();
    const User& u = users_.at(0);
    const auto r = testing::run({"wrk", "-t2", "-c64", "-d15s", "--latency", "-H", "Authorization: Bearer " + u.token,
                                 "http://" + gw_ + "/v1/sessions/" + u.session + "/status"},
                                {}, 60s);
    std::smatch rps, p99, non2xx;
    std::regex_search(r.out, rps, std::regex(R"(Requests/sec:\s+([\d.]+))"));
    std::regex_search(r.out, p99, std::regex(R"(99%\s+([\d.]+\w+))"));
    const bool errors = std::regex_search(r.out, non2xx, std::regex(R"(Non-2xx or 3xx responses:\s+(\d+))"));
    std::printf("GET status, wrk 64 connections 15 s: %s req/s, p99 %s%s (target >= 5000 req/s, p99 < 20 ms)\n",
                rps.size() > 1 ? rps[1].str().c_str() : "?", p99.size() > 1 ? p99[1].str().c_str() : "?",
                errors ? (", NON-2XX: " + non2xx[1].str()).c_str() : "");
    if (rps.size() < 2) std::cout << r.out << r.err;
    // The floor in the same run: the gateway's own /healthz, which asks no service.
    const auto floor = testing::run({"wrk", "-t2", "-c64", "-d10s", "--latency", "http://" + gw_ + "/healthz"}, {}, 60s);
    std::smatch floor_rps;
    std::regex_search(floor.out, floor_rps, std::regex(R"(Requests/sec:\s+([\d.]+))"));
    if (rps.size() > 1 && floor_rps.size() > 1) {
      const double status = std::stod(rps[1].str()), healthz = std::stod(floor_rps[1].str());
      std::printf("GET /healthz, the same load: %.0f req/s\n", healthz);
      bench::target("gateway: /healthz req/s over status req/s (status at half the floor or better)", healthz,
                    status, 2.0, "req/s");
    }
  }

  std::string targets_file(const std::vector<Json>& targets) {
    const std::string path = dir_.path() + "/targets-" + std::to_string(++files_) + ".json";
    std::ofstream(path) << Json(targets).dump();
    return path;
  }

  Json terminal_target(const User& u) {
    return Json{{"url", "ws://" + gw_ + "/v1/sessions/" + u.session + "/terminal"},
                {"headers", {{"Authorization", "Bearer " + u.token}}}};
  }

  Json load(const std::vector<std::string>& args, const testing::Env& env = {}) {
    std::vector<std::string> argv{"node", kTerminalDir + "/load.js"};
    argv.insert(argv.end(), args.begin(), args.end());
    const auto r = testing::run(argv, env, 600s);
    if (r.exit_code != 0) throw std::runtime_error("load.js: " + r.out + r.err);
    return Json::parse(r.out);
  }

  // Side by side, in interleaved rounds (this machine's speed wanders from one
  // second to the next): medians of each.
  void terminal_versus_peer(bool echo, bool output) {
    while (users_.size() < 2) users_at_once(1, users_);
    settle();
    const int port = testing::free_port();
    testing::Daemon peer({"node", kTerminalDir + "/peer.js", std::to_string(port)}, {});
    std::this_thread::sleep_for(1s);
    const std::string examiso = targets_file({terminal_target(users_.at(1))});
    const std::string node = targets_file({Json{{"url", "ws://127.0.0.1:" + std::to_string(port) + "/"}}});
    if (echo) echo_versus_peer(examiso, node);
    if (output) output_versus_peer(examiso, node);
  }

  void echo_versus_peer(const std::string& examiso, const std::string& node) {
    std::vector<double> e_p99, n_p99, e_p50, n_p50;
    for (int round = 0; round < kRounds; ++round) {
      const Json e = load({"echo", examiso, "2000"}), n = load({"echo", node, "2000"});
      e_p99.push_back(e["p99_ms"]), e_p50.push_back(e["p50_ms"]), n_p99.push_back(n["p99_ms"]),
          n_p50.push_back(n["p50_ms"]);
    }
    std::printf("terminal echo p99 (load.js, Node.js client), median of %d rounds: examiso %.2f ms (p50 %.2f) vs "
                "Node ws+node-pty %.2f ms (p50 %.2f)\n  examiso p99 by round:%s\n  peer p99 by round:   %s\n",
                kRounds, percentile(e_p99, 0.5), percentile(e_p50, 0.5), percentile(n_p99, 0.5),
                percentile(n_p50, 0.5), list(e_p99).c_str(), list(n_p99).c_str());
    // Keys with a second's pause before each, as people type: the first rounds
    // found one key in twelve held up to 95 ms this way (gRPC's idle threads).
    const Json e_paused = load({"pauses", examiso, "60"}), n_paused = load({"pauses", node, "60"});
    std::printf("terminal echo with a pause of about a second before each of 60 keys: examiso p50 %.2f ms, max %.2f "
                "ms; Node ws+node-pty p50 %.2f ms, max %.2f ms\n",
                e_paused["p50_ms"].get<double>(), e_paused["max_ms"].get<double>(), n_paused["p50_ms"].get<double>(),
                n_paused["max_ms"].get<double>());
    bench::target("terminal echo p99 (Node.js client), examiso vs the peer", percentile(e_p99, 0.5),
                  percentile(n_p99, 0.5), 1.5, "ms");
    // A key typed after a pause (gRPC's idle threads once held one in twelve 75-100 ms).
    bench::target("terminal echo after a second's pause, slowest key, examiso vs the peer",
                  e_paused["max_ms"].get<double>(), std::max(1.0, n_paused["max_ms"].get<double>()), 10, "ms");
    std::vector<double> e_lean, n_lean;
    for (int round = 0; round < kRounds; ++round) {
      const auto e = lean_echo_ms(Json::parse(std::ifstream(examiso))[0], 2000);
      const auto n = lean_echo_ms(Json::parse(std::ifstream(node))[0], 2000);
      e_lean.insert(e_lean.end(), e.begin(), e.end());
      n_lean.insert(n_lean.end(), n.begin(), n.end());
    }
    std::printf("terminal echo (a C++ client on one thread), %d keys each: examiso p50 %.3f ms, p99 %.3f ms; "
                "Node ws+node-pty p50 %.3f ms, p99 %.3f ms\n",
                kRounds * 2000, percentile(e_lean, 0.5), percentile(e_lean, 0.99), percentile(n_lean, 0.5),
                percentile(n_lean, 0.99));
  }

  void output_versus_peer(const std::string& examiso, const std::string& node) {
    for (const std::string kind : {"lines", "long"}) {
      std::vector<double> e_out, n_out, bare, e_frame, n_frame;
      for (int round = 0; round < kRounds; ++round) {
        const Json e = load({"throughput", examiso, "100000000", kind});
        const Json n = load({"throughput", node, "100000000", kind});
        e_out.push_back(e["mb_per_s"]), n_out.push_back(n["mb_per_s"]);
        e_frame.push_back(e["bytes"].get<double>() / e["messages"].get<double>() / 1024);
        n_frame.push_back(n["bytes"].get<double>() / n["messages"].get<double>() / 1024);
        bare.push_back(bare_pty_mb_per_s(kind));
      }
      const double e = percentile(e_out, 0.5), n = percentile(n_out, 0.5), b = percentile(bare, 0.5);
      bench::target(std::string("terminal output, ") + kind + ": a bare pty (the floor) over examiso", b, e, 1.5,
                    "MB/s");
      std::printf("terminal output, %s, median of %d rounds: examiso %.1f MB/s vs Node ws+node-pty %.1f MB/s "
                  "(%.2fx, target >= 1.5x)\n  examiso by round:%s\n  peer by round:   %s\n"
                  "  a bare pty read with nothing behind it: %.1f MB/s (%.2fx the peer)\n"
                  "  output message size, median: examiso %.1f KiB, peer %.1f KiB\n",
                  kind == "lines" ? "64-byte lines" : "one long line", kRounds, e, n, e / n, list(e_out).c_str(),
                  list(n_out).c_str(), b, b / n, percentile(e_frame, 0.5), percentile(n_frame, 0.5));
    }
  }

  // Keystroke echo measured with a client that adds no thread or garbage
  // collector of its own (load.js's Node.js client has both): each key is typed
  // on an empty line and timed until its echo alone comes back, then erased.
  static std::vector<double> lean_echo_ms(const Json& target, int keys) {
    const std::string url = target["url"].get<std::string>().substr(5);  // after ws://
    testing::Headers headers;
    if (target.contains("headers"))
      for (const auto& [k, v] : target["headers"].items()) headers.emplace_back(k, v.get<std::string>());
    testing::BlockingWsClient ws(url.substr(0, url.find('/')), url.substr(url.find('/')), headers);
    const auto input = [&](const std::string& data) { ws.send(Json{{"type", "input"}, {"data", data}}.dump()); };
    // Until the output since the call passes `test` (it may come in pieces, or
    // after the rest of the previous answer).
    const auto output_until = [&](const std::function<bool(const std::string&)>& test) {
      for (std::string seen; !test(seen);) {
        const Json m = Json::parse(ws.receive());
        if (m["type"] == "output") seen += m["data"].get<std::string>();
      }
    };
    const auto ends_with = [](const std::string& end) { return [end](const std::string& d) { return d.ends_with(end); }; };
    const auto erase = [&] {
      input("\x7f");
      output_until([](const std::string& d) { return d.find('\b') != std::string::npos; });
    };
    input("\x15Z");  // an empty line, then a key to see that the shell is there
    output_until(ends_with("Z"));
    erase();
    std::vector<double> samples;
    for (int i = -50; i < keys; ++i) {  // the first 50 warm up
      const std::string key(1, static_cast<char>('a' + (i + 50) % 26));
      const auto start = std::chrono::steady_clock::now();
      input(key);
      output_until(ends_with(key));
      if (i >= 0) samples.push_back(ms(std::chrono::steady_clock::now() - start));
      erase();
    }
    return samples;
  }

  // The same output as load.js makes, from a shell on a pty of our own, read
  // as the keeper reads (all that is waiting, 64 KiB at most) and dropped.
  static double bare_pty_mb_per_s(const std::string& kind) {
    const std::string command = bench::output_command(kind == "long", 100'000'000);
    int master = -1;
    const pid_t pid = forkpty(&master, nullptr, nullptr, nullptr);
    if (pid < 0) throw std::runtime_error("forkpty failed");
    if (pid == 0) {
      execl("/bin/bash", "bash", "-c", command.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    fcntl(master, F_SETFL, O_NONBLOCK);
    const auto start = std::chrono::steady_clock::now();
    size_t bytes = 0;
    char buf[65536];
    for (bool open = true; open;) {
      pollfd p{master, POLLIN, 0};
      poll(&p, 1, -1);
      ssize_t n;
      while ((n = read(master, buf, sizeof buf)) > 0) bytes += static_cast<size_t>(n);
      open = n < 0 && (errno == EAGAIN || errno == EINTR);  // EIO: the shell is gone
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    close(master);
    waitpid(pid, nullptr, 0);
    return bytes / seconds / 1e6;
  }

  static std::string list(const std::vector<double>& v) {
    std::string out;
    char one[32];
    for (double x : v) out.append(one, static_cast<size_t>(std::snprintf(one, sizeof one, " %.1f", x)));
    return out;
  }

  // One candidate prints as fast as the terminal goes while another types:
  // the typist's echo p99 beside the flood, over the same typist's quiet p99
  // in the same run (issue 20: a flood is charged to who makes it).
  void flood() {
    while (users_.size() < 2) users_at_once(1, users_);
    settle();
    const Json typist = terminal_target(users_.at(0));
    const std::string url = terminal_target(users_.at(1))["url"].get<std::string>().substr(5);  // after ws://
    std::vector<double> quiet, loud;
    double mb_per_s = 0;
    for (int round = 0; round < kRounds; ++round) {
      const auto q = lean_echo_ms(typist, 500);
      quiet.insert(quiet.end(), q.begin(), q.end());
      testing::BlockingWsClient flooder(url.substr(0, url.find('/')), url.substr(url.find('/')),
                                        {{"Authorization", "Bearer " + users_.at(1).token}});
      std::atomic<bool> stop{false};
      std::atomic<size_t> bytes{0};
      flooder.send(Json{{"type", "input"}, {"data", "yes 'a line of output that floods the terminal'\n"}}.dump());
      std::thread reader([&] {
        try {
          while (!stop) bytes += flooder.receive().size();  // read and dropped, as a browser would
        } catch (const std::exception& e) {
          std::fprintf(stderr, "the flooder's terminal ended: %s\n", e.what());
        }
      });
      std::this_thread::sleep_for(500ms);
      const size_t before = bytes;
      const auto start = std::chrono::steady_clock::now();
      const auto l = lean_echo_ms(typist, 500);
      mb_per_s += double(bytes - before) / std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / 1e6;
      loud.insert(loud.end(), l.begin(), l.end());
      stop = true;  // then ^C: what it prints after wakes the reader up to see it
      flooder.send(Json{{"type", "input"}, {"data", "\x03"}}.dump());
      reader.join();
    }
    const double q99 = percentile(quiet, 0.99), l99 = percentile(loud, 0.99);
    std::printf("terminal echo beside another candidate's flood (%.1f MB/s through the gateway), %d rounds of 500 keys: "
                "p50 %.3f ms, p99 %.3f ms; quiet, the same typist: p50 %.3f ms, p99 %.3f ms (target: p99 + 10 ms at "
                "most)\n",
                mb_per_s / kRounds, kRounds, percentile(loud, 0.5), l99, percentile(quiet, 0.5), q99);
    bench::target("gateway: a typist's echo p99 beside a flood, over quiet p99 + 10 ms", l99, q99 + 10, 1.0, "ms");
  }

  // Staff watch a candidate's terminal (issue 21): the candidate's echo p99
  // with 50 observers reading it, over the same candidate's p99 with none, in
  // alternating rounds of the same run.
  void observers() {
    constexpr int kObservers = 50;
    while (users_.empty()) users_at_once(1, users_);
    settle();
    const User& u = users_.at(0);
    const Json typist = terminal_target(u);
    const std::string host = gw_;
    const std::string path = "/v1/admin/sessions/" + u.session + "/terminal";
    std::vector<std::string> staff;
    for (int i = 0; i < kObservers; ++i) {
      const auto r = testing::http(gw_, "POST", "/v1/dev/token", R"({"role":"proctor"})");
      staff.push_back(Json::parse(r.body)["data"]["token"]);
    }
    std::vector<double> alone, watched;
    size_t seen = 0;
    for (int round = 0; round < kRounds; ++round) {
      const auto a = lean_echo_ms(typist, 500);
      alone.insert(alone.end(), a.begin(), a.end());
      std::vector<std::unique_ptr<testing::BlockingWsClient>> views;
      std::vector<std::thread> readers;
      std::atomic<size_t> messages{0};
      for (const auto& token : staff)
        views.push_back(std::make_unique<testing::BlockingWsClient>(host, path,
                                                                    testing::Headers{{"Authorization", "Bearer " + token}}));
      for (auto& v : views)
        readers.emplace_back([&messages, ws = v.get()] {
          try {
            for (;;) {
              ws->receive();
              ++messages;
            }
          } catch (const std::exception&) {  // closed: the round is over
          }
        });
      std::this_thread::sleep_for(500ms);
      const auto w = lean_echo_ms(typist, 500);
      watched.insert(watched.end(), w.begin(), w.end());
      seen += messages;
      for (auto& v : views) v->close();
      for (auto& t : readers) t.join();
    }
    const double a99 = percentile(alone, 0.99), w99 = percentile(watched, 0.99);
    std::printf("terminal echo with %d observers on it, %d rounds of 500 keys: p50 %.3f ms, p99 %.3f ms; the same "
                "candidate unobserved: p50 %.3f ms, p99 %.3f ms (target: p99 + 1 ms at most); the observers got "
                "%zu messages\n",
                kObservers, kRounds, percentile(watched, 0.5), w99, percentile(alone, 0.5), a99, seen);
    bench::target("gateway: echo p99 with 50 observers, over unobserved p99 + 1 ms", w99, a99 + 1, 1.0, "ms");
  }

  // The proctor's room (issue 21): GET /v1/admin/sessions with 1,000 sessions
  // in it, one request at a time; beside it in the same run the gateway's own
  // /healthz (the floor) and one session's staff detail.
  void room() {
    constexpr int kSessions = 1000, kRequests = 200;
    auto lifecycle = v1::LifecycleService::NewStub(make_channel(platform_.address("lifecycle"), "lifecycle"));
    for (int i = 0; i < kSessions; ++i) {
      v1::CreateSessionRequest r;
      r.set_user_id(new_uuid());
      r.set_exam_id(kExam);
      v1::Session s;
      grpc::ClientContext c;
      if (!lifecycle->CreateSession(&c, r, &s).ok()) throw std::runtime_error("cannot create the room's sessions");
    }
    const auto r = testing::http(gw_, "POST", "/v1/dev/token", R"({"role":"proctor"})");
    const std::string proctor = Json::parse(r.body)["data"]["token"];
    const auto timed = [&](const std::string& path, const std::string& token) {
      std::vector<double> samples;
      for (int i = -20; i < kRequests; ++i) {  // the first 20 warm up
        const auto start = std::chrono::steady_clock::now();
        const auto answer = token.empty() ? testing::http(gw_, "GET", path) : testing::http_as(token, gw_, "GET", path);
        if (answer.status != 200) throw std::runtime_error(path + ": " + std::to_string(answer.status) + " " + answer.body);
        if (i >= 0) samples.push_back(ms(std::chrono::steady_clock::now() - start));
      }
      return samples;
    };
    const auto list = timed("/v1/admin/sessions?exam_id=" + kExam + "&limit=1000", proctor);
    const auto one_row = timed("/v1/admin/sessions?exam_id=" + kExam + "&limit=1", proctor);  // the fixed part
    const Json room = Json::parse(testing::http_as(proctor, gw_, "GET", "/v1/admin/sessions?exam_id=" + kExam).body);
    const std::string one = room["data"]["sessions"][0]["session_id"];
    const auto detail = timed("/v1/admin/sessions/" + one, proctor);
    const auto floor = timed("/healthz", "");
    std::vector<double> rpc;  // what lies beneath: lifecycle's ListSessions of the same room
    for (int i = -20; i < kRequests; ++i) {
      v1::ListSessionsRequest q;
      q.set_exam_id(kExam);
      q.set_limit(1000);
      v1::ListSessionsResponse out;
      grpc::ClientContext c;
      const auto start = std::chrono::steady_clock::now();
      if (!lifecycle->ListSessions(&c, q, &out).ok()) throw std::runtime_error("ListSessions failed");
      if (i >= 0) rpc.push_back(ms(std::chrono::steady_clock::now() - start));
    }
    std::printf("the room, %zu sessions listed, %d requests one at a time: p50 %.2f ms, p99 %.2f ms (target p99 < 50 "
                "ms); a room of one: p50 %.2f ms, p99 %.2f ms; one session's detail: p50 %.2f ms, p99 %.2f ms; /healthz: "
                "p50 %.2f ms, p99 %.2f ms; lifecycle's ListSessions of the room (gRPC): p50 %.2f ms, p99 %.2f ms\n",
                room["data"]["sessions"].size(), kRequests, percentile(list, 0.5), percentile(list, 0.99),
                percentile(one_row, 0.5), percentile(one_row, 0.99), percentile(detail, 0.5), percentile(detail, 0.99), percentile(floor, 0.5), percentile(floor, 0.99), percentile(rpc, 0.5),
                percentile(rpc, 0.99));
    bench::target("gateway: the room of 1,000 sessions, p99 under 50 ms", percentile(list, 0.99), 50, 1.0, "ms");
  }

  void many_terminals(size_t n) {
    while (users_.size() < n) {
      std::vector<User> more;
      users_at_once(std::min<size_t>(50, n - users_.size()), more);
      users_.insert(users_.end(), more.begin(), more.end());
    }
    std::vector<Json> targets;
    for (size_t i = 0; i < n; ++i) targets.push_back(terminal_target(users_[i]));
    const std::string file = targets_file(targets);
    const std::string hold = dir_.path() + "/held.json";
    const pid_t gateway = platform_.daemon("gateway").pid();
    const long gateway_before = rss_kb(gateway), available_before = mem_available_kb();
    std::thread measure([&] {
      while (!std::ifstream(hold)) std::this_thread::sleep_for(100ms);
      gateway_during_ = rss_kb(gateway);
      available_during_ = mem_available_kb();
    });
    const Json some = load({"hold", file, "40"}, {{"HOLD_FILE", hold}, {"HOLD_MS", "1500"}, {"TYPING", "50"}});
    measure.join();
    const Json all = load({"hold", file, "20"});
    // The Node.js peer, the same load.
    const int port = testing::free_port();
    testing::Daemon peer({"node", kTerminalDir + "/peer.js", std::to_string(port)}, {});
    std::this_thread::sleep_for(1s);
    const std::string peers =
        targets_file(std::vector<Json>(n, Json{{"url", "ws://127.0.0.1:" + std::to_string(port) + "/"}}));
    const Json peer_some = load({"hold", peers, "40"}, {{"TYPING", "50"}});
    const Json peer_all = load({"hold", peers, "20"});
    const auto line = [](const char* who, const Json& r) {
      std::printf("  %-8s %lld open (%lld failed), %lld typing: echo p50 %.2f ms, p99 %.2f ms\n", who,
                  r["open"].get<long long>(), r["failed"].get<long long>(), r["typing"].get<long long>(),
                  r["p50_ms"].get<double>(), r["p99_ms"].get<double>());
    };
    std::printf("%zu terminals open at once (target: echo p99 < 10 ms):\n", n);
    line("examiso", some);
    line("peer", peer_some);
    line("examiso", all);
    line("peer", peer_all);
    bench::target("echo p99 with " + std::to_string(n) + " terminals open, 50 typing, examiso vs the peer",
                  some["p99_ms"].get<double>(), peer_some["p99_ms"].get<double>(), 1.5, "ms");
    std::printf("memory per open terminal: gateway %.1f KiB; whole machine (gateway, services, shells) %.1f KiB\n",
                double(gateway_during_ - gateway_before) / double(n),
                double(available_before - available_during_) / double(n));
  }

 private:
  testing::TempDir dir_;  // first: the platform's catalog is written in it
  testing::PostgresCluster cluster_;
  testing::Platform platform_;
  std::string gw_;
  std::vector<User> users_;
  int files_ = 0;
  long gateway_during_ = 0, available_during_ = 0;
};

}  // namespace

// gateway_bench [terminals [part...]]: parts are create, status, terminal (echo and output), flood, observers, room
// and many;
// all by default.
int main(int argc, char** argv) {
  const size_t terminals = argc > 1 ? std::stoul(argv[1]) : 500;
  const std::vector<std::string> parts(argv + std::min(argc, 2), argv + argc);
  const auto run = [&](const std::string& part) {
    return parts.empty() || std::find(parts.begin(), parts.end(), part) != parts.end();
  };
  Bench bench;
  if (run("create")) bench.create_ready();
  if (run("status")) bench.status_wrk();
  if (run("terminal") || run("echo") || run("output")) bench.terminal_versus_peer(run("terminal") || run("echo"), run("terminal") || run("output"));
  if (run("flood")) bench.flood();
  if (run("observers")) bench.observers();
  if (run("room")) bench.room();
  if (run("many")) bench.many_terminals(terminals);
  return examiso::bench::finish_targets();
}
