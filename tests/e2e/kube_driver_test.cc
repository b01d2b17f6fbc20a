// The kubernetes driver against the stand-in API server (tests/support/
// standin_apiserver: a cluster cannot run here; it speaks the real REST, watch
// and exec protocols over TLS). Everything else is real: the driver's HTTPS
// and WebSocket clients, and, in the last tests, the environment service.
#include <gtest/gtest.h>
#include <poll.h>

#include <cstdlib>
#include <fstream>
#include <future>
#include <thread>

#include "common/errors.h"
#include "common/json.h"
#include "common/uuid.h"
#include "services/environment/kube_driver.h"
#include "tests/support/eventually.h"
#include "tests/support/platform.h"
#include "tests/support/postgres.h"
#include "tests/support/standin_apiserver.h"
#include "tests/support/terminal.h"

namespace examiso {
namespace {

using environment::EnvironmentSpec;
using environment::KubeDriver;
using testing::StandinApiServer;
using namespace std::chrono_literals;

constexpr const char* kNs = "exam-sessions";

// The pods' keeper is this build's.
environment::KubeDriverOptions options() {
  environment::KubeDriverOptions o;
  o.pod_namespace = kNs;
  o.keeper_binary = testing::bin("examiso-sandbox");
  return o;
}

EnvironmentSpec spec_for(const std::string& session_id = new_uuid()) {
  EnvironmentSpec s;
  s.environment_id = new_uuid();
  s.session_id = session_id;
  s.name = "exam-" + session_id.substr(0, 8);
  s.image = "registry.example/exam/cka:1.30";
  s.memory_limit_bytes = 512ll << 20;
  s.cpu_millis = 1000;
  s.home_size_bytes = 256ll << 20;
  s.tmp_size_bytes = 64ll << 20;
  s.duration_seconds = 7200;
  return s;
}

environment::KubeEndpoint endpoint_of(const StandinApiServer& api, std::chrono::milliseconds timeout = 2000ms) {
  environment::KubeSettings settings;
  settings.kubeconfig = api.write_kubeconfig(true);
  settings.timeout = timeout;
  return environment::kube_endpoint(settings);
}

std::string reason_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.code() + ": " + e.details().value("reason", std::string(e.what()));
  }
  return "no error";
}

// Runs create in the background, for tests that play the kubelet meanwhile.
std::future<std::string> create_async(KubeDriver& driver, const EnvironmentSpec& spec, std::chrono::seconds within) {
  return std::async(std::launch::async, [&driver, spec, within] {
    return reason_of([&] { driver.create(spec, std::chrono::steady_clock::now() + within); });
  });
}

bool nothing_left(StandinApiServer& api) {
  return testing::eventually([&] { return api.pods(kNs).empty() && api.network_policies(kNs).empty(); }, 5s);
}

Json waiting(const std::string& reason, const std::string& message) {
  return {{"phase", "Pending"},
          {"containerStatuses",
           Json::array({{{"name", "exam"}, {"ready", false}, {"state", {{"waiting", {{"reason", reason}, {"message", message}}}}}}})}};
}

