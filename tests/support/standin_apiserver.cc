// The stand-in Kubernetes API server: the cluster's state and its rules (a
// plain class, `Cluster`), the pods' "containers" (processes run by exec), and
// the HTTPS + WebSocket transport (Boost.Beast; the only Beast code of the
// stand-in, kept in this one translation unit because it compiles slowly).
#include "tests/support/standin_apiserver.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <pty.h>
#include <signal.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>

#include "common/clock.h"
#include "common/url.h"
#include "common/uuid.h"
#include "tests/support/http_client.h"
#include "tests/support/process.h"

namespace examiso::testing {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace ssl = net::ssl;
namespace fs = std::filesystem;
using tcp = net::ip::tcp;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;
using namespace std::chrono_literals;

constexpr const char* kPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
// In the environment of every process of a pod: how its processes are found when it goes.
constexpr const char* kPodMark = "STANDIN_POD_UID";
constexpr size_t kHistory = 2000;               // watch events kept for resuming watches
constexpr auto kPodGoneAfter = 20ms;            // a deleted pod's grace, shortened
constexpr size_t kBodyLimit = size_t{3} << 20;  // the API server's request size limit

// ---------------------------------------------------------------- small helpers

std::string rfc3339_now() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return std::string(s);
}

std::string base64(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<int>(bytes.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

void write_file(const std::string& path, const std::string& text, fs::perms perms = fs::perms(0644)) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
  fs::permissions(path, perms);
}

// Go's %v of a []string: [a b c].
std::string go_list(const std::vector<std::string>& items) {
  std::string out = "[";
  for (size_t i = 0; i < items.size(); ++i) out += (i ? " " : "") + items[i];
  return out + "]";
}

// ---------------------------------------------------------------- TLS material

struct TlsMaterial {
  std::string ca_pem, cert_pem, key_pem;
};

using KeyPtr = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;
using CertPtr = std::unique_ptr<X509, decltype(&X509_free)>;

void tls_check(bool ok, const std::string& what) {
  if (!ok) throw std::runtime_error("stand-in API server TLS: " + what);
}

KeyPtr new_key() {
  KeyPtr key(EVP_EC_gen("P-256"), EVP_PKEY_free);
  tls_check(key != nullptr, "cannot make a key");
  return key;
}

void add_extension(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  tls_check(ext != nullptr, std::string("bad extension ") + value);
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

// A certificate for `key` named `cn`, issued by `issuer` (itself when null).
CertPtr new_cert(EVP_PKEY* key, const char* cn, X509* issuer) {
  CertPtr cert(X509_new(), X509_free);
  X509_set_version(cert.get(), 2);
  uint64_t serial = 0;
  RAND_bytes(reinterpret_cast<unsigned char*>(&serial), sizeof serial);
  ASN1_INTEGER_set_uint64(X509_get_serialNumber(cert.get()), serial >> 1);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 30L * 24 * 3600);
  X509_set_pubkey(cert.get(), key);
  X509_NAME_add_entry_by_txt(X509_get_subject_name(cert.get()), "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(cn), -1, -1, 0);
  X509_set_issuer_name(cert.get(), X509_get_subject_name(issuer ? issuer : cert.get()));
  return cert;
}

template <class Write>
std::string pem_of(Write write) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
  tls_check(write(bio.get()) == 1, "cannot write PEM");
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

// A CA, and a server certificate it signed for 127.0.0.1 and localhost.
TlsMaterial make_tls() {
  KeyPtr ca_key = new_key(), server_key = new_key();
  CertPtr ca = new_cert(ca_key.get(), "standin-apiserver-ca", nullptr);
  add_extension(ca.get(), ca.get(), NID_basic_constraints, "critical,CA:TRUE");
  add_extension(ca.get(), ca.get(), NID_key_usage, "critical,keyCertSign,cRLSign,digitalSignature");
  add_extension(ca.get(), ca.get(), NID_subject_key_identifier, "hash");
  tls_check(X509_sign(ca.get(), ca_key.get(), EVP_sha256()) > 0, "cannot sign the CA");

  CertPtr server = new_cert(server_key.get(), "kube-apiserver", ca.get());
  add_extension(server.get(), ca.get(), NID_basic_constraints, "critical,CA:FALSE");
  add_extension(server.get(), ca.get(), NID_key_usage, "critical,digitalSignature");
  add_extension(server.get(), ca.get(), NID_ext_key_usage, "serverAuth");
  add_extension(server.get(), ca.get(), NID_subject_alt_name, "IP:127.0.0.1,DNS:localhost");
  add_extension(server.get(), ca.get(), NID_authority_key_identifier, "keyid:always");
  tls_check(X509_sign(server.get(), ca_key.get(), EVP_sha256()) > 0, "cannot sign the server certificate");

  TlsMaterial m;
  m.ca_pem = pem_of([&](BIO* b) { return PEM_write_bio_X509(b, ca.get()); });
  m.cert_pem = pem_of([&](BIO* b) { return PEM_write_bio_X509(b, server.get()); });
  m.key_pem = pem_of(
      [&](BIO* b) { return PEM_write_bio_PrivateKey(b, server_key.get(), nullptr, nullptr, 0, nullptr, nullptr); });
  return m;
}

// ---------------------------------------------------------------- API objects

struct Resource {
  int index;
  const char* plural;
  const char* kind;
  const char* list_kind;
  const char* api_version;
  const char* group;

  // As messages name it: pods, networkpolicies.networking.k8s.io
  std::string qualified() const { return *group ? std::string(plural) + "." + group : plural; }
  Json details(const std::string& name) const {
    Json d = {{"name", name}};
    if (*group) d["group"] = group;
    d["kind"] = plural;
    return d;
  }
};

constexpr Resource kPods{0, "pods", "Pod", "PodList", "v1", ""};
constexpr Resource kNetworkPolicies{
    1, "networkpolicies", "NetworkPolicy", "NetworkPolicyList", "networking.k8s.io/v1", "networking.k8s.io"};

struct ApiRequest {
  std::string method, target, path;
  std::vector<std::pair<std::string, std::string>> query;
  std::string authorization, content_type, body;
  bool upgrade = false;
  std::vector<std::string> ws_protocols;

  std::optional<std::string> param(const std::string& key) const {
    for (const auto& [k, v] : query)
      if (k == key) return v;
    return std::nullopt;
  }
  bool flag(const std::string& key) const {
    const auto v = param(key);
    return v && (*v == "true" || *v == "1");
  }
};

struct ApiResponse {
  int status = 200;
  Json body;
  std::string text;  // a body that is not JSON (health checks)
  Headers headers;
};

ApiResponse json_response(int status, Json body) { return {status, std::move(body), "", {}}; }

// A failure as the API server reports it: a v1 Status.
ApiResponse status_response(int code, const std::string& reason, const std::string& message,
                            const Json& details = nullptr) {
  Json s = {{"kind", "Status"},    {"apiVersion", "v1"}, {"metadata", Json::object()},
            {"status", "Failure"}, {"message", message}, {"reason", reason}};
  if (!details.is_null()) s["details"] = details;
  s["code"] = code;
  return json_response(code, std::move(s));
}

ApiResponse not_found(const Resource& res, const std::string& name) {
  return status_response(404, "NotFound", res.qualified() + " \"" + name + "\" not found", res.details(name));
}

ApiResponse bad_request(const std::string& message) { return status_response(400, "BadRequest", message); }

ApiResponse invalid(const Resource& res, const std::string& name, const std::string& field, const std::string& type,
                    const std::string& what) {
  Json details = res.details(name);
  details["kind"] = res.kind;
  details["causes"] = Json::array({{{"reason", type}, {"message", what}, {"field", field}}});
  return status_response(422, "Invalid", std::string(res.kind) + " \"" + name + "\" is invalid: " + field + ": " + what,
                         details);
}

Json expired_status(uint64_t asked, uint64_t oldest) {
  return status_response(410, "Expired",
                         "too old resource version: " + std::to_string(asked) + " (" + std::to_string(oldest) + ")")
      .body;
}

// What the API server says for each code, when a test injects a failure.
ApiResponse injected_failure(int code, const std::string& method, const std::string& what, const std::string& name) {
  switch (code) {
    case 400:
      return bad_request("the server rejected our request for an unknown reason");
    case 401:
      return status_response(401, "Unauthorized", "Unauthorized");
    case 403:
      return status_response(403, "Forbidden", what + " \"" + name + "\" is forbidden");
    case 404:
      return status_response(404, "NotFound", "the server could not find the requested resource");
    case 405:
      return status_response(405, "MethodNotAllowed",
                             "the server does not allow this method on the requested resource");
    case 409:
      if (method == "POST") return status_response(409, "AlreadyExists", what + " \"" + name + "\" already exists");
      return status_response(409, "Conflict",
                             "Operation cannot be fulfilled on " + what + " \"" + name +
                                 "\": the object has been modified; please apply your changes to the "
                                 "latest version and try again");
    case 410:
      return status_response(410, "Expired", "too old resource version");
    case 422:
      return status_response(422, "Invalid", what + " \"" + name + "\" is invalid");
    case 429: {
      ApiResponse r = status_response(429, "TooManyRequests", "Too many requests, please try again later.",
                                      Json{{"retryAfterSeconds", 1}});
      r.headers.emplace_back("Retry-After", "1");
      return r;
    }
    case 500: {
      const std::string message = "Internal error occurred: the stand-in was told to fail this request";
      return status_response(500, "InternalError", message, Json{{"causes", Json::array({{{"message", message}}})}});
    }
    case 503:
      return status_response(503, "ServiceUnavailable", "the server is currently unable to handle the request");
    case 504:
      return status_response(504, "Timeout",
                             "the server was unable to return a response in the time allotted, but may still be "
                             "processing the request");
    default:
      return status_response(code, code >= 500 ? "InternalError" : "BadRequest",
                             "the stand-in was told to fail this request");
  }
}

bool valid_name(const std::string& name) {  // an RFC 1123 subdomain
  if (name.empty() || name.size() > 253) return false;
  for (char c : name)
    if (!(std::islower(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)) || c == '-' ||
          c == '.'))
      return false;
  return std::isalnum(static_cast<unsigned char>(name.front())) &&
         std::isalnum(static_cast<unsigned char>(name.back()));
}

// ---------------------------------------------------------------- selectors

// labelSelector: k=v, k==v, k!=v, k, !k, k in (a,b), k notin (a,b); all must hold.
struct LabelSelector {
  struct Term {
    enum Op { kEq, kNotEq, kExists, kNotExists, kIn, kNotIn } op;
    std::string key;
    std::vector<std::string> values;
  };
  std::vector<Term> terms;

  bool matches(const Json& object) const {
    const Json* labels = nullptr;
    if (object.contains("metadata") && object["metadata"].contains("labels")) labels = &object["metadata"]["labels"];
    for (const auto& t : terms) {
      const bool has = labels && labels->contains(t.key) && (*labels)[t.key].is_string();
      const std::string value = has ? (*labels)[t.key].get<std::string>() : "";
      const bool listed = std::find(t.values.begin(), t.values.end(), value) != t.values.end();
      switch (t.op) {
        case Term::kEq:
          if (!has || value != t.values[0]) return false;
          break;
        case Term::kNotEq:
          if (has && value == t.values[0]) return false;
          break;
        case Term::kExists:
          if (!has) return false;
          break;
        case Term::kNotExists:
          if (has) return false;
          break;
        case Term::kIn:
          if (!has || !listed) return false;
          break;
        case Term::kNotIn:
          if (has && listed) return false;
          break;
      }
    }
    return true;
  }
};

// Splits at commas outside parentheses.
std::vector<std::string> selector_terms(std::string_view text) {
  std::vector<std::string> out;
  int depth = 0;
  std::string current;
  for (char c : text) {
    if (c == '(') ++depth;
    if (c == ')') --depth;
    if (c == ',' && depth == 0) {
      out.push_back(trim(current));
      current.clear();
    } else {
      current += c;
    }
  }
  if (!trim(current).empty() || !out.empty()) out.push_back(trim(current));
  return out;
}

std::optional<LabelSelector> parse_label_selector(const std::string& text, std::string& error) {
  LabelSelector s;
  for (const std::string& term : selector_terms(text)) {
    LabelSelector::Term t;
    if (const auto paren = term.find('('); paren != std::string::npos) {
      const std::string head = trim(term.substr(0, paren));
      const auto space = head.find_last_of(" \t");
      const std::string op = space == std::string::npos ? "" : head.substr(space + 1);
      t.key = trim(head.substr(0, space == std::string::npos ? 0 : space));
      if ((op != "in" && op != "notin") || term.back() != ')') {
        error = "unable to parse requirement: " + term;
        return std::nullopt;
      }
      t.op = op == "in" ? LabelSelector::Term::kIn : LabelSelector::Term::kNotIn;
      for (const auto& v : selector_terms(term.substr(paren + 1, term.size() - paren - 2))) t.values.push_back(v);
    } else if (term.starts_with("!")) {
      t.op = LabelSelector::Term::kNotExists;
      t.key = trim(term.substr(1));
    } else if (const auto ne = term.find("!="); ne != std::string::npos) {
      t = {LabelSelector::Term::kNotEq, trim(term.substr(0, ne)), {trim(term.substr(ne + 2))}};
    } else if (const auto eq = term.find('='); eq != std::string::npos) {
      const size_t skip = term.compare(eq, 2, "==") == 0 ? 2 : 1;
      t = {LabelSelector::Term::kEq, trim(term.substr(0, eq)), {trim(term.substr(eq + skip))}};
    } else {
      t.op = LabelSelector::Term::kExists;
      t.key = term;
    }
    if (t.key.empty() || t.key.find_first_of(" \t") != std::string::npos) {
      error = "unable to parse requirement: invalid label key \"" + t.key + "\"";
      return std::nullopt;
    }
    s.terms.push_back(std::move(t));
  }
  return s;
}

// fieldSelector: field=value, field==value, field!=value on the fields the API server indexes.
struct FieldSelector {
  struct Term {
    std::vector<std::string> path;  // metadata.name -> {"metadata", "name"}
    std::string value;
    bool equal = true;
  };
  std::vector<Term> terms;

  bool matches(const Json& object) const {
    for (const auto& t : terms) {
      const Json* at = &object;
      for (const auto& key : t.path) at = at && at->is_object() && at->contains(key) ? &(*at)[key] : nullptr;
      const std::string value = at && at->is_string() ? at->get<std::string>() : "";
      if ((value == t.value) != t.equal) return false;
    }
    return true;
  }
};

std::optional<FieldSelector> parse_field_selector(const Resource& res, const std::string& text, std::string& error) {
  static const std::set<std::string> pod_fields = {"metadata.name",      "metadata.namespace", "spec.nodeName",
                                                   "spec.restartPolicy", "status.phase",       "status.podIP"};
  static const std::set<std::string> common_fields = {"metadata.name", "metadata.namespace"};
  FieldSelector s;
  for (const std::string& term : selector_terms(text)) {
    FieldSelector::Term t;
    std::string field;
    if (const auto ne = term.find("!="); ne != std::string::npos) {
      field = trim(term.substr(0, ne));
      t.value = trim(term.substr(ne + 2));
      t.equal = false;
    } else if (const auto eq = term.find('='); eq != std::string::npos) {
      field = trim(term.substr(0, eq));
      t.value = trim(term.substr(eq + (term.compare(eq, 2, "==") == 0 ? 2 : 1)));
    } else {
      error = "invalid selector: '" + text + "'; can't understand '";
      error += term + "'";
      return std::nullopt;
    }
    if (!(&res == &kPods ? pod_fields : common_fields).contains(field)) {
      error = "field label not supported: " + field;
      return std::nullopt;
    }
    for (size_t start = 0;;) {
      const auto dot = field.find('.', start);
      t.path.push_back(field.substr(start, dot - start));
      if (dot == std::string::npos) break;
      start = dot + 1;
    }
    s.terms.push_back(std::move(t));
  }
  return s;
}

// ---------------------------------------------------------------- routes

struct Route {
  enum Kind { kUnknown, kVersion, kHealth, kCollection, kItem, kExec } kind = kUnknown;
  const Resource* res = nullptr;
  std::string ns, name;  // ns empty: every namespace (lists only)
};

Route parse_route(const std::string& path) {
  std::vector<std::string> seg;
  for (size_t start = 1; start <= path.size();) {
    const auto slash = path.find('/', start);
    seg.push_back(path.substr(start, slash - start));
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  Route r;
  if (seg.size() == 1 && seg[0] == "version") r.kind = Route::kVersion;
  if (seg.size() == 1 && (seg[0] == "healthz" || seg[0] == "livez" || seg[0] == "readyz")) r.kind = Route::kHealth;
  if (r.kind != Route::kUnknown) return r;
  for (const auto& s : seg)
    if (s.empty()) return r;
  std::vector<std::string> rest;
  if (seg.size() >= 2 && seg[0] == "api" && seg[1] == "v1") {
    r.res = &kPods;
    rest.assign(seg.begin() + 2, seg.end());
  } else if (seg.size() >= 3 && seg[0] == "apis" && seg[1] == "networking.k8s.io" && seg[2] == "v1") {
    r.res = &kNetworkPolicies;
    rest.assign(seg.begin() + 3, seg.end());
  } else {
    return r;
  }
  if (rest.size() == 1 && rest[0] == r.res->plural) {
    r.kind = Route::kCollection;
  } else if (rest.size() >= 3 && rest.size() <= 5 && rest[0] == "namespaces" && rest[2] == r.res->plural) {
    r.ns = rest[1];
    if (rest.size() == 3) r.kind = Route::kCollection;
    if (rest.size() == 4) r.kind = Route::kItem;
    if (rest.size() == 5 && rest[4] == "exec" && r.res == &kPods) r.kind = Route::kExec;
    if (rest.size() >= 4) r.name = rest[3];
  }
  return r;
}

// ---------------------------------------------------------------- the cluster

struct WatchRequest {
  const Resource* res = nullptr;
  std::string ns;
  LabelSelector labels;
  FieldSelector fields;
  std::optional<uint64_t> since;  // resourceVersion; none: the current objects first
  std::optional<std::chrono::seconds> timeout;
};

// How a watch's connection gets its events: one JSON line, or the end.
using WatchSink = std::function<void(std::string line, bool end)>;

struct ExecPlan {
  std::vector<std::string> argv;
  std::vector<std::string> env;
  std::string dir;
  bool tty = false, in = false, out = false, err = false;
  std::string protocol;
  std::string pod_uid;
  bool answers_close = true;
};

struct Outcome {
  enum Kind { kPlain, kWatch, kExec } kind = kPlain;
  ApiResponse response;
  WatchRequest watch;
  ExecPlan exec;
  std::optional<std::chrono::milliseconds> delay;
};

// The API server's storage and rules, and the kubelet's part of a pod's life
// (running, going away, its processes). No HTTP here: requests arrive parsed.
class Cluster final {
 public:
  Cluster(StandinApiServer::Options options, std::string pods_dir)
      : o_(std::move(options)),
        pods_dir_(std::move(pods_dir)),
        work_(timers_.get_executor()),
        timer_thread_([this] { timers_.run(); }) {}

  ~Cluster() {
    work_.reset();
    timers_.stop();
    timer_thread_.join();
    std::lock_guard lock(mutex_);
    for (const auto& [uid, dir] : pod_dirs_) end_container(uid);
  }

  Outcome handle(const ApiRequest& r);

  // Registers a watch and sends it its first events; 0 when it ended at once.
  uint64_t open_watch(const WatchRequest& w, WatchSink sink);
  void close_watch(uint64_t id) {
    std::lock_guard lock(mutex_);
    watchers_.erase(id);
  }
  void end_watches(bool expire);
  void forget_watches() {  // the server went down: its connections are gone
    std::lock_guard lock(mutex_);
    watchers_.clear();
  }
  int open_watches() {
    std::lock_guard lock(mutex_);
    return static_cast<int>(watchers_.size());
  }

  // A pod's processes, so that they end with it. False: the pod is gone.
  bool exec_started(const std::string& pod_uid, pid_t pid) {
    std::lock_guard lock(mutex_);
    if (!pod_dirs_.contains(pod_uid)) return false;
    exec_pids_[pod_uid].insert(pid);
    return true;
  }
  void exec_ended(const std::string& pod_uid, pid_t pid) {
    std::lock_guard lock(mutex_);
    if (auto it = exec_pids_.find(pod_uid); it != exec_pids_.end()) it->second.erase(pid);
  }

  std::optional<Json> get(const Resource& res, const std::string& ns, const std::string& name) {
    std::lock_guard lock(mutex_);
    if (const Json* o = find(res, ns, name)) return *o;
    return std::nullopt;
  }
  std::vector<Json> all(const Resource& res, const std::string& ns) {
    std::lock_guard lock(mutex_);
    std::vector<Json> out;
    if (auto it = objects_[res.index].find(ns); it != objects_[res.index].end())
      for (const auto& [name, o] : it->second) out.push_back(o);
    return out;
  }
  void set_pod_status(const std::string& ns, const std::string& name, const Json& status) {
    std::lock_guard lock(mutex_);
    if (!find(kPods, ns, name)) throw std::runtime_error("stand-in API server: no pod " + ns + "/" + name);
    modify(kPods, ns, name, [&](Json& pod) { pod["status"] = status; });
  }
  void set_running(const std::string& ns, const std::string& name) {
    std::lock_guard lock(mutex_);
    if (!find(kPods, ns, name)) throw std::runtime_error("stand-in API server: no pod " + ns + "/" + name);
    run_pod(ns, name);
  }
  void set_exec_protocols(std::vector<std::string> protocols) {
    std::lock_guard lock(mutex_);
    exec_protocols_ = std::move(protocols);
  }
  void set_exec_answers_close(bool answers) {
    std::lock_guard lock(mutex_);
    exec_answers_close_ = answers;
  }
  size_t open_execs() {
    std::lock_guard lock(mutex_);
    size_t n = 0;
    for (const auto& [uid, pids] : exec_pids_) n += pids.size();
    return n;
  }
  void add_fault(int count, int status, std::chrono::milliseconds delay, const std::string& match) {
    std::lock_guard lock(mutex_);
    faults_.push_back({count, status, delay, match});
  }
  std::vector<std::string> requests() {
    std::lock_guard lock(mutex_);
    return requests_;
  }
  const std::string& token() const { return o_.token; }

 private:
  struct Event {
    uint64_t rv;
    const Resource* res;
    std::string ns, type;
    Json object, previous;  // previous: before a MODIFIED
  };
  struct Watcher {
    WatchRequest request;
    WatchSink sink;
  };
  struct Fault {
    int remaining;
    int status;  // 0: a delay
    std::chrono::milliseconds delay;
    std::string match;
  };

  ApiResponse dispatch(const ApiRequest& r, const Route& route, Outcome& out);
  ApiResponse list(const Resource& res, const std::string& ns, const LabelSelector& labels,
                   const FieldSelector& fields);
  ApiResponse create(const Resource& res, const std::string& ns, const ApiRequest& r);
  ApiResponse remove(const Resource& res, const std::string& ns, const std::string& name, const ApiRequest& r);
  // Checks an exec and plans it; the refusal when it cannot run.
  std::optional<ApiResponse> plan_exec(const Route& route, const ApiRequest& r, ExecPlan& plan);

  Json* find(const Resource& res, const std::string& ns, const std::string& name) {
    auto it = objects_[res.index].find(ns);
    if (it == objects_[res.index].end()) return nullptr;
    auto o = it->second.find(name);
    return o == it->second.end() ? nullptr : &o->second;
  }

  std::string next_rv() { return std::to_string(++rv_); }

  template <class Change>
  void modify(const Resource& res, const std::string& ns, const std::string& name, Change change) {
    Json& o = *find(res, ns, name);
    const Json previous = o;
    change(o);
    o["metadata"]["resourceVersion"] = next_rv();
    emit(res, ns, "MODIFIED", o, previous);
  }

  void run_pod(const std::string& ns, const std::string& name);
  void finish_pod_deletion(const std::string& ns, const std::string& name, const std::string& uid);
  void end_container(const std::string& uid);
  void kill_container(const std::string& uid);
  ApiResponse patch_pod(const std::string& ns, const std::string& name, const ApiRequest& r);
  // As a kubelet enforces spec.activeDeadlineSeconds: at startTime + that, the
  // pod fails (DeadlineExceeded) and its processes end.
  void follow_active_deadline(const std::string& ns, const std::string& name);
  void emit(const Resource& res, const std::string& ns, const std::string& type, const Json& object,
            const Json& previous);
  static std::optional<std::string> seen_as(const WatchRequest& w, const Event& e);
  static std::string event_line(const std::string& type, const Json& object) {
    return compact_json(Json{{"type", type}, {"object", object}}) + "\n";
  }

  void after(std::chrono::milliseconds delay, std::function<void()> action) {
    auto timer = std::make_shared<net::steady_timer>(timers_, delay);
    timer->async_wait([timer, action = std::move(action)](const beast::error_code& ec) {
      if (!ec) action();
    });
  }

  const StandinApiServer::Options o_;
  const std::string pods_dir_;
  std::mutex mutex_;
  uint64_t rv_ = 1;
  uint64_t compacted_rv_ = 0;                                      // watches from before this get 410
  std::map<std::string, std::map<std::string, Json>> objects_[2];  // per resource: ns -> name -> object
  std::deque<Event> history_;
  std::map<uint64_t, Watcher> watchers_;
  uint64_t next_watcher_ = 1;
  std::map<std::string, std::string> pod_dirs_;       // pod uid -> its "container" filesystem
  std::map<std::string, std::set<pid_t>> exec_pids_;  // pod uid -> its exec processes
  std::vector<std::string> exec_protocols_ = {"v5.channel.k8s.io", "v4.channel.k8s.io"};
  bool exec_answers_close_ = true;
  std::vector<Fault> faults_;
  std::vector<std::string> requests_;
  net::io_context timers_;  // the kubelet's and the garbage collector's delayed steps
  net::executor_work_guard<net::io_context::executor_type> work_;
  std::thread timer_thread_;
};

Outcome Cluster::handle(const ApiRequest& r) {
  std::lock_guard lock(mutex_);
  const std::string line = r.method + " " + r.target;
  requests_.push_back(line);
  Outcome out;
  const Route route = parse_route(r.path);
  if (route.kind == Route::kHealth) {
    out.response = {200, nullptr, "ok", {}};
    return out;
  }
  if (r.authorization.size() < 7 || strncasecmp(r.authorization.c_str(), "Bearer ", 7) != 0 ||
      trim(r.authorization.substr(7)) != o_.token) {
    out.response = status_response(401, "Unauthorized", "Unauthorized");
    return out;
  }
  std::optional<int> failure;
  for (auto& f : faults_) {
    if (f.remaining <= 0 || line.find(f.match) == std::string::npos) continue;
    if (f.status && !failure) {
      failure = f.status;
      --f.remaining;
    } else if (!f.status && !out.delay) {
      out.delay = f.delay;
      --f.remaining;
    }
  }
  std::erase_if(faults_, [](const Fault& f) { return f.remaining <= 0; });
  if (failure) {
    const Json body = Json::parse(r.body, nullptr, false);
    std::string name = route.name;
    if (name.empty() && body.is_object() && body.contains("metadata"))
      name = body["metadata"].value("name", std::string());
    out.response = injected_failure(*failure, r.method, route.res ? route.res->qualified() : "resource", name);
    return out;
  }
  try {
    out.response = dispatch(r, route, out);
  } catch (const std::exception& e) {  // a body of the wrong shape (a name that is not a string...)
    out = Outcome{};
    out.response = bad_request(std::string("the request could not be understood: ") + e.what());
  }
  return out;
}

ApiResponse Cluster::dispatch(const ApiRequest& r, const Route& route, Outcome& out) {
  const auto method_not_allowed = [] {
    return status_response(405, "MethodNotAllowed", "the server does not allow this method on the requested resource");
  };
  switch (route.kind) {
    case Route::kUnknown:
    case Route::kHealth:
      return status_response(404, "NotFound", "the server could not find the requested resource");
    case Route::kVersion:
      return json_response(
          200, {{"major", "1"}, {"minor", "30"}, {"gitVersion", "v1.30.0-standin"}, {"platform", "linux/amd64"}});
    case Route::kExec: {
      if (r.method != "GET" && r.method != "POST") return method_not_allowed();
      if (auto refused = plan_exec(route, r, out.exec)) return *refused;
      out.kind = Outcome::kExec;
      return json_response(101, nullptr);
    }
    case Route::kItem: {
      if (r.method == "GET") {
        if (const Json* o = find(*route.res, route.ns, route.name)) return json_response(200, *o);
        return not_found(*route.res, route.name);
      }
      if (r.method == "DELETE") return remove(*route.res, route.ns, route.name, r);
      if (r.method == "PATCH" && route.res == &kPods) return patch_pod(route.ns, route.name, r);
      return method_not_allowed();
    }
    case Route::kCollection: {
      if (r.method == "POST" && !route.ns.empty()) return create(*route.res, route.ns, r);
      if (r.method != "GET") return method_not_allowed();
      std::string error;
      const auto labels = parse_label_selector(r.param("labelSelector").value_or(""), error);
      if (!labels) return bad_request(error);
      const auto fields = parse_field_selector(*route.res, r.param("fieldSelector").value_or(""), error);
      if (!fields) return bad_request(error);
      if (!r.flag("watch")) return list(*route.res, route.ns, *labels, *fields);
      WatchRequest& w = out.watch;
      w = {route.res, route.ns, *labels, *fields, std::nullopt, std::nullopt};
      if (const auto rv = r.param("resourceVersion"); rv && !rv->empty() && *rv != "0") {
        if (rv->find_first_not_of("0123456789") != std::string::npos)
          return status_response(400, "BadRequest", "resourceVersion: Invalid value: \"" + *rv + "\"");
        w.since = std::stoull(*rv);
      }
      if (const auto t = r.param("timeoutSeconds"); t && !t->empty())
        w.timeout = std::chrono::seconds(std::atoi(t->c_str()));
      out.kind = Outcome::kWatch;
      return json_response(200, nullptr);
    }
  }
  return method_not_allowed();
}

ApiResponse Cluster::list(const Resource& res, const std::string& ns, const LabelSelector& labels,
                          const FieldSelector& fields) {
  Json items = Json::array();
  for (const auto& [object_ns, objects] : objects_[res.index]) {
    if (!ns.empty() && object_ns != ns) continue;
    for (const auto& [name, o] : objects) {
      if (!labels.matches(o) || !fields.matches(o)) continue;
      Json item = o;  // items of a list carry no kind and apiVersion
      item.erase("kind");
      item.erase("apiVersion");
      items.push_back(std::move(item));
    }
  }
  return json_response(200, {{"kind", res.list_kind},
                             {"apiVersion", res.api_version},
                             {"metadata", {{"resourceVersion", std::to_string(rv_)}}},
                             {"items", std::move(items)}});
}

ApiResponse Cluster::create(const Resource& res, const std::string& ns, const ApiRequest& r) {
  if (!r.content_type.empty() && r.content_type.rfind("application/json", 0) != 0)
    return status_response(415, "UnsupportedMediaType",
                           "the body of the request was in an unknown format - accepted media types include: "
                           "application/json, application/yaml, application/vnd.kubernetes.protobuf");
  const Json body = Json::parse(r.body, nullptr, false);
  if (!body.is_object()) return bad_request("the object provided is unrecognized (must be a JSON object)");
  if (body.contains("kind") && body["kind"] != res.kind)
    return bad_request("the kind of the provided object (" + body["kind"].dump() + ") does not match " + res.kind);
  const Json client_meta =
      body.contains("metadata") && body["metadata"].is_object() ? body["metadata"] : Json::object();
  if (client_meta.contains("namespace") && client_meta["namespace"] != ns)
    return bad_request("the namespace of the provided object does not match the namespace sent on the request");
  std::string name = client_meta.value("name", std::string());
  if (name.empty() && client_meta.contains("generateName"))
    name = client_meta.value("generateName", std::string()) + random_hex(3).substr(0, 5);
  if (name.empty())
    return invalid(res, "", "metadata.name", "FieldValueRequired", "Required value: name or generateName is required");
  if (!valid_name(name))
    return invalid(res, name, "metadata.name", "FieldValueInvalid",
                   "Invalid value: \"" + name +
                       "\": a lowercase RFC 1123 subdomain must consist of lower case "
                       "alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character");
  if (&res == &kPods && !(body.contains("spec") && body["spec"].contains("containers") &&
                          body["spec"]["containers"].is_array() && !body["spec"]["containers"].empty()))
    return invalid(res, name, "spec.containers", "FieldValueRequired", "Required value");
  if (find(res, ns, name))
    return status_response(409, "AlreadyExists", res.qualified() + " \"" + name + "\" already exists",
                           res.details(name));

  const std::string uid = new_uuid();
  Json meta = {{"name", name}, {"namespace", ns}, {"uid", uid}, {"resourceVersion", next_rv()}};
  if (&res == &kNetworkPolicies) meta["generation"] = 1;
  meta["creationTimestamp"] = rfc3339_now();
  for (const auto& [key, value] : client_meta.items())
    if (!meta.contains(key) && key != "deletionTimestamp" && key != "deletionGracePeriodSeconds") meta[key] = value;
  Json object = {{"kind", res.kind}, {"apiVersion", res.api_version}, {"metadata", std::move(meta)}};
  object["spec"] = body.contains("spec") ? body["spec"] : Json::object();
  if (&res == &kPods) {
    object["status"] = {{"phase", "Pending"}};
    // The container's filesystem: a home (the working directory) and its own /tmp.
    const std::string dir = pods_dir_ + "/" + ns + "_" + name + "_" + uid.substr(0, 8);
    fs::create_directories(dir + "/home");
    fs::create_directories(dir + "/tmp");
    pod_dirs_[uid] = dir;
    if (o_.auto_run) {
      after(o_.run_after, [this, ns, name, uid] {
        std::lock_guard lock(mutex_);
        const Json* pod = find(kPods, ns, name);
        // Only a pod nobody has played kubelet for yet.
        if (pod && (*pod)["metadata"]["uid"] == uid && (*pod)["status"] == Json{{"phase", "Pending"}} &&
            !(*pod)["metadata"].contains("deletionTimestamp"))
          run_pod(ns, name);
      });
    }
  }
  Json& stored = objects_[res.index][ns][name] = std::move(object);
  emit(res, ns, "ADDED", stored, nullptr);
  return json_response(201, stored);
}

ApiResponse Cluster::remove(const Resource& res, const std::string& ns, const std::string& name, const ApiRequest& r) {
  Json options = Json::object();
  if (!trim(r.body).empty()) {
    options = Json::parse(r.body, nullptr, false);
    if (!options.is_object()) return bad_request("the body of the request was not a valid DeleteOptions object");
  }
  std::string policy = r.param("propagationPolicy").value_or("");
  if (options.contains("propagationPolicy") && options["propagationPolicy"].is_string())
    policy = options["propagationPolicy"];
  if (!policy.empty() && policy != "Foreground" && policy != "Background" && policy != "Orphan")
    return status_response(422, "Invalid",
                           "DeleteOptions.meta.k8s.io \"\" is invalid: propagationPolicy: Unsupported value: \"" +
                               policy + "\": supported values: \"Foreground\", \"Background\", \"Orphan\", \"nil\"");
  Json* o = find(res, ns, name);
  if (!o) return not_found(res, name);
  const std::string uid = (*o)["metadata"]["uid"];
  if (options.contains("preconditions") && options["preconditions"].contains("uid") &&
      options["preconditions"]["uid"] != uid)
    return status_response(409, "Conflict",
                           "Operation cannot be fulfilled on " + res.qualified() + " \"" + name +
                               "\": Precondition failed: UID in precondition: " +
                               options["preconditions"]["uid"].get<std::string>() + ", UID in object meta: " + uid,
                           res.details(name));
  if (&res == &kPods) {
    // Graceful: the pod is marked now and gone once its containers have ended.
    if (!(*o)["metadata"].contains("deletionTimestamp")) {
      int64_t grace = 30;
      if (options.contains("gracePeriodSeconds") && options["gracePeriodSeconds"].is_number_integer())
        grace = options["gracePeriodSeconds"];
      else if (const auto q = r.param("gracePeriodSeconds"))
        grace = std::atoll(q->c_str());
      modify(res, ns, name, [&](Json& pod) {
        pod["metadata"]["deletionTimestamp"] = rfc3339_now();
        pod["metadata"]["deletionGracePeriodSeconds"] = grace;
        if (policy == "Foreground") pod["metadata"]["finalizers"] = Json::array({"foregroundDeletion"});
      });
      after(kPodGoneAfter, [this, ns, name, uid] {
        std::lock_guard lock(mutex_);
        finish_pod_deletion(ns, name, uid);
      });
    }
    return json_response(200, *find(res, ns, name));
  }
  Json gone = std::move(*o);
  objects_[res.index][ns].erase(name);
  gone["metadata"]["resourceVersion"] = next_rv();
  emit(res, ns, "DELETED", gone, nullptr);
  Json details = res.details(name);
  details["uid"] = uid;
  return json_response(200, {{"kind", "Status"},
                             {"apiVersion", "v1"},
                             {"metadata", Json::object()},
                             {"status", "Success"},
                             {"details", details}});
}

void Cluster::finish_pod_deletion(const std::string& ns, const std::string& name, const std::string& uid) {
  Json* pod = find(kPods, ns, name);
  if (!pod || (*pod)["metadata"]["uid"] != uid) return;
  Json gone = std::move(*pod);
  objects_[kPods.index][ns].erase(name);
  gone["metadata"].erase("finalizers");
  gone["metadata"]["resourceVersion"] = next_rv();
  emit(kPods, ns, "DELETED", gone, nullptr);
  end_container(uid);
  exec_pids_.erase(uid);
  pod_dirs_.erase(uid);
}

// The container goes with its pod: every process in it (daemons such as a
// a keeper included, found by the mark in their environment), then its files.
void Cluster::end_container(const std::string& uid) {
  kill_container(uid);
  if (auto it = pod_dirs_.find(uid); it != pod_dirs_.end()) {
    std::error_code ignored;
    fs::remove_all(it->second, ignored);
  }
}

void Cluster::kill_container(const std::string& uid) {
  if (auto it = exec_pids_.find(uid); it != exec_pids_.end())
    for (pid_t pid : it->second) kill(-pid, SIGKILL);
  const std::string mark = std::string(kPodMark) + "=" + uid;
  for (int pass = 0; pass < 2; ++pass) {  // the second for what forked during the first
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator("/proc", ec)) {
      const std::string pid = entry.path().filename().string();
      if (pid.find_first_not_of("0123456789") != std::string::npos) continue;
      std::ifstream in(entry.path() / "environ", std::ios::binary);
      std::string env((std::istreambuf_iterator<char>(in)), {});
      env.insert(env.begin(), '\0');
      if (env.find('\0' + mark + '\0') != std::string::npos || env.ends_with('\0' + mark))
        kill(std::stoi(pid), SIGKILL);
    }
  }
}

// JSON merge patch (RFC 7386) of a pod: a running pod's spec may change only
// in activeDeadlineSeconds (set, or made shorter), as a real API server allows.
ApiResponse Cluster::patch_pod(const std::string& ns, const std::string& name, const ApiRequest& r) {
  if (r.content_type.rfind("application/merge-patch+json", 0) != 0)
    return status_response(415, "UnsupportedMediaType",
                           "the body of the request was in an unknown format - accepted media types include: "
                           "application/merge-patch+json");
  const Json body = Json::parse(r.body, nullptr, false);
  if (!body.is_object()) return bad_request("the patch is not a JSON object");
  const Json* pod = find(kPods, ns, name);
  if (!pod) return not_found(kPods, name);
  Json patched = *pod;
  patched.merge_patch(body);
  Json old_spec = (*pod)["spec"], new_spec = patched["spec"];
  old_spec.erase("activeDeadlineSeconds");
  new_spec.erase("activeDeadlineSeconds");
  if (old_spec != new_spec)
    return invalid(kPods, name, "spec", "FieldValueForbidden",
                   "Forbidden: pod updates may not change fields other than `spec.containers[*].image`, "
                   "`spec.activeDeadlineSeconds`, `spec.tolerations` (only additions to existing tolerations)");
  const Json& before = (*pod)["spec"].value("activeDeadlineSeconds", Json());
  const Json& after_patch = patched["spec"].value("activeDeadlineSeconds", Json());
  if (!before.is_null() && after_patch.is_null())
    return invalid(kPods, name, "spec.activeDeadlineSeconds", "FieldValueInvalid",
                   "Invalid value: \"null\": must not update from a positive integer to nil value");
  if (!after_patch.is_null()) {
    if (!after_patch.is_number_integer() || after_patch.get<int64_t>() <= 0)
      return invalid(kPods, name, "spec.activeDeadlineSeconds", "FieldValueInvalid",
                     "Invalid value: " + after_patch.dump() + ": must be between 1 and 2147483647, inclusive");
    if (!before.is_null() && after_patch.get<int64_t>() > before.get<int64_t>())
      return invalid(kPods, name, "spec.activeDeadlineSeconds", "FieldValueInvalid",
                     "Invalid value: " + after_patch.dump() + ": must be less than or equal to previous value");
  }
  modify(kPods, ns, name, [&](Json& p) {
    p["spec"] = patched["spec"];
    p["metadata"]["labels"] = patched["metadata"].value("labels", Json::object());
  });
  follow_active_deadline(ns, name);
  return json_response(200, *find(kPods, ns, name));
}

void Cluster::follow_active_deadline(const std::string& ns, const std::string& name) {
  const Json* pod = find(kPods, ns, name);
  if (!pod || !(*pod)["spec"].contains("activeDeadlineSeconds") || !(*pod)["status"].contains("startTime")) return;
  const auto started = parse_iso8601((*pod)["status"]["startTime"].get<std::string>());
  if (!started) return;
  const auto at = *started + std::chrono::seconds((*pod)["spec"]["activeDeadlineSeconds"].get<int64_t>());
  const std::string uid = (*pod)["metadata"]["uid"];
  const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(at - std::chrono::system_clock::now());
  after(std::max(wait, std::chrono::milliseconds(0)), [this, ns, name, uid, at] {
    std::lock_guard lock(mutex_);
    const Json* now = find(kPods, ns, name);
    if (!now || (*now)["metadata"]["uid"] != uid || (*now)["status"].value("phase", "") != "Running") return;
    const auto started = parse_iso8601((*now)["status"]["startTime"].get<std::string>());
    const auto seconds = (*now)["spec"].value("activeDeadlineSeconds", int64_t{0});
    if (!started || *started + std::chrono::seconds(seconds) != at) return;  // moved: its own check follows
    kill_container(uid);
    modify(kPods, ns, name, [](Json& p) {
      p["status"]["phase"] = "Failed";
      p["status"]["reason"] = "DeadlineExceeded";
      p["status"]["message"] = "Pod was active on the node longer than the specified deadline";
      for (auto& c : p["status"]["containerStatuses"]) c["ready"] = false;
    });
  });
}

void Cluster::run_pod(const std::string& ns, const std::string& name) {
  modify(kPods, ns, name, [](Json& pod) {
    const std::string now = rfc3339_now();
    Json conditions = Json::array();
    for (const char* type : {"Initialized", "Ready", "ContainersReady", "PodScheduled"})
      conditions.push_back(
          {{"type", type}, {"status", "True"}, {"lastProbeTime", nullptr}, {"lastTransitionTime", now}});
    Json containers = Json::array();
    for (const auto& c : pod["spec"]["containers"]) {
      const std::string image = c.value("image", std::string());
      containers.push_back({{"name", c.value("name", std::string())},
                            {"state", {{"running", {{"startedAt", now}}}}},
                            {"lastState", Json::object()},
                            {"ready", true},
                            {"restartCount", 0},
                            {"image", image},
                            {"imageID", image + "@sha256:" + sha256_hex(image)},
                            {"containerID", "containerd://" + random_hex(32)},
                            {"started", true}});
    }
    if (!pod["spec"].contains("nodeName")) pod["spec"]["nodeName"] = "standin-node";
    pod["status"] = {{"phase", "Running"},
                     {"conditions", conditions},
                     {"hostIP", "127.0.0.1"},
                     {"podIP", "127.0.0.1"},
                     {"podIPs", Json::array({{{"ip", "127.0.0.1"}}})},
                     {"startTime", pod["metadata"]["creationTimestamp"]},
                     {"containerStatuses", containers},
                     {"qosClass", "Burstable"}};
  });
  follow_active_deadline(ns, name);
}

// What a watch sees of an event: a change that moves an object into or out
// of its selection is an ADDED or a DELETED.
std::optional<std::string> Cluster::seen_as(const WatchRequest& w, const Event& e) {
  if (w.res != e.res || (!w.ns.empty() && w.ns != e.ns)) return std::nullopt;
  const auto selected = [&](const Json& o) { return !o.is_null() && w.labels.matches(o) && w.fields.matches(o); };
  const bool now = selected(e.object);
  if (e.type != "MODIFIED") return now ? std::optional(e.type) : std::nullopt;
  const bool before = selected(e.previous);
  if (now) return before ? "MODIFIED" : "ADDED";
  return before ? std::optional<std::string>("DELETED") : std::nullopt;
}

void Cluster::emit(const Resource& res, const std::string& ns, const std::string& type, const Json& object,
                   const Json& previous) {
  history_.push_back({rv_, &res, ns, type, object, previous});
  while (history_.size() > kHistory) {
    compacted_rv_ = std::max(compacted_rv_, history_.front().rv);
    history_.pop_front();
  }
  const Event& e = history_.back();
  for (auto& [id, w] : watchers_)
    if (const auto seen = seen_as(w.request, e)) w.sink(event_line(*seen, e.object), false);
}

uint64_t Cluster::open_watch(const WatchRequest& w, WatchSink sink) {
  std::lock_guard lock(mutex_);
  if (w.since) {
    if (*w.since < compacted_rv_) {
      sink(event_line("ERROR", expired_status(*w.since, compacted_rv_)), true);
      return 0;
    }
    for (const Event& e : history_)
      if (e.rv > *w.since)
        if (const auto seen = seen_as(w, e)) sink(event_line(*seen, e.object), false);
  } else {
    for (const auto& [object_ns, objects] : objects_[w.res->index]) {
      if (!w.ns.empty() && object_ns != w.ns) continue;
      for (const auto& [name, o] : objects)
        if (w.labels.matches(o) && w.fields.matches(o)) sink(event_line("ADDED", o), false);
    }
  }
  const uint64_t id = next_watcher_++;
  watchers_.emplace(id, Watcher{w, std::move(sink)});
  return id;
}

void Cluster::end_watches(bool expire) {
  std::lock_guard lock(mutex_);
  if (expire) compacted_rv_ = rv_;
  for (auto& [id, w] : watchers_) {
    const uint64_t since = w.request.since.value_or(0);
    w.sink(expire ? event_line("ERROR", expired_status(since, compacted_rv_)) : "", true);
  }
  watchers_.clear();
}

std::optional<ApiResponse> Cluster::plan_exec(const Route& route, const ApiRequest& r, ExecPlan& plan) {
  plan.answers_close = exec_answers_close_;
  const Json* pod = find(kPods, route.ns, route.name);
  if (!pod) return not_found(kPods, route.name);
  if (!r.upgrade) return bad_request("Upgrade request required");
  const std::string phase = (*pod)["status"].value("phase", std::string());
  if (phase != "Running") return bad_request("unable to upgrade connection: pod is not running (phase " + phase + ")");
  const Json& containers = (*pod)["spec"]["containers"];
  if (const auto container = r.param("container"); container && !container->empty()) {
    bool known = false;
    for (const auto& c : containers) known = known || c.value("name", std::string()) == *container;
    if (!known) return bad_request("container " + *container + " is not valid for pod " + route.name);
  }
  for (const auto& [k, v] : r.query)
    if (k == "command") plan.argv.push_back(v);
  if (plan.argv.empty()) return bad_request("you must specify at least one command for the container");
  plan.tty = r.flag("tty");
  plan.in = r.flag("stdin");
  plan.out = r.flag("stdout");
  plan.err = r.flag("stderr") && !plan.tty;  // as the kubelet does: a TTY has no separate stderr
  if (!plan.in && !plan.out && !r.flag("stderr"))
    return bad_request("you must specify at least 1 of stdin, stdout, stderr");
  for (const auto& offered : r.ws_protocols) {
    if (std::find(exec_protocols_.begin(), exec_protocols_.end(), offered) != exec_protocols_.end()) {
      plan.protocol = offered;
      break;
    }
  }
  if (plan.protocol.empty())
    return bad_request("unable to upgrade connection: requested protocol(s) are not supported: " +
                       go_list(r.ws_protocols) + "; supports " + go_list(exec_protocols_));
  plan.pod_uid = (*pod)["metadata"]["uid"];
  const std::string& root = pod_dirs_.at(plan.pod_uid);
  plan.dir = root + "/home";
  plan.env = {std::string("PATH=") + kPath, "HOSTNAME=" + route.name,       "HOME=" + plan.dir,
              "TMPDIR=" + root + "/tmp",    "TMUX_TMPDIR=" + root + "/tmp", std::string(kPodMark) + "=" + plan.pod_uid};
  if (plan.tty) plan.env.push_back("TERM=xterm");
  return std::nullopt;
}

// ---------------------------------------------------------------- the "container": exec processes

struct Child {
  pid_t pid = -1;
  int pty = -1, in = -1, out = -1, err = -1;  // this side's ends
  std::string error;                          // why it could not start
};

std::string find_executable(const std::string& name, std::string& error) {
  if (name.find('/') != std::string::npos) {
    if (access(name.c_str(), X_OK) == 0) return name;
    error = "exec: \"" + name + "\": stat " + name + ": no such file or directory";
    return "";
  }
  std::string_view dirs = kPath;
  while (!dirs.empty()) {
    const auto colon = dirs.find(':');
    std::string candidate = std::string(dirs.substr(0, colon)) + "/" + name;
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
    dirs.remove_prefix(colon == std::string_view::npos ? dirs.size() : colon + 1);
  }
  error = "exec: \"" + name + "\": executable file not found in $PATH";
  return "";
}

std::vector<char*> c_strings(std::vector<std::string>& items) {
  std::vector<char*> out;
  out.reserve(items.size() + 1);
  for (auto& s : items) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

// In the child, between fork and exec: async-signal-safe calls only.
[[noreturn]] void become(const char* exe, char* const* argv, char* const* envp, const char* dir,
                         const sigset_t& no_signals) {
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  for (int s = 1; s < NSIG; ++s) sigaction(s, &dfl, nullptr);
  sigprocmask(SIG_SETMASK, &no_signals, nullptr);
  if (close_range(3, ~0U, 0) != 0)
    for (int fd = 3; fd < 4096; ++fd) close(fd);
  if (chdir(dir) != 0) _exit(127);
  execve(exe, argv, envp);
  _exit(127);
}

Child spawn(const ExecPlan& plan) {
  Child c;
  std::vector<std::string> argv = plan.argv, env = plan.env;
  const std::string exe = find_executable(argv[0], c.error);
  if (exe.empty()) return c;
  auto c_argv = c_strings(argv);
  auto c_env = c_strings(env);
  sigset_t no_signals;
  sigemptyset(&no_signals);
  if (plan.tty) {
    winsize size{24, 80, 0, 0};
    c.pid = forkpty(&c.pty, nullptr, nullptr, &size);
    if (c.pid == 0) become(exe.c_str(), c_argv.data(), c_env.data(), plan.dir.c_str(), no_signals);
    if (c.pid < 0)
      c.error = std::string("forkpty: ") + strerror(errno);
    else
      fcntl(c.pty, F_SETFD, FD_CLOEXEC);
    return c;
  }
  int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1};
  const auto close_all = [&] {
    for (int fd : {in[0], in[1], out[0], out[1], err[0], err[1]})
      if (fd >= 0) close(fd);
  };
  if ((plan.in && pipe2(in, O_CLOEXEC) != 0) || (plan.out && pipe2(out, O_CLOEXEC) != 0) ||
      (plan.err && pipe2(err, O_CLOEXEC) != 0)) {
    c.error = std::string("pipe: ") + strerror(errno);
    close_all();
    return c;
  }
  const int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
  c.pid = fork();
  if (c.pid == 0) {
    setsid();  // its own process group, so that it ends with everything it started
    dup2(plan.in ? in[0] : devnull, 0);
    dup2(plan.out ? out[1] : devnull, 1);
    dup2(plan.err ? err[1] : devnull, 2);
    become(exe.c_str(), c_argv.data(), c_env.data(), plan.dir.c_str(), no_signals);
  }
  close(devnull);
  if (c.pid < 0) {
    c.error = std::string("fork: ") + strerror(errno);
    close_all();
    return c;
  }
  for (int fd : {in[0], out[1], err[1]})
    if (fd >= 0) close(fd);
  c.in = in[1];
  c.out = out[0];
  c.err = err[0];
  return c;
}

// Channel 3's last word, as the kubelet writes it.
Json exit_status(int wait_status, const std::vector<std::string>& argv) {
  const int code = WIFEXITED(wait_status) ? WEXITSTATUS(wait_status) : 128 + WTERMSIG(wait_status);
  if (code == 0) return {{"metadata", Json::object()}, {"status", "Success"}};
  return {{"metadata", Json::object()},
          {"status", "Failure"},
          {"message", "command terminated with non-zero exit code: error executing command " + go_list(argv) +
                          ", exit code " + std::to_string(code)},
          {"reason", "NonZeroExitCode"},
          {"details", {{"causes", Json::array({{{"reason", "ExitCode"}, {"message", std::to_string(code)}}})}}}};
}

Json start_failure(const std::string& why) {
  const std::string message =
      "OCI runtime exec failed: exec failed: unable to start container process: " + why + ": unknown";
  return {{"metadata", Json::object()},
          {"status", "Failure"},
          {"message", message},
          {"reason", "InternalError"},
          {"details", {{"causes", Json::array({{{"message", message}}})}}},
          {"code", 500}};
}

// ---------------------------------------------------------------- transport: exec over WebSocket

constexpr uint8_t kStdin = 0, kStdout = 1, kStderr = 2, kStatus = 3, kResize = 4, kClose = 255;
constexpr size_t kHighWater = 1 << 20;  // output queued for a slow client before the process is not read

// One exec: the WebSocket on one side, the process's PTY or pipes on the other.
class ExecSession final : public std::enable_shared_from_this<ExecSession> {
 public:
  ExecSession(TlsStream&& stream, Cluster& cluster, ExecPlan plan)
      : ws_(std::move(stream)),
        cluster_(cluster),
        plan_(std::move(plan)),
        grace_(ws_.get_executor()),
        kill_(ws_.get_executor()),
        poll_(ws_.get_executor()) {}

  ~ExecSession() {
    if (pid_ > 0 && !reaped_) {
      kill(-pid_, SIGKILL);
      cluster_.exec_ended(plan_.pod_uid, pid_);
      waitpid(pid_, nullptr, 0);
    }
  }

  void run(http::request<http::string_body> req) {
    req_ = std::move(req);
    beast::get_lowest_layer(ws_).expires_never();
    ws_.set_option(websocket::stream_base::timeout{30s, websocket::stream_base::none(), false});
    ws_.set_option(websocket::stream_base::decorator([protocol = plan_.protocol](websocket::response_type& res) {
      res.set(http::field::sec_websocket_protocol, protocol);
    }));
    ws_.binary(true);
    ws_.async_accept(req_, [self = shared_from_this()](beast::error_code ec) { self->on_accept(ec); });
  }

 private:
  using Descriptor = net::posix::stream_descriptor;
  using Buffer = std::array<char, 16384>;

  void on_accept(beast::error_code ec) {
    if (ec) return;
    read_ws();
    Child child = spawn(plan_);
    if (!child.error.empty()) return finish(start_failure(child.error));
    pid_ = child.pid;
    if (!cluster_.exec_started(plan_.pod_uid, pid_)) kill(-pid_, SIGKILL);  // the pod went meanwhile
    const auto ex = ws_.get_executor();
    if (child.pty >= 0) {
      pty_.emplace(ex, child.pty);
      read_output(*pty_, kStdout, pty_buf_);
    }
    if (child.in >= 0) in_.emplace(ex, child.in);
    if (child.out >= 0) {
      out_.emplace(ex, child.out);
      read_output(*out_, kStdout, out_buf_);
    }
    if (child.err >= 0) {
      err_.emplace(ex, child.err);
      read_output(*err_, kStderr, err_buf_);
    }
    open_outputs_ = (pty_ ? 1 : 0) + (out_ ? 1 : 0) + (err_ ? 1 : 0);
    const int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid_, 0));
    if (pidfd >= 0) {
      pidfd_.emplace(ex, pidfd);
      pidfd_->async_wait(Descriptor::wait_read, [self = shared_from_this()](beast::error_code e) {
        if (!e) self->on_exit();
      });
    } else {
      poll_exit();
    }
  }

  void poll_exit() {  // kernels without pidfd: look without reaping, so the pid stays this process's
    siginfo_t info{};
    if (waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid == pid_)
      return on_exit();
    poll_.expires_after(20ms);
    poll_.async_wait([self = shared_from_this()](beast::error_code e) {
      if (!e) self->poll_exit();
    });
  }

  // -- the process's side

  void read_output(Descriptor& d, uint8_t channel, Buffer& buf) {
    if (queued_ > kHighWater) {
      paused_.push_back([this, &d, channel, &buf] { read_output(d, channel, buf); });
      return;
    }
    d.async_read_some(net::buffer(buf), [self = shared_from_this(), &d, channel, &buf](beast::error_code ec, size_t n) {
      if (n > 0) self->send(channel, std::string_view(buf.data(), n));
      if (ec) return self->output_ended();
      self->read_output(d, channel, buf);
    });
  }

  void output_ended() {
    --open_outputs_;
    maybe_finish();
  }

  void on_exit() {
    cluster_.exec_ended(plan_.pod_uid, pid_);
    waitpid(pid_, &wait_status_, 0);
    reaped_ = true;
    exited_ = true;
    kill_.cancel();
    if (ws_gone_) return release();
    maybe_finish();
    if (finished_) return;
    // Output still held open by the process's own children: do not wait for it forever.
    grace_.expires_after(200ms);
    grace_.async_wait([self = shared_from_this()](beast::error_code e) {
      if (!e) self->finish(exit_status(self->wait_status_, self->plan_.argv));
    });
  }

  void maybe_finish() {
    if (exited_ && open_outputs_ <= 0) finish(exit_status(wait_status_, plan_.argv));
  }

  // The status on channel 3, then a normal close.
  void finish(const Json& status) {
    if (finished_) return;
    finished_ = true;
    grace_.cancel();
    send(kStatus, compact_json(status));
    closing_ = true;
    write_next();
    release();
  }

  void release() {
    for (auto* d : {&pty_, &in_, &out_, &err_, &pidfd_})
      if (*d) {
        beast::error_code ignored;
        (*d)->close(ignored);
      }
    paused_.clear();
  }

  void write_stdin(std::string data) {
    if (stdin_closed_ || (!in_ && !pty_)) return;
    stdin_queue_.push_back(std::move(data));
    pump_stdin();
  }

  void pump_stdin() {
    if (stdin_writing_ || stdin_queue_.empty()) return;
    Descriptor& target = pty_ ? *pty_ : *in_;
    if (!target.is_open()) return stdin_queue_.clear();
    stdin_writing_ = true;
    net::async_write(target, net::buffer(stdin_queue_.front()),
                     [self = shared_from_this()](beast::error_code ec, size_t) {
                       self->stdin_writing_ = false;
                       self->stdin_queue_.pop_front();
                       if (ec) self->stdin_queue_.clear();
                       if (self->stdin_queue_.empty() && self->stdin_closed_ && self->in_) {
                         beast::error_code ignored;
                         self->in_->close(ignored);
                       }
                       self->pump_stdin();
                     });
  }

  // v5's close of channel 0: EOF for a pipe; ^D on a terminal.
  void close_stdin() {
    if (stdin_closed_) return;
    if (pty_) {
      write_stdin("\x04");
      stdin_closed_ = true;
      return;
    }
    stdin_closed_ = true;
    if (in_ && stdin_queue_.empty() && !stdin_writing_) {
      beast::error_code ignored;
      in_->close(ignored);
    }
  }

  void resize(const std::string& json) {
    const Json size = Json::parse(json, nullptr, false);
    if (!pty_ || !pty_->is_open() || !size.is_object()) return;
    const Json width = size.value("Width", Json()), height = size.value("Height", Json());
    if (!width.is_number_unsigned() || !height.is_number_unsigned()) return;
    winsize ws{};
    ws.ws_col = width.get<unsigned short>();
    ws.ws_row = height.get<unsigned short>();
    ioctl(pty_->native_handle(), TIOCSWINSZ, &ws);
  }

  // -- the client's side

  void read_ws() {
    if (!plan_.answers_close) {  // reads (and drops) the client's bytes below the WebSocket, to its end
      ws_.next_layer().async_read_some(net::buffer(ignored_), [self = shared_from_this()](beast::error_code ec, size_t) {
        if (ec) return self->client_gone();
        self->read_ws();
      });
      return;
    }
    ws_.async_read(in_buffer_, [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec) return self->client_gone();
      std::string message = beast::buffers_to_string(self->in_buffer_.data());
      self->in_buffer_.consume(self->in_buffer_.size());
      self->on_message(std::move(message));
      self->read_ws();
    });
  }

  void on_message(std::string message) {
    if (message.empty() || finished_) return;
    const auto channel = static_cast<uint8_t>(message[0]);
    message.erase(0, 1);
    if (channel == kStdin && !message.empty()) {
      write_stdin(std::move(message));
    } else if (channel == kResize) {
      resize(message);
    } else if (channel == kClose && plan_.protocol == "v5.channel.k8s.io" && !message.empty() &&
               static_cast<uint8_t>(message[0]) == kStdin) {
      close_stdin();
    }
  }

  // The client hung up: the process is ended, politely first.
  void client_gone() {
    if (ws_gone_) return;
    ws_gone_ = true;
    if (pid_ <= 0 || exited_) return release();
    kill(-pid_, SIGHUP);
    kill_.expires_after(200ms);
    kill_.async_wait([self = shared_from_this()](beast::error_code e) {
      if (!e && !self->exited_) kill(-self->pid_, SIGKILL);
    });
  }

  void send(uint8_t channel, std::string_view data) {
    if (ws_gone_) return;
    std::string m(1, static_cast<char>(channel));
    m.append(data);
    queued_ += m.size();
    out_queue_.push_back(std::move(m));
    write_next();
  }

  void write_next() {
    if (writing_ || ws_gone_) return;
    if (out_queue_.empty()) {
      if (closing_ && !close_sent_) {
        close_sent_ = true;
        writing_ = true;
        ws_.async_close(websocket::close_code::normal,
                        [self = shared_from_this()](beast::error_code) { self->writing_ = false; });
      }
      return;
    }
    writing_ = true;
    ws_.async_write(net::buffer(out_queue_.front()), [self = shared_from_this()](beast::error_code ec, size_t) {
      self->writing_ = false;
      if (ec || self->ws_gone_) return self->client_gone();
      self->queued_ -= self->out_queue_.front().size();
      self->out_queue_.pop_front();
      if (self->queued_ <= kHighWater / 2) {
        auto resume = std::move(self->paused_);
        self->paused_.clear();
        for (auto& r : resume) r();
      }
      self->write_next();
    });
  }

  websocket::stream<TlsStream> ws_;
  Cluster& cluster_;
  ExecPlan plan_;
  http::request<http::string_body> req_;
  beast::flat_buffer in_buffer_;
  std::array<char, 4096> ignored_;  // what the client sends to an exec that does not answer close
  std::optional<Descriptor> pty_, in_, out_, err_, pidfd_;
  Buffer pty_buf_, out_buf_, err_buf_;
  net::steady_timer grace_, kill_, poll_;
  pid_t pid_ = -1;
  int wait_status_ = 0;
  int open_outputs_ = 0;
  bool reaped_ = false, exited_ = false, finished_ = false, ws_gone_ = false;
  std::deque<std::string> out_queue_, stdin_queue_;
  size_t queued_ = 0;
  std::vector<std::function<void()>> paused_;
  bool writing_ = false, closing_ = false, close_sent_ = false;
  bool stdin_writing_ = false, stdin_closed_ = false;
};

