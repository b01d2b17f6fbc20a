#include "common/internal_tls.h"

#include <grpcpp/security/auth_metadata_processor.h>

#include <map>
#include <mutex>
#include <string_view>

#include "common/errors.h"
#include "common/files.h"
#include "common/log.h"

namespace examiso::internal_tls {
namespace {

// Who may call what: every internal method and the roles that need it (a
// method not listed is refused to everyone). `operator` is the CLIs; the
// gateway is the candidates' and staff's way in; a service is listed where
// its own work calls the method.
constexpr std::pair<std::string_view, std::string_view> kCallers[] = {
    {"/examiso.v1.IdentityService/ValidateIdentity", "gateway operator"},
    {"/examiso.v1.IdentityService/VerifyToken", "gateway operator"},
    {"/examiso.v1.IdentityService/IssueToken", "gateway operator"},
    {"/examiso.v1.IdentityService/IssueTerminalTicket", "gateway"},
    {"/examiso.v1.IdentityService/RedeemTerminalTicket", "gateway"},
    {"/examiso.v1.IdentityService/RefreshToken", "gateway"},
    {"/examiso.v1.IdentityService/RevokeToken", "gateway operator"},
    {"/examiso.v1.LifecycleService/CreateSession", "gateway operator"},
    // The services that drive a session: the gateway (start, submit,
    // terminate), environment (ready, failed), cleanup (expired, lost).
    {"/examiso.v1.LifecycleService/Transition", "gateway environment cleanup operator"},
    {"/examiso.v1.LifecycleService/GetSession", "gateway environment cleanup operator"},
    {"/examiso.v1.LifecycleService/ListSessions", "gateway environment cleanup operator"},
    {"/examiso.v1.LifecycleService/GetStatus", "gateway access operator"},
    {"/examiso.v1.LifecycleService/WatchSession", "gateway operator"},
    {"/examiso.v1.LifecycleService/ListTransitions", "gateway operator"},  // the staff console
    {"/examiso.v1.LifecycleService/ExtendSession", "gateway operator"},
    {"/examiso.v1.LifecycleService/RecordMessage", "gateway operator"},
    {"/examiso.v1.LifecycleService/RecordConnection", "gateway operator"},
    {"/examiso.v1.LifecycleService/ListExams", "gateway environment operator"},
    {"/examiso.v1.LifecycleService/GetExam", "environment operator"},
    {"/examiso.v1.EnvironmentService/CreateEnvironment", "lifecycle operator"},
    {"/examiso.v1.EnvironmentService/GetEnvironment", "gateway cleanup operator"},
    {"/examiso.v1.EnvironmentService/DestroyEnvironment", "gateway cleanup operator"},
    {"/examiso.v1.EnvironmentService/ListEnvironments", "cleanup operator"},
    {"/examiso.v1.EnvironmentService/ReconcileEnvironments", "cleanup operator"},
    // A candidate's terminal: only through the gateway, which checked the
    // token, the session's owner and its state.
    {"/examiso.v1.EnvironmentService/Attach", "gateway"},
    {"/examiso.v1.EnvironmentService/SendMessage", "gateway operator"},  // the staff console
    {"/examiso.v1.AccessService/Authorize", "gateway operator"},
    {"/examiso.v1.AccessService/ListAccessLog", "gateway operator"},  // the staff console
    {"/examiso.v1.CleanupService/Check", "operator"},
    {"/examiso.v1.CleanupService/Sweep", "operator"},
    {"/examiso.v1.CleanupService/ListSweeps", "operator"},
    // Health: the gateway's /readyz and anyone who watches the platform.
    {"/grpc.health.v1.Health/Check", "identity lifecycle environment access cleanup gateway operator"},
    {"/grpc.health.v1.Health/Watch", "identity lifecycle environment access cleanup gateway operator"},
    // grpcurl, for operators.
    {"/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", "operator"},
    {"/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", "operator"},
};

struct State {
  std::mutex mutex;
  std::string dir;
  std::string role;
  std::map<std::string, std::shared_ptr<grpc::ChannelCredentials>> channel;
};

State& state() {
  static State s;
  return s;
}

struct Files {
  std::string ca, cert, key;
};

Files read_role(const std::string& dir, const std::string& role) {
  Files f;
  const std::string base = dir + "/" + role + "/";
  for (auto [out, name] : {std::pair{&f.ca, "ca.crt"}, {&f.cert, "tls.crt"}, {&f.key, "tls.key"}}) {
    auto text = read_file(base + name);
    if (!text || text->empty())
      throw Error("INVALID_ARGUMENT", "grpc.tls_dir: cannot read " + base + name + " (role " + role + ")",
                  Json{{"key", "grpc.tls_dir"}});
    *out = std::move(*text);
  }
  return f;
}

// The caller check, run for every call on the connection's thread.
class CallerCheck final : public grpc::AuthMetadataProcessor {
 public:
  bool IsBlocking() const override { return false; }