TEST(KubeDriver, CreatesAHardenedPodAndItsNetworkPolicyAndWaitsUntilReady) {
  StandinApiServer api;
  KubeDriver driver(endpoint_of(api), options());
  EnvironmentSpec spec = spec_for();
  spec.egress_allow = {"10.96.0.0/12:443", "192.0.2.0/24"};
  spec.runtime_class = "gvisor";
  driver.create(spec, std::chrono::steady_clock::now() + 10s);

  const auto pod = api.pod(kNs, spec.name);
  ASSERT_TRUE(pod) << "no pod named " << spec.name;
  const Json& meta = (*pod)["metadata"];
  EXPECT_EQ(meta["labels"]["examiso.io/environment-id"], spec.environment_id);
  EXPECT_EQ(meta["labels"]["examiso.io/session-id"], spec.session_id);
  EXPECT_EQ(meta["labels"]["app.kubernetes.io/managed-by"], "examiso");
  const Json& ps = (*pod)["spec"];
  EXPECT_EQ(ps["automountServiceAccountToken"], false);
  EXPECT_EQ(ps["enableServiceLinks"], false);
  // The exam's duration, an hour to start it, and 900 s of grace.
  EXPECT_EQ(ps["activeDeadlineSeconds"], 7200 + 3600 + 900);
  EXPECT_EQ(ps["runtimeClassName"], "gvisor");
  EXPECT_EQ(ps["securityContext"]["runAsNonRoot"], true);
  EXPECT_EQ(ps["securityContext"]["seccompProfile"]["type"], "RuntimeDefault");
  ASSERT_EQ(ps["containers"].size(), 1u);
  const Json& c = ps["containers"][0];
  EXPECT_EQ(c["image"], spec.image);
  EXPECT_EQ(c["securityContext"]["allowPrivilegeEscalation"], false);
  EXPECT_EQ(c["securityContext"]["readOnlyRootFilesystem"], true);
  EXPECT_EQ(c["securityContext"]["capabilities"]["drop"], Json::array({"ALL"}));
  EXPECT_EQ(c["resources"]["limits"]["memory"], std::to_string(512ll << 20));
  EXPECT_EQ(c["resources"]["limits"]["cpu"], "1000m");
  EXPECT_EQ(c["resources"]["limits"]["ephemeral-storage"],
            std::to_string(spec.home_size_bytes + spec.tmp_size_bytes + (64 << 20)));
  EXPECT_EQ(c["resources"]["requests"]["ephemeral-storage"], c["resources"]["limits"]["ephemeral-storage"]);
  for (const auto& v : ps["volumes"]) {
    EXPECT_TRUE(v.contains("emptyDir")) << v.dump();
    EXPECT_TRUE(v["emptyDir"].contains("sizeLimit")) << v.dump();
  }

  const auto policy = api.network_policy(kNs, "env-" + spec.environment_id);
  ASSERT_TRUE(policy);
  const Json& np = (*policy)["spec"];
  EXPECT_EQ(np["podSelector"]["matchLabels"]["examiso.io/environment-id"], spec.environment_id);
  EXPECT_EQ(np["policyTypes"], Json::array({"Ingress", "Egress"}));
  EXPECT_TRUE(np["ingress"].empty());
  ASSERT_EQ(np["egress"].size(), 2u);
  EXPECT_EQ(np["egress"][0]["to"][0]["ipBlock"]["cidr"], "10.96.0.0/12");
  EXPECT_EQ(np["egress"][0]["ports"][0]["port"], 443);
  EXPECT_EQ(np["egress"][1]["to"][0]["ipBlock"]["cidr"], "192.0.2.0/24");
  EXPECT_FALSE(np["egress"][1].contains("ports"));

  EXPECT_TRUE(driver.alive(spec.environment_id));
  EXPECT_EQ(driver.list(), std::vector<std::string>{spec.environment_id});

  // Destroy: pod and policy gone (foreground), and again is no error.
  driver.destroy(spec.environment_id);
  EXPECT_TRUE(nothing_left(api));
  EXPECT_NO_THROW(driver.destroy(spec.environment_id));
  EXPECT_FALSE(driver.alive(spec.environment_id));
  EXPECT_TRUE(driver.list().empty());
  EXPECT_EQ(reason_of([&] { driver.attach(spec.environment_id, 80, 24); }).rfind("ENVIRONMENT_NOT_FOUND", 0), 0u);
  bool deleted = false;
  for (const auto& r : api.requests()) deleted |= r.rfind("DELETE /api/v1/namespaces/exam-sessions/pods/", 0) == 0;
  EXPECT_TRUE(deleted);
}

