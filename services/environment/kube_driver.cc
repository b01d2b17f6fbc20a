#include "services/environment/kube_driver.h"

#include <algorithm>
#include <thread>

#include "common/files.h"
#include "common/errors.h"
#include "common/log.h"
#include "common/url.h"
#include "common/uuid.h"
#include "services/environment/sandbox/frames.h"

namespace examiso::environment {
namespace {

constexpr const char* kManagedBy = "app.kubernetes.io/managed-by";
constexpr const char* kEnvironmentLabel = "examiso.io/environment-id";
constexpr const char* kSessionLabel = "examiso.io/session-id";
constexpr const char* kContainer = "exam";
constexpr const char* kHome = "/home/candidate";
// The keeper's place in a pod: its /tmp (an emptyDir), or TMPDIR where set.
constexpr const char* kKeeperDir = "d=\"${TMPDIR:-/tmp}/.examiso\"; ";
// The candidate's shell, as the keeper starts it (and again when it exits): it
// reports itself started on fd 3, then a login bash, or sh.
constexpr const char* kShell =
    "echo up >&3; exec 3>&-; cd; if command -v bash >/dev/null 2>&1; then exec bash -l; fi; exec sh -l";

[[noreturn]] void create_failed(const std::string& reason) {
  throw Error("ENVIRONMENT_CREATE_FAILED", "Environment could not be created: " + reason, Json{{"reason", reason}});
}

[[noreturn]] void unavailable(const KubeResponse& r) {
  throw Error("BACKEND_UNAVAILABLE", "The Kubernetes API server did not answer: " + r.describe());
}

bool retryable(const KubeResponse& r) { return r.status == 0 || r.status == 429 || r.status >= 500; }

std::string str(const Json& j, const char* key) {
  return j.is_object() && j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : std::string();
}

const Json& at(const Json& j, const char* key) {
  static const Json empty = Json::object();
  return j.is_object() && j.contains(key) ? j[key] : empty;
}

std::string label(const Json& object, const char* name) { return str(at(at(object, "metadata"), "labels"), name); }

std::string name_of(const Json& object) { return str(at(object, "metadata"), "name"); }

bool deleting(const Json& pod) { return at(pod, "metadata").contains("deletionTimestamp"); }

bool is_ready(const Json& pod) {
  const Json& status = at(pod, "status");
  if (str(status, "phase") != "Running") return false;
  for (const auto& c : at(status, "conditions"))
    if (str(c, "type") == "Ready") return str(c, "status") == "True";
  return false;
}

// Why a pod will not become ready, when it is clear that it will not: its
// image cannot be pulled, no node can take it, its container keeps dying.
std::optional<std::string> failure_of(const Json& pod) {
  const Json& status = at(pod, "status");
  const std::string phase = str(status, "phase");
  if (phase == "Failed" || phase == "Succeeded") {
    const std::string message = str(status, "message");
    return "the environment's container ended (" + phase + (message.empty() ? "" : ": " + message) + ")";
  }
  for (const auto& c : at(status, "conditions")) {
    if (str(c, "type") == "PodScheduled" && str(c, "status") == "False" && str(c, "reason") == "Unschedulable")
      return "no node can run the environment: " + str(c, "message");
  }
  for (const auto& cs : at(status, "containerStatuses")) {
    const Json& waiting = at(at(cs, "state"), "waiting");
    const std::string reason = str(waiting, "reason");
    const std::string message = str(waiting, "message");
    const std::string detail = reason + (message.empty() ? "" : ": " + message);
    if (reason == "ErrImagePull" || reason == "ImagePullBackOff" || reason == "InvalidImageName" ||
        reason == "ErrImageNeverPull")
      return "the exam image could not be pulled (" + detail + ")";
    if (reason == "CrashLoopBackOff") return "the environment's container keeps crashing (" + detail + ")";
    if (reason == "CreateContainerConfigError" || reason == "CreateContainerError" || reason == "RunContainerError")
      return "the environment's container could not be started (" + detail + ")";
    if (at(at(cs, "state"), "terminated").is_object() && !at(at(cs, "state"), "terminated").empty())
      return "the environment's container ended (exit " +
             std::to_string(at(at(cs, "state"), "terminated").value("exitCode", -1)) + ")";
  }
  return std::nullopt;
}

// An exec of `command` (no TTY): its stdout, stderr when asked, stdin when asked.
std::string exec_query(const std::vector<std::string>& command, bool with_stdin, bool with_stderr) {
  std::string q = "?container=" + std::string(kContainer) + "&stdout=true&stderr=" + (with_stderr ? "true" : "false") +
                  "&stdin=" + (with_stdin ? "true" : "false") + "&tty=false";
  for (const auto& part : command) q += "&command=" + url_encode(part);
  return q;
}

// The keeper's terminal through an exec of `examiso-sandbox --attach`: the
// keeper's frames both ways, as the local driver's socket carries them.
// Destroyed, it closes the exec stream: the attach client ends, the shell
// goes on in the keeper.
class KubeTerminal final : public Terminal {
 public:
  explicit KubeTerminal(std::unique_ptr<KubeExec> exec) : exec_(std::move(exec)) {}