// ---------------------------------------------------------------- transport: HTTPS requests and watches

class HttpSession final : public std::enable_shared_from_this<HttpSession> {
 public:
  HttpSession(TlsStream&& stream, Cluster& cluster)
      : stream_(std::move(stream)), cluster_(cluster), timer_(stream_.get_executor()) {}

  ~HttpSession() {
    if (watch_id_) cluster_.close_watch(watch_id_);
  }

  void run() { read_next(); }

 private:
  void read_next() {
    parser_.emplace();
    parser_->body_limit(kBodyLimit);
    beast::get_lowest_layer(stream_).expires_after(120s);
    http::async_read(stream_, buffer_, *parser_, [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec) return self->drop();
      self->on_request();
    });
  }

  void on_request() {
    req_ = parser_->release();
    ApiRequest r;
    r.method = std::string(req_.method_string());
    r.target = std::string(req_.target());
    const auto q = r.target.find('?');
    r.path = r.target.substr(0, q);
    if (q != std::string::npos) {
      std::string_view query = std::string_view(r.target).substr(q + 1);
      while (!query.empty()) {
        const auto amp = query.find('&');
        const std::string_view pair = query.substr(0, amp);
        const auto eq = pair.find('=');
        r.query.emplace_back(percent_decode(pair.substr(0, eq)),
                             eq == std::string_view::npos ? "" : percent_decode(pair.substr(eq + 1)));
        if (amp == std::string_view::npos) break;
        query.remove_prefix(amp + 1);
      }
    }
    r.authorization = std::string(req_[http::field::authorization]);
    r.content_type = std::string(req_[http::field::content_type]);
    r.body = req_.body();
    r.upgrade = websocket::is_upgrade(req_);
    const std::string offered(req_[http::field::sec_websocket_protocol]);
    std::string_view protocols = offered;
    while (!protocols.empty()) {
      const auto comma = protocols.find(',');
      if (auto p = trim(protocols.substr(0, comma)); !p.empty()) r.ws_protocols.push_back(std::move(p));
      protocols.remove_prefix(comma == std::string_view::npos ? protocols.size() : comma + 1);
    }
    outcome_ = cluster_.handle(r);
    if (!outcome_.delay) return carry_out();
    timer_.expires_after(*outcome_.delay);
    timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (!ec) self->carry_out();
    });
  }

  void carry_out() {
    switch (outcome_.kind) {
      case Outcome::kPlain:
        return respond(outcome_.response);
      case Outcome::kWatch:
        return start_watch();
      case Outcome::kExec:
        std::make_shared<ExecSession>(std::move(stream_), cluster_, std::move(outcome_.exec))->run(std::move(req_));
        return;
    }
  }

  void respond(const ApiResponse& a) {
    auto res = std::make_shared<http::response<http::string_body>>(static_cast<http::status>(a.status), req_.version());
    res->set(http::field::cache_control, "no-cache, private");
    res->set(http::field::content_type, a.text.empty() ? "application/json" : "text/plain; charset=utf-8");
    for (const auto& [k, v] : a.headers) res->set(k, v);
    res->body() = a.text.empty() ? compact_json(a.body) : a.text;
    // An upgrade that was refused ends the connection.
    const bool keep = req_.keep_alive() && !websocket::is_upgrade(req_);
    res->keep_alive(keep);
    res->prepare_payload();
    http::async_write(stream_, *res, [self = shared_from_this(), res, keep](beast::error_code ec, size_t) {
      if (ec || !keep) return self->drop();
      self->read_next();
    });
  }

  // A watch: a chunked response, one event per line, flushed as it comes.
  void start_watch() {
    beast::get_lowest_layer(stream_).expires_never();
    queue_.push_back(
        "HTTP/1.1 200 OK\r\nCache-Control: no-cache, private\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\n\r\n");
    std::weak_ptr<HttpSession> weak = shared_from_this();
    watch_id_ = cluster_.open_watch(outcome_.watch, [weak](std::string line, bool end) {
      if (auto self = weak.lock())
        net::post(self->stream_.get_executor(), [self, line = std::move(line), end] { self->on_event(line, end); });
    });
    if (outcome_.watch.timeout && watch_id_) {
      timer_.expires_after(*outcome_.watch.timeout);
      timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
        if (ec) return;
        self->cluster_.close_watch(self->watch_id_);
        self->on_event("", true);
      });
    }
    watch_for_hangup();
    write_next();
  }

  void on_event(const std::string& line, bool end) {
    if (ending_ || gone_) return;
    if (!line.empty()) {
      char size[20];
      std::snprintf(size, sizeof size, "%zx\r\n", line.size());
      queue_.push_back(size + line + "\r\n");
    }
    if (end) {
      ending_ = true;
      watch_id_ = 0;
      timer_.cancel();
      queue_.push_back("0\r\n\r\n");
    }
    write_next();
  }

  void write_next() {
    if (writing_ || gone_ || queue_.empty()) return;
    writing_ = true;
    net::async_write(stream_, net::buffer(queue_.front()), [self = shared_from_this()](beast::error_code ec, size_t) {
      self->writing_ = false;
      self->queue_.pop_front();
      if (ec) return self->hung_up();
      if (self->queue_.empty() && self->ending_) {
        // The stream is over; the client closes, or we do soon.
        beast::error_code ignored;
        beast::get_lowest_layer(self->stream_).socket().shutdown(tcp::socket::shutdown_send, ignored);
        beast::get_lowest_layer(self->stream_).expires_after(10s);
        return;
      }
      self->write_next();
    });
  }

  // The client sends nothing during a watch: a read that ends means it left.
  void watch_for_hangup() {
    stream_.async_read_some(net::buffer(probe_), [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec) return self->hung_up();
      self->watch_for_hangup();
    });
  }

  void hung_up() {
    if (gone_) return;
    gone_ = true;
    if (watch_id_) cluster_.close_watch(std::exchange(watch_id_, 0));
    timer_.cancel();
    drop();
  }

  void drop() {
    beast::error_code ignored;
    beast::get_lowest_layer(stream_).socket().shutdown(tcp::socket::shutdown_both, ignored);
    beast::get_lowest_layer(stream_).close();
  }

  TlsStream stream_;
  Cluster& cluster_;
  net::steady_timer timer_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  http::request<http::string_body> req_;
  Outcome outcome_;
  uint64_t watch_id_ = 0;
  std::deque<std::string> queue_;
  std::array<char, 512> probe_;
  bool writing_ = false, ending_ = false, gone_ = false;
};

