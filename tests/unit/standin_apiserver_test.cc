// The stand-in API server speaks the real protocol: proven with clients that
// know nothing of it (cpp-httplib for REST and watches, a Beast WebSocket for
// exec), both checking its certificate against its CA.
#include "tests/support/standin_apiserver.h"

#include <gtest/gtest.h>
#include <httplib.h>
#include <openssl/evp.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <condition_variable>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

#include "tests/support/eventually.h"

namespace examiso::testing {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;
using namespace std::chrono_literals;

constexpr const char* kNs = "exam-sessions";
constexpr const char* kPods = "/api/v1/namespaces/exam-sessions/pods";
constexpr const char* kPolicies = "/apis/networking.k8s.io/v1/namespaces/exam-sessions/networkpolicies";

int port_of(const StandinApiServer& api) { return std::stoi(api.url().substr(api.url().rfind(':') + 1)); }

std::unique_ptr<httplib::SSLClient> client_for(const StandinApiServer& api, const std::string& token) {
  auto c = std::make_unique<httplib::SSLClient>("127.0.0.1", port_of(api));
  c->set_ca_cert_path(api.ca_file());
  c->enable_server_certificate_verification(true);
  if (!token.empty()) c->set_bearer_token_auth(token);
  c->set_connection_timeout(5);
  c->set_read_timeout(5);
  return c;
}

struct Answer {
  int status = 0;  // 0: no answer
  Json body;
};

Answer call(const StandinApiServer& api, const std::string& method, const std::string& path, const Json& body = nullptr,
            const std::string& token = "standin-token") {
  auto c = client_for(api, token);
  const std::string payload = body.is_null() ? "" : body.dump();
  httplib::Result r = method == "GET"    ? c->Get(path)
                      : method == "POST" ? c->Post(path, payload, "application/json")
                      : method == "PUT"  ? c->Put(path, payload, "application/json")
                                         : c->Delete(path, payload, "application/json");
  if (!r) return {};
  return {r->status, Json::parse(r->body, nullptr, false)};
}

Json pod_manifest(const std::string& name, const std::string& app = "exam") {
  return {{"apiVersion", "v1"},
          {"kind", "Pod"},
          {"metadata", {{"name", name}, {"labels", {{"app", app}}}}},
          {"spec", {{"containers", Json::array({{{"name", "exam"}, {"image", "debian:12"}}})}}}};
}

// A watch read line by line in the background, as a client library does.
class Watch final {
 public:
  Watch(const StandinApiServer& api, const std::string& target) : client_(client_for(api, api.token())) {
    client_->set_read_timeout(30);
    thread_ = std::thread([this, target] {
      std::string pending;
      client_->Get(
          target,
          [this](const httplib::Response& r) {
            std::lock_guard lock(mutex_);
            status_ = r.status;
            return true;
          },
          [&](const char* data, size_t n) {
            pending.append(data, n);
            for (size_t nl; (nl = pending.find('\n')) != std::string::npos; pending.erase(0, nl + 1)) {
              std::lock_guard lock(mutex_);
              events_.push_back(Json::parse(pending.substr(0, nl)));
            }
            return true;
          });
      std::lock_guard lock(mutex_);
      ended_ = true;
    });
  }
  ~Watch() {
    client_->stop();
    thread_.join();
  }

  std::vector<Json> events() {
    std::lock_guard lock(mutex_);
    return events_;
  }
  // The types of the events so far, "ADDED MODIFIED ...".
  std::string types() {
    std::string out;
    for (const auto& e : events()) out += (out.empty() ? "" : " ") + e["type"].get<std::string>();
    return out;
  }
  bool ended() {
    std::lock_guard lock(mutex_);
    return ended_;
  }
  int status() {
    std::lock_guard lock(mutex_);
    return status_;
  }
  void leave() { client_->stop(); }

