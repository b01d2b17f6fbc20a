// k8s/, Dockerfile, skaffold.yaml: renders the kustomizations (base, dev, prod) the way
// kustomize does, for the features they use, and checks what the deployment promises:
// probes, resources and a locked-down security context on every container; an API token
// for the environment service only, with a Role limited to the sessions' namespace;
// traffic only along the services' call graph, the gateway alone reachable from outside,
// PostgreSQL only from the five services, candidates' pods cut off; ports that agree with
// the configuration; every referenced ConfigMap and Secret present; one image.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <regex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace examiso {
namespace {

namespace fs = std::filesystem;

const fs::path kSource = EXAMISO_SOURCE_DIR;

// --- YAML as plain values (yaml-cpp's nodes share state on assignment, which merging
// patches into documents must not) ---

struct Value {
  enum class Type { Null, Scalar, Seq, Map };
  Type type = Type::Null;
  std::string scalar;
  std::vector<Value> seq;
  std::vector<std::pair<std::string, Value>> map;

  bool is_null() const { return type == Type::Null; }
  bool is_map() const { return type == Type::Map; }
  bool is_seq() const { return type == Type::Seq; }
  bool is_scalar() const { return type == Type::Scalar; }

  // The entry `key`, or a null value when there is none (or this is not a mapping).
  const Value& operator[](std::string_view key) const {
    static const Value kNull;
    const Value* v = find(key);
    return v ? *v : kNull;
  }
  const Value* find(std::string_view key) const {
    for (const auto& [k, v] : map)
      if (k == key) return &v;
    return nullptr;
  }
  Value* find(std::string_view key) {
    for (auto& [k, v] : map)
      if (k == key) return &v;
    return nullptr;
  }
  // The entry `key`, made (null) when missing; this becomes a mapping if it was null.
  Value& entry(const std::string& key) {
    if (type == Type::Null) type = Type::Map;
    if (Value* v = find(key)) return *v;
    map.emplace_back(key, Value{});
    return map.back().second;
  }
  void erase(std::string_view key) {
    std::erase_if(map, [&](const auto& kv) { return kv.first == key; });
  }
  const std::vector<Value>& items() const {
    static const std::vector<Value> kNone;
    return is_seq() ? seq : kNone;
  }
  std::string str() const { return scalar; }
  bool is_true() const { return is_scalar() && scalar == "true"; }
  bool is_false() const { return is_scalar() && scalar == "false"; }