  std::optional<std::string> read(std::chrono::milliseconds timeout) override {
    if (ended_) return std::nullopt;
    const auto chunk = exec_->read(timeout);
    if (chunk) {
      reader_.feed(*chunk);
    } else {
      ended_ = true;
    }
    std::string out = absorb(reader_, ended_);
    if (out.empty() && ended_) return std::nullopt;
    return out;
  }
  int wait_fd() const override { return exec_->wait_fd(); }
  bool send(std::string_view frame) override { return exec_->send(0, frame); }

 private:
  std::unique_ptr<KubeExec> exec_;
  sandbox::FrameReader reader_;
  bool ended_ = false;
};

}  // namespace

KubeDriver::KubeDriver(KubeEndpoint endpoint, KubeDriverOptions options)
    : client_(std::move(endpoint)), o_(std::move(options)) {}

std::string KubeDriver::pods() const { return "/api/v1/namespaces/" + o_.pod_namespace + "/pods"; }

std::string KubeDriver::policies() const {
  return "/apis/networking.k8s.io/v1/namespaces/" + o_.pod_namespace + "/networkpolicies";
}

Json KubeDriver::pod_manifest(const EnvironmentSpec& s) const {
  const Json labels = {{kManagedBy, "examiso"}, {kEnvironmentLabel, s.environment_id}, {kSessionLabel, s.session_id}};
  const std::string memory = std::to_string(s.memory_limit_bytes);
  const std::string cpu = std::to_string(s.cpu_millis) + "m";
  const std::string cpu_request = std::to_string(std::min<int64_t>(s.cpu_millis, 100)) + "m";
  // The node's disk: the home and /tmp (each also capped by its sizeLimit),
  // and 64 MiB for the container's logs and the keeper's copy; past it the
  // kubelet evicts the pod, not its neighbours.
  const std::string disk = std::to_string(s.home_size_bytes + s.tmp_size_bytes + (64 << 20));
  Json spec = {
      {"restartPolicy", "Never"},
      {"automountServiceAccountToken", false},
      {"enableServiceLinks", false},
      {"hostname", s.name},
      {"activeDeadlineSeconds", s.duration_seconds + o_.unstarted_seconds + o_.deadline_grace_seconds},
      {"terminationGracePeriodSeconds", 2},
      {"securityContext",
       {{"runAsNonRoot", true},
        {"runAsUser", 1000},
        {"runAsGroup", 1000},
        {"fsGroup", 1000},
        {"seccompProfile", {{"type", "RuntimeDefault"}}}}},
      {"containers",
       Json::array({{
           {"name", kContainer},
           {"image", s.image.empty() ? o_.default_image : s.image},
           // The container only has to stay up (and reap): the keeper and its
           // shells come through exec.
           {"command", {"/bin/sh", "-c", "trap 'exit 0' TERM; while :; do sleep 3600 & wait $!; done"}},
           {"workingDir", kHome},
           {"env", Json::array({{{"name", "HOME"}, {"value", kHome}}, {{"name", "USER"}, {"value", "candidate"}}})},
           {"resources",
            {{"limits", {{"memory", memory}, {"cpu", cpu}, {"ephemeral-storage", disk}}},
             {"requests", {{"memory", memory}, {"cpu", cpu_request}, {"ephemeral-storage", disk}}}}},
           {"securityContext",
            {{"allowPrivilegeEscalation", false},
             {"readOnlyRootFilesystem", true},
             {"runAsNonRoot", true},
             {"capabilities", {{"drop", {"ALL"}}}}}},
           {"volumeMounts",
            Json::array({{{"name", "home"}, {"mountPath", kHome}}, {{"name", "tmp"}, {"mountPath", "/tmp"}}})},
       }})},
      {"volumes",
       Json::array({{{"name", "home"}, {"emptyDir", {{"sizeLimit", std::to_string(s.home_size_bytes)}}}},
                    {{"name", "tmp"}, {"emptyDir", {{"sizeLimit", std::to_string(s.tmp_size_bytes)}}}}})},
  };
  if (!s.runtime_class.empty()) spec["runtimeClassName"] = s.runtime_class;
  return {{"apiVersion", "v1"},
          {"kind", "Pod"},
          {"metadata", {{"name", s.name}, {"namespace", o_.pod_namespace}, {"labels", labels}}},
          {"spec", spec}};
}

// Nothing in, nothing out, except what the exam allows ("CIDR" or "CIDR:port").
Json KubeDriver::network_policy_manifest(const EnvironmentSpec& s) const {
  Json egress = Json::array();
  for (const auto& allow : s.egress_allow) {
    const auto colon = allow.rfind(':');
    const bool has_port = colon != std::string::npos && allow.find('/') != std::string::npos && colon > allow.find('/');
    Json rule = {{"to", Json::array({{{"ipBlock", {{"cidr", has_port ? allow.substr(0, colon) : allow}}}}})}};
    if (has_port)
      rule["ports"] = Json::array({{{"protocol", "TCP"}, {"port", std::stoi(allow.substr(colon + 1))}}});
    egress.push_back(rule);
  }
  return {{"apiVersion", "networking.k8s.io/v1"},
          {"kind", "NetworkPolicy"},
          {"metadata",
           {{"name", "env-" + s.environment_id},
            {"namespace", o_.pod_namespace},
            {"labels", {{kManagedBy, "examiso"}, {kEnvironmentLabel, s.environment_id}}}}},
          {"spec",
           {{"podSelector", {{"matchLabels", {{kEnvironmentLabel, s.environment_id}}}}},
            {"policyTypes", {"Ingress", "Egress"}},
            {"ingress", Json::array()},
            {"egress", egress}}}};
}

KubeResponse KubeDriver::with_retries(const std::function<KubeResponse()>& call,
                                      std::chrono::steady_clock::time_point deadline) {
  auto pause = std::chrono::milliseconds(100);
  for (;;) {
    KubeResponse r = call();
    if (!retryable(r) || std::chrono::steady_clock::now() + pause >= deadline) return r;
    log::warn("kube_api_retry", {{"status", r.status}, {"error", r.describe()}});
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(2000));
  }
}