TEST(KubeDriver, EachHopelessPodFailsFastWithItsReasonAndLeavesNothing) {
  StandinApiServer api({.auto_run = false});
  KubeDriver driver(endpoint_of(api), options());
  const std::vector<std::pair<Json, std::string>> cases = {
      {waiting("ErrImagePull", "pull access denied"), "the exam image could not be pulled (ErrImagePull: pull access denied)"},
      {waiting("ImagePullBackOff", "Back-off pulling image"), "the exam image could not be pulled (ImagePullBackOff"},
      {waiting("CrashLoopBackOff", "back-off 10s restarting"), "the environment's container keeps crashing (CrashLoopBackOff"},
      {Json{{"phase", "Pending"},
            {"conditions", Json::array({{{"type", "PodScheduled"}, {"status", "False"}, {"reason", "Unschedulable"},
                                         {"message", "0/3 nodes are available: 3 Insufficient memory."}}})}},
       "no node can run the environment: 0/3 nodes are available: 3 Insufficient memory."},
      {Json{{"phase", "Failed"}, {"message", "Pod was active on the node longer than the specified deadline"}},
       "the environment's container ended (Failed"},
  };
  for (const auto& [status, expected] : cases) {
    const EnvironmentSpec spec = spec_for();
    const auto started = std::chrono::steady_clock::now();
    auto result = create_async(driver, spec, 30s);
    ASSERT_TRUE(testing::eventually([&] { return api.pod(kNs, spec.name).has_value(); }, 5s));
    api.set_pod_status(kNs, spec.name, status);
    ASSERT_EQ(result.wait_for(5s), std::future_status::ready) << expected;
    const std::string reason = result.get();
    EXPECT_NE(reason.find("ENVIRONMENT_CREATE_FAILED: " + expected), std::string::npos) << reason;
    EXPECT_LT(std::chrono::steady_clock::now() - started, 5s) << "waited out the timeout for " << expected;
    EXPECT_TRUE(nothing_left(api)) << expected;
  }

  // A pod that just stays pending: the timeout, and nothing left either.
  const EnvironmentSpec slow = spec_for();
  EXPECT_EQ(reason_of([&] { driver.create(slow, std::chrono::steady_clock::now() + 1500ms); }),
            "ENVIRONMENT_CREATE_FAILED: the pod was not ready in time");
  EXPECT_TRUE(nothing_left(api));
}

TEST(KubeDriver, RunsTheExamsSetupInThePodAndReportsItsFailure) {
  StandinApiServer api;
  KubeDriver driver(endpoint_of(api), options());
  EnvironmentSpec ok = spec_for();
  ok.setup_script = "echo prepared > \"$HOME/setup-ran\"";
  driver.create(ok, std::chrono::steady_clock::now() + 10s);
  auto t = driver.attach(ok.environment_id, 100, 30);
  ASSERT_TRUE(t->write("cat \"$HOME/setup-ran\"; echo $((6*7))\n"));
  std::string out;
  ASSERT_TRUE(testing::eventually([&] {
    if (auto chunk = t->read(100ms)) out += *chunk;
    return out.find("prepared") != std::string::npos && out.find("42") != std::string::npos;
  }, 10s)) << out;
  t.reset();  // the client goes; the shell stays

  EnvironmentSpec broken = spec_for();
  broken.setup_script = "echo 'cannot fetch the lab files' >&2; exit 7";
  EXPECT_EQ(reason_of([&] { driver.create(broken, std::chrono::steady_clock::now() + 10s); }),
            "ENVIRONMENT_CREATE_FAILED: the setup script failed (exit 7): cannot fetch the lab files");
  EXPECT_FALSE(api.pod(kNs, broken.name));
  driver.destroy(ok.environment_id);
  EXPECT_TRUE(nothing_left(api));
}

// Staff's socket in the pod, through an exec as the terminal's: an observer
// sees the candidate's output and is counted; a message reaches the candidate.
TEST(KubeDriver, ObserversAndMessagesGoThroughThePodsKeeper) {
  StandinApiServer api;
  KubeDriver driver(endpoint_of(api), options());
  const EnvironmentSpec spec = spec_for();
  driver.create(spec, std::chrono::steady_clock::now() + 10s);
  auto t = driver.attach(spec.environment_id, 80, 24);
  auto observer = driver.open_observer(spec.environment_id);
  ASSERT_TRUE(observer->send(sandbox::encode_frame(sandbox::FrameType::view, "")));
  std::string out, seen;
  ASSERT_TRUE(testing::eventually([&] {
    if (auto chunk = t->read(100ms)) out += *chunk;
    return t->news().watchers == 1u;
  }, 10s)) << "the candidate is told of the observer";
  ASSERT_TRUE(t->write("echo \"watched-$((6*7))\"\n"));
  EXPECT_TRUE(testing::eventually([&] {
    if (auto chunk = observer->read(100ms)) seen += *chunk;
    return seen.find("watched-42") != std::string::npos;
  }, 10s)) << seen;
  auto message = driver.open_observer(spec.environment_id);
  ASSERT_TRUE(message->send(sandbox::encode_frame(sandbox::FrameType::message, "Five minutes left.")));
  std::vector<std::string> answer, got;
  EXPECT_TRUE(testing::eventually([&] {
    message->read(100ms);
    for (auto& m : message->news().messages) answer.push_back(m);
    return !answer.empty();
  }, 10s));
  EXPECT_EQ(answer, std::vector<std::string>{"delivered"});
  EXPECT_TRUE(testing::eventually([&] {
    t->read(100ms);
    for (auto& m : t->news().messages) got.push_back(m);
    return !got.empty();
  }, 10s));
  EXPECT_EQ(got, std::vector<std::string>{"Five minutes left."});
  driver.destroy(spec.environment_id);
}