  static Value of(std::string s) {
    Value v;
    v.type = Type::Scalar;
    v.scalar = std::move(s);
    return v;
  }
};

Value from_yaml(const YAML::Node& node) {
  Value v;
  switch (node.Type()) {
    case YAML::NodeType::Scalar:
      return Value::of(node.Scalar());
    case YAML::NodeType::Sequence:
      v.type = Value::Type::Seq;
      for (const auto& item : node) v.seq.push_back(from_yaml(item));
      return v;
    case YAML::NodeType::Map:
      v.type = Value::Type::Map;
      for (const auto& kv : node) v.map.emplace_back(kv.first.Scalar(), from_yaml(kv.second));
      return v;
    default:
      return v;
  }
}

std::string from_source(const fs::path& p) { return fs::relative(p, kSource).string(); }

std::string read_text(const fs::path& p) {
  std::ifstream in(p);
  if (!in) throw std::runtime_error("cannot read " + from_source(p));
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

Value load_one(const fs::path& p) {
  try {
    return from_yaml(YAML::LoadFile(p.string()));
  } catch (const YAML::Exception& e) {
    throw std::runtime_error(from_source(p) + ": " + e.what());
  }
}

using Labels = std::map<std::string, std::string>;

Labels labels_of(const Value& v) {
  Labels out;
  for (const auto& [k, val] : v.map) out[k] = val.str();
  return out;
}

// --- Kubernetes objects ---

struct Object {
  Value doc;
  std::string file;  // where it was written, for messages

  std::string kind() const { return doc["kind"].str(); }
  std::string name() const { return doc["metadata"]["name"].str(); }
  std::string ns() const { return doc["metadata"]["namespace"].str(); }
  std::string id() const { return kind() + " " + (ns().empty() ? "" : ns() + "/") + name() + " (" + file + ")"; }

  bool is_workload() const { return kind() == "Deployment" || kind() == "StatefulSet"; }
  const Value& pod() const { return doc["spec"]["template"]["spec"]; }
  Labels pod_labels() const { return labels_of(doc["spec"]["template"]["metadata"]["labels"]); }
  // The component a workload runs (its app.kubernetes.io/name).
  std::string app() const { return pod_labels()["app.kubernetes.io/name"]; }
  std::vector<const Value*> containers() const {
    std::vector<const Value*> out;
    for (const char* field : {"initContainers", "containers"})
      for (const Value& c : pod()[field].items()) out.push_back(&c);
    return out;
  }
};

bool cluster_scoped(const std::string& kind) {
  static const std::set<std::string> kinds = {"Namespace",        "ClusterRole",  "ClusterRoleBinding",
                                              "PersistentVolume", "StorageClass", "CustomResourceDefinition",
                                              "PriorityClass",    "RuntimeClass", "IngressClass"};
  return kinds.contains(kind);
}

std::vector<Object> load_objects(const fs::path& p) {
  std::vector<Object> out;
  std::vector<YAML::Node> docs;
  try {
    docs = YAML::LoadAllFromFile(p.string());
  } catch (const YAML::Exception& e) {
    throw std::runtime_error(from_source(p) + ": " + e.what());
  }
  for (const auto& d : docs) {
    if (d.IsNull()) continue;
    Object o{from_yaml(d), from_source(p)};
    if (o.kind().empty() || o.name().empty())
      throw std::runtime_error(from_source(p) + ": an object without kind or name");
    out.push_back(std::move(o));
  }
  return out;
}

// --- the renderer: kustomize's behaviour for the features k8s/ uses, and a loud
// refusal of any other, so that nothing is silently left unchecked ---

// Strategic merge: maps merge by key (null deletes), these lists merge their items by a
// key, every other list is replaced.
std::string list_merge_key(const std::string& field, const Value& items) {
  if (field == "containers" || field == "initContainers" || field == "env" || field == "volumes" ||
      field == "imagePullSecrets")
    return "name";
  if (field == "volumeMounts") return "mountPath";
  if (field == "ports") {
    for (const Value& i : items.items())
      if (i.find("containerPort")) return "containerPort";
    return "port";
  }
  return "";
}

Value merge(const Value& base, const Value& patch, const std::string& field) {
  if (patch.is_map() && base.is_map()) {
    if (patch.find("$patch")) throw std::runtime_error("$patch directives are not supported by this renderer");
    Value out = base;
    for (const auto& [k, v] : patch.map) {
      if (v.is_null()) {
        out.erase(k);
      } else if (const Value* b = base.find(k)) {
        out.entry(k) = merge(*b, v, k);
      } else {
        out.entry(k) = v;
      }
    }
    return out;
  }
  if (patch.is_seq() && base.is_seq()) {
    const std::string key = list_merge_key(field, patch.seq.empty() ? base : patch);
    if (key.empty()) return patch;
    Value out = base;
    for (const Value& item : patch.seq) {
      auto same =
          std::find_if(out.seq.begin(), out.seq.end(), [&](const Value& b) { return b[key].str() == item[key].str(); });
      if (same != out.seq.end()) {
        *same = merge(*same, item, "");
      } else {
        out.seq.push_back(item);
      }
    }
    return out;
  }
  return patch;
}

// An image reference without its tag or digest.
std::string image_name(const std::string& ref) {
  const auto at = ref.find('@');
  std::string s = ref.substr(0, at);
  const auto colon = s.rfind(':');
  const auto slash = s.rfind('/');
  if (colon != std::string::npos && (slash == std::string::npos || colon > slash)) s = s.substr(0, colon);
  return s;
}

void check_keys(const Value& v, const std::set<std::string>& allowed, const std::string& where) {
  for (const auto& [k, _] : v.map) {
    if (allowed.contains(k)) continue;
    std::string message = where;
    message += " uses '" + k + "', which tests/unit/manifest_test.cc's renderer does not understand: ";
    message += "teach it, or say it another way";
    throw std::runtime_error(message);
  }
}

Object generate(const Value& g, const std::string& kind, const fs::path& dir, const std::string& where) {
  check_keys(g, {"name", "namespace", "files", "literals", "envs"}, where);
  Value doc;
  doc.entry("apiVersion") = Value::of("v1");
  doc.entry("kind") = Value::of(kind);
  doc.entry("metadata").entry("name") = g["name"];
  if (!g["namespace"].is_null()) doc.entry("metadata").entry("namespace") = g["namespace"];
  // Secrets keep their values readable here (kustomize would base64 them into `data`).
  Value& data = doc.entry(kind == "Secret" ? "stringData" : "data");
  data.type = Value::Type::Map;
  for (const Value& f : g["files"].items()) {
    const std::string spec = f.str();
    const auto eq = spec.find('=');
    const std::string key = eq == std::string::npos ? fs::path(spec).filename().string() : spec.substr(0, eq);
    data.entry(key) = Value::of(read_text(dir / (eq == std::string::npos ? spec : spec.substr(eq + 1))));
  }
  const auto add_line = [&](const std::string& line) {
    const auto eq = line.find('=');
    if (eq == std::string::npos) throw std::runtime_error(where + ": '" + line + "' is not KEY=VALUE");
    data.entry(line.substr(0, eq)) = Value::of(line.substr(eq + 1));
  };
  for (const Value& l : g["literals"].items()) add_line(l.str());
  for (const Value& e : g["envs"].items()) {
    std::istringstream lines(read_text(dir / e.str()));
    for (std::string line; std::getline(lines, line);)
      if (!line.empty() && line[0] != '#') add_line(line);
  }
  return Object{std::move(doc), where};
}

std::vector<Object> render(const fs::path& dir) {
  const fs::path file = dir / "kustomization.yaml";
  if (!fs::exists(file)) throw std::runtime_error(from_source(dir) + " has no kustomization.yaml");
  const std::string where = from_source(file);
  const Value k = load_one(file);
  check_keys(k,
             {"apiVersion", "kind", "resources", "namespace", "configMapGenerator", "secretGenerator", "patches",
              "images", "replicas"},
             where);

  std::vector<Object> out;
  for (const Value& r : k["resources"].items()) {
    const fs::path p = dir / r.str();
    auto more = fs::is_directory(p) ? render(p) : load_objects(p);
    std::move(more.begin(), more.end(), std::back_inserter(out));
  }
  for (const Value& g : k["configMapGenerator"].items()) out.push_back(generate(g, "ConfigMap", dir, where));
  for (const Value& g : k["secretGenerator"].items()) out.push_back(generate(g, "Secret", dir, where));

  for (const Value& p : k["patches"].items()) {
    check_keys(p, {"path"}, where + " (a patch)");
    const Value patch = load_one(dir / p["path"].str());
    const std::string pns = patch["metadata"]["namespace"].str();
    std::vector<Object*> targets;
    for (Object& o : out)
      if (o.kind() == patch["kind"].str() && o.name() == patch["metadata"]["name"].str() &&
          (pns.empty() || o.ns() == pns))
        targets.push_back(&o);
    if (targets.size() != 1)
      throw std::runtime_error(where + ": patch " + p["path"].str() + " matches " + std::to_string(targets.size()) +
                               " objects, not one");
    targets[0]->doc = merge(targets[0]->doc, patch, "");
  }

  if (const std::string ns = k["namespace"].str(); !ns.empty())
    for (Object& o : out)
      if (!cluster_scoped(o.kind())) o.doc.entry("metadata").entry("namespace") = Value::of(ns);

  for (const Value& img : k["images"].items()) {
    check_keys(img, {"name", "newName", "newTag", "digest"}, where + " (images)");
    for (Object& o : out) {
      if (!o.is_workload()) continue;
      Value& spec = o.doc.entry("spec").entry("template").entry("spec");
      for (const char* field : {"initContainers", "containers"}) {
        Value* list = spec.find(field);
        if (!list) continue;
        for (Value& c : list->seq) {
          const std::string ref = c["image"].str();
          if (image_name(ref) != img["name"].str()) continue;
          std::string next = img["newName"].is_null() ? image_name(ref) : img["newName"].str();
          if (!img["newTag"].is_null()) next += ":" + img["newTag"].str();
          if (!img["digest"].is_null()) next += "@" + img["digest"].str();
          c.entry("image") = Value::of(next);
        }
      }
    }
  }

  for (const Value& r : k["replicas"].items()) {
    int found = 0;
    for (Object& o : out)
      if (o.is_workload() && o.name() == r["name"].str()) {
        o.doc.entry("spec").entry("replicas") = r["count"];
        ++found;
      }
    if (found == 0) throw std::runtime_error(where + ": replicas for '" + r["name"].str() + "', which is no workload");
  }
  return out;
}

// --- a rendered overlay, with the lookups the checks share ---

struct Rendered {
  std::string name;
  std::vector<Object> objects;

  std::vector<const Object*> of_kind(std::string_view kind) const {
    std::vector<const Object*> out;
    for (const Object& o : objects)
      if (o.kind() == kind) out.push_back(&o);
    return out;
  }
  const Object* find(std::string_view kind, const std::string& ns, const std::string& name) const {
    for (const Object& o : objects)
      if (o.kind() == kind && o.ns() == ns && o.name() == name) return &o;
    return nullptr;
  }
  std::vector<const Object*> workloads() const {
    std::vector<const Object*> out;
    for (const Object& o : objects)
      if (o.is_workload()) out.push_back(&o);
    return out;
  }
  const Object* workload(const std::string& app) const {
    for (const Object* w : workloads())
      if (w->app() == app) return w;
    return nullptr;
  }
  // examiso.yaml as mounted in the pods (ConfigMap examiso-config).
  const Value& cluster_config() const {
    if (config_.is_null()) {
      for (const Object* c : of_kind("ConfigMap"))
        if (c->name() == "examiso-config") config_ = from_yaml(YAML::Load(c->doc["data"]["examiso.yaml"].str()));
      if (config_.is_null()) throw std::runtime_error(name + ": no ConfigMap examiso-config with examiso.yaml");
    }
    return config_;
  }
  std::string sessions_namespace() const { return cluster_config()["environment"]["namespace"].str(); }

  mutable Value config_;  // parsed once, by cluster_config()
};

const Rendered& rendered(const std::string& overlay) {
  static std::map<std::string, std::unique_ptr<Rendered>> cache;
  auto& slot = cache[overlay];
  if (!slot) {
    const fs::path dir = overlay == "base" ? kSource / "k8s/base" : kSource / "k8s/overlays" / overlay;
    slot = std::make_unique<Rendered>(Rendered{overlay, render(dir), Value{}});
  }
  return *slot;
}

// --- what the platform is ---

const std::vector<std::string> kServices = {"identity", "lifecycle", "environment", "access", "cleanup"};
const std::vector<std::string> kComponents = {"identity", "lifecycle", "environment", "access", "cleanup", "gateway"};

// Who dials whom: the `<service>.address` each daemon reads (services/*/main.cc,
// gateway/backends.cc), plus every service's database.
const std::set<std::pair<std::string, std::string>> kCalls = {
    {"gateway", "identity"},    {"gateway", "lifecycle"},     {"gateway", "environment"},   {"gateway", "access"},
    {"access", "lifecycle"},    {"lifecycle", "environment"}, {"environment", "lifecycle"}, {"cleanup", "lifecycle"},
    {"cleanup", "environment"}, {"identity", "postgres"},     {"lifecycle", "postgres"},    {"environment", "postgres"},
    {"access", "postgres"},     {"cleanup", "postgres"}};

// What the prod operator creates (README.md, "Kubernetes"); a key of "" is the whole Secret.
const std::set<std::pair<std::string, std::string>> kOperatorSecrets = {
    {"examiso-secrets", "DATABASE_URL"},
    {"examiso-secrets", "identity-rs256-public.pem"},
    {"examiso-secrets", "identity-refresh-secret"},
    {"examiso-gateway-tls", ""},
    {"examiso-gateway-tls", "tls.crt"},
    {"examiso-gateway-tls", "tls.key"}};

// Made outside the overlays, in dev by skaffold's hook (scripts/internal-certs
// --secrets), in prod by cert-manager (k8s/cert-manager): internal mutual TLS.
bool internal_tls_secret(const std::string& name) {
  for (const auto& role : kComponents)
    if (name == "examiso-tls-" + role) return true;
  return false;
}

int port_of(const std::string& host_port) {
  const auto colon = host_port.rfind(':');
  return colon == std::string::npos ? -1 : std::stoi(host_port.substr(colon + 1));
}

// config/examiso.yaml: every key with its default.
const Value& defaults() {
  static const Value config = load_one(kSource / "config/examiso.yaml");
  return config;
}

// The default port of each component.
int default_port(const std::string& component) { return port_of(defaults()[component]["listen"].str()); }

std::string env_name(const std::string& key) {
  std::string name = "EXAMISO_";
  for (char c : key) name += c == '.' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return name;
}

// A key's value as a container sees it: its environment, else the mounted file, else
// the default (config/examiso.yaml): the order common/config.cc applies.
std::string effective(const Rendered& r, const Value& container, const std::string& section, const std::string& key) {
  const std::string variable = env_name(section + "." + key);
  for (const Value& e : container["env"].items())
    if (e["name"].str() == variable && !e["value"].is_null()) return e["value"].str();
  const Value& file = r.cluster_config()[section][key];
  if (!file.is_null()) return file.str();
  return defaults()[section][key].str();
}

const Value* container_named(const Object& w, const std::string& name) {
  for (const Value* c : w.containers())
    if ((*c)["name"].str() == name) return c;
  return nullptr;
}

// The container port a probe's or a Service's port (a number or a name) lands on; "" if none.
std::string resolve(const Value& container, const std::string& port) {
  for (const Value& p : container["ports"].items())
    if (p["containerPort"].str() == port || (!p["name"].is_null() && p["name"].str() == port))
      return p["containerPort"].str();
  return "";
}

bool exposes(const Value& container, const std::string& port) { return !resolve(container, port).empty(); }

// A LabelSelector (podSelector, a PodDisruptionBudget's selector): {} selects everything.
bool selects(const Value& selector, const Labels& labels) {
  if (!selector["matchExpressions"].is_null())
    throw std::runtime_error("matchExpressions are not supported by this test's evaluator");
  for (const auto& [k, v] : selector["matchLabels"].map) {
    auto it = labels.find(k);
    if (it == labels.end() || it->second != v.str()) return false;
  }
  return true;
}

// A Service's selector: plain labels, all of which must match.
bool selects_labels(const Value& selector, const Labels& labels) {
  if (selector.map.empty()) return false;
  for (const auto& [k, v] : selector.map) {
    auto it = labels.find(k);
    if (it == labels.end() || it->second != v.str()) return false;
  }
  return true;
}

double quantity(const std::string& q) {
  static const std::vector<std::pair<std::string, double>> suffixes = {{"Ki", 1024.0},
                                                                       {"Mi", 1024.0 * 1024},
                                                                       {"Gi", 1024.0 * 1024 * 1024},
                                                                       {"Ti", 1024.0 * 1024 * 1024 * 1024},
                                                                       {"k", 1e3},
                                                                       {"M", 1e6},
                                                                       {"G", 1e9},
                                                                       {"T", 1e12},
                                                                       {"m", 1e-3}};
  for (const auto& [s, f] : suffixes)
    if (q.size() > s.size() && q.ends_with(s)) return std::stod(q.substr(0, q.size() - s.size())) * f;
  size_t used = 0;
  const double v = std::stod(q, &used);
  if (used != q.size()) throw std::runtime_error("not a quantity: " + q);
  return v;
}

// --- NetworkPolicy: who may open a connection to whom ---

struct Peer {
  std::string what;  // for messages
  std::string ns;    // empty: outside the cluster
  Labels labels;
  std::string ip;
};

bool in_cidr(const std::string& ip, const std::string& cidr) {
  const auto slash = cidr.find('/');
  in_addr a{}, net{};
  if (inet_pton(AF_INET, ip.c_str(), &a) != 1 || inet_pton(AF_INET, cidr.substr(0, slash).c_str(), &net) != 1)
    throw std::runtime_error("not an IPv4 address or range: " + ip + ", " + cidr);
  const int bits = slash == std::string::npos ? 32 : std::stoi(cidr.substr(slash + 1));
  const uint32_t mask = bits == 0 ? 0 : ~uint32_t{0} << (32 - bits);
  return (ntohl(a.s_addr) & mask) == (ntohl(net.s_addr) & mask);
}

class Network {
 public:
  explicit Network(const Rendered& r) : r_(r) {}

  bool ingress(const Peer& from, const Peer& to, int port, const std::string& proto = "TCP") const {
    return to.ns.empty() || side(to, from, port, proto, "Ingress");
  }
  bool egress(const Peer& from, const Peer& to, int port, const std::string& proto = "TCP") const {
    return from.ns.empty() || side(from, to, port, proto, "Egress");
  }
  bool connects(const Peer& from, const Peer& to, int port, const std::string& proto = "TCP") const {
    return egress(from, to, port, proto) && ingress(from, to, port, proto);
  }

  // A workload's pod as a peer (pod addresses from 10.244.0.0/16).
  Peer pod(const Object& w) const {
    int index = 1;
    for (const Object* o : r_.workloads()) {
      if (o == &w) break;
      ++index;
    }
    return {w.kind() + " " + w.ns() + "/" + w.name(), w.ns(), w.pod_labels(), "10.244.0." + std::to_string(index)};
  }

 private:
  Labels namespace_labels(const std::string& ns) const {
    Labels l;
    if (const Object* n = r_.find("Namespace", "", ns)) l = labels_of(n->doc["metadata"]["labels"]);
    l["kubernetes.io/metadata.name"] = ns;
    return l;
  }

  bool matches(const Value& peer, const std::string& policy_ns, const Peer& other) const {
    if (const Value* block = peer.find("ipBlock")) {
      if (other.ip.empty() || !in_cidr(other.ip, (*block)["cidr"].str())) return false;
      for (const Value& e : (*block)["except"].items())
        if (in_cidr(other.ip, e.str())) return false;
      return true;
    }
    if (other.ns.empty()) return false;
    const bool ns_ok = peer.find("namespaceSelector") ? selects(peer["namespaceSelector"], namespace_labels(other.ns))
                                                      : other.ns == policy_ns;
    return ns_ok && (!peer.find("podSelector") || selects(peer["podSelector"], other.labels));
  }

  static bool port_matches(const Value& ports, int port, const std::string& proto) {
    if (ports.items().empty()) return true;
    for (const Value& p : ports.items()) {
      if ((p["protocol"].is_null() ? "TCP" : p["protocol"].str()) != proto) continue;
      if (p["port"].is_null()) return true;
      const std::string& s = p["port"].str();
      if (s.find_first_not_of("0123456789") != std::string::npos)
        throw std::runtime_error("named ports in NetworkPolicies are not supported by this test's evaluator");
      const int from = std::stoi(s);
      const int to = p["endPort"].is_null() ? from : std::stoi(p["endPort"].str());
      if (port >= from && port <= to) return true;
    }
    return false;
  }

  // Does `self`'s side (its egress or its ingress) let this connection through?
  bool side(const Peer& self, const Peer& other, int port, const std::string& proto, const std::string& dir) const {
    bool isolated = false;
    for (const Object* p : r_.of_kind("NetworkPolicy")) {
      if (p->ns() != self.ns || !selects(p->doc["spec"]["podSelector"], self.labels)) continue;
      const Value& spec = p->doc["spec"];
      std::set<std::string> types;
      for (const Value& t : spec["policyTypes"].items()) types.insert(t.str());
      if (types.empty()) {
        types.insert("Ingress");
        if (spec.find("egress")) types.insert("Egress");
      }
      if (!types.contains(dir)) continue;
      isolated = true;
      for (const Value& rule : spec[dir == "Ingress" ? "ingress" : "egress"].items()) {
        const Value& peers = rule[dir == "Ingress" ? "from" : "to"];
        const bool peer_ok =
            peers.items().empty() ||
            std::any_of(peers.seq.begin(), peers.seq.end(), [&](const Value& v) { return matches(v, p->ns(), other); });
        if (peer_ok && port_matches(rule["ports"], port, proto)) return true;
      }
    }
    return !isolated;
  }

  const Rendered& r_;
};

std::vector<int> tcp_ports(const Object& w) {
  std::vector<int> out;
  for (const Value* c : w.containers())
    for (const Value& p : (*c)["ports"].items())
      if (p["protocol"].is_null() || p["protocol"].str() == "TCP") out.push_back(std::stoi(p["containerPort"].str()));
  return out;
}

// --- the checks, on base, dev and prod ---

class Manifests : public testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    try {
      r_ = &rendered(GetParam());
    } catch (const std::exception& e) {
      FAIL() << "rendering " << GetParam() << ": " << e.what();
    }
  }
  const Rendered& r() const { return *r_; }