// The listening side: an io_context with its threads, made anew by each start.
class Server final {
 public:
  Server(Cluster& cluster, ssl::context& tls) : cluster_(cluster), tls_(tls) {}
  ~Server() { stop(); }

  // Listens on 127.0.0.1:`port` (0: any free port); returns the port.
  uint16_t start(uint16_t port) {
    if (ioc_) return port_;
    ioc_ = std::make_unique<net::io_context>(2);
    acceptor_ = std::make_unique<tcp::acceptor>(net::make_strand(*ioc_));
    const tcp::endpoint endpoint(net::ip::make_address("127.0.0.1"), port);
    acceptor_->open(endpoint.protocol());
    acceptor_->set_option(net::socket_base::reuse_address(true));
    beast::error_code ec;
    acceptor_->bind(endpoint, ec);
    if (ec) {
      acceptor_.reset();
      ioc_.reset();
      throw std::runtime_error("stand-in API server cannot listen on port " + std::to_string(port) + ": " +
                               ec.message());
    }
    acceptor_->listen(net::socket_base::max_listen_connections);
    port_ = acceptor_->local_endpoint().port();
    accept();
    for (int i = 0; i < 2; ++i) threads_.emplace_back([this] { ioc_->run(); });
    return port_;
  }

  // Every connection is dropped: its handlers (and so the sessions) go with the io_context.
  void stop() {
    if (!ioc_) return;
    cluster_.forget_watches();
    ioc_->stop();
    for (auto& t : threads_) t.join();
    threads_.clear();
    acceptor_.reset();
    ioc_.reset();
  }