TEST(KubeDriver, TheTerminalIsAnExecWithResizeAndFallsBackToV4) {
  for (const std::vector<std::string>& protocols :
       {std::vector<std::string>{"v5.channel.k8s.io", "v4.channel.k8s.io"}, std::vector<std::string>{"v4.channel.k8s.io"}}) {
    StandinApiServer api;
    api.set_exec_protocols(protocols);
    KubeDriver driver(endpoint_of(api), options());
    const EnvironmentSpec spec = spec_for();
    driver.create(spec, std::chrono::steady_clock::now() + 10s);
    auto t = driver.attach(spec.environment_id, 120, 40);
    std::string out;
    const auto see = [&](const std::string& needle) {
      return testing::eventually([&] {
        if (auto chunk = t->read(100ms)) out += *chunk;
        return out.find(needle) != std::string::npos;
      }, 10s);
    };
    ASSERT_TRUE(t->write("echo \"size=$(stty size | tr ' ' x)\"; echo \"sum=$((6*7))\"\n"));
    EXPECT_TRUE(see("sum=42")) << out;
    EXPECT_NE(out.find("size=40x120"), std::string::npos) << protocols.back() << out;
    ASSERT_TRUE(t->resize(90, 20));
    ASSERT_TRUE(t->write("echo \"now=$(stty size | tr ' ' x)\"\n"));
    EXPECT_TRUE(see("now=20x90")) << out;
    // A terminal that reconnects finds the same shell and its recent output
    // (the keeper in the pod holds them, whatever the image: no tmux).
    ASSERT_TRUE(t->write("export MARK=$((4000+242)); echo \"before-$((1+1))\"\n"));
    EXPECT_TRUE(see("before-2")) << out;
    t.reset();  // the client goes; the shell stays
    t = driver.attach(spec.environment_id, 120, 40);
    out.clear();
    EXPECT_TRUE(see("before-2")) << "no replay: " << out;
    // Its wait_fd (what the environment service's event loop waits on) polls
    // readable when there is output, and not once it is read.
    const auto readable = [&](int ms) {
      pollfd p{t->wait_fd(), POLLIN, 0};
      return poll(&p, 1, ms) == 1;
    };
    while (readable(300)) t->read(0ms);
    EXPECT_FALSE(readable(0));
    ASSERT_TRUE(t->write("echo \"mark-$MARK\"\n"));
    EXPECT_TRUE(readable(10000));
    EXPECT_TRUE(see("mark-4242")) << out;
    // An exec the API server refuses says why.
    api.fail_next(1, 500, "/exec");
    const std::string refused = reason_of([&] { driver.attach(spec.environment_id, 80, 24); });
    EXPECT_NE(refused.find("ENVIRONMENT_NOT_FOUND: exec refused: 500"), std::string::npos) << refused;
    // The shell ends: the keeper says so and starts another, in the same terminal.
    ASSERT_TRUE(t->write("exit\n"));
    EXPECT_TRUE(see("your shell ended")) << out;
    ASSERT_TRUE(t->write("echo \"new-$((2+3))\"\n"));
    EXPECT_TRUE(see("new-5")) << out;
    // Another client takes the terminal: this one ends, and knows why.
    auto other = driver.attach(spec.environment_id, 120, 40);
    EXPECT_TRUE(testing::eventually([&] { return !t->read(100ms).has_value(); }, 10s));
    EXPECT_TRUE(t->opened_elsewhere());
    // Its exec ends once the keeper has let its client go; then it stays readable.
    EXPECT_TRUE(readable(5000));
    EXPECT_TRUE(readable(0)) << "an ended terminal stays readable";
    driver.destroy(spec.environment_id);
  }
}

