#include "gateway/server.h"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/core/detect_ssl.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <deque>
#include <filesystem>
#include <mutex>
#include <thread>

#include "common/files.h"
#include "common/grpc_server.h"
#include "common/log.h"
#include "common/url.h"

namespace examiso::gateway {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace net = boost::asio;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;
using PlainStream = beast::tcp_stream;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;

constexpr size_t kLowWater = 256 * 1024;

struct Shared {
  Api& api;
  ServerOptions o;
  std::optional<ssl::context> tls;
  // Open WebSockets, told 1012 (service restart) when the gateway stops, so
  // that their clients know to come back rather than guess.
  std::mutex open_mutex;
  std::vector<std::weak_ptr<WsPeer>> open;
};

void add_security_headers(http::response<http::string_body>& res) {
  res.set(http::field::server, "examiso");
  res.set("X-Content-Type-Options", "nosniff");
  res.set("Referrer-Policy", "no-referrer");
  res.set("X-Frame-Options", "DENY");
  res.set("Content-Security-Policy",
          "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
          "connect-src 'self' ws: wss:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'");
}

const char* mime_type(const std::string& path) {
  const auto ext = std::filesystem::path(path).extension().string();
  if (ext == ".html") return "text/html; charset=utf-8";
  if (ext == ".js" || ext == ".mjs") return "text/javascript; charset=utf-8";
  if (ext == ".css") return "text/css; charset=utf-8";
  if (ext == ".svg") return "image/svg+xml";
  if (ext == ".png") return "image/png";
  if (ext == ".ico") return "image/x-icon";
  if (ext == ".json") return "application/json";
  if (ext == ".woff2") return "font/woff2";
  return "application/octet-stream";
}

// The web UI's files: "/" is index.html, "/proctor" the staff's page
// (proctor.html), anything else must be a file there; nothing outside the
// directory is read.
std::optional<HttpResponse> static_file(const std::string& dir, const std::string& path) {
  if (dir.empty() || path.find("..") != std::string::npos || path.find('\0') != std::string::npos ||
      path.find('\\') != std::string::npos)
    return std::nullopt;
  namespace fs = std::filesystem;
  fs::path file = fs::path(dir) / path.substr(1);
  std::error_code ec;
  if (path == "/") file = fs::path(dir) / "index.html";
  if (path == "/proctor") file = fs::path(dir) / "proctor.html";
  if (!fs::is_regular_file(file, ec)) return std::nullopt;
  auto body = read_file(file.string());
  if (!body) return std::nullopt;
  HttpResponse r{200, std::move(*body), mime_type(file.string()), {}};
  r.headers.emplace_back("Cache-Control", path.rfind("/assets/", 0) == 0 ? "public, max-age=31536000, immutable"
                                                                          : "no-cache");
  return r;
}

template <class Stream>
tcp::socket::lowest_layer_type& socket_of(Stream& s) {
  return beast::get_lowest_layer(s).socket();
}

// An accepted WebSocket: a queue of outgoing text, one handler.
template <class Stream>
class WsSession final : public WsPeer, public std::enable_shared_from_this<WsSession<Stream>> {
 public:
  WsSession(Stream&& stream, Shared& shared) : ws_(std::move(stream)), shared_(shared) {}

  void run(http::request<http::string_body> req, WsDecision decision) {
    beast::get_lowest_layer(ws_).expires_never();
    ws_.set_option(websocket::stream_base::timeout::suggested(beast::role_type::server));
    ws_.set_option(websocket::stream_base::decorator(
        [](websocket::response_type& res) { res.set(http::field::server, "examiso"); }));
    ws_.read_message_max(shared_.o.ws_message_limit);
    decision_ = std::move(decision);
    ws_.async_accept(req, beast::bind_front_handler(&WsSession::on_accept, this->shared_from_this()));
  }

  void send(std::string text) override {
    queued_ += text.size();
    net::post(ws_.get_executor(), [self = this->shared_from_this(), text = std::move(text)]() mutable {
      self->queue_.push_back(std::move(text));
      if (!self->writing_) self->write_next();
    });
  }

  void close(uint16_t code, std::string reason) override {
    net::post(ws_.get_executor(), [self = this->shared_from_this(), code, reason = std::move(reason)] {
      if (self->closing_) return;
      self->closing_ = true;
      self->close_ = websocket::close_reason(static_cast<websocket::close_code>(code), reason);
      if (!self->writing_) self->write_next();
    });
  }

  size_t queued_bytes() const override { return queued_; }