 private:
  void accept() {
    acceptor_->async_accept(net::make_strand(*ioc_), [this](beast::error_code ec, tcp::socket socket) {
      if (ec == net::error::operation_aborted) return;
      if (!ec) {
        socket.set_option(tcp::no_delay(true), ec);
        auto stream = std::make_shared<TlsStream>(std::move(socket), tls_);
        beast::get_lowest_layer(*stream).expires_after(10s);
        stream->async_handshake(ssl::stream_base::server, [stream, this](beast::error_code hec) {
          if (!hec) std::make_shared<HttpSession>(std::move(*stream), cluster_)->run();
        });
      }
      accept();
    });
  }

  Cluster& cluster_;
  ssl::context& tls_;
  std::unique_ptr<net::io_context> ioc_;
  std::unique_ptr<tcp::acceptor> acceptor_;
  std::vector<std::thread> threads_;
  uint16_t port_ = 0;
};

}  // namespace

// ---------------------------------------------------------------- the public face

struct StandinApiServer::State {
  explicit State(Options options)
      : token(options.token),
        tls_material(make_tls()),
        tls(ssl::context::tls_server),
        cluster(std::move(options), dir.path() + "/pods"),
        server(cluster, tls) {
    write_file(dir.path() + "/ca.crt", tls_material.ca_pem);
    write_file(dir.path() + "/token", token + "\n", fs::perms(0600));
    tls.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                    ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
    tls.use_certificate_chain(net::buffer(tls_material.cert_pem));
    tls.use_private_key(net::buffer(tls_material.key_pem), ssl::context::pem);
    port = server.start(0);
  }