// A pod's backstop deadline (activeDeadlineSeconds) follows the session's once
// its clock runs: shortened to the deadline and the grace, never lengthened
// (Kubernetes refuses that); past it the pod ends (DeadlineExceeded).
TEST(KubeDriver, ThePodsDeadlineFollowsTheSessionsOnceItsClockRuns) {
  StandinApiServer api;
  environment::KubeDriverOptions o = options();
  o.deadline_grace_seconds = 1;
  KubeDriver driver(endpoint_of(api), o);
  const EnvironmentSpec spec = spec_for();
  driver.create(spec, std::chrono::steady_clock::now() + 10s);
  const auto deadline_seconds = [&] { return (*api.pod(kNs, spec.name))["spec"]["activeDeadlineSeconds"].get<int64_t>(); };
  EXPECT_EQ(deadline_seconds(), 7200 + 3600 + 1);
  const auto started = parse_iso8601((*api.pod(kNs, spec.name))["status"]["startTime"].get<std::string>());
  ASSERT_TRUE(started);
  const auto patches = [&] {
    size_t n = 0;
    for (const auto& r : api.requests()) n += r.rfind("PATCH ", 0) == 0;
    return n;
  };
  // The session's deadline, 3 s from now: the pod's becomes that, and the grace.
  const TimePoint deadline = std::chrono::system_clock::now() + 3s;
  driver.follow_deadline(spec.environment_id, deadline);
  const int64_t wanted = std::chrono::duration_cast<std::chrono::seconds>(deadline - *started).count() + 1 + 1;
  EXPECT_EQ(deadline_seconds(), wanted);
  // Longer is not possible, and not asked for.
  const size_t before = patches();
  driver.follow_deadline(spec.environment_id, deadline + 1h);
  EXPECT_EQ(patches(), before);
  EXPECT_EQ(deadline_seconds(), wanted);
  // Until the deadline and its grace the pod runs; then it ends.
  EXPECT_TRUE(driver.alive(spec.environment_id));
  EXPECT_TRUE(testing::eventually([&] { return !driver.alive(spec.environment_id); }, 10s));
  EXPECT_EQ((*api.pod(kNs, spec.name))["status"]["reason"], "DeadlineExceeded");
  driver.destroy(spec.environment_id);
}

// Every exec stream of the process is served by one I/O thread: open
// terminals cost no thread each (each had its own).
TEST(KubeDriver, OpenTerminalsCostNoThreadEach) {
  const auto threads = [] { return testing::proc_status(getpid(), "Threads"); };
  StandinApiServer api;
  KubeDriver driver(endpoint_of(api), options());
  const EnvironmentSpec spec = spec_for();
  driver.create(spec, std::chrono::steady_clock::now() + 10s);
  std::vector<std::unique_ptr<environment::Terminal>> terminals;
  const auto attach = [&] {
    terminals.push_back(driver.attach(spec.environment_id, 80, 24));
    std::string out;
    ASSERT_TRUE(terminals.back()->write("echo \"up-$((20+1))\"\n"));
    ASSERT_TRUE(testing::eventually([&] {
      if (auto chunk = terminals.back()->read(100ms)) out += *chunk;
      return out.find("up-21") != std::string::npos;
    }, 10s)) << out;
  };
  attach();
  const long before = threads();
  for (int i = 0; i < 8; ++i) attach();
  EXPECT_LT(threads() - before, 2) << before << " threads with one terminal";
  // Dropped terminals say goodbye in the background: nothing waits on them.
  const auto start = std::chrono::steady_clock::now();
  terminals.clear();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
  driver.destroy(spec.environment_id);
}