 private:
  void on_accept(beast::error_code ec) {
    if (ec) return;
    if (decision_.close_code) {
      close(decision_.close_code, decision_.close_reason);
      return do_read();
    }
    handler_ = std::move(decision_.handler);
    {
      std::lock_guard lock(shared_.open_mutex);
      std::erase_if(shared_.open, [](const auto& w) { return w.expired(); });
      shared_.open.push_back(this->weak_from_this());
    }
    handler_->start(this->shared_from_this());
    do_read();
  }

  void do_read() {
    ws_.async_read(buffer_, beast::bind_front_handler(&WsSession::on_read, this->shared_from_this()));
  }

  void on_read(beast::error_code ec, size_t) {
    if (ec) {
      if (handler_) handler_->on_closed();
      handler_.reset();
      return;
    }
    std::string text = beast::buffers_to_string(buffer_.data());
    buffer_.consume(buffer_.size());
    if (handler_ && !closing_) handler_->on_message(std::move(text));
    do_read();
  }

  void write_next() {
    if (queue_.empty()) {
      if (closing_ && !closed_) {
        closed_ = true;
        writing_ = true;
        ws_.async_close(close_, [self = this->shared_from_this()](beast::error_code) { self->writing_ = false; });
      }
      return;
    }
    writing_ = true;
    ws_.text(true);
    ws_.async_write(net::buffer(queue_.front()), beast::bind_front_handler(&WsSession::on_write, this->shared_from_this()));
  }

  void on_write(beast::error_code ec, size_t) {
    const size_t before = queued_;
    queued_ -= queue_.front().size();
    queue_.pop_front();
    writing_ = false;
    if (ec) {
      queue_.clear();
      queued_ = 0;
      return;
    }
    if (before > kLowWater && queued_ <= kLowWater && handler_) handler_->on_drained();
    write_next();
  }

  websocket::stream<Stream> ws_;
  Shared& shared_;
  beast::flat_buffer buffer_;
  WsDecision decision_;
  std::shared_ptr<WsHandler> handler_;
  std::deque<std::string> queue_;
  std::atomic<size_t> queued_{0};
  bool writing_ = false, closing_ = false, closed_ = false;
  websocket::close_reason close_;
};

template <class Stream>
class HttpSession final : public std::enable_shared_from_this<HttpSession<Stream>> {
 public:
  // `read`: bytes already read from the connection (by TLS detection).
  HttpSession(Stream&& stream, Shared& shared, beast::flat_buffer read = {})
      : stream_(std::move(stream)), shared_(shared), buffer_(std::move(read)) {
    beast::error_code ec;
    const auto remote = socket_of(stream_).remote_endpoint(ec);
    client_ip_ = ec ? "unknown" : remote.address().to_string();
  }

  void run() { do_read(); }

 private:
  void do_read() {
    parser_.emplace();
    parser_->header_limit(static_cast<uint32_t>(shared_.o.header_limit));
    parser_->body_limit(shared_.o.body_limit);
    // A request must arrive whole within request_timeout; the wait before its
    // first byte on a kept-alive connection is the idle timeout (slowloris
    // clients are cut off either way).
    beast::get_lowest_layer(stream_).expires_after(first_ ? shared_.o.request_timeout : shared_.o.idle_timeout);
    http::async_read_header(stream_, buffer_, *parser_,
                            beast::bind_front_handler(&HttpSession::on_header, this->shared_from_this()));
  }

  void on_header(beast::error_code ec, size_t) {
    if (ec) return on_error(ec);
    beast::get_lowest_layer(stream_).expires_after(shared_.o.request_timeout);
    http::async_read(stream_, buffer_, *parser_, beast::bind_front_handler(&HttpSession::on_read, this->shared_from_this()));
  }

  void on_error(beast::error_code ec) {
    if (ec == http::error::end_of_stream || ec == beast::error::timeout || ec == net::error::eof ||
        ec == net::error::connection_reset || ec == net::error::operation_aborted)
      return shutdown();
    // Malformed or oversized requests: a clear 4xx, then the connection ends.
    std::string code = "INVALID_ARGUMENT", message = "Malformed HTTP request";
    if (ec == http::error::header_limit) {
      code = "HEADERS_TOO_LARGE";
      message = "Request headers too large";
    } else if (ec == http::error::body_limit) {
      code = "PAYLOAD_TOO_LARGE";
      message = "Request body too large";
    }
    HttpResponse r = Api::error_response(Error(code, message));
    keep_alive_ = false;
    write(std::move(r), http::verb::unknown);
  }