 private:
  const Rendered* r_ = nullptr;
};

TEST_P(Manifests, RenderEveryObjectOnceWithANamespace) {
  std::set<std::string> seen;
  for (const Object& o : r().objects) {
    EXPECT_FALSE(o.doc["apiVersion"].str().empty()) << o.id() << " has no apiVersion";
    EXPECT_TRUE(cluster_scoped(o.kind()) || !o.ns().empty()) << o.id() << " has no namespace";
    EXPECT_TRUE(seen.insert(o.kind() + "/" + o.ns() + "/" + o.name()).second) << o.id() << " is there twice";
  }
  for (const std::string& c : kComponents) EXPECT_NE(r().workload(c), nullptr) << "no workload runs " << c;
}

TEST_P(Manifests, EveryContainerHasReadinessAndLivenessProbes) {
  for (const Object* w : r().workloads()) {
    for (const Value& c : w->pod()["containers"].items()) {
      const std::string who = w->id() + ", container " + c["name"].str();
      for (const char* probe : {"readinessProbe", "livenessProbe"}) {
        const Value& p = c[probe];
        if (!p.is_map()) {
          ADD_FAILURE() << who << " has no " << probe;
          continue;
        }
        for (const char* handler : {"grpc", "tcpSocket", "httpGet"}) {
          if (!p.find(handler)) continue;
          EXPECT_TRUE(exposes(c, p[handler]["port"].str()))
              << who << ": the " << probe << " checks port " << p[handler]["port"].str()
              << ", which the container does not expose";
        }
        if (!p.find("grpc") && !p.find("tcpSocket") && !p.find("httpGet") && !p.find("exec"))
          ADD_FAILURE() << who << ": the " << probe << " checks nothing";
      }
      // The platform's own: gRPC health for readiness (over mutual TLS, so by
      // examiso-health, as the service itself), the gateway's endpoints.
      const std::string app = w->app();
      if (std::find(kServices.begin(), kServices.end(), app) != kServices.end()) {
        std::vector<std::string> command;
        for (const Value& a : c["readinessProbe"]["exec"]["command"].items()) command.push_back(a.str());
        const std::vector<std::string> expected = {"examiso-health", "--config", "/etc/examiso/examiso.yaml", "--address",
                                                   "127.0.0.1:" + std::to_string(default_port(app)), app};
        EXPECT_EQ(command, expected) << who << ": readiness must be the gRPC health check on the service's port";
      } else if (app == "gateway") {
        EXPECT_EQ(c["readinessProbe"]["httpGet"]["path"].str(), "/readyz") << who;
        EXPECT_EQ(c["livenessProbe"]["httpGet"]["path"].str(), "/healthz") << who;
      }
    }
  }
}