// A dropped terminal whose API server never answers its goodbye is let go
// after a second: the connection is closed and nothing is kept.
TEST(KubeDriver, ADroppedTerminalIsClosedEvenIfTheServerNeverAnswers) {
  StandinApiServer api;
  KubeDriver driver(endpoint_of(api), options());
  const EnvironmentSpec spec = spec_for();
  driver.create(spec, std::chrono::steady_clock::now() + 10s);
  api.set_exec_answers_close(false);
  auto t = driver.attach(spec.environment_id, 80, 24);
  ASSERT_TRUE(testing::eventually([&] { return api.open_execs() == 1; }, 5s));
  const auto start = std::chrono::steady_clock::now();
  t.reset();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
  EXPECT_TRUE(testing::eventually([&] { return api.open_execs() == 0; }, 5s)) << "the connection was kept";
  driver.destroy(spec.environment_id);
}

TEST(KubeDriver, RidesOutApiServerErrorsExpiredWatchesAndRestarts) {
  StandinApiServer api({.auto_run = false});
  KubeDriver driver(endpoint_of(api, 1000ms), options());

  // 5xx and 429 on create are retried.
  EnvironmentSpec a = spec_for();
  api.fail_next(2, 503, "POST /api/v1/namespaces/exam-sessions/pods");
  api.fail_next(1, 429, "POST /apis/networking.k8s.io");
  auto created = create_async(driver, a, 20s);
  ASSERT_TRUE(testing::eventually([&] { return api.pod(kNs, a.name).has_value(); }, 10s));
  // The watch expires (410 Gone): the driver looks again and watches anew.
  ASSERT_TRUE(testing::eventually([&] { return api.open_watches() == 1; }, 5s));
  const auto watches = [&] {
    size_t n = 0;
    for (const auto& r : api.requests()) n += r.find("watch=true") != std::string::npos;
    return n;
  };
  const size_t before = watches();
  api.expire_watches();
  ASSERT_TRUE(testing::eventually([&] { return watches() > before && api.open_watches() == 1; }, 5s))
      << "no new watch after 410";
  // The API server goes away and comes back.
  api.stop();
  std::this_thread::sleep_for(1500ms);
  api.start();
  ASSERT_TRUE(testing::eventually([&] { return api.open_watches() == 1; }, 10s)) << "no watch after the restart";
  api.set_running(kNs, a.name);
  ASSERT_EQ(created.wait_for(10s), std::future_status::ready);
  EXPECT_EQ(created.get(), "no error");

  // A create whose answer is lost (timeout) is retried; the 409 that follows is its own pod.
  EnvironmentSpec b = spec_for();
  api.delay_next(1, 1500ms, "POST /api/v1/namespaces/exam-sessions/pods");
  auto slow = create_async(driver, b, 20s);
  ASSERT_TRUE(testing::eventually([&] { return api.pod(kNs, b.name).has_value(); }, 10s));
  api.set_running(kNs, b.name);
  ASSERT_EQ(slow.wait_for(10s), std::future_status::ready);
  EXPECT_EQ(slow.get(), "no error");

  // Someone else's pod of the same name is a conflict, and is left alone.
  EnvironmentSpec c = spec_for(a.session_id);
  EXPECT_EQ(reason_of([&] { driver.create(c, std::chrono::steady_clock::now() + 5s); }),
            "ENVIRONMENT_CREATE_FAILED: a pod named " + a.name + " already exists");
  EXPECT_TRUE(driver.alive(a.environment_id));

  // Unavailable is not "gone": reconcile must not take it for a lost sandbox.
  api.fail_next(1, 500, "GET /api/v1/namespaces/exam-sessions/pods");
  EXPECT_EQ(reason_of([&] { driver.alive(a.environment_id); }).rfind("BACKEND_UNAVAILABLE", 0), 0u);
  api.stop();
  EXPECT_EQ(reason_of([&] { driver.list(); }).rfind("BACKEND_UNAVAILABLE", 0), 0u);
  api.start();
  EXPECT_TRUE(driver.alive(a.environment_id));
}

