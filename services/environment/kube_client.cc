#include "services/environment/kube_client.h"

#include <httplib.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstdlib>

#include "common/files.h"
#include "common/errors.h"

namespace examiso::environment {
namespace {

std::string read_or_refuse(const std::string& path) {
  auto text = read_file(path);
  if (!text) throw Error("INVALID_ARGUMENT", "cannot read " + path);
  return std::move(*text);
}

std::string base64_decode(const std::string& text) {
  std::string clean;
  for (char c : text)
    if (!isspace(static_cast<unsigned char>(c))) clean += c;
  std::string out(clean.size() * 3 / 4 + 3, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(clean.data()), static_cast<int>(clean.size()));
  if (n < 0) throw Error("INVALID_ARGUMENT", "kubeconfig: certificate-authority-data is not base64");
  out.resize(static_cast<size_t>(n) - (clean.size() >= 2 && clean.substr(clean.size() - 2) == "==" ? 2
                                       : !clean.empty() && clean.back() == '=' ? 1 : 0));
  return out;
}

// "https://host:port" (port 443 when absent).
void set_server(KubeEndpoint& e, const std::string& server) {
  const std::string prefix = "https://";
  if (server.rfind(prefix, 0) != 0)
    throw Error("INVALID_ARGUMENT", "the Kubernetes API server must be an https:// URL: " + server);
  std::string rest = server.substr(prefix.size());
  if (const auto slash = rest.find('/'); slash != std::string::npos) rest.resize(slash);
  const auto bracket = rest.find(']');  // [IPv6]:port
  const auto colon = rest.rfind(':');
  if (colon != std::string::npos && (bracket == std::string::npos || colon > bracket)) {
    e.host = rest.substr(0, colon);
    e.port = std::atoi(rest.c_str() + colon + 1);
  } else {
    e.host = rest;
  }
  if (!e.host.empty() && e.host.front() == '[') e.host = e.host.substr(1, e.host.size() - 2);
  if (e.host.empty() || e.port <= 0 || e.port > 65535)
    throw Error("INVALID_ARGUMENT", "not a usable Kubernetes API server address: " + server);
}

// The current context's cluster and user.
KubeEndpoint from_kubeconfig(const std::string& path) {
  YAML::Node doc;
  try {
    doc = YAML::Load(read_or_refuse(path));
  } catch (const std::exception& e) {
    throw Error("INVALID_ARGUMENT", "kubeconfig " + path + ": " + e.what());
  }
  const auto named = [&](const char* list, const std::string& name) {
    for (const auto& n : doc[list])
      if (n["name"].as<std::string>("") == name) return n;
    throw Error("INVALID_ARGUMENT", "kubeconfig " + path + ": no " + list + " entry named '" + name + "'");
  };
  const std::string current = doc["current-context"].as<std::string>("");
  if (current.empty()) throw Error("INVALID_ARGUMENT", "kubeconfig " + path + ": no current-context");
  const YAML::Node context = named("contexts", current)["context"];
  const YAML::Node cluster = named("clusters", context["cluster"].as<std::string>(""))["cluster"];
  const YAML::Node user = named("users", context["user"].as<std::string>(""))["user"];
  KubeEndpoint e;
  set_server(e, cluster["server"].as<std::string>(""));
  if (cluster["certificate-authority-data"]) {
    e.ca_pem = base64_decode(cluster["certificate-authority-data"].as<std::string>());
  } else if (cluster["certificate-authority"]) {
    e.ca_pem = read_or_refuse(cluster["certificate-authority"].as<std::string>());
  } else {
    throw Error("INVALID_ARGUMENT", "kubeconfig " + path + ": the cluster has no certificate authority");
  }
  if (user["token"]) {
    e.token = user["token"].as<std::string>();
  } else if (user["tokenFile"]) {
    e.token_file = user["tokenFile"].as<std::string>();
  } else {
    throw Error("INVALID_ARGUMENT", "kubeconfig " + path + ": the user has no token (only token auth is supported)");
  }
  return e;
}

std::string reason_of(const KubeResponse& r) {
  if (r.body.is_object()) return r.body.value("reason", std::string());
  return "";
}

}  // namespace

std::string KubeEndpoint::bearer() const {
  if (!token_file.empty()) {
    std::string t = read_or_refuse(token_file);
    while (!t.empty() && isspace(static_cast<unsigned char>(t.back()))) t.pop_back();
    return t;
  }
  return token;
}

KubeEndpoint kube_endpoint(const KubeSettings& s) {
  KubeEndpoint e;
  if (!s.kubeconfig.empty()) {
    e = from_kubeconfig(s.kubeconfig);
  } else {
    std::string server = s.server;
    if (server.empty()) {
      const char* host = std::getenv("KUBERNETES_SERVICE_HOST");
      const char* port = std::getenv("KUBERNETES_SERVICE_PORT");
      if (!host || !*host)
        throw Error("INVALID_ARGUMENT",
                    "the kubernetes driver needs environment.kube_server or environment.kube_config outside a pod");
      server = "https://" + std::string(host) + ":" + (port && *port ? port : "443");
    }
    set_server(e, server);
    e.ca_pem = read_or_refuse(s.ca_file);
    e.token_file = s.token_file;
    e.bearer();  // readable now, or say so at start-up
  }
  e.timeout = s.timeout;
  return e;
}

std::string KubeResponse::describe() const {
  if (status == 0) return error.empty() ? "no answer from the API server" : error;
  std::string text = std::to_string(status);
  if (const std::string reason = reason_of(*this); !reason.empty()) text += " " + reason;
  if (body.is_object() && body.contains("message")) text += ": " + body.value("message", std::string());
  return text;
}

namespace {

std::unique_ptr<httplib::SSLClient> client_for(const KubeEndpoint& e) {
  auto c = std::make_unique<httplib::SSLClient>(e.host, e.port);
  c->enable_server_certificate_verification(true);
  BIO* bio = BIO_new_mem_buf(e.ca_pem.data(), static_cast<int>(e.ca_pem.size()));
  X509_STORE* store = X509_STORE_new();
  int loaded = 0;
  while (X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr)) {
    loaded += X509_STORE_add_cert(store, cert);
    X509_free(cert);
  }
  BIO_free(bio);
  if (!loaded) {
    X509_STORE_free(store);
    throw Error("INVALID_ARGUMENT", "the Kubernetes API server's CA certificate could not be read");
  }
  c->set_ca_cert_store(store);  // the client owns it now
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(e.timeout);
  const auto usec = std::chrono::duration_cast<std::chrono::microseconds>(e.timeout - seconds);
  c->set_connection_timeout(seconds.count(), usec.count());
  c->set_read_timeout(seconds.count(), usec.count());
  c->set_write_timeout(seconds.count(), usec.count());
  return c;
}

httplib::Headers headers_for(const KubeEndpoint& e) {
  return {{"Authorization", "Bearer " + e.bearer()}, {"Accept", "application/json"}};
}

KubeResponse response_of(const httplib::Result& r) {
  KubeResponse out;
  if (!r) {
    out.error = "the API server did not answer: " + httplib::to_string(r.error());
    return out;
  }
  out.status = r->status;
  out.body = Json::parse(r->body, nullptr, false);
  if (out.body.is_discarded()) out.body = Json{{"message", r->body.substr(0, 300)}};
  return out;
}

}  // namespace