 private:
  std::unique_ptr<httplib::SSLClient> client_;
  std::mutex mutex_;
  std::vector<Json> events_;
  int status_ = 0;
  bool ended_ = false;
  std::thread thread_;
};

std::string query_escape(const std::string& text) {
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '/') {
      out += static_cast<char>(c);
    } else {
      char hex[4];
      std::snprintf(hex, sizeof hex, "%%%02X", c);
      out += hex;
    }
  }
  return out;
}

std::string exec_target(const std::string& pod, const std::vector<std::string>& command, const std::string& flags) {
  std::string target = std::string(kPods) + "/" + pod + "/exec?";
  for (const auto& part : command) target += "command=" + query_escape(part) + "&";
  return target + flags;
}

// A pods/exec client: the WebSocket over TLS (the name "localhost" checked),
// channel-prefixed binary messages in both directions.
class ExecClient final {
 public:
  ExecClient(const StandinApiServer& api, const std::string& target,
             const std::string& protocols = "v5.channel.k8s.io, v4.channel.k8s.io")
      : tls_(ssl::context::tls_client), ws_(net::make_strand(io_), tls_) {
    tls_.load_verify_file(api.ca_file());
    tls_.set_verify_mode(ssl::verify_peer);
    tls_.set_verify_callback(ssl::host_name_verification("localhost"));
    beast::get_lowest_layer(ws_).connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port_of(api)));
    ws_.next_layer().handshake(ssl::stream_base::client);
    const std::string bearer = "Bearer " + api.token();
    ws_.set_option(websocket::stream_base::decorator([bearer, protocols](websocket::request_type& req) {
      req.set(beast::http::field::authorization, bearer);
      req.set(beast::http::field::sec_websocket_protocol, protocols);
    }));
    // Asynchronously: Boost 1.74's synchronous handshake drops the answer of a declined upgrade.
    websocket::response_type response;
    beast::error_code ec;
    ws_.async_handshake(response, "localhost:" + std::to_string(port_of(api)), target,
                        [&ec](beast::error_code e) { ec = e; });
    io_.run();
    io_.restart();
    status_ = static_cast<int>(response.result_int());
    if (ec) {
      refusal_ = Json::parse(response.body(), nullptr, false);
      return;
    }
    protocol_ = std::string(response[beast::http::field::sec_websocket_protocol]);
    ws_.binary(true);
    read_next();
    thread_ = std::thread([this] { io_.run(); });
  }

  ~ExecClient() {
    if (!thread_.joinable()) return;
    net::post(ws_.get_executor(), [this] {
      if (!closed_) ws_.async_close(websocket::close_code::normal, [](beast::error_code) {});
    });
    wait_closed(2s);
    io_.stop();
    thread_.join();
  }

  int http_status() const { return status_; }  // 101 when upgraded
  const Json& refusal() const { return refusal_; }
  const std::string& protocol() const { return protocol_; }

  void send(uint8_t channel, const std::string& data) {
    std::string m(1, static_cast<char>(channel));
    m += data;
    net::post(ws_.get_executor(), [this, m = std::move(m)] {
      writes_.push_back(m);
      if (writes_.size() == 1) write_next();
    });
  }

  bool wait_for(uint8_t channel, const std::string& needle, std::chrono::milliseconds within = 10s) {
    std::unique_lock lock(mutex_);
    return cv_.wait_for(lock, within, [&] { return output_[channel].find(needle) != std::string::npos; });
  }
  bool wait_closed(std::chrono::milliseconds within = 10s) {
    std::unique_lock lock(mutex_);
    return cv_.wait_for(lock, within, [&] { return closed_; });
  }
  std::string output(uint8_t channel) {
    std::lock_guard lock(mutex_);
    return output_[channel];
  }
  Json status() {  // channel 3
    std::lock_guard lock(mutex_);
    return Json::parse(output_[3], nullptr, false);
  }
  websocket::close_code close_code() {
    std::lock_guard lock(mutex_);
    return close_code_;
  }

 private:
  void read_next() {
    ws_.async_read(buffer_, [this](beast::error_code ec, size_t) {
      std::lock_guard lock(mutex_);
      if (ec) {
        closed_ = true;
        close_code_ = static_cast<websocket::close_code>(ws_.reason().code);
        cv_.notify_all();
        return;
      }
      const std::string m = beast::buffers_to_string(buffer_.data());
      buffer_.consume(buffer_.size());
      if (!m.empty()) output_[static_cast<uint8_t>(m[0])] += m.substr(1);
      cv_.notify_all();
      net::post(ws_.get_executor(), [this] { read_next(); });
    });
  }

  void write_next() {
    ws_.async_write(net::buffer(writes_.front()), [this](beast::error_code ec, size_t) {
      writes_.pop_front();
      if (!ec && !writes_.empty()) write_next();
    });
  }

  net::io_context io_;
  ssl::context tls_;
  websocket::stream<beast::ssl_stream<beast::tcp_stream>> ws_;
  beast::flat_buffer buffer_;
  std::deque<std::string> writes_;
  int status_ = 0;
  Json refusal_;
  std::string protocol_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::map<uint8_t, std::string> output_;
  bool closed_ = false;
  websocket::close_code close_code_ = websocket::close_code::none;
  std::thread thread_;
};