  grpc::Status Process(const InputMetadata& metadata, grpc::AuthContext* context, OutputMetadata*,
                       OutputMetadata*) override {
    const auto path = metadata.find(":path");
    const std::string method = path == metadata.end() ? "" : std::string(path->second.data(), path->second.size());
    std::string caller;
    for (const auto& name : context->FindPropertyValues(GRPC_X509_SAN_PROPERTY_NAME)) {
      const std::string role(name.data(), name.size());
      if (allowed(method, role)) return grpc::Status::OK;
      if (caller.empty()) caller = role;
    }
    log::warn("caller_refused", {{"method", method}, {"caller", caller}});
    return {grpc::StatusCode::PERMISSION_DENIED,
            "CALLER_NOT_ALLOWED: " + (caller.empty() ? std::string("a certificate with no role") : caller) +
                " may not call " + method};
  }
};

}  // namespace

bool allowed(const std::string& method, const std::string& caller) {
  if (caller.empty()) return false;
  for (const auto& [m, roles] : kCallers) {
    if (m != method) continue;
    for (size_t at = 0; at < roles.size();) {
      const size_t end = std::min(roles.find(' ', at), roles.size());
      if (roles.substr(at, end - at) == caller) return true;
      at = end + 1;
    }
    return false;
  }
  return false;
}

void configure(const Config& config, const std::string& role) { configure_dir(config.str("grpc.tls_dir"), role); }

void configure_dir(const std::string& tls_dir, const std::string& role) {
  if (!tls_dir.empty()) read_role(tls_dir, role);  // fail at start, not at the first call
  State& s = state();
  std::lock_guard lock(s.mutex);
  s.dir = tls_dir;
  s.role = role;
  s.channel.clear();
}

bool enabled() {
  std::lock_guard lock(state().mutex);
  return !state().dir.empty();
}

const std::string& role() { return state().role; }

std::shared_ptr<grpc::ChannelCredentials> channel_credentials(const std::string& as) {
  State& s = state();
  std::lock_guard lock(s.mutex);
  if (s.dir.empty()) return grpc::InsecureChannelCredentials();
  const std::string who = as.empty() ? s.role : as;
  auto& creds = s.channel[who];
  if (!creds) {
    const Files f = read_role(s.dir, who);
    creds = grpc::SslCredentials({f.ca, f.key, f.cert});
  }
  return creds;
}

std::shared_ptr<grpc::ServerCredentials> server_credentials() {
  State& s = state();
  std::lock_guard lock(s.mutex);
  if (s.dir.empty()) {
    log::warn("internal_grpc_unauthenticated",
              {{"message", "grpc.tls_dir is not set: any local process can call this service"}});
    return grpc::InsecureServerCredentials();
  }
  const Files f = read_role(s.dir, s.role);
  grpc::SslServerCredentialsOptions options(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  options.pem_root_certs = f.ca;
  options.pem_key_cert_pairs.push_back({f.key, f.cert});
  auto creds = grpc::SslServerCredentials(options);
  creds->SetAuthMetadataProcessor(std::make_shared<CallerCheck>());
  return creds;
}

}  // namespace examiso::internal_tls
