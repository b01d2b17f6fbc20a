#pragma once
// The `kubernetes` driver: a pod per environment in the sessions namespace,
// with a NetworkPolicy of its own, readiness followed by a watch, terminals
// through pods/exec. Pods are found again by label (never by the user's
// identity): app.kubernetes.io/managed-by=examiso, examiso.io/environment-id.
#include "services/environment/driver.h"
#include "services/environment/kube_client.h"

namespace examiso::environment {

struct KubeDriverOptions {
  std::string pod_namespace = "exam-sessions";
  // activeDeadlineSeconds = the exam's duration + this: a backstop should
  // every cleanup fail.
  int64_t deadline_grace_seconds = 900;
  std::string default_image = "docker.io/library/debian:12";
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

 private:
  Json pod_manifest(const EnvironmentSpec& spec) const;
  Json network_policy_manifest(const EnvironmentSpec& spec) const;
  std::string pods() const;
  std::string policies() const;
  // The environment's pod, by label; nullopt when there is none (or it is being deleted).
  std::optional<Json> pod_of(const std::string& environment_id);
  // Waits until the pod is ready; throws the classified reason otherwise.
  // `pod` as last seen (created or read).
  void await_ready(const Json& pod, std::chrono::steady_clock::time_point deadline);
  void run_setup(const std::string& name, const std::string& script, std::chrono::steady_clock::time_point deadline);
  KubeResponse with_retries(const std::function<KubeResponse()>& call, std::chrono::steady_clock::time_point deadline);

  KubeClient client_;
  KubeDriverOptions o_;
};

}  // namespace examiso::environment
