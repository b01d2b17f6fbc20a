#pragma once
// The `kubernetes` driver: a pod per environment in the sessions namespace,
// with a NetworkPolicy of its own, readiness followed by a watch, terminals
// through pods/exec. Pods are found again by label (never by the user's
// identity): app.kubernetes.io/managed-by=examiso, examiso.io/environment-id.
#include <mutex>

#include "services/environment/driver.h"
#include "services/environment/kube_client.h"

namespace examiso::environment {

struct KubeDriverOptions {
  std::string pod_namespace = "exam-sessions";
  // A pod's activeDeadlineSeconds, a backstop should every cleanup fail: the
  // exam's duration + unstarted_seconds + deadline_grace_seconds when it is
  // made; once the session's clock runs, its deadline + deadline_grace_seconds
  // (Kubernetes lets it be shortened, never lengthened).
  int64_t deadline_grace_seconds = 900;
  int64_t unstarted_seconds = 3600;
  std::string default_image = "docker.io/library/debian:12";
  // The keeper (examiso-sandbox, statically linked), copied into every pod: it
  // holds the candidate's shell, so that a reconnect finds the same shell and
  // its recent output whatever the exam image.
  std::string keeper_binary;
  size_t replay_bytes = 64 * 1024;
  double output_rate = 0;  // a terminal's output, bytes a second (the keeper's --output-rate); 0: no limit
};

class KubeDriver final : public SandboxDriver {
 public:
  KubeDriver(KubeEndpoint endpoint, KubeDriverOptions options);

  std::string name() const override { return "kubernetes"; }
  void create(const EnvironmentSpec& spec, std::chrono::steady_clock::time_point deadline) override;
  bool alive(const std::string& environment_id) override;
  void destroy(const std::string& environment_id) override;
  std::vector<std::string> list() override;
  std::unique_ptr<Terminal> attach(const std::string& environment_id, uint16_t cols, uint16_t rows) override;
  std::unique_ptr<Terminal> open_observer(const std::string& environment_id) override;
  bool follows_deadlines() const override { return true; }
  void follow_deadline(const std::string& environment_id, TimePoint deadline) override;

 private:
  Json pod_manifest(const EnvironmentSpec& spec) const;
  Json network_policy_manifest(const EnvironmentSpec& spec) const;
  std::string pods() const;
  std::string policies() const;
  // The environment's pod, by label; nullopt when there is none (or it is being deleted).
  std::optional<Json> pod_of(const std::string& environment_id);
  std::unique_ptr<Terminal> connect_to(const std::string& environment_id, const std::string& socket);
  // Waits until the pod is ready; throws the classified reason otherwise.
  // `pod` as last seen (created or read).
  void await_ready(const Json& pod, std::chrono::steady_clock::time_point deadline);
  // Runs `command` in the pod (stdin: `input`); its exit code and the tail of
  // its output. Throws ENVIRONMENT_CREATE_FAILED naming `what` when it
  // cannot run or does not end in time.
  std::pair<int, std::string> run_in_pod(const std::string& name, const std::string& what,
                                         const std::vector<std::string>& command, const std::string& input,
                                         std::chrono::steady_clock::time_point deadline);
  void run_setup(const std::string& name, const std::string& script, std::chrono::steady_clock::time_point deadline);
  // Copies the keeper into the pod and starts it there.
  void start_keeper(const std::string& name, std::chrono::steady_clock::time_point deadline);
  KubeResponse with_retries(const std::function<KubeResponse()>& call, std::chrono::steady_clock::time_point deadline);

  KubeClient client_;
  KubeDriverOptions o_;
  std::once_flag keeper_read_;
  std::string keeper_;  // the keeper binary's bytes
};

}  // namespace examiso::environment