std::string read_file(const std::string& path);

// Running (a zombie waiting for init is not).
bool alive(int pid) {
  const std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
  const auto paren = stat.rfind(')');
  return paren != std::string::npos && paren + 2 < stat.size() && stat[paren + 2] != 'Z';
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(StandinApiServer, PodsAreCreatedReadListedAndDeletedAsTheApiServerDoes) {
  StandinApiServer api;
  const Answer created = call(api, "POST", kPods, pod_manifest("exam-1"));
  ASSERT_EQ(created.status, 201) << created.body;
  const Json& meta = created.body["metadata"];
  EXPECT_EQ(created.body["kind"], "Pod");
  EXPECT_EQ(meta["namespace"], kNs);
  EXPECT_EQ(meta["uid"].get<std::string>().size(), 36u);
  EXPECT_FALSE(meta["resourceVersion"].get<std::string>().empty());
  EXPECT_EQ(meta["creationTimestamp"].get<std::string>().back(), 'Z');
  EXPECT_EQ(created.body["status"]["phase"], "Pending");

  const Answer again = call(api, "POST", kPods, pod_manifest("exam-1"));
  EXPECT_EQ(again.status, 409);
  EXPECT_EQ(again.body["kind"], "Status");
  EXPECT_EQ(again.body["reason"], "AlreadyExists");
  EXPECT_EQ(again.body["message"], "pods \"exam-1\" already exists");
  EXPECT_EQ(again.body["details"]["name"], "exam-1");
  Json nameless = pod_manifest("x");
  nameless["metadata"].erase("name");
  EXPECT_EQ(call(api, "POST", kPods, nameless).body["reason"], "Invalid");

  // It runs by itself (auto_run), as a kubelet would make it.
  ASSERT_TRUE(eventually(
      [&] { return call(api, "GET", std::string(kPods) + "/exam-1").body["status"]["phase"] == "Running"; }, 5s));
  const Json running = *api.pod(kNs, "exam-1");
  bool ready = false;
  for (const auto& c : running["status"]["conditions"]) ready |= c["type"] == "Ready" && c["status"] == "True";
  EXPECT_TRUE(ready) << running;
  EXPECT_EQ(running["status"]["containerStatuses"][0]["ready"], true);
  EXPECT_GT(std::stoull(running["metadata"]["resourceVersion"].get<std::string>()),
            std::stoull(meta["resourceVersion"].get<std::string>()));

  ASSERT_EQ(call(api, "POST", kPods, pod_manifest("exam-2", "other")).status, 201);
  const Answer all = call(api, "GET", kPods);
  EXPECT_EQ(all.body["kind"], "PodList");
  EXPECT_EQ(all.body["apiVersion"], "v1");
  EXPECT_FALSE(all.body["metadata"]["resourceVersion"].get<std::string>().empty());
  EXPECT_EQ(all.body["items"].size(), 2u);
  const Answer labelled = call(api, "GET", std::string(kPods) + "?labelSelector=app%3Dexam");
  ASSERT_EQ(labelled.body["items"].size(), 1u);
  EXPECT_EQ(labelled.body["items"][0]["metadata"]["name"], "exam-1");
  EXPECT_EQ(call(api, "GET", std::string(kPods) + "?labelSelector=app%3Dexam,tier%3Dx").body["items"].size(), 0u);
  const Answer named = call(api, "GET", std::string(kPods) + "?fieldSelector=metadata.name%3Dexam-2");
  ASSERT_EQ(named.body["items"].size(), 1u);
  EXPECT_EQ(named.body["items"][0]["metadata"]["name"], "exam-2");
  EXPECT_EQ(api.pods(kNs).size(), 2u);

  const Answer deleted = call(api, "DELETE", std::string(kPods) + "/exam-1",
                              {{"propagationPolicy", "Foreground"}, {"gracePeriodSeconds", 0}});
  EXPECT_EQ(deleted.status, 200);
  EXPECT_TRUE(deleted.body["metadata"].contains("deletionTimestamp")) << deleted.body;
  EXPECT_TRUE(eventually([&] { return !api.pod(kNs, "exam-1"); }, 2s));
  const Answer gone = call(api, "GET", std::string(kPods) + "/exam-1");
  EXPECT_EQ(gone.status, 404);
  EXPECT_EQ(gone.body["reason"], "NotFound");
  EXPECT_EQ(gone.body["message"], "pods \"exam-1\" not found");
  EXPECT_EQ(call(api, "DELETE", std::string(kPods) + "/exam-1").status, 404);
}

TEST(StandinApiServer, NetworkPoliciesToo) {
  StandinApiServer api;
  const Json policy = {
      {"apiVersion", "networking.k8s.io/v1"},
      {"kind", "NetworkPolicy"},
      {"metadata", {{"name", "env-1"}, {"labels", {{"app.kubernetes.io/managed-by", "examiso"}}}}},
      {"spec", {{"podSelector", {{"matchLabels", {{"env", "1"}}}}}, {"policyTypes", {"Ingress", "Egress"}}}}};
  const Answer created = call(api, "POST", kPolicies, policy);
  ASSERT_EQ(created.status, 201) << created.body;
  EXPECT_EQ(created.body["spec"], policy["spec"]);
  EXPECT_EQ(call(api, "POST", kPolicies, policy).status, 409);
  EXPECT_EQ(call(api, "GET", std::string(kPolicies) + "/env-1").body["metadata"]["uid"],
            created.body["metadata"]["uid"]);
  const Answer list =
      call(api, "GET", std::string(kPolicies) + "?labelSelector=app.kubernetes.io%2Fmanaged-by%3Dexamiso");
  EXPECT_EQ(list.body["kind"], "NetworkPolicyList");
  EXPECT_EQ(list.body["items"].size(), 1u);
  ASSERT_TRUE(api.network_policy(kNs, "env-1"));

  const Answer deleted = call(api, "DELETE", std::string(kPolicies) + "/env-1");
  EXPECT_EQ(deleted.status, 200);
  EXPECT_EQ(deleted.body["status"], "Success");
  EXPECT_FALSE(api.network_policy(kNs, "env-1"));  // at once
  const Answer gone = call(api, "GET", std::string(kPolicies) + "/env-1");
  EXPECT_EQ(gone.status, 404);
  EXPECT_EQ(gone.body["message"], "networkpolicies.networking.k8s.io \"env-1\" not found");
}

TEST(StandinApiServer, RefusesWhatTheApiServerRefuses) {
  StandinApiServer api;
  const Answer anonymous = call(api, "GET", kPods, nullptr, "");
  EXPECT_EQ(anonymous.status, 401);
  EXPECT_EQ(anonymous.body["reason"], "Unauthorized");
  EXPECT_EQ(call(api, "GET", kPods, nullptr, "not-the-token").status, 401);
  EXPECT_EQ(call(api, "GET", "/api/v1/namespaces/exam-sessions/secrets").status, 404);
  const Answer put = call(api, "PUT", std::string(kPods) + "/x", pod_manifest("x"));
  EXPECT_EQ(put.status, 405);
  EXPECT_EQ(put.body["reason"], "MethodNotAllowed");
  const auto requests = api.requests();
  ASSERT_EQ(requests.size(), 4u);
  EXPECT_EQ(requests[0], "GET /api/v1/namespaces/exam-sessions/pods");
  EXPECT_EQ(requests[3], "PUT /api/v1/namespaces/exam-sessions/pods/x");
}

TEST(StandinApiServer, AWatchSeesAPodsLife) {
  StandinApiServer api({.auto_run = false});
  Watch watch(api, std::string(kPods) + "?watch=true&fieldSelector=metadata.name%3Dexam-1");
  ASSERT_TRUE(eventually([&] { return api.open_watches() == 1; }, 5s));
  ASSERT_EQ(call(api, "POST", kPods, pod_manifest("exam-2")).status, 201);  // not selected
  ASSERT_EQ(call(api, "POST", kPods, pod_manifest("exam-1")).status, 201);
  api.set_running(kNs, "exam-1");
  ASSERT_EQ(call(api, "DELETE", std::string(kPods) + "/exam-1", {{"propagationPolicy", "Foreground"}}).status, 200);
  ASSERT_TRUE(eventually([&] { return watch.types() == "ADDED MODIFIED MODIFIED DELETED"; }, 5s)) << watch.types();
  EXPECT_EQ(watch.status(), 200);
  const auto events = watch.events();
  EXPECT_EQ(events[0]["object"]["metadata"]["name"], "exam-1");
  EXPECT_EQ(events[1]["object"]["status"]["phase"], "Running");
  EXPECT_TRUE(events[2]["object"]["metadata"].contains("deletionTimestamp"));

  // A client that leaves is noticed.
  watch.leave();
  EXPECT_TRUE(eventually([&] { return api.open_watches() == 0; }, 5s));
}

TEST(StandinApiServer, WatchesResumeFromAResourceVersionUntilTheyExpire) {
  StandinApiServer api({.auto_run = false});
  const Answer created = call(api, "POST", kPods, pod_manifest("exam-1"));
  const std::string rv = created.body["metadata"]["resourceVersion"];
  api.set_running(kNs, "exam-1");

  // From the create's version: only what came after it.
  Watch resumed(api, std::string(kPods) + "?watch=1&resourceVersion=" + rv);
  ASSERT_TRUE(eventually([&] { return resumed.types() == "MODIFIED"; }, 5s)) << resumed.types();
  // Without one: the current state first.
  Watch fresh(api, std::string(kPods) + "?watch=true");
  ASSERT_TRUE(eventually([&] { return fresh.types() == "ADDED"; }, 5s)) << fresh.types();
  EXPECT_EQ(fresh.events()[0]["object"]["status"]["phase"], "Running");

  api.expire_watches();
  ASSERT_TRUE(eventually([&] { return resumed.ended() && fresh.ended(); }, 5s));
  const Json error = resumed.events().back();
  EXPECT_EQ(error["type"], "ERROR");
  EXPECT_EQ(error["object"]["kind"], "Status");
  EXPECT_EQ(error["object"]["code"], 410);
  EXPECT_EQ(error["object"]["reason"], "Expired");
  EXPECT_EQ(api.open_watches(), 0);

  Watch stale(api, std::string(kPods) + "?watch=true&resourceVersion=" + rv);
  ASSERT_TRUE(eventually([&] { return stale.ended(); }, 5s));
  EXPECT_EQ(stale.types(), "ERROR");
  EXPECT_EQ(stale.events()[0]["object"]["code"], 410);

  // A watch from now is fine; close_watches just ends it.
  const std::string now = call(api, "GET", kPods).body["metadata"]["resourceVersion"];
  Watch current(api, std::string(kPods) + "?watch=true&resourceVersion=" + now);
  ASSERT_TRUE(eventually([&] { return api.open_watches() == 1; }, 5s));
  api.close_watches();
  ASSERT_TRUE(eventually([&] { return current.ended(); }, 5s));
  EXPECT_EQ(current.types(), "");
}

TEST(StandinApiServer, FailsAndDelaysOnRequest) {
  StandinApiServer api;
  api.fail_next(1, 503, "POST /api/v1/namespaces/exam-sessions/pods");
  const Answer unavailable = call(api, "POST", kPods, pod_manifest("exam-1"));
  EXPECT_EQ(unavailable.status, 503);
  EXPECT_EQ(unavailable.body["reason"], "ServiceUnavailable");
  EXPECT_FALSE(api.pod(kNs, "exam-1"));
  EXPECT_EQ(call(api, "POST", kPods, pod_manifest("exam-1")).status, 201);

  // Carried out at once, answered too late for this client.
  api.delay_next(1, 1500ms, "POST");
  auto impatient = client_for(api, api.token());
  impatient->set_read_timeout(0, 300000);
  EXPECT_FALSE(impatient->Post(kPods, pod_manifest("exam-2").dump(), "application/json"));
  EXPECT_TRUE(api.pod(kNs, "exam-2"));
}

TEST(StandinApiServer, GoesDownAndComesBackOnTheSamePort) {
  StandinApiServer api;
  ASSERT_EQ(call(api, "POST", kPods, pod_manifest("exam-1")).status, 201);
  Watch watch(api, std::string(kPods) + "?watch=true");
  ASSERT_TRUE(eventually([&] { return api.open_watches() == 1; }, 5s));
  const std::string url = api.url();
  api.stop();
  EXPECT_TRUE(eventually([&] { return watch.ended(); }, 5s)) << "the watch's connection was not dropped";
  EXPECT_EQ(api.open_watches(), 0);
  EXPECT_EQ(call(api, "GET", kPods).status, 0);
  api.start();
  EXPECT_EQ(api.url(), url);
  EXPECT_EQ(call(api, "GET", std::string(kPods) + "/exam-1").status, 200);
}

TEST(StandinApiServer, WritesAKubeconfigAndATokenFile) {
  StandinApiServer api({.token = "a-token"});
  EXPECT_EQ(read_file(api.token_file()), "a-token\n");
  const std::string ca = read_file(api.ca_file());
  EXPECT_NE(ca.find("BEGIN CERTIFICATE"), std::string::npos);
  const std::string by_path = read_file(api.write_kubeconfig(false));
  EXPECT_NE(by_path.find("server: " + api.url()), std::string::npos) << by_path;
  EXPECT_NE(by_path.find("certificate-authority: " + api.ca_file()), std::string::npos) << by_path;
  EXPECT_NE(by_path.find("token: a-token"), std::string::npos) << by_path;
  EXPECT_NE(by_path.find("current-context: "), std::string::npos) << by_path;
  const std::string embedded = read_file(api.write_kubeconfig(true));
  const std::string key = "certificate-authority-data: ";
  const auto at = embedded.find(key);
  ASSERT_NE(at, std::string::npos) << embedded;
  const std::string b64 = embedded.substr(at + key.size(), embedded.find('\n', at) - at - key.size());
  std::string decoded(b64.size(), '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(decoded.data()),
                                reinterpret_cast<const unsigned char*>(b64.data()), static_cast<int>(b64.size()));
  ASSERT_GT(n, 0);
  EXPECT_EQ(decoded.substr(0, ca.size()), ca);
}

TEST(StandinApiServer, ExecRunsTheCommandAndReportsItsExitCode) {
  StandinApiServer api;
  ASSERT_EQ(call(api, "POST", kPods, pod_manifest("exam-1")).status, 201);
  ASSERT_TRUE(eventually([&] { return (*api.pod(kNs, "exam-1"))["status"]["phase"] == "Running"; }, 5s));

  {
    ExecClient exec(
        api, exec_target("exam-1", {"/bin/sh", "-c", "echo hi; echo oops >&2; exit 7"}, "stdout=true&stderr=true"));
    ASSERT_EQ(exec.http_status(), 101) << exec.refusal();
    EXPECT_EQ(exec.protocol(), "v5.channel.k8s.io");
    ASSERT_TRUE(exec.wait_closed());
    EXPECT_EQ(exec.output(1), "hi\n");
    EXPECT_EQ(exec.output(2), "oops\n");
    const Json status = exec.status();
    EXPECT_EQ(status["status"], "Failure") << status;
    EXPECT_EQ(status["reason"], "NonZeroExitCode");
    EXPECT_EQ(status["message"],
              "command terminated with non-zero exit code: error executing command [/bin/sh -c echo hi; echo oops >&2; "
              "exit 7], exit code 7");
    EXPECT_EQ(status["details"]["causes"][0]["reason"], "ExitCode");
    EXPECT_EQ(status["details"]["causes"][0]["message"], "7");
    EXPECT_EQ(exec.close_code(), websocket::close_code::normal);
  }
  {
    // The pod's filesystem outlives one exec; HOME and HOSTNAME are the pod's.
    ExecClient write(api, exec_target("exam-1",
                                      {"sh", "-c",
                                       "echo kept > file; echo \"$HOSTNAME\"; test \"$PWD\" = \"$HOME\" && test -d "
                                       "\"$TMPDIR\" && test \"$TMPDIR\" != /tmp"},
                                      "stdout=true&stderr=true"));
    ASSERT_TRUE(write.wait_closed());
    EXPECT_EQ(write.output(1), "exam-1\n");
    EXPECT_EQ(write.status(), Json({{"metadata", Json::object()}, {"status", "Success"}}));
    ExecClient read(api, exec_target("exam-1", {"cat", "file"}, "stdout=true"));
    ASSERT_TRUE(read.wait_closed());
    EXPECT_EQ(read.output(1), "kept\n");
  }
  {
    // v5: closing channel 0 ends the process's stdin.
    ExecClient cat(api, exec_target("exam-1", {"cat"}, "stdin=true&stdout=true"));
    cat.send(0, "to and fro");
    ASSERT_TRUE(cat.wait_for(1, "to and fro"));
    cat.send(255, std::string(1, '\0'));
    ASSERT_TRUE(cat.wait_closed());
    EXPECT_EQ(cat.status()["status"], "Success");
  }
  {
    ExecClient missing(api, exec_target("exam-1", {"no-such-command"}, "stdout=true"));
    ASSERT_TRUE(missing.wait_closed());
    EXPECT_EQ(missing.status()["reason"], "InternalError");
    EXPECT_NE(missing.status()["message"].get<std::string>().find("executable file not found in $PATH"),
              std::string::npos);
  }
  // Refused before any upgrade: a pod that is not there, or not running.
  ExecClient absent(api, exec_target("exam-9", {"true"}, "stdout=true"));
  EXPECT_EQ(absent.http_status(), 404);
  EXPECT_EQ(absent.refusal()["reason"], "NotFound");
  api.set_pod_status(kNs, "exam-1", {{"phase", "Pending"}});
  ExecClient pending(api, exec_target("exam-1", {"true"}, "stdout=true"));
  EXPECT_EQ(pending.http_status(), 400);
  EXPECT_NE(pending.refusal()["message"].get<std::string>().find("pod is not running"), std::string::npos);
}

TEST(StandinApiServer, ExecWithATerminalResizesAndFallsBackToV4) {
  for (const std::vector<std::string>& supported : {std::vector<std::string>{"v5.channel.k8s.io", "v4.channel.k8s.io"},
                                                    std::vector<std::string>{"v4.channel.k8s.io"}}) {
    StandinApiServer api;
    api.set_exec_protocols(supported);
    ASSERT_EQ(call(api, "POST", kPods, pod_manifest("exam-1")).status, 201);
    ASSERT_TRUE(eventually([&] { return (*api.pod(kNs, "exam-1"))["status"]["phase"] == "Running"; }, 5s));
    ExecClient shell(api, exec_target("exam-1", {"/bin/bash"}, "stdin=true&stdout=true&tty=true"));
    ASSERT_EQ(shell.http_status(), 101) << shell.refusal();
    EXPECT_EQ(shell.protocol(), supported.front());
    shell.send(0, "echo $((6*7))\n");
    EXPECT_TRUE(shell.wait_for(1, "42")) << shell.output(1);
    shell.send(4, R"({"Width":101,"Height":33})");
    shell.send(0, "stty size\n");
    EXPECT_TRUE(shell.wait_for(1, "33 101")) << shell.output(1);
    shell.send(0, "exit 3\n");
    ASSERT_TRUE(shell.wait_closed());
    EXPECT_EQ(shell.status()["details"]["causes"][0]["message"], "3") << shell.output(3);
  }
  // A client that speaks only v5 to a server that speaks only v4 is refused.
  StandinApiServer api;
  api.set_exec_protocols({"v4.channel.k8s.io"});
  ASSERT_EQ(call(api, "POST", kPods, pod_manifest("exam-1")).status, 201);
  ASSERT_TRUE(eventually([&] { return (*api.pod(kNs, "exam-1"))["status"]["phase"] == "Running"; }, 5s));
  ExecClient v5_only(api, exec_target("exam-1", {"true"}, "stdout=true"), "v5.channel.k8s.io");
  EXPECT_EQ(v5_only.http_status(), 400);
}

TEST(StandinApiServer, AClientThatHangsUpEndsTheProcessAndADeletedPodItsProcesses) {
  StandinApiServer api;
  ASSERT_EQ(call(api, "POST", kPods, pod_manifest("exam-1")).status, 201);
  ASSERT_TRUE(eventually([&] { return (*api.pod(kNs, "exam-1"))["status"]["phase"] == "Running"; }, 5s));
  {
    ExecClient sleeper(
        api, exec_target("exam-1", {"sh", "-c", "echo $$ > pid; echo started; exec sleep 600"}, "stdout=true"));
    ASSERT_TRUE(sleeper.wait_for(1, "started"));
  }  // closes the WebSocket
  ExecClient pid(api, exec_target("exam-1", {"cat", "pid"}, "stdout=true"));
  ASSERT_TRUE(pid.wait_closed());
  const std::string first = pid.output(1).substr(0, pid.output(1).find('\n'));
  ASSERT_FALSE(first.empty());
  EXPECT_TRUE(eventually([&] { return !alive(std::stoi(first)); }, 5s)) << "the process outlived its client";

  // A daemon in its own session (as a tmux server is) stays when its exec ends...
  ExecClient daemon(api,
                    exec_target("exam-1", {"sh", "-c", "setsid sleep 600 >/dev/null 2>&1 & echo $!"}, "stdout=true"));
  ASSERT_TRUE(daemon.wait_closed());
  const int daemon_pid = std::stoi(daemon.output(1));
  EXPECT_TRUE(alive(daemon_pid));
  ExecClient running(api, exec_target("exam-1", {"sh", "-c", "echo started; exec sleep 600"}, "stdout=true"));
  ASSERT_TRUE(running.wait_for(1, "started"));
  // ... and goes with the pod, like every process of it.
  ASSERT_EQ(call(api, "DELETE", std::string(kPods) + "/exam-1").status, 200);
  EXPECT_TRUE(running.wait_closed()) << "the pod went, its exec did not";
  EXPECT_TRUE(eventually([&] { return !alive(daemon_pid); }, 5s)) << "the pod went, its daemon did not";
}

}  // namespace
}  // namespace examiso::testing
