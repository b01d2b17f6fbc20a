#pragma once
// A client of the Kubernetes API server: where it is and how to authenticate
// (in-cluster service account, an explicit server, or a kubeconfig), REST calls
// and watches over HTTPS (cpp-httplib with OpenSSL), and the pods/exec
// WebSocket (kube_exec.cc, Boost.Beast).
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/json.h"

namespace examiso::environment {

struct KubeEndpoint {
  std::string host;
  int port = 443;
  std::string ca_pem;      // the CA that signed the server's certificate
  std::string token;       // a fixed bearer token, or
  std::string token_file;  // a file re-read before each request (rotated service-account tokens)
  std::chrono::milliseconds timeout{10000};

  std::string bearer() const;
};

struct KubeSettings {
  std::string kubeconfig;  // a kubeconfig file (its current context), or
  std::string server;      // https://host:port, with token_file and ca_file; empty: in-cluster
  std::string token_file = "/var/run/secrets/kubernetes.io/serviceaccount/token";
  std::string ca_file = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt";
  std::chrono::milliseconds timeout{10000};
};

// Where the API server is, from the settings (or KUBERNETES_SERVICE_HOST/PORT
// in a pod). Throws Error INVALID_ARGUMENT saying what is missing.
KubeEndpoint kube_endpoint(const KubeSettings& settings);

struct KubeResponse {
  int status = 0;  // HTTP status; 0: no answer (connection failed or timed out)
  Json body;       // the object, or a Status
  std::string error;  // transport error, when status is 0

  bool ok() const { return status >= 200 && status < 300; }
  // "404 NotFound: pods \"x\" not found", or the transport error.
  std::string describe() const;
};

class KubeClient {
 public:
  explicit KubeClient(KubeEndpoint endpoint) : e_(std::move(endpoint)) {}

  KubeResponse get(const std::string& path) { return call("GET", path, nullptr); }
  KubeResponse post(const std::string& path, const Json& body) { return call("POST", path, &body); }
  KubeResponse del(const std::string& path, const Json& body) { return call("DELETE", path, &body); }
  // A JSON merge patch (RFC 7386).
  KubeResponse patch(const std::string& path, const Json& body) { return call("PATCH", path, &body); }

  // Streams a watch: `on_event` gets each {"type", "object"} until it returns
  // false, the server ends the stream, or `until`. Returns how it ended.
  KubeResponse watch(const std::string& path, const std::function<bool(const Json&)>& on_event,
                     std::chrono::steady_clock::time_point until);

  const KubeEndpoint& endpoint() const { return e_; }

 private:
  KubeResponse call(const std::string& method, const std::string& path, const Json* body);

  KubeEndpoint e_;
};

// One exec stream (pods/exec over WebSocket, v5.channel.k8s.io or else
// v4.channel.k8s.io): channel 0 stdin, 1 stdout, 2 stderr, 3 the final
// status, 4 resize.
class KubeExec {
 public:
  // Throws Error ENVIRONMENT_NOT_FOUND when the API server refuses it.
  static std::unique_ptr<KubeExec> open(const KubeEndpoint& endpoint, const std::string& path_and_query);
  virtual ~KubeExec() = default;

  // Output of channels 1 and 2 as it comes; "" after `timeout`; nullopt once
  // the stream has ended (status() then holds channel 3's Status, if sent).
  virtual std::optional<std::string> read(std::chrono::milliseconds timeout) = 0;
  // Polls readable whenever read() would not wait.
  virtual int wait_fd() const = 0;
  virtual bool send(uint8_t channel, std::string_view data) = 0;
  virtual void close() = 0;
  virtual Json status() = 0;
};

// The exit code a channel-3 Status reports (0 for Success; -1 when unknown).
int exec_exit_code(const Json& status);

}  // namespace examiso::environment