  TempDir dir;
  std::string token;
  TlsMaterial tls_material;
  ssl::context tls;
  Cluster cluster;
  Server server;
  uint16_t port = 0;
};

StandinApiServer::StandinApiServer() : StandinApiServer(Options{}) {}

StandinApiServer::StandinApiServer(Options options) {
  // A process's stdin pipe may close under a write; that must not end the test.
  signal(SIGPIPE, SIG_IGN);
  state_ = std::make_unique<State>(std::move(options));
}

StandinApiServer::~StandinApiServer() { state_->server.stop(); }

std::string StandinApiServer::url() const { return "https://127.0.0.1:" + std::to_string(state_->port); }
std::string StandinApiServer::ca_file() const { return state_->dir.path() + "/ca.crt"; }
const std::string& StandinApiServer::token() const { return state_->token; }
std::string StandinApiServer::token_file() const { return state_->dir.path() + "/token"; }

std::string StandinApiServer::write_kubeconfig(bool embed_ca) const {
  std::string path = state_->dir.path() + (embed_ca ? "/kubeconfig-embedded" : "/kubeconfig");
  const std::string ca = embed_ca ? "    certificate-authority-data: " + base64(state_->tls_material.ca_pem)
                                  : "    certificate-authority: " + ca_file();
  write_file(path,
             "apiVersion: v1\n"
             "kind: Config\n"
             "clusters:\n"
             "- name: standin\n"
             "  cluster:\n"
             "    server: " +
                 url() + "\n" + ca +
                 "\n"
                 "contexts:\n"
                 "- name: standin\n"
                 "  context:\n"
                 "    cluster: standin\n"
                 "    user: standin\n"
                 "current-context: standin\n"
                 "preferences: {}\n"
                 "users:\n"
                 "- name: standin\n"
                 "  user:\n"
                 "    token: " +
                 state_->token + "\n",
             fs::perms(0600));
  return path;
}