TEST_P(Manifests, EveryContainerHasResourceRequestsAndLimits) {
  for (const Object* w : r().workloads()) {
    for (const Value* c : w->containers()) {
      const std::string who = w->id() + ", container " + (*c)["name"].str();
      for (const char* resource : {"cpu", "memory"}) {
        const Value& request = (*c)["resources"]["requests"][resource];
        const Value& limit = (*c)["resources"]["limits"][resource];
        if (request.is_null() || limit.is_null()) {
          ADD_FAILURE() << who << " needs both a request and a limit for " << resource;
          continue;
        }
        EXPECT_LE(quantity(request.str()), quantity(limit.str()))
            << who << ": the " << resource << " request " << request.str() << " exceeds its limit " << limit.str();
      }
    }
  }
}

TEST_P(Manifests, EveryContainerRunsLockedDown) {
  for (const Object* w : r().workloads()) {
    const Value& pod = w->pod();
    const Value& psc = pod["securityContext"];
    for (const char* host : {"hostNetwork", "hostPID", "hostIPC"})
      EXPECT_FALSE(pod[host].is_true()) << w->id() << " sets " << host;
    for (const Value& v : pod["volumes"].items())
      EXPECT_FALSE(v.find("hostPath")) << w->id() << " mounts a hostPath (" << v["name"].str() << ")";
    for (const Value* c : w->containers()) {
      const std::string who = w->id() + ", container " + (*c)["name"].str();
      const Value& sc = (*c)["securityContext"];
      const auto either = [&](const char* key) -> const Value& { return sc.find(key) ? sc[key] : psc[key]; };
      EXPECT_TRUE(either("runAsNonRoot").is_true()) << who << " must set runAsNonRoot: true";
      const std::string uid = either("runAsUser").str();
      EXPECT_TRUE(!uid.empty() && uid.find_first_not_of("0123456789") == std::string::npos && uid != "0")
          << who << " must run as a numeric non-root runAsUser, not '" << uid << "'";
      EXPECT_TRUE(sc["allowPrivilegeEscalation"].is_false()) << who << " must set allowPrivilegeEscalation: false";
      EXPECT_FALSE(sc["privileged"].is_true()) << who << " is privileged";
      EXPECT_TRUE(sc["readOnlyRootFilesystem"].is_true()) << who << " must set readOnlyRootFilesystem: true";
      const auto& drop = sc["capabilities"]["drop"].items();
      EXPECT_TRUE(std::any_of(drop.begin(), drop.end(), [](const Value& v) { return v.str() == "ALL"; }))
          << who << " must drop ALL capabilities";
      EXPECT_TRUE(sc["capabilities"]["add"].items().empty()) << who << " adds capabilities";
      EXPECT_EQ(either("seccompProfile")["type"].str(), "RuntimeDefault")
          << who << " needs the RuntimeDefault seccomp profile";
      for (const Value& p : (*c)["ports"].items()) EXPECT_TRUE(p["hostPort"].is_null()) << who << " uses a hostPort";
    }
  }
}