KubeResponse KubeClient::call(const std::string& method, const std::string& path, const Json* body) {
  try {
    auto c = client_for(e_);
    const auto headers = headers_for(e_);
    const std::string payload = body ? body->dump() : "";
    if (method == "GET") return response_of(c->Get(path.c_str(), headers));
    if (method == "POST") return response_of(c->Post(path.c_str(), headers, payload, "application/json"));
    if (method == "PATCH")
      return response_of(c->Patch(path.c_str(), headers, payload, "application/merge-patch+json"));
    return response_of(c->Delete(path.c_str(), headers, payload, "application/json"));
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    KubeResponse out;
    out.error = e.what();
    return out;
  }
}

KubeResponse KubeClient::watch(const std::string& path, const std::function<bool(const Json&)>& on_event,
                               std::chrono::steady_clock::time_point until) {
  auto c = client_for(e_);
  // Quiet between events: the read waits at most until `until`.
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
  const auto wait = std::clamp<int64_t>(left.count(), 1, 300000);
  c->set_read_timeout(wait / 1000, (wait % 1000) * 1000);
  std::string pending;
  bool stopped = false;
  KubeResponse out;
  const auto r = c->Get(
      path.c_str(), headers_for(e_),
      [&](const httplib::Response& response) {
        out.status = response.status;
        return true;
      },
      [&](const char* data, size_t length) {
        pending.append(data, length);
        size_t nl;
        while ((nl = pending.find('\n')) != std::string::npos) {
          const std::string line = pending.substr(0, nl);
          pending.erase(0, nl + 1);
          if (line.empty()) continue;
          const Json event = Json::parse(line, nullptr, false);
          if (event.is_discarded()) continue;
          if (out.status >= 300) {
            out.body = event;  // an error answer, not an event stream
            continue;
          }
          if (!on_event(event)) {
            stopped = true;
            return false;
          }
        }
        return std::chrono::steady_clock::now() < until;
      });
  if (stopped) return out;
  if (!r && r.error() != httplib::Error::Canceled) out.error = "watch ended: " + httplib::to_string(r.error());
  if (out.status >= 300 && out.body.is_null()) out.body = Json::parse(pending, nullptr, false);
  return out;
}

int exec_exit_code(const Json& status) {
  if (!status.is_object()) return -1;
  if (status.value("status", std::string()) == "Success") return 0;
  if (status.contains("details") && status["details"].contains("causes")) {
    for (const auto& cause : status["details"]["causes"])
      if (cause.value("reason", std::string()) == "ExitCode") return std::atoi(cause.value("message", "-1").c_str());
  }
  return -1;
}

}  // namespace examiso::environment