std::optional<Json> StandinApiServer::pod(const std::string& ns, const std::string& name) {
  return state_->cluster.get(kPods, ns, name);
}
std::vector<Json> StandinApiServer::pods(const std::string& ns) { return state_->cluster.all(kPods, ns); }
std::optional<Json> StandinApiServer::network_policy(const std::string& ns, const std::string& name) {
  return state_->cluster.get(kNetworkPolicies, ns, name);
}
std::vector<Json> StandinApiServer::network_policies(const std::string& ns) {
  return state_->cluster.all(kNetworkPolicies, ns);
}

void StandinApiServer::set_pod_status(const std::string& ns, const std::string& name, const Json& status) {
  state_->cluster.set_pod_status(ns, name, status);
}
void StandinApiServer::set_running(const std::string& ns, const std::string& name) {
  state_->cluster.set_running(ns, name);
}
void StandinApiServer::set_exec_protocols(std::vector<std::string> protocols) {
  state_->cluster.set_exec_protocols(std::move(protocols));
}
void StandinApiServer::set_exec_answers_close(bool answers) { state_->cluster.set_exec_answers_close(answers); }
size_t StandinApiServer::open_execs() { return state_->cluster.open_execs(); }

void StandinApiServer::fail_next(int count, int http_status, const std::string& match) {
  state_->cluster.add_fault(count, http_status, 0ms, match);
}
void StandinApiServer::delay_next(int count, std::chrono::milliseconds delay, const std::string& match) {
  state_->cluster.add_fault(count, 0, delay, match);
}

void StandinApiServer::expire_watches() { state_->cluster.end_watches(true); }
void StandinApiServer::close_watches() { state_->cluster.end_watches(false); }
void StandinApiServer::stop() { state_->server.stop(); }
void StandinApiServer::start() { state_->server.start(state_->port); }

std::vector<std::string> StandinApiServer::requests() { return state_->cluster.requests(); }
int StandinApiServer::open_watches() { return state_->cluster.open_watches(); }

}  // namespace examiso::testing