TEST_P(Manifests, OnlyTheEnvironmentServiceGetsAnApiTokenAndOnlyForItsPods) {
  std::string environment_account, platform_ns;
  for (const Object* w : r().workloads()) {
    const Value& pod = w->pod();
    const std::string account = pod["serviceAccountName"].is_null() ? "default" : pod["serviceAccountName"].str();
    bool token = true;  // Kubernetes' default
    if (const Object* sa = r().find("ServiceAccount", w->ns(), account);
        sa && sa->doc["automountServiceAccountToken"].is_false())
      token = false;
    if (!pod["automountServiceAccountToken"].is_null()) token = pod["automountServiceAccountToken"].is_true();
    if (w->app() == "environment") {
      EXPECT_TRUE(token) << w->id() << " needs its token to reach the API server";
      EXPECT_NE(account, "default") << w->id() << " must use its own ServiceAccount";
      EXPECT_NE(r().find("ServiceAccount", w->ns(), account), nullptr) << w->id() << ": no ServiceAccount " << account;
      environment_account = account;
      platform_ns = w->ns();
    } else {
      EXPECT_FALSE(token) << w->id() << " must set automountServiceAccountToken: false";
    }
  }
  for (const Object* w : r().workloads()) {
    if (w->app() == "environment") continue;
    EXPECT_NE(w->pod()["serviceAccountName"].str(), environment_account)
        << w->id() << " uses the environment service's account";
  }

  EXPECT_TRUE(r().of_kind("ClusterRole").empty()) << "no ClusterRole: nothing cluster-wide";
  EXPECT_TRUE(r().of_kind("ClusterRoleBinding").empty()) << "no ClusterRoleBinding: nothing cluster-wide";
  const auto roles = r().of_kind("Role");
  const auto bindings = r().of_kind("RoleBinding");
  ASSERT_EQ(roles.size(), 1u) << "exactly one Role: the environment service's";
  ASSERT_EQ(bindings.size(), 1u) << "exactly one RoleBinding: the environment service's";
  const Object& role = *roles[0];
  const Object& binding = *bindings[0];
  EXPECT_EQ(role.ns(), r().sessions_namespace()) << role.id() << " must be in the sessions' namespace";

  std::set<std::string> granted;
  for (const Value& rule : role.doc["rules"].items()) {
    EXPECT_TRUE(rule["resourceNames"].is_null() && rule["nonResourceURLs"].is_null()) << role.id();
    for (const Value& g : rule["apiGroups"].items())
      for (const Value& res : rule["resources"].items())
        for (const Value& verb : rule["verbs"].items()) granted.insert(g.str() + "/" + res.str() + ":" + verb.str());
  }
  const std::set<std::string> needed = {"/pods:get",
                                        "/pods:list",
                                        "/pods:watch",
                                        "/pods:create",
                                        "/pods:delete",
                                        "/pods/exec:create",
                                        "/pods/exec:get",
                                        "networking.k8s.io/networkpolicies:get",
                                        "networking.k8s.io/networkpolicies:list",
                                        "networking.k8s.io/networkpolicies:watch",
                                        "networking.k8s.io/networkpolicies:create",
                                        "networking.k8s.io/networkpolicies:delete"};
  for (const std::string& g : granted)
    EXPECT_TRUE(needed.contains(g)) << role.id() << " grants more than it needs: " << g;
  for (const std::string& n : needed) EXPECT_TRUE(granted.contains(n)) << role.id() << " does not grant " << n;

  EXPECT_EQ(binding.ns(), role.ns()) << binding.id();
  EXPECT_EQ(binding.doc["roleRef"]["kind"].str(), "Role") << binding.id();
  EXPECT_EQ(binding.doc["roleRef"]["name"].str(), role.name()) << binding.id();
  const auto& subjects = binding.doc["subjects"].items();
  ASSERT_EQ(subjects.size(), 1u) << binding.id() << " must bind the environment service's account alone";
  EXPECT_EQ(subjects[0]["kind"].str(), "ServiceAccount") << binding.id();
  EXPECT_EQ(subjects[0]["name"].str(), environment_account) << binding.id();
  EXPECT_EQ(subjects[0]["namespace"].str(), platform_ns) << binding.id();
}

TEST_P(Manifests, TheSessionsNamespaceDeniesAllTraffic) {
  const std::string sessions = r().sessions_namespace();
  ASSERT_NE(r().find("Namespace", "", sessions), nullptr) << "no Namespace " << sessions;
  bool default_deny = false;
  for (const Object* p : r().of_kind("NetworkPolicy")) {
    if (p->ns() != sessions) continue;
    const Value& spec = p->doc["spec"];
    std::set<std::string> types;
    for (const Value& t : spec["policyTypes"].items()) types.insert(t.str());
    if (spec["podSelector"].map.empty() && types == std::set<std::string>{"Ingress", "Egress"} &&
        spec["ingress"].items().empty() && spec["egress"].items().empty())
      default_deny = true;
  }
  EXPECT_TRUE(default_deny) << sessions
                            << " needs a NetworkPolicy selecting every pod ({}) that denies Ingress and Egress";

  // A candidate's pod, as the driver would label it: it reaches nothing, nothing reaches it.
  const Network net(r());
  const Peer candidate{"a candidate's pod", sessions, {{"examiso.io/session", "s"}}, "10.244.9.9"};
  const Peer internet{"the internet", "", {}, "203.0.113.7"};
  const Peer dns{"DNS", "kube-system", {{"k8s-app", "kube-dns"}}, "10.244.8.8"};
  EXPECT_FALSE(net.egress(candidate, internet, 443)) << "a candidate's pod can reach the internet";
  EXPECT_FALSE(net.egress(candidate, dns, 53, "UDP")) << "a candidate's pod can reach DNS";
  EXPECT_FALSE(net.ingress(internet, candidate, 22)) << "the internet can reach a candidate's pod";
  for (const Object* w : r().workloads()) {
    const Peer pod = net.pod(*w);
    for (int port : tcp_ports(*w)) {
      EXPECT_FALSE(net.connects(candidate, pod, port)) << "a candidate's pod can reach " << w->id() << " on " << port;
      EXPECT_FALSE(net.connects(pod, candidate, port)) << w->id() << " can reach a candidate's pod";
    }
  }
  for (const std::string& ns : {std::string("examiso"), sessions}) {
    const Object* n = r().find("Namespace", "", ns);
    ASSERT_NE(n, nullptr) << "no Namespace " << ns;
    EXPECT_EQ(n->doc["metadata"]["labels"]["pod-security.kubernetes.io/enforce"].str(), "restricted")
        << n->id() << " must enforce the restricted Pod Security Standard";
  }
}