void KubeDriver::create(const EnvironmentSpec& spec, std::chrono::steady_clock::time_point deadline) {
  try {
    const auto policy = with_retries([&] { return client_.post(policies(), network_policy_manifest(spec)); }, deadline);
    if (!policy.ok() && policy.status != 409)  // 409: made by an earlier try of this same environment
      create_failed("its network policy could not be created: " + policy.describe());
    const auto pod = with_retries([&] { return client_.post(pods(), pod_manifest(spec)); }, deadline);
    Json created = pod.body;
    if (pod.status == 409) {
      // Ours from an earlier try of this environment, or someone else's pod.
      const auto existing = client_.get(pods() + "/" + spec.name);
      if (!existing.ok() || label(existing.body, kEnvironmentLabel) != spec.environment_id)
        create_failed("a pod named " + spec.name + " already exists");
      created = existing.body;
    } else if (!pod.ok()) {
      create_failed("the pod could not be created: " + pod.describe());
    }
    await_ready(created, deadline);
    if (!spec.setup_script.empty()) run_setup(spec.name, spec.setup_script, deadline);
    start_keeper(spec.name, deadline);
  } catch (const std::exception& failure) {
    try {
      destroy(spec.environment_id);
    } catch (const std::exception& e) {
      // Reconcile finds what is left by its labels.
      log::warn("kube_cleanup_failed", {{"environment_id", spec.environment_id}, {"message", e.what()}});
    }
    if (dynamic_cast<const Error*>(&failure)) throw;
    create_failed(failure.what());
  }
}

