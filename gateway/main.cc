// examiso-gateway: the public REST and WebSocket API.
#include "common/grpc_server.h"
#include "gateway/server.h"

int main(int argc, char** argv) {
  using namespace examiso;
  return daemon_main(argc, argv, "gateway", [](const Config& config) {
    gateway::Backends backends(config);
    gateway::Metrics metrics;
    gateway::ApiOptions api_options;
    api_options.allowed_origins = config.list("gateway.allowed_origins");
    api_options.ip_rate = config.number("gateway.rate_limit_ip_per_second");
    api_options.ip_burst = config.number("gateway.rate_limit_ip_burst");
    api_options.user_rate = config.number("gateway.rate_limit_user_per_second");
    api_options.user_burst = config.number("gateway.rate_limit_user_burst");
    api_options.token_cache = std::chrono::seconds(config.integer("gateway.token_cache_seconds"));
    api_options.trusted_proxies = config.list("gateway.trusted_proxies");
    api_options.max_websockets_per_user = config.integer("gateway.max_websockets_per_user");
    gateway::Api api(backends, metrics, api_options);

    gateway::ServerOptions options;
    options.listen = config.str("gateway.listen");
    options.threads = static_cast<int>(config.integer("gateway.threads"));
    options.tls_cert_file = config.str("gateway.tls_cert_file");
    options.tls_key_file = config.str("gateway.tls_key_file");
    options.plain_with_tls = config.boolean("gateway.plain_http_with_tls");
    options.header_limit = static_cast<size_t>(config.integer("gateway.header_limit_bytes"));
    options.body_limit = static_cast<size_t>(config.integer("gateway.body_limit_bytes"));
    options.ws_message_limit = static_cast<size_t>(config.integer("gateway.ws_message_limit_bytes"));
    options.request_timeout = std::chrono::seconds(config.integer("gateway.request_timeout_seconds"));
    options.idle_timeout = std::chrono::seconds(config.integer("gateway.idle_timeout_seconds"));
    options.static_dir = config.str("gateway.static_dir");
    gateway::serve(api, options);
  });
}