TEST_P(Manifests, PortsAgreeWithTheConfiguration) {
  for (const std::string& component : kComponents) {
    const int port = default_port(component);
    ASSERT_GT(port, 0) << "config/examiso.yaml: no port in " << component << ".listen";
    const Object* w = r().workload(component);
    ASSERT_NE(w, nullptr) << "no workload runs " << component;
    const Value* c = container_named(*w, component);
    ASSERT_NE(c, nullptr) << w->id() << " has no container named " << component;
    EXPECT_EQ(effective(r(), *c, component, "listen"), "0.0.0.0:" + std::to_string(port))
        << w->id() << " must listen on all of the pod's addresses, on " << component << "'s port " << port;
    EXPECT_TRUE(exposes(*c, std::to_string(port))) << w->id() << " does not expose " << component << "'s port " << port;

    const Object* s = r().find("Service", w->ns(), component);
    ASSERT_NE(s, nullptr) << "no Service " << w->ns() << "/" << component;
    EXPECT_TRUE(selects_labels(s->doc["spec"]["selector"], w->pod_labels()))
        << s->id() << " does not select " << w->id();
    bool served = false;
    for (const Value& p : s->doc["spec"]["ports"].items()) {
      const std::string target = p["targetPort"].is_null() ? p["port"].str() : p["targetPort"].str();
      served |= p["port"].str() == std::to_string(port) && resolve(*c, target) == std::to_string(port);
    }
    EXPECT_TRUE(served) << s->id() << " must serve port " << port << " onto the container's " << port;

    // Every pod reaches it by that Service's name and port.
    if (component == "gateway") continue;
    for (const Object* client : r().workloads()) {
      const Value* cc = container_named(*client, client->app());
      if (!cc) continue;
      EXPECT_EQ(effective(r(), *cc, component, "address"), component + ":" + std::to_string(port))
          << client->id() << " would dial " << component << " elsewhere than its Service";
    }
  }
}

TEST_P(Manifests, EveryServiceTargetsAPortItsPodsExpose) {
  for (const Object* s : r().of_kind("Service")) {
    const Value& selector = s->doc["spec"]["selector"];
    ASSERT_FALSE(selector.map.empty()) << s->id() << " has no selector";
    std::vector<const Object*> backends;
    for (const Object* w : r().workloads())
      if (w->ns() == s->ns() && selects_labels(selector, w->pod_labels())) backends.push_back(w);
    EXPECT_FALSE(backends.empty()) << s->id() << " selects no pod";
    for (const Value& p : s->doc["spec"]["ports"].items()) {
      const std::string target = p["targetPort"].is_null() ? p["port"].str() : p["targetPort"].str();
      for (const Object* w : backends) {
        const auto cs = w->containers();
        EXPECT_TRUE(std::any_of(cs.begin(), cs.end(), [&](const Value* c) { return exposes(*c, target); }))
            << s->id() << " targets port " << target << ", which " << w->id() << " does not expose";
      }
    }
  }
}

TEST_P(Manifests, TheClusterConfigurationIsOneTheServicesAccept) {
  const Value& config = r().cluster_config();
  for (const auto& [section, keys] : config.map)
    for (const auto& [key, _] : keys.map)
      EXPECT_TRUE(defaults()[section].find(key))
          << "k8s/base/platform/examiso.yaml: unknown key " << section << "." << key << " (the services refuse it)";
  EXPECT_EQ(config["environment"]["driver"].str(), "kubernetes");

  // Mounted where the image and the containers' --config expect them.
  const Object* lifecycle = r().workload("lifecycle");
  ASSERT_NE(lifecycle, nullptr);
  std::map<std::string, std::string> mounted;  // path in the container -> ConfigMap key
  const Value* c = container_named(*lifecycle, "lifecycle");
  ASSERT_NE(c, nullptr);
  for (const Value& m : (*c)["volumeMounts"].items())
    for (const Value& v : lifecycle->pod()["volumes"].items()) {
      if (v["name"].str() != m["name"].str()) continue;
      std::vector<const Value*> sources;
      if (v.find("configMap")) sources.push_back(&v["configMap"]);
      for (const Value& s : v["projected"]["sources"].items())
        if (s.find("configMap")) sources.push_back(&s["configMap"]);
      for (const Value* s : sources)
        if (const Object* cm = r().find("ConfigMap", lifecycle->ns(), (*s)["name"].str()))
          for (const auto& [key, _] : cm->doc["data"].map) mounted[m["mountPath"].str() + "/" + key] = key;
    }
  EXPECT_EQ(mounted[config["lifecycle"]["exam_catalog"].str()], "exams.yaml")
      << "lifecycle.exam_catalog (" << config["lifecycle"]["exam_catalog"].str() << ") is not the mounted catalog";
  const std::string dockerfile = read_text(kSource / "Dockerfile");
  for (const Object* w : r().workloads()) {
    const Value* main = container_named(*w, w->app());
    if (!main) continue;
    const auto& args = (*main)["args"].items();
    for (size_t i = 0; i + 1 < args.size(); ++i) {
      if (args[i].str() != "--config") continue;
      EXPECT_EQ(mounted[args[i + 1].str()], "examiso.yaml") << w->id() << " reads a configuration that is not mounted";
    }
  }
  EXPECT_NE(dockerfile.find(config["gateway"]["static_dir"].str()), std::string::npos)
      << "the Dockerfile does not put the web UI in gateway.static_dir (" << config["gateway"]["static_dir"].str()
      << ")";
  std::smatch user;
  ASSERT_TRUE(std::regex_search(dockerfile, user, std::regex(R"(\nUSER (\d+))")))
      << "the Dockerfile sets no numeric USER";
  for (const Object* w : r().of_kind("Deployment"))
    EXPECT_EQ(w->pod()["securityContext"]["runAsUser"].str(), user[1].str())
        << w->id() << " runs as another uid than the image's";

  // The catalog the cluster gets loads, and every exam names its pod's image.
  const Object* exams = r().find("ConfigMap", lifecycle->ns(), "examiso-exams");
  ASSERT_NE(exams, nullptr) << "no ConfigMap examiso-exams";
  const Value catalog = from_yaml(YAML::Load(exams->doc["data"]["exams.yaml"].str()));
  bool has_default = false;
  for (const Value& e : catalog["exams"].items()) {
    has_default |= e["id"].str() == catalog["default_exam"].str();
    EXPECT_FALSE(e["environment"]["image"].str().empty()) << "exam " << e["id"].str() << " names no image";
  }
  EXPECT_TRUE(has_default) << "the cluster's catalog lacks its default_exam";
}

struct Ref {
  std::string kind, name, key, where;
  bool optional;
};

std::vector<Ref> references(const Object& w) {
  std::vector<Ref> out;
  const auto add = [&](const std::string& kind, const Value& v, const std::string& name_field,
                       const std::string& where) {
    const bool optional = v["optional"].is_true();
    if (v["items"].items().empty()) out.push_back({kind, v[name_field].str(), "", where, optional});
    for (const Value& i : v["items"].items())
      out.push_back({kind, v[name_field].str(), i["key"].str(), where, optional});
  };
  for (const Value& v : w.pod()["volumes"].items()) {
    const std::string where = "volume " + v["name"].str();
    if (v.find("configMap")) add("ConfigMap", v["configMap"], "name", where);
    if (v.find("secret")) add("Secret", v["secret"], "secretName", where);
    for (const Value& s : v["projected"]["sources"].items()) {
      if (s.find("configMap")) add("ConfigMap", s["configMap"], "name", where);
      if (s.find("secret")) add("Secret", s["secret"], "name", where);
    }
  }
  for (const Value* c : w.containers()) {
    for (const Value& e : (*c)["env"].items()) {
      const std::string where = "env " + e["name"].str();
      for (const auto& [field, kind] : {std::pair{"configMapKeyRef", "ConfigMap"}, std::pair{"secretKeyRef", "Secret"}})
        if (const Value* ref = e["valueFrom"].find(field))
          out.push_back({kind, (*ref)["name"].str(), (*ref)["key"].str(), where, (*ref)["optional"].is_true()});
    }
    for (const Value& e : (*c)["envFrom"].items()) {
      if (e.find("configMapRef")) out.push_back({"ConfigMap", e["configMapRef"]["name"].str(), "", "envFrom", false});
      if (e.find("secretRef")) out.push_back({"Secret", e["secretRef"]["name"].str(), "", "envFrom", false});
    }
  }
  return out;
}