void KubeDriver::await_ready(const Json& pod, std::chrono::steady_clock::time_point deadline) {
  if (const auto why = failure_of(pod)) create_failed(*why);
  if (is_ready(pod)) return;
  const std::string name = name_of(pod);
  std::string version = str(at(pod, "metadata"), "resourceVersion");
  const std::string watch_path =
      pods() + "?watch=true&fieldSelector=" + url_encode("metadata.name=" + name) + "&resourceVersion=";
  for (;;) {
    if (std::chrono::steady_clock::now() >= deadline) create_failed("the pod was not ready in time");
    bool ready = false;
    std::string failure;
    const auto watched = client_.watch(
        watch_path + url_encode(version),
        [&](const Json& event) {
          const std::string type = str(event, "type");
          const Json& pod = at(event, "object");
          if (type == "ERROR") return false;  // 410 Gone and the like: look again below
          if (const std::string v = str(at(pod, "metadata"), "resourceVersion"); !v.empty()) version = v;
          if (type == "DELETED") {
            failure = "the pod was deleted";
          } else if (const auto why = failure_of(pod)) {
            failure = *why;
          } else {
            ready = is_ready(pod);
          }
          return !ready && failure.empty();
        },
        deadline);
    if (ready) return;
    if (!failure.empty()) create_failed(failure);
    // The watch ended (expired, dropped, the API server went away): see the pod
    // as it is now, and watch again from there.
    if (watched.status == 0) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    const auto now = with_retries([&] { return client_.get(pods() + "/" + name); }, deadline);
    if (now.status == 404) create_failed("the pod was deleted");
    if (!now.ok() && !retryable(now)) create_failed("the API server refused: " + now.describe());
    if (!now.ok()) continue;
    if (const auto why = failure_of(now.body)) create_failed(*why);
    if (is_ready(now.body)) return;
    version = str(at(now.body, "metadata"), "resourceVersion");
  }
}

std::pair<int, std::string> KubeDriver::run_in_pod(const std::string& name, const std::string& what,
                                                   const std::vector<std::string>& command, const std::string& input,
                                                   std::chrono::steady_clock::time_point deadline) {
  std::unique_ptr<KubeExec> exec;
  try {
    exec = KubeExec::open(client_.endpoint(),
                          pods() + "/" + name + "/exec" + exec_query(command, !input.empty(), true));
  } catch (const Error& e) {
    create_failed(what + " could not be started: " + e.details().value("reason", std::string(e.what())));
  }
  for (size_t at = 0; at < input.size(); at += 32 * 1024)
    if (!exec->send(0, std::string_view(input).substr(at, 32 * 1024))) break;
  std::string output;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) create_failed(what + " did not finish in time");
    const auto chunk = exec->read(std::min(left, std::chrono::milliseconds(500)));
    if (!chunk) break;
    output += *chunk;
    if (output.size() > 4096) output.erase(0, output.size() - 4096);
  }
  return {exec_exit_code(exec->status()), output};
}

