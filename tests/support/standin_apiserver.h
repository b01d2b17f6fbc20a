#pragma once
// A stand-in for the Kubernetes API server, which cannot run on these machines
// (the one stand-in the tests allow). It speaks the real protocol over TLS: the
// REST paths, JSON shapes and Status errors of pods and NetworkPolicies, the
// chunked watch event stream, and pods/exec over WebSocket (v5/v4
// channel.k8s.io). A pod's "container" is this machine: exec runs the command
// as a real process, in a per-pod directory that lives as long as the pod.
// A real API server's features beyond that subset are absent, not imitated.
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/json.h"

namespace examiso::testing {

class StandinApiServer final {
 public:
  struct Options {
    std::string token = "standin-token";      // the bearer token it accepts (401 Status otherwise)
    bool auto_run = true;                     // created pods go Running+Ready by themselves
    std::chrono::milliseconds run_after{30};  // ... this long after creation
  };

  StandinApiServer();
  explicit StandinApiServer(Options options);
  ~StandinApiServer();
  StandinApiServer(const StandinApiServer&) = delete;
  StandinApiServer& operator=(const StandinApiServer&) = delete;

  std::string url() const;      // "https://127.0.0.1:<port>"
  std::string ca_file() const;  // PEM of the CA that signed the server's certificate (127.0.0.1 and localhost)
  const std::string& token() const;
  std::string token_file() const;  // a file holding the token (like a service account's)
  // A kubeconfig (cluster, user, context, current-context) for this server;
  // `embed_ca`: certificate-authority-data rather than a certificate-authority path.
  std::string write_kubeconfig(bool embed_ca) const;

  // Objects as stored (the JSON the API returns), nullopt when absent.
  std::optional<Json> pod(const std::string& ns, const std::string& name);
  std::vector<Json> pods(const std::string& ns);
  std::optional<Json> network_policy(const std::string& ns, const std::string& name);
  std::vector<Json> network_policies(const std::string& ns);

  // Replaces a pod's .status as a kubelet would; watchers get MODIFIED. Throws
  // std::runtime_error when there is no such pod.
  void set_pod_status(const std::string& ns, const std::string& name, const Json& status);
  // Phase Running; Ready, ContainersReady, PodScheduled True; every container running and ready.
  void set_running(const std::string& ns, const std::string& name);

  // Which exec subprotocols it accepts, in the order it prefers them (default
  // v5 then v4); it picks the first one the client offers that is in this list.
  void set_exec_protocols(std::vector<std::string> protocols);
  // Whether execs answer the client's WebSocket close (default true); when not,
  // an exec ends only once its client drops the connection.
  void set_exec_answers_close(bool answers);
  // Exec processes running now.
  size_t open_execs();

  // Fault injection: the next `count` requests whose "METHOD /path?query"
  // contains `match` are answered `http_status` with the real Status body
  // (reason per code) and not carried out.
  void fail_next(int count, int http_status, const std::string& match = "");
  // The next `count` matching requests are carried out at once but answered
  // only after `delay` (a client's timeout then loses the answer).
  void delay_next(int count, std::chrono::milliseconds delay, const std::string& match = "");

  // Every open watch gets an ERROR event (410 Expired "too old resource
  // version") and ends; a later watch from an older resourceVersion gets the same.
  void expire_watches();
  void close_watches();  // open watches just end (as an API server's watch timeout does)
  void stop();           // stops listening and drops every connection (the API server is down)
  void start();          // listens again on the same port

  std::vector<std::string> requests();  // "METHOD /path?query" of every request, in order
  int open_watches();                   // watch streams open now

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace examiso::testing