TEST_P(Manifests, EveryReferencedConfigMapAndSecretExists) {
  for (const Object* w : r().workloads()) {
    for (const Ref& ref : references(*w)) {
      // The base leaves Secrets to its overlays; prod's are the operator's.
      if (ref.kind == "Secret" && r().name == "base") continue;
      const Object* o = r().find(ref.kind, w->ns(), ref.name);
      if (!o) {
        const bool operators =
            ref.kind == "Secret" && ((r().name == "prod" && kOperatorSecrets.contains({ref.name, ref.key})) ||
                                     internal_tls_secret(ref.name));
        EXPECT_TRUE(ref.optional || operators)
            << w->id() << " (" << ref.where << ") refers to " << ref.kind << " " << ref.name
            << (ref.key.empty() ? "" : " key " + ref.key) << ", which " << r().name << " does not have"
            << (r().name == "prod" ? " and the operator is not told to create" : "");
        continue;
      }
      if (ref.key.empty()) continue;
      bool has = false;
      for (const char* field : {"data", "stringData", "binaryData"}) has |= o->doc[field].find(ref.key) != nullptr;
      EXPECT_TRUE(has || ref.optional) << w->id() << " (" << ref.where << ") needs key " << ref.key << " of "
                                       << o->id();
    }
  }
}

TEST_P(Manifests, ThePlatformRunsOneImage) {
  std::set<std::string> images;
  for (const Object* d : r().of_kind("Deployment"))
    for (const Value* c : d->containers()) images.insert((*c)["image"].str());
  ASSERT_EQ(images.size(), 1u) << "the Deployments use " << images.size() << " images; one image runs every service";
  if (r().name == "prod") {
    const std::string image = *images.begin();
    EXPECT_NE(image, image_name(image)) << "prod must pin a tag or digest, not " << image;
    EXPECT_FALSE(image.ends_with(":latest")) << "prod must not run :latest";
  }
}

TEST_P(Manifests, OnlyTheGatewayIsReachableFromOutside) {
  const Network net(r());
  const std::vector<Peer> outsiders = {{"the internet", "", {}, "203.0.113.7"},
                                       {"a pod of another namespace", "elsewhere", {{"app", "other"}}, "10.244.7.7"},
                                       {"a candidate's pod", r().sessions_namespace(), {}, "10.244.9.9"}};
  for (const Object* w : r().workloads()) {
    const Peer pod = net.pod(*w);
    for (int port : tcp_ports(*w))
      for (const Peer& o : outsiders) {
        const bool open = w->app() == "gateway" && port == 3000;
        EXPECT_EQ(net.ingress(o, pod, port), open)
            << "NetworkPolicies " << (open ? "keep " : "let ") << o.what << (open ? " from " : " reach ") << w->id()
            << " on port " << port << (open ? "" : ": only the gateway's 3000 is public");
      }
  }
  for (const Object* s : r().of_kind("Service")) {
    const std::string type = s->doc["spec"]["type"].str();
    if (type != "LoadBalancer" && type != "NodePort") continue;
    for (const Object* w : r().workloads()) {
      if (w->ns() != s->ns() || !selects_labels(s->doc["spec"]["selector"], w->pod_labels())) continue;
      EXPECT_EQ(w->app(), "gateway") << s->id() << " (" << type << ") exposes " << w->id();
    }
  }
}

TEST_P(Manifests, TrafficFollowsTheCallGraph) {
  const Network net(r());
  for (const Object* from : r().workloads())
    for (const Object* to : r().workloads()) {
      if (from == to) continue;
      for (int port : tcp_ports(*to)) {
        const bool expected = kCalls.contains({from->app(), to->app()});
        EXPECT_EQ(net.connects(net.pod(*from), net.pod(*to), port), expected)
            << from->id() << (expected ? " cannot reach " : " can reach ") << to->id() << " on port " << port
            << (expected ? ", which it calls" : ", which it never calls");
      }
    }
  // Every pod resolves Service names.
  const Peer dns{"DNS", "kube-system", {{"k8s-app", "kube-dns"}}, "10.244.8.8"};
  for (const Object* d : r().of_kind("Deployment"))
    EXPECT_TRUE(net.egress(net.pod(*d), dns, 53, "UDP")) << d->id() << " cannot reach DNS";
}

TEST_P(Manifests, OnlyTheFiveServicesReachTheDatabase) {
  const Network net(r());
  const Object* postgres = r().workload("postgres");
  const Peer external{"an external PostgreSQL", "", {}, "10.20.30.40"};
  if (r().name == "base") GTEST_SKIP() << "the database is the overlay's";
  for (const Object* w : r().workloads()) {
    if (w == postgres) continue;
    const bool service = std::find(kServices.begin(), kServices.end(), w->app()) != kServices.end();
    const bool reaches =
        postgres ? net.connects(net.pod(*w), net.pod(*postgres), 5432) : net.egress(net.pod(*w), external, 5432);
    EXPECT_EQ(reaches, service) << w->id() << (service ? " cannot reach" : " can reach") << " PostgreSQL";
  }
}

TEST_P(Manifests, OnlyTheEnvironmentServiceReachesTheApiServer) {
  const Network net(r());
  const Peer api{"the API server", "", {}, "172.18.0.2"};
  for (const Object* w : r().workloads())
    for (int port : {443, 6443})
      EXPECT_EQ(net.egress(net.pod(*w), api, port), w->app() == "environment")
          << w->id() << (w->app() == "environment" ? " cannot" : " can") << " reach the API server on " << port;
}

TEST_P(Manifests, EveryDeploymentHasADisruptionBudget) {
  for (const Object* d : r().of_kind("Deployment")) {
    int budgets = 0;
    for (const Object* pdb : r().of_kind("PodDisruptionBudget")) {
      if (pdb->ns() != d->ns() || !selects(pdb->doc["spec"]["selector"], d->pod_labels())) continue;
      ++budgets;
      for (const Object* other : r().workloads()) {
        if (other == d || other->ns() != d->ns()) continue;
        EXPECT_FALSE(selects(pdb->doc["spec"]["selector"], other->pod_labels()))
            << pdb->id() << " covers " << d->id() << " and " << other->id() << " at once";
      }
    }
    EXPECT_EQ(budgets, 1) << d->id() << " needs one PodDisruptionBudget";
  }
}

INSTANTIATE_TEST_SUITE_P(Overlays, Manifests, testing::Values("base", "dev", "prod"),
                         [](const testing::TestParamInfo<std::string>& p) { return p.param; });

// --- what differs between them ---

// Internal gRPC is mutual TLS: every pod of the platform mounts its own role's
// certificate, and no other role's, where grpc.tls_dir says.
TEST_P(Manifests, EachPodHoldsItsOwnInternalCertificateOnly) {
  EXPECT_EQ(r().cluster_config()["grpc"]["tls_dir"].str(), "/etc/examiso-tls");
  for (const std::string& app : kComponents) {
    const Object* w = r().workload(app);
    ASSERT_NE(w, nullptr) << app;
    std::set<std::string> secrets;
    for (const Ref& ref : references(*w))
      if (ref.kind == "Secret" && ref.name.starts_with("examiso-tls-")) secrets.insert(ref.name);
    EXPECT_EQ(secrets, std::set<std::string>{"examiso-tls-" + app}) << w->id();
    std::string volume;
    for (const Value& v : w->pod()["volumes"].items())
      if (v["secret"]["secretName"].str() == "examiso-tls-" + app) volume = v["name"].str();
    const Value* c = container_named(*w, app);
    ASSERT_NE(c, nullptr) << w->id();
    bool mounted = false;
    for (const Value& m : (*c)["volumeMounts"].items())
      mounted |= m["name"].str() == volume && m["mountPath"].str() == "/etc/examiso-tls/" + app && m["readOnly"].is_true();
    EXPECT_TRUE(mounted) << w->id() << " must mount examiso-tls-" << app << " read-only at /etc/examiso-tls/" << app;
    EXPECT_EQ(w->pod()["securityContext"]["fsGroup"].str(), "10001") << w->id() << ": its user must read the key";
  }
}