TEST(KubeDriver, FindsTheApiServerInClusterAndRefusesAWrongToken) {
  StandinApiServer api;
  const std::string url = api.url();
  const auto colon = url.rfind(':');
  setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1", 1);
  setenv("KUBERNETES_SERVICE_PORT", url.substr(colon + 1).c_str(), 1);
  environment::KubeSettings in_cluster;
  in_cluster.token_file = api.token_file();
  in_cluster.ca_file = api.ca_file();
  KubeDriver driver(environment::kube_endpoint(in_cluster), options());
  unsetenv("KUBERNETES_SERVICE_HOST");
  unsetenv("KUBERNETES_SERVICE_PORT");
  const EnvironmentSpec spec = spec_for();
  driver.create(spec, std::chrono::steady_clock::now() + 10s);
  EXPECT_TRUE(driver.alive(spec.environment_id));

  // A kubeconfig naming the CA by path works too; a wrong token does not.
  environment::KubeSettings by_path;
  by_path.kubeconfig = api.write_kubeconfig(false);
  EXPECT_TRUE(KubeDriver(environment::kube_endpoint(by_path), options()).alive(spec.environment_id));
  environment::KubeEndpoint wrong = environment::kube_endpoint(by_path);
  wrong.token = "not-the-token";
  wrong.token_file.clear();
  KubeDriver refused(wrong, options());
  const std::string reason = reason_of([&] { refused.create(spec_for(), std::chrono::steady_clock::now() + 5s); });
  EXPECT_NE(reason.find("401"), std::string::npos) << reason;

  // Settings that cannot work say what is missing.
  EXPECT_EQ(reason_of([] { environment::kube_endpoint({}); }).rfind("INVALID_ARGUMENT", 0), 0u);
  testing::TempDir dir;
  const auto kubeconfig_error = [&](const std::string& yaml) {
    std::ofstream(dir.path() + "/kubeconfig") << yaml;
    environment::KubeSettings s;
    s.kubeconfig = dir.path() + "/kubeconfig";
    try {
      environment::kube_endpoint(s);
    } catch (const Error& e) {
      return e.code() + ": " + e.what();
    }
    return std::string("accepted");
  };
  const std::string path = dir.path() + "/kubeconfig";
  EXPECT_EQ(kubeconfig_error("clusters: []\n"), "INVALID_ARGUMENT: kubeconfig " + path + ": no current-context");
  const std::string context =
      "current-context: c\ncontexts: [{name: c, context: {cluster: k, user: u}}]\nusers: [{name: u, user: {token: t}}]\n";
  EXPECT_EQ(kubeconfig_error(context + "clusters: [{name: k, cluster: {server: 'http://127.0.0.1:1'}}]\n"),
            "INVALID_ARGUMENT: the Kubernetes API server must be an https:// URL: http://127.0.0.1:1");
  EXPECT_EQ(kubeconfig_error(context + "clusters: [{name: k, cluster: {server: 'https://127.0.0.1:6443'}}]\n"),
            "INVALID_ARGUMENT: kubeconfig " + path + ": the cluster has no certificate authority");
  EXPECT_EQ(kubeconfig_error(context + "clusters: [{name: other, cluster: {server: 'https://127.0.0.1'}}]\n"),
            "INVALID_ARGUMENT: kubeconfig " + path + ": no clusters entry named 'k'");
}

// The environment service with driver=kubernetes: the CLI creates a pod, the
// terminal reaches its shell, destroy removes it.
TEST(KubeDriver, TheEnvironmentServiceRunsOnIt) {
  StandinApiServer api;
  testing::Platform platform(testing::shared_postgres().create_database(),
                             {{"EXAMISO_ENVIRONMENT_DRIVER", "kubernetes"},
                              {"EXAMISO_ENVIRONMENT_KUBE_CONFIG", api.write_kubeconfig(true)}});
  platform.start("lifecycle");
  platform.start("environment");
  const Json session = Json::parse(platform.sh("session-lifecycle transition --to created --user-id " + new_uuid() +
                                               " --exam-id a1b2c3d4-e5f6-7890-abcd-ef1234567890").out);
  const std::string id = session["session_id"];
  const auto r = platform.sh("execution-environment create --session-id " + id);
  ASSERT_EQ(r.exit_code, 0) << r.err << platform.logs();
  const Json env = Json::parse(r.out);
  EXPECT_EQ(env["pod_name"], "exam-" + id.substr(0, 8));
  EXPECT_EQ(env["pod_namespace"], kNs);
  EXPECT_TRUE(api.pod(kNs, env["pod_name"]));

  testing::TerminalClient t(platform.address("environment"), id);
  ASSERT_TRUE(t.send("echo \"in-pod-$((6*7))\"\n"));
  EXPECT_TRUE(t.wait_for("in-pod-42", 10s)) << t.output() << platform.logs();
  t.detach();

  // A pod of ours that no record knows (a crash between create and record):
  // reconcile finds it by label and deletes it; the session's pod stays.
  environment::KubeClient client(endpoint_of(api));
  const std::string orphan = "exam-orphan1";
  const auto made = client.post("/api/v1/namespaces/exam-sessions/pods",
                                {{"metadata",
                                  {{"name", orphan},
                                   {"labels",
                                    {{"app.kubernetes.io/managed-by", "examiso"},
                                     {"examiso.io/environment-id", new_uuid()}}}}},
                                 {"spec", {{"containers", Json::array({{{"name", "exam"}, {"image", "x"}}})}}}});
  ASSERT_TRUE(made.ok()) << made.describe();
  EXPECT_TRUE(testing::eventually([&] { return !api.pod(kNs, orphan); }, 10s)) << platform.logs();
  EXPECT_TRUE(api.pod(kNs, env["pod_name"]));

  ASSERT_EQ(platform.sh("execution-environment destroy --session-id " + id).exit_code, 0) << platform.logs();
  EXPECT_TRUE(nothing_left(api));
}