  void on_read(beast::error_code ec, size_t) {
    if (ec) return on_error(ec);
    first_ = false;
    auto req = parser_->release();
    keep_alive_ = req.keep_alive();
    HttpRequest r;
    r.method = std::string(req.method_string());
    RequestTarget target = split_target(std::string_view(req.target().data(), req.target().size()));
    r.path = std::move(target.path);
    r.query = std::move(target.query);
    r.authorization = std::string(req[http::field::authorization]);
    r.origin = std::string(req[http::field::origin]);
    r.host = std::string(req[http::field::host]);
    r.content_type = std::string(req[http::field::content_type]);
    r.body = std::move(req.body());
    r.client_ip = client_ip_;
    r.forwarded_for = std::string(req["X-Forwarded-For"]);
    r.secure = std::is_same_v<Stream, TlsStream>;
    const http::verb verb = req.method();

    if (!r.path.starts_with("/") || !is_valid_utf8(r.path)) {
      keep_alive_ = false;
      return write(Api::error_response(Error("INVALID_ARGUMENT", "Malformed request target")), verb);
    }
    if (websocket::is_upgrade(req) && shared_.api.websocket_route(r.path)) {
      // A handshake that cannot succeed must not get as far as starting a
      // session: check it whole first.
      if (req[http::field::sec_websocket_version] != "13" || req[http::field::sec_websocket_key].size() != 24) {
        keep_alive_ = false;
        HttpResponse refuse = Api::error_response(Error("INVALID_ARGUMENT", "Unsupported WebSocket handshake"));
        refuse.status = 426;
        refuse.headers.emplace_back("Sec-WebSocket-Version", "13");
        return write(std::move(refuse), verb);
      }
      beast::get_lowest_layer(stream_).expires_after(shared_.o.request_timeout);
      auto self = this->shared_from_this();
      return shared_.api.decide_websocket(std::move(r), [self, req = std::move(req)](WsDecision d) mutable {
        net::post(self->stream_.get_executor(), [self, req = std::move(req), d = std::move(d)]() mutable {
          if (d.refuse) {
            self->keep_alive_ = false;
            return self->write(std::move(*d.refuse), http::verb::get);
          }
          std::make_shared<WsSession<Stream>>(std::move(self->stream_), self->shared_)->run(std::move(req), std::move(d));
        });
      });
    }
    const bool api = r.path.starts_with("/v1/") || r.path == "/v1" || r.path == "/healthz" || r.path == "/readyz" ||
                     r.path == "/metrics";
    if (!api && (verb == http::verb::get || verb == http::verb::head)) {
      if (auto file = static_file(shared_.o.static_dir, r.path)) return write(std::move(*file), verb);
    }
    auto self = this->shared_from_this();
    shared_.api.handle(std::move(r), [self, verb](HttpResponse response) {
      net::post(self->stream_.get_executor(),
                [self, verb, response = std::move(response)]() mutable { self->write(std::move(response), verb); });
    });
  }

  void write(HttpResponse r, http::verb verb) {
    auto res = std::make_shared<http::response<http::string_body>>(static_cast<http::status>(r.status), 11);
    add_security_headers(*res);
    res->set(http::field::content_type, r.content_type);
    bool cache_set = false;
    for (const auto& [k, v] : r.headers) {
      res->set(k, v);
      cache_set = cache_set || k == "Cache-Control";
    }
    if (!cache_set) res->set(http::field::cache_control, "no-store");
    res->body() = verb == http::verb::head ? "" : std::move(r.body);
    res->prepare_payload();
    if (verb == http::verb::head) res->content_length(r.body.size());
    res->keep_alive(keep_alive_);
    http::async_write(stream_, *res, [self = this->shared_from_this(), res](beast::error_code ec, size_t) {
      if (ec || !self->keep_alive_) return self->shutdown();
      self->do_read();
    });
  }

  void shutdown() {
    beast::error_code ec;
    socket_of(stream_).shutdown(tcp::socket::shutdown_send, ec);
  }

  Stream stream_;
  Shared& shared_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::string client_ip_;
  bool keep_alive_ = true;
  bool first_ = true;
};

class Listener final : public std::enable_shared_from_this<Listener> {
 public:
  Listener(net::io_context& ioc, tcp::endpoint endpoint, Shared& shared)
      : ioc_(ioc), acceptor_(net::make_strand(ioc)), shared_(shared) {
    acceptor_.open(endpoint.protocol());
    acceptor_.set_option(net::socket_base::reuse_address(true));
    beast::error_code ec;
    acceptor_.bind(endpoint, ec);
    if (ec) throw Error("INTERNAL_ERROR", "gateway cannot listen on " + endpoint.address().to_string() + ":" +
                                              std::to_string(endpoint.port()) + ": " + ec.message());
    acceptor_.listen(net::socket_base::max_listen_connections);
  }

