// The gateway's HTTP request path up to its routes: bytes off the wire
// through Beast's parser with the gateway's limits, the target split and
// decoded, the WebSocket routes recognised, the client's address read from
// X-Forwarded-For, as server.cc and the routes do it.
#include <boost/beast/http.hpp>
#include <boost/beast/websocket/rfc6455.hpp>
#include <cstddef>
#include <cstdint>

#include "common/json.h"
#include "common/url.h"
#include "gateway/api.h"
#include "gateway/limits.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace http = boost::beast::http;
  http::request_parser<http::string_body> parser;
  parser.header_limit(8192);
  parser.body_limit(65536);
  boost::beast::error_code ec;
  size_t used = 0;
  while (used < size && !parser.is_done()) {
    const size_t n = parser.put(boost::asio::buffer(data + used, size - used), ec);
    if (ec == http::error::need_more) break;
    if (ec) return 0;  // a 4xx for the client
    if (n == 0) break;
    used += n;
  }
  if (!parser.is_header_done()) return 0;
  const auto& req = parser.get();
  const examiso::RequestTarget target =
      examiso::split_target(std::string_view(req.target().data(), req.target().size()));
  if (!target.path.starts_with("/") || !examiso::is_valid_utf8(target.path)) return 0;
  if (boost::beast::websocket::is_upgrade(req)) examiso::gateway::Api::websocket_route(target.path);
  (void)std::string(req[http::field::authorization]);
  // The client's address behind a trusted proxy, from X-Forwarded-For.
  static const examiso::gateway::TrustedProxies proxies({"127.0.0.0/8", "2001:db8::/32"});
  const auto xff = req["X-Forwarded-For"];
  const std::string client = proxies.client("127.0.0.1", std::string(xff.data(), xff.size()));
  if (client.empty()) __builtin_trap();
  return 0;
}