// cert-manager (k8s/cert-manager) makes the Secrets of every role, the
// operator's too, from the platform's own CA, in the name the services check.
TEST(CertManager, IssuesEachRoleItsCertificateFromThePlatformsCa) {
  const auto objects = render(kSource / "k8s/cert-manager");
  std::set<std::string> roles;
  bool ca = false;
  for (const Object& o : objects) {
    EXPECT_EQ(o.ns(), "examiso") << o.id();
    if (o.kind() != "Certificate") continue;
    const Value& spec = o.doc["spec"];
    if (spec["isCA"].is_true()) {
      ca = spec["secretName"].str() == "examiso-internal-ca";
      continue;
    }
    const std::string role = spec["commonName"].str();
    roles.insert(role);
    EXPECT_EQ(spec["secretName"].str(), "examiso-tls-" + role) << o.id();
    ASSERT_EQ(spec["dnsNames"].items().size(), 1u) << o.id();
    EXPECT_EQ(spec["dnsNames"].items()[0].str(), role) << o.id() << ": the role is the certificate's DNS name";
    std::set<std::string> usages;
    for (const Value& u : spec["usages"].items()) usages.insert(u.str());
    EXPECT_TRUE(usages.contains("server auth") && usages.contains("client auth")) << o.id();
    EXPECT_EQ(spec["issuerRef"]["name"].str(), "examiso-internal") << o.id();
  }
  EXPECT_TRUE(ca) << "a CA of the platform's own";
  std::set<std::string> expected(kComponents.begin(), kComponents.end());
  expected.insert("operator");
  EXPECT_EQ(roles, expected);
  bool issuer = false;
  for (const Object& o : objects)
    issuer |= o.kind() == "Issuer" && o.name() == "examiso-internal" &&
              o.doc["spec"]["ca"]["secretName"].str() == "examiso-internal-ca";
  EXPECT_TRUE(issuer);
}

TEST(BaseManifests, HoldNoSecretValues) {
  EXPECT_TRUE(rendered("base").of_kind("Secret").empty()) << "k8s/base renders a Secret; secrets belong to overlays";
}

TEST(DevManifests, RunTheirOwnPostgresAndDevelopmentSignIn) {
  const Rendered& dev = rendered("dev");
  const auto sets = dev.of_kind("StatefulSet");
  ASSERT_EQ(sets.size(), 1u) << "dev runs one StatefulSet: PostgreSQL";
  const Object& pg = *sets[0];
  EXPECT_EQ(pg.app(), "postgres") << pg.id();
  EXPECT_EQ(image_name(pg.pod()["containers"].items()[0]["image"].str()), "docker.io/library/postgres") << pg.id();
  EXPECT_FALSE(pg.doc["spec"]["volumeClaimTemplates"].items().empty()) << pg.id() << " keeps its data on a claim";
  const Object* secret = dev.find("Secret", "examiso", "examiso-secrets");
  ASSERT_NE(secret, nullptr);
  EXPECT_NE(secret->doc["stringData"]["DATABASE_URL"].str().find("@postgres:5432/"), std::string::npos)
      << "dev's DATABASE_URL must name the postgres Service";
  for (const Object* d : dev.of_kind("Deployment")) EXPECT_EQ(d->doc["spec"]["replicas"].str(), "1") << d->id();
}

TEST(ProdManifests, UseAnExternalDatabaseTwoReplicasAndNoDevelopmentSecret) {
  const Rendered& prod = rendered("prod");
  EXPECT_TRUE(prod.of_kind("StatefulSet").empty()) << "prod runs no database of its own";
  EXPECT_TRUE(prod.of_kind("Secret").empty()) << "prod's Secrets are the operator's, never in the repository";
  for (const Object* d : prod.of_kind("Deployment")) {
    EXPECT_GE(std::stoi(d->doc["spec"]["replicas"].str()), 2) << d->id() << ": one replica is an outage per rollout";
    for (const Value* c : d->containers()) {
      for (const Value& e : (*c)["env"].items())
        EXPECT_NE(e["name"].str(), "EXAMISO_IDENTITY_HS256_SECRET")
            << d->id() << ": an HS256 secret in prod would turn on the development sign-in";
    }
  }
  EXPECT_TRUE(prod.cluster_config()["identity"]["hs256_secret"].str().empty());
  const Object* identity = prod.workload("identity");
  ASSERT_NE(identity, nullptr);
  const Value* container = container_named(*identity, "identity");
  ASSERT_NE(container, nullptr);
  EXPECT_EQ(effective(prod, *container, "identity", "algorithms"), "RS256") << "prod verifies tokens with a public key";
  EXPECT_NE(effective(prod, *container, "identity", "issuer"), "") << "prod checks who issued a token";
  EXPECT_NE(effective(prod, *container, "identity", "audience"), "") << "prod checks whom a token is for";
  EXPECT_NE(effective(prod, *container, "identity", "dev_sign_in"), "true") << "no development sign-in in prod";
  const Rendered& dev = rendered("dev");
  const Object* dev_identity = dev.workload("identity");
  ASSERT_NE(dev_identity, nullptr);
  EXPECT_EQ(effective(dev, *container_named(*dev_identity, "identity"), "identity", "dev_sign_in"), "true")
      << "dev turns the development sign-in on, explicitly";
}

TEST(Skaffold, BuildsTheImageTheManifestsUseAndForwardsTheGateway) {
  const Value s = load_one(kSource / "skaffold.yaml");
  EXPECT_TRUE(s["apiVersion"].str().starts_with("skaffold/v4")) << s["apiVersion"].str();
  const auto& artifacts = s["build"]["artifacts"].items();
  ASSERT_EQ(artifacts.size(), 1u) << "skaffold.yaml builds one image";
  EXPECT_EQ(artifacts[0]["image"].str(),
            rendered("base").of_kind("Deployment")[0]->pod()["containers"].items()[0]["image"].str());
  EXPECT_EQ(artifacts[0]["docker"]["dockerfile"].str(), "Dockerfile");
  const auto& paths = s["manifests"]["kustomize"]["paths"].items();
  ASSERT_EQ(paths.size(), 1u);
  EXPECT_EQ(paths[0].str(), "k8s/overlays/dev");
  bool forwarded = false;
  for (const Value& f : s["portForward"].items())
    forwarded |= f["resourceType"].str() == "service" && f["resourceName"].str() == "gateway" &&
                 f["port"].str() == "3000" && f["localPort"].str() == "3000" &&
                 rendered("dev").find("Service", f["namespace"].str(), "gateway") != nullptr;
  EXPECT_TRUE(forwarded) << "skaffold dev must forward the gateway Service's 3000 to localhost:3000";
  // The dev overlay's internal TLS Secrets: made before the deploy.
  std::string hook;
  for (const Value& h : s["deploy"]["kubectl"]["hooks"]["before"].items())
    for (const Value& a : h["host"]["command"].items()) hook += a.str() + " ";
  EXPECT_NE(hook.find("scripts/internal-certs .var/tls/k8s --secrets examiso | kubectl apply -f -"), std::string::npos)
      << hook;
}

}  // namespace
}  // namespace examiso
