#pragma once
// The gateway's HTTP/1.1 and WebSocket server (Boost.Beast), on one port,
// async, a thread per core, with optional TLS. Everything Beast lives in
// server.cc.
#include <chrono>
#include <string>

#include "gateway/api.h"

namespace examiso::gateway {

struct ServerOptions {
  std::string listen = "127.0.0.1:3000";
  int threads = 0;  // 0: one per core
  std::string tls_cert_file, tls_key_file;
  // With a certificate, also answer plain HTTP on the same port (each
  // connection's first byte tells which): development only.
  bool plain_with_tls = false;
  size_t header_limit = 8192;
  size_t body_limit = 65536;
  size_t ws_message_limit = 65536;
  std::chrono::seconds request_timeout{10};  // to receive a whole request (slow clients)
  std::chrono::seconds idle_timeout{30};     // between requests on a kept-alive connection
  std::string static_dir;                    // the web UI; empty: none
};

// Serves until a shutdown signal; throws Error when it cannot listen.
void serve(Api& api, const ServerOptions& options);

}  // namespace examiso::gateway