void KubeDriver::start_keeper(const std::string& name, std::chrono::steady_clock::time_point deadline) {
  std::call_once(keeper_read_, [&] {
    keeper_ = read_file(o_.keeper_binary).value_or("");
  });
  if (keeper_.empty()) create_failed("the keeper binary " + o_.keeper_binary + " cannot be read");
  const std::string install = std::string(kKeeperDir) + "mkdir -p \"$d\" && head -c " + std::to_string(keeper_.size()) +
                              " > \"$d/keeper.part\" && chmod 700 \"$d/keeper.part\" && mv \"$d/keeper.part\" \"$d/keeper\"";
  if (const auto [code, output] = run_in_pod(name, "copying the keeper", {"/bin/sh", "-c", install}, keeper_, deadline);
      code != 0)
    create_failed("the keeper could not be copied into the pod (exit " + std::to_string(code) + "): " + output);
  // The keeper detaches and says "ready" once its shell runs; the shell gets
  // the exec's HOME and USER (the keeper gives its shells nothing but PATH).
  const std::string start =
      std::string(kKeeperDir) + "exec \"$d/keeper\" --socket \"$d/terminal.sock\" --observe-socket \"$d/observe.sock\""
      " --pid-file \"$d/keeper.pid\"" +
      " --replay-bytes " + std::to_string(o_.replay_bytes) +
      " --output-rate " + std::to_string(static_cast<int64_t>(o_.output_rate)) +
      " -- /bin/sh -c \"export HOME='$HOME' USER='${USER:-candidate}' TERM=xterm-256color; $0\" 2>>\"$d/keeper.log\"";
  const auto [code, output] = run_in_pod(name, "the keeper", {"/bin/sh", "-c", start, kShell}, "", deadline);
  if (output.find("ready") == std::string::npos)
    create_failed("the keeper did not start (exit " + std::to_string(code) + "): " + output);
}

void KubeDriver::run_setup(const std::string& name, const std::string& script,
                           std::chrono::steady_clock::time_point deadline) {
  auto [code, output] = run_in_pod(name, "the setup script", {"/bin/sh", "-c", script}, "", deadline);
  if (code == 0) return;
  while (!output.empty() && (output.back() == '\n' || output.back() == '\r')) output.pop_back();
  if (output.size() > 500) output.erase(0, output.size() - 500);
  create_failed("the setup script failed (exit " + (code < 0 ? std::string("unknown") : std::to_string(code)) + ")" +
                (output.empty() ? "" : ": " + output));
}

std::optional<Json> KubeDriver::pod_of(const std::string& environment_id) {
  if (!is_uuid(environment_id)) throw Error("INVALID_ARGUMENT", "not an environment id");
  const auto r = client_.get(pods() + "?labelSelector=" + url_encode(std::string(kEnvironmentLabel) + "=" + environment_id));
  if (!r.ok()) unavailable(r);
  for (const auto& pod : at(r.body, "items"))
    if (!deleting(pod)) return pod;
  return std::nullopt;
}

// There and not ended: a pod briefly not Ready (a node's heartbeat late, the
// kubelet restarting) is not a lost session.
bool KubeDriver::alive(const std::string& environment_id) {
  const auto pod = pod_of(environment_id);
  if (!pod) return false;
  const std::string phase = str(at(*pod, "status"), "phase");
  return phase != "Failed" && phase != "Succeeded";
}

