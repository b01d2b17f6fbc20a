#pragma once
// The gateway's view of HTTP, free of Boost.Beast: what a route reads and
// writes. Only server.cc knows the wire.
#include <functional>
#include <map>
#include <optional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace examiso::gateway {

struct HttpRequest {
  std::string method;
  std::string path;                          // decoded-free: exactly as sent, without the query
  std::map<std::string, std::string> query;  // percent-decoded
  std::string authorization;
  std::string origin;
  std::string host;
  std::string content_type;
  std::string body;
  std::string client_ip;      // the peer's address (Api replaces it with a trusted proxy's client)
  std::string forwarded_for;  // X-Forwarded-For as sent
  bool secure = false;        // arrived over TLS
};

struct HttpResponse {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;
};

// Called once, from any thread.
using Respond = std::function<void(HttpResponse)>;

// One side of an accepted WebSocket, as handlers see it (thread-safe).
class WsPeer {
 public:
  virtual ~WsPeer() = default;
  virtual void send(std::string text) = 0;
  // After the queued messages; at most once matters.
  virtual void close(uint16_t code, std::string reason) = 0;
  virtual size_t queued_bytes() const = 0;
};

// What runs a WebSocket once it is accepted (terminal, status).
class WsHandler {
 public:
  virtual ~WsHandler() = default;
  virtual void start(std::shared_ptr<WsPeer> peer) = 0;
  virtual void on_message(std::string text) = 0;
  virtual void on_drained() = 0;  // the send queue fell back below its low mark
  virtual void on_closed() = 0;   // the client is gone (or we closed)
};

// The decision taken before an upgrade: accept with a handler, accept and
// close at once with a code (browsers only see close codes), or refuse the
// upgrade with an HTTP response.
struct WsDecision {
  std::shared_ptr<WsHandler> handler;
  std::shared_ptr<void> slot;  // held while the socket is open (the user's count of sockets)
  uint16_t close_code = 0;
  std::string close_reason;
  std::optional<HttpResponse> refuse;
};
using DecideWs = std::function<void(WsDecision)>;

}  // namespace examiso::gateway