// A late starter keeps their pod to their deadline. The pod is made with room
// for its exam to start (unstarted_seconds, 5 s here); once the session's
// clock runs, the environment service (as it reconciles) shortens the pod's
// backstop to the session's deadline and the grace. Before, a pod lived the
// exam's duration and the grace from its own start: 5 s here, so a candidate
// starting 3 s in lost the last 2 s of their exam.
TEST(KubeDriver, ALateStartersPodLivesToTheirDeadline) {
  StandinApiServer api;
  testing::Platform platform(testing::shared_postgres().create_database(),
                             {{"EXAMISO_ENVIRONMENT_DRIVER", "kubernetes"},
                              {"EXAMISO_ENVIRONMENT_KUBE_CONFIG", api.write_kubeconfig(true)},
                              {"EXAMISO_ENVIRONMENT_KUBE_DEADLINE_GRACE_SECONDS", "1"},
                              {"EXAMISO_ENVIRONMENT_KUBE_UNSTARTED_SECONDS", "5"}});
  platform.start("lifecycle");
  platform.start("environment");
  const std::string id = platform.create_session("00000000-0000-4000-8000-000000000010");  // four seconds
  const auto r = platform.sh("execution-environment create --session-id " + id);
  ASSERT_EQ(r.exit_code, 0) << r.err << platform.logs();
  const std::string pod = Json::parse(r.out)["pod_name"];
  const auto started = parse_iso8601((*api.pod(kNs, pod))["status"]["startTime"].get<std::string>());
  ASSERT_TRUE(started);
  const auto pod_deadline = [&] { return (*api.pod(kNs, pod))["spec"]["activeDeadlineSeconds"].get<int64_t>(); };
  EXPECT_EQ(pod_deadline(), 4 + 5 + 1);
  ASSERT_EQ(platform.sh("session-lifecycle transition --to ready --session-id " + id).exit_code, 0);
  std::this_thread::sleep_until(*started + 3s);
  ASSERT_EQ(platform.sh("session-lifecycle transition --to running --session-id " + id).exit_code, 0);
  // The deadline is 7 s after the pod's start (and a part of a second): with the grace, 9.
  EXPECT_TRUE(testing::eventually([&] { return pod_deadline() == 9; }, 5s)) << pod_deadline() << platform.logs();
  std::this_thread::sleep_until(*started + 6s);
  EXPECT_EQ((*api.pod(kNs, pod))["status"]["phase"], "Running") << platform.logs();
  testing::TerminalClient t(platform.address("environment"), id);
  ASSERT_TRUE(t.send("echo \"still-$((6*7))\"\n"));
  EXPECT_TRUE(t.wait_for("still-42", 5s)) << t.output();
  // The backstop holds: the pod ends after the deadline and its grace.
  EXPECT_TRUE(testing::eventually([&] { return (*api.pod(kNs, pod))["status"]["phase"] == "Failed"; }, 10s));
  EXPECT_GE(std::chrono::system_clock::now(), *started + 9s);
}

}  // namespace
}  // namespace examiso