void KubeDriver::destroy(const std::string& environment_id) {
  if (!is_uuid(environment_id)) throw Error("INVALID_ARGUMENT", "not an environment id");
  const Json foreground = {{"apiVersion", "v1"},
                           {"kind", "DeleteOptions"},
                           {"propagationPolicy", "Foreground"},
                           {"gracePeriodSeconds", 2}};
  const auto deadline = std::chrono::steady_clock::now() + client_.endpoint().timeout;
  const auto listed = with_retries(
      [&] {
        return client_.get(pods() + "?labelSelector=" +
                           url_encode(std::string(kEnvironmentLabel) + "=" + environment_id));
      },
      deadline);
  if (!listed.ok()) unavailable(listed);
  for (const auto& pod : at(listed.body, "items")) {
    const auto r = with_retries([&] { return client_.del(pods() + "/" + name_of(pod), foreground); }, deadline);
    if (!r.ok() && r.status != 404) unavailable(r);
  }
  const auto r = with_retries([&] { return client_.del(policies() + "/env-" + environment_id, foreground); }, deadline);
  if (!r.ok() && r.status != 404) unavailable(r);
}

std::vector<std::string> KubeDriver::list() {
  const auto r = client_.get(pods() + "?labelSelector=" + url_encode(std::string(kManagedBy) + "=examiso"));
  if (!r.ok()) unavailable(r);
  std::vector<std::string> ids;
  for (const auto& pod : at(r.body, "items")) {
    const std::string id = label(pod, kEnvironmentLabel);
    if (is_uuid(id) && !deleting(pod)) ids.push_back(id);
  }
  const auto policies_listed =
      client_.get(policies() + "?labelSelector=" + url_encode(std::string(kManagedBy) + "=examiso"));
  if (!policies_listed.ok()) unavailable(policies_listed);
  // A policy left without its pod (a create interrupted between the two) is an orphan too.
  for (const auto& policy : at(policies_listed.body, "items")) {
    const std::string id = label(policy, kEnvironmentLabel);
    if (is_uuid(id) && std::find(ids.begin(), ids.end(), id) == ids.end()) ids.push_back(id);
  }
  return ids;
}

std::unique_ptr<Terminal> KubeDriver::attach(const std::string& environment_id, uint16_t cols, uint16_t rows) {
  auto terminal = connect_to(environment_id, "terminal.sock");
  if (cols && rows) terminal->resize(cols, rows);
  return terminal;
}

std::unique_ptr<Terminal> KubeDriver::open_observer(const std::string& environment_id) {
  return connect_to(environment_id, "observe.sock");
}

// An exec of the keeper's client on one of its sockets.
std::unique_ptr<Terminal> KubeDriver::connect_to(const std::string& environment_id, const std::string& socket) {
  const auto pod = pod_of(environment_id);
  if (!pod || !is_ready(*pod)) throw Error("ENVIRONMENT_NOT_FOUND", "The environment's pod is not running");
  const std::string client = std::string(kKeeperDir) + "exec \"$d/keeper\" --attach \"$d/" + socket + "\"";
  return std::make_unique<KubeTerminal>(KubeExec::open(
      client_.endpoint(), pods() + "/" + name_of(*pod) + "/exec" + exec_query({"/bin/sh", "-c", client}, true, false)));
}

void KubeDriver::follow_deadline(const std::string& environment_id, TimePoint deadline) {
  const auto pod = pod_of(environment_id);
  if (!pod) return;
  const auto started = parse_iso8601(str(at(*pod, "status"), "startTime"));
  if (!started) return;  // not started yet: looked at again later
  const auto left = std::chrono::duration_cast<std::chrono::seconds>(deadline - *started + std::chrono::seconds(1));
  const int64_t wanted = left.count() + o_.deadline_grace_seconds;
  const Json& current = at(at(*pod, "spec"), "activeDeadlineSeconds");
  // Shorter only: Kubernetes refuses a longer one.
  if (current.is_number_integer() && current.get<int64_t>() <= wanted) return;
  const auto r = client_.patch(pods() + "/" + name_of(*pod), {{"spec", {{"activeDeadlineSeconds", wanted}}}});
  if (!r.ok()) throw Error("BACKEND_UNAVAILABLE", "the pod's deadline could not be set: " + r.describe());
  log::info("pod_deadline_set", {{"environment_id", environment_id}, {"active_deadline_seconds", wanted}});
}

}  // namespace examiso::environment