  uint16_t port() const { return acceptor_.local_endpoint().port(); }

  void accept() {
    acceptor_.async_accept(net::make_strand(ioc_), beast::bind_front_handler(&Listener::on_accept, shared_from_this()));
  }

 private:
  void on_accept(beast::error_code ec, tcp::socket socket) {
    if (!ec) {
      socket.set_option(tcp::no_delay(true), ec);
      if (shared_.tls && shared_.o.plain_with_tls) {
        detect(PlainStream(std::move(socket)));
      } else if (shared_.tls) {
        auto stream = std::make_shared<TlsStream>(std::move(socket), *shared_.tls);
        beast::get_lowest_layer(*stream).expires_after(shared_.o.request_timeout);
        stream->async_handshake(ssl::stream_base::server, [stream, &shared = shared_](beast::error_code hec) {
          if (!hec) std::make_shared<HttpSession<TlsStream>>(std::move(*stream), shared)->run();
        });
      } else {
        std::make_shared<HttpSession<PlainStream>>(PlainStream(std::move(socket)), shared_)->run();
      }
    }
    accept();
  }

  // TLS or plain HTTP on one port, by the first bytes of the connection.
  void detect(PlainStream plain) {
    auto stream = std::make_shared<PlainStream>(std::move(plain));
    auto buffer = std::make_shared<beast::flat_buffer>();
    stream->expires_after(shared_.o.request_timeout);
    beast::async_detect_ssl(*stream, *buffer, [stream, buffer, &shared = shared_](beast::error_code ec, bool tls) {
      if (ec) return;
      if (!tls) return std::make_shared<HttpSession<PlainStream>>(std::move(*stream), shared, std::move(*buffer))->run();
      auto secure = std::make_shared<TlsStream>(std::move(*stream), *shared.tls);
      secure->async_handshake(ssl::stream_base::server, buffer->data(),
                              [secure, buffer, &shared](beast::error_code hec, size_t used) {
                                if (hec) return;
                                buffer->consume(used);
                                std::make_shared<HttpSession<TlsStream>>(std::move(*secure), shared)->run();
                              });
    });
  }

  net::io_context& ioc_;
  tcp::acceptor acceptor_;
  Shared& shared_;
};

}  // namespace

void serve(Api& api, const ServerOptions& options) {
  Shared shared{api, options, std::nullopt, {}, {}};
  if (!options.tls_cert_file.empty()) {
    shared.tls.emplace(ssl::context::tls_server);
    shared.tls->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                            ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
    beast::error_code ec;
    shared.tls->use_certificate_chain_file(options.tls_cert_file, ec);
    if (!ec) shared.tls->use_private_key_file(options.tls_key_file, ssl::context::pem, ec);
    if (ec) throw Error("INVALID_ARGUMENT", "gateway TLS: " + ec.message());
  }
  const auto colon = options.listen.rfind(':');
  beast::error_code ec;
  const auto address = net::ip::make_address(options.listen.substr(0, colon), ec);
  if (ec || colon == std::string::npos)
    throw Error("INVALID_ARGUMENT", "gateway.listen must be address:port, not " + options.listen);
  const int threads = options.threads > 0 ? options.threads : static_cast<int>(std::thread::hardware_concurrency());
  net::io_context ioc(threads);
  auto listener = std::make_shared<Listener>(
      ioc, tcp::endpoint(address, static_cast<uint16_t>(std::stoi(options.listen.substr(colon + 1)))), shared);
  listener->accept();
  log::info("listening", {{"address", options.listen.substr(0, colon) + ":" + std::to_string(listener->port())},
                          {"tls", shared.tls.has_value()},
                          {"threads", threads}});
  std::vector<std::thread> pool;
  for (int i = 0; i < threads; ++i) pool.emplace_back([&ioc] { ioc.run(); });
  while (!wait_for_shutdown_signal(std::chrono::seconds(1))) {
  }
  {
    std::lock_guard lock(shared.open_mutex);
    for (const auto& w : shared.open)
      if (auto peer = w.lock()) peer->close(1012, "the gateway is restarting");
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // the close frames leave
  ioc.stop();
  for (auto& t : pool) t.join();
  log::info("stopped");
}

}  // namespace examiso::gateway
