#include "common/config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <cstdlib>

#include "common/errors.h"
#include "common/files.h"

namespace examiso {
namespace {

constexpr std::array kKeys{
    ConfigKey{"log.level", "info", "debug, info, warn or error"},
    ConfigKey{"database.url", "postgresql://postgres@127.0.0.1:5432/examiso",
              "libpq connection URL; the DATABASE_URL environment variable overrides it"},
    ConfigKey{"database.pool_size", "8", "connections per service process"},
    ConfigKey{"database.connect_timeout_seconds", "2", "give up connecting after this long"},
    ConfigKey{"database.statement_timeout_ms", "5000", "abort any statement running longer"},
    ConfigKey{"grpc.call_timeout_ms", "5000", "deadline of internal RPCs and CLI calls"},
    ConfigKey{"grpc.tls_dir", "",
              "mutual TLS: <dir>/<role>/{ca.crt,tls.crt,tls.key} per role (a service's name, operator for CLIs); "
              "empty: plaintext"},
    ConfigKey{"identity.listen", "127.0.0.1:50051", "where the identity service listens"},
    ConfigKey{"identity.address", "127.0.0.1:50051", "where clients reach the identity service"},
    ConfigKey{"identity.algorithms", "HS256", "accepted token algorithms, from HS256, RS256, ES256"},
    ConfigKey{"identity.hs256_secret", "", "HS256 secret (development tokens)"},
    ConfigKey{"identity.dev_sign_in", "false",
              "mint tokens on request (POST /v1/dev/token, session-identity token): development platforms only"},
    ConfigKey{"identity.refresh_secret", "",
              "secret identity signs refreshed tokens with when there is no hs256_secret (production)"},
    ConfigKey{"identity.rs256_public_key_file", "", "PEM public key for RS256 tokens"},
    ConfigKey{"identity.es256_public_key_file", "", "PEM public key for ES256 tokens"},
    ConfigKey{"identity.issuer", "", "required `iss` claim; empty: not checked"},
    ConfigKey{"identity.audience", "", "required `aud` claim; empty: not checked"},
    ConfigKey{"identity.leeway_seconds", "30", "clock skew tolerated on exp, nbf and iat"},
    ConfigKey{"identity.token_ttl_seconds", "3600", "lifetime of issued development tokens"},
    ConfigKey{"identity.max_token_ttl_seconds", "86400", "longest --ttl IssueToken accepts"},
    ConfigKey{"identity.ticket_ttl_seconds", "30", "how long a terminal ticket may wait to be used (once)"},
    ConfigKey{"lifecycle.listen", "127.0.0.1:50052", "where the lifecycle service listens"},
    ConfigKey{"lifecycle.address", "127.0.0.1:50052", "where clients reach the lifecycle service"},
    ConfigKey{"lifecycle.exam_catalog", "config/exams.yaml", "the exam catalog (relative to the working directory)"},
    ConfigKey{"lifecycle.provisioner_workers", "8",
              "sessions provisioned at once by this replica (0: this replica does not provision)"},
    ConfigKey{"lifecycle.provision_lease_seconds", "10",
              "a claimed session is left alone by other replicas this long (then taken up again)"},
    ConfigKey{"lifecycle.max_extension_seconds", "3600",
              "the most extra time staff may give one session, in all (environment.kube_deadline_grace_seconds "
              "must cover it)"},
    ConfigKey{"lifecycle.watch_heartbeat_ms", "2000",
              "WatchSession repeats the status (with fresh remaining_seconds) at least this often"},
    ConfigKey{"environment.listen", "127.0.0.1:50053", "where the environment service listens"},
    ConfigKey{"environment.address", "127.0.0.1:50053", "where clients reach the environment service"},
    ConfigKey{"environment.driver", "local", "local (a sandbox per session on this machine) or kubernetes"},
    ConfigKey{"environment.namespace", "exam-sessions", "the namespace environments are reported in (and created in)"},
    ConfigKey{"environment.node_name", "", "this machine's name in environment records; empty: the hostname"},
    ConfigKey{"environment.state_dir", "/var/lib/examiso/sandboxes", "local driver: per-sandbox directories"},
    ConfigKey{"environment.cgroup_parent", "examiso", "local driver: the cgroup under which each sandbox gets its own"},
    ConfigKey{"environment.max_sandboxes", "1000",
              "local driver: most sandboxes on this machine at once (warm pool included); past it a create is refused"},
    ConfigKey{"environment.sandboxes_memory_mb", "0",
              "local driver: memory all sandboxes together may use (their parent cgroup's limit); 0: 90% of this "
              "machine's"},
    ConfigKey{"environment.sandboxes_pids", "32768",
              "local driver: processes all sandboxes together may run (their parent cgroup's limit)"},
    ConfigKey{"environment.uid_base", "200000", "local driver: first host uid given to sandboxes"},
    ConfigKey{"environment.uid_count", "50000", "local driver: how many host uids sandboxes may use"},
    ConfigKey{"environment.expedite_rcu", "true",
              "local driver: set /sys/kernel/rcu_expedited, without which every move into a sandbox's cgroup "
              "waits out an RCU grace period (~17 ms)"},
    ConfigKey{"environment.kube_config", "",
              "kubernetes driver: a kubeconfig file (its current context); empty: kube_server, else in-cluster"},
    ConfigKey{"environment.kube_server", "", "kubernetes driver: the API server (https://host:port); empty: in-cluster"},
    ConfigKey{"environment.kube_token_file", "/var/run/secrets/kubernetes.io/serviceaccount/token",
              "kubernetes driver: bearer token file (re-read for each request)"},
    ConfigKey{"environment.kube_ca_file", "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt",
              "kubernetes driver: the CA of the API server's certificate"},
    ConfigKey{"environment.kube_timeout_ms", "10000", "kubernetes driver: timeout of each API call"},
    ConfigKey{"environment.kube_deadline_grace_seconds", "4500",
              "kubernetes driver: a pod ends this long after its session's deadline at the latest "
              "(activeDeadlineSeconds, a backstop should cleanup fail; Kubernetes never lengthens it, so it "
              "covers the most extra time staff may give, lifecycle.max_extension_seconds)"},
    ConfigKey{"environment.kube_unstarted_seconds", "3600",
              "kubernetes driver: how long a pod may wait for its exam's clock to start, beyond the exam's duration"},
    ConfigKey{"environment.warm_pool_size", "2",
              "environments kept ready per exam before candidates ask (setup already run); 0: none"},
    ConfigKey{"environment.replay_bytes", "65536", "recent terminal output replayed to a client that (re)attaches"},
    ConfigKey{"environment.terminal_output_mb_per_s", "16",
              "the most output a terminal carries a second (MB); past it the candidate's program waits; 0: no limit"},
    ConfigKey{"environment.stop_sandboxes_on_exit", "false",
              "end every sandbox when the service stops (a development platform; production keeps them)"},
    ConfigKey{"environment.reconcile_interval_seconds", "10",
              "how often records and running sandboxes are compared (also at start-up)"},
    ConfigKey{"access.listen", "127.0.0.1:50054", "where the access service listens"},
    ConfigKey{"access.address", "127.0.0.1:50054", "where clients reach the access service"},
    ConfigKey{"cleanup.listen", "127.0.0.1:50055", "where the cleanup service listens"},
    ConfigKey{"cleanup.address", "127.0.0.1:50055", "where clients reach the cleanup service"},
    ConfigKey{"cleanup.sweep_interval_ms", "1000",
              "the longest pause between sweeps (sooner when a running session's deadline comes first)"},
    ConfigKey{"cleanup.abandon_after_seconds", "900", "a session left ready this long without starting is terminated"},
    ConfigKey{"cleanup.workers", "8", "sessions cleaned at once during a sweep"},
    ConfigKey{"gateway.listen", "127.0.0.1:3000", "where the gateway serves HTTP and WebSocket"},
    ConfigKey{"gateway.threads", "0", "I/O threads; 0: one per core"},
    ConfigKey{"gateway.tls_cert_file", "", "PEM certificate chain: serve https/wss (empty: plain http/ws)"},
    ConfigKey{"gateway.tls_key_file", "", "PEM private key of the certificate"},
    ConfigKey{"gateway.plain_http_with_tls", "false",
              "with a certificate, also answer plain http/ws on the same port (development)"},
    ConfigKey{"gateway.trusted_proxies", "",
              "addresses or CIDR blocks of proxies whose X-Forwarded-For names the client (empty: none)"},
    ConfigKey{"gateway.allowed_origins",
              "http://localhost:3000,http://127.0.0.1:3000,https://localhost:3000,https://127.0.0.1:3000,"
              "http://localhost:5173,http://127.0.0.1:5173",
              "Origins from which browsers may open WebSockets (cross-site WebSocket hijacking guard)"},
    ConfigKey{"gateway.max_websockets_per_user", "16",
              "WebSockets (terminals and status streams) one user may hold open at once (429 beyond)"},
    ConfigKey{"gateway.header_limit_bytes", "8192", "largest request head accepted (431 beyond)"},
    ConfigKey{"gateway.body_limit_bytes", "65536", "largest request body accepted (413 beyond)"},
    ConfigKey{"gateway.ws_message_limit_bytes", "65536", "largest WebSocket message accepted from a client"},
    ConfigKey{"gateway.request_timeout_seconds", "10", "a request must arrive whole within this (slow clients)"},
    ConfigKey{"gateway.idle_timeout_seconds", "30", "an idle kept-alive connection is closed after this"},
    ConfigKey{"gateway.rate_limit_ip_per_second", "100", "requests per second per client address that prove no user: anonymous ones, failed sign-ins (429 beyond)"},
    ConfigKey{"gateway.rate_limit_ip_burst", "200", "burst allowed per client address (of those requests)"},
    ConfigKey{"gateway.rate_limit_user_per_second", "50", "requests per second per user (429 beyond)"},
    ConfigKey{"gateway.rate_limit_user_burst", "100", "burst allowed per user"},
    ConfigKey{"gateway.token_cache_seconds", "30", "a verified token is trusted this long without asking again"},
    ConfigKey{"gateway.static_dir", "frontend/dist", "the web UI's built files (empty: no UI)"},
};

std::string scalar_text(const YAML::Node& node) {
  if (node.IsNull()) return "";
  if (node.IsScalar()) return node.Scalar();
  std::string joined;
  for (const auto& item : node) {
    if (!item.IsScalar()) throw YAML::Exception(item.Mark(), "expected a scalar in this list");
    joined += (joined.empty() ? "" : ",") + item.Scalar();
  }
  return joined;
}

bool known(std::string_view key) {
  return std::any_of(kKeys.begin(), kKeys.end(), [&](const ConfigKey& k) { return k.key == key; });
}

void load_file(const std::string& path, Config& config) {
  YAML::Node root;
  const auto text = read_file(path);
  if (!text) throw Error("INVALID_ARGUMENT", "cannot read config file " + path);
  try {
    root = YAML::Load(*text);
  } catch (const YAML::Exception& e) {
    throw Error("INVALID_ARGUMENT", path + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
  if (root.IsNull()) return;
  if (!root.IsMap()) throw Error("INVALID_ARGUMENT", path + ": expected a mapping of sections");
  for (const auto& section : root) {
    const std::string name = section.first.Scalar();
    const auto line = [&](const YAML::Node& n) { return path + ":" + std::to_string(n.Mark().line + 1); };
    if (!section.second.IsMap() && !section.second.IsNull())
      throw Error("INVALID_ARGUMENT", line(section.first) + ": section '" + name + "' must be a mapping");
    for (const auto& entry : section.second) {
      const std::string key = name + "." + entry.first.Scalar();
      if (!known(key)) throw Error("INVALID_ARGUMENT", line(entry.first) + ": unknown key '" + key + "'");
      try {
        config.set(key, scalar_text(entry.second), line(entry.first));
      } catch (const YAML::Exception& e) {
        throw Error("INVALID_ARGUMENT", path + ":" + std::to_string(e.mark.line + 1) + ": " + key + ": " + e.msg);
      }
    }
  }
}

}  // namespace

std::span<const ConfigKey> config_keys() { return kKeys; }

std::string documented_config() {
  std::string out =
      "# examiso configuration: every key with its default (generated by `examiso-identity --print-config`).\n"
      "# Services and CLIs read it with --config PATH (or EXAMISO_CONFIG). Every key can be\n"
      "# overridden from the environment: section.name -> EXAMISO_SECTION_NAME (e.g.\n"
      "# identity.hs256_secret -> EXAMISO_IDENTITY_HS256_SECRET); DATABASE_URL overrides database.url.\n"
      "# Keep secrets out of this file: pass them through the environment.\n";
  std::string section;
  for (const auto& k : kKeys) {
    const std::string key(k.key);
    const auto dot = key.find('.');
    if (key.substr(0, dot) != section) {
      section = key.substr(0, dot);
      out += "\n" + section + ":\n";
    }
    std::string value(k.default_value);
    if (value.empty()) {
      value = "\"\"";
    } else if (value.find(',') != std::string::npos) {
      std::string list = "[";
      for (char c : value) list += c == ',' ? std::string(", ") : std::string(1, c);
      value = list + "]";
    } else if (value.find_first_of(":#") != std::string::npos) {
      value = "\"" + value + "\"";
    }
    out += "  # " + std::string(k.doc) + "\n  " + key.substr(dot + 1) + ": " + value + "\n";
  }
  return out;
}

std::string Config::env_name(std::string_view key) {
  std::string name = "EXAMISO_";
  for (char c : key) name += c == '.' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return name;
}

Config Config::load(const std::string& path) {
  Config config;
  for (const auto& k : kKeys) config.set(k.key, std::string(k.default_value), "default");
  if (!path.empty()) load_file(path, config);
  for (const auto& k : kKeys) {
    const std::string name = env_name(k.key);
    if (const char* v = std::getenv(name.c_str())) config.set(k.key, v, "environment " + name);
  }
  if (const char* url = std::getenv("DATABASE_URL"); url && *url) config.set("database.url", url, "environment DATABASE_URL");
  return config;
}

void Config::set(std::string_view key, std::string value, std::string origin) {
  values_[std::string(key)] = std::move(value);
  origins_[std::string(key)] = std::move(origin);
}

const std::string& Config::str(std::string_view key) const {
  auto it = values_.find(key);
  if (it == values_.end()) throw Error("INTERNAL_ERROR", "undeclared config key " + std::string(key));
  return it->second;
}

void Config::bad_value(std::string_view key, std::string_view expected) const {
  const auto origin = origins_.find(key);
  throw Error("INVALID_ARGUMENT", std::string(key) + " must be " + std::string(expected) + ", not '" + str(key) +
                                      "' (from " + origin->second + ")");
}

int64_t Config::integer(std::string_view key) const {
  const std::string& v = str(key);
  try {
    size_t used = 0;
    const int64_t n = std::stoll(v, &used);
    if (used == v.size()) return n;
  } catch (const std::exception&) {
  }
  bad_value(key, "an integer");
}

double Config::number(std::string_view key) const {
  const std::string& v = str(key);
  try {
    size_t used = 0;
    const double n = std::stod(v, &used);
    if (used == v.size()) return n;
  } catch (const std::exception&) {
  }
  bad_value(key, "a number");
}

bool Config::boolean(std::string_view key) const {
  const std::string& v = str(key);
  if (v == "true") return true;
  if (v == "false") return false;
  bad_value(key, "true or false");
}

std::vector<std::string> Config::list(std::string_view key) const {
  std::vector<std::string> items;
  std::string item;
  for (char c : str(key) + ",") {
    if (c != ',') {
      item += c;
      continue;
    }
    const auto first = item.find_first_not_of(' ');
    if (first != std::string::npos) items.push_back(item.substr(first, item.find_last_not_of(' ') - first + 1));
    item.clear();
  }
  return items;
}

}  // namespace examiso
