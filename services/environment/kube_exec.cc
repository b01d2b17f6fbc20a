// The pods/exec WebSocket client (Boost.Beast over TLS): the only Beast code
// of the environment service, kept in this one translation unit.
#include <sys/eventfd.h>
#include <unistd.h>

#include <openssl/x509v3.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <condition_variable>
#include <deque>
#include <future>
#include <mutex>
#include <thread>

#include "common/errors.h"
#include "services/environment/kube_client.h"

namespace examiso::environment {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;

constexpr const char* kProtocols = "v5.channel.k8s.io, v4.channel.k8s.io";
constexpr uint8_t kStdout = 1, kStderr = 2, kStatus = 3;

// Every exec stream of the process is served by this one I/O thread.
class ExecIo {
 public:
  static net::io_context& context() {
    static ExecIo io;
    return io.io_;
  }

 private:
  ExecIo() : guard_(net::make_work_guard(io_)), thread_([this] { io_.run(); }) {}
  ~ExecIo() {
    io_.stop();
    thread_.join();
  }
  net::io_context io_;
  net::executor_work_guard<net::io_context::executor_type> guard_;
  std::thread thread_;
};

// One exec stream. Its handlers hold it, so it lives until its last one ran:
// a closed stream finishes its goodbye (or times out) on the I/O thread.
class BeastExec final : public std::enable_shared_from_this<BeastExec> {
 public:
  BeastExec() : tls_(ssl::context::tls_client) {
    if (ready_.fd < 0) refused("no eventfd");
  }

  void connect(const KubeEndpoint& e, const std::string& target) {
    tls_.set_verify_mode(ssl::verify_peer);
    beast::error_code ec;
    tls_.add_certificate_authority(net::buffer(e.ca_pem), ec);
    if (ec) throw Error("INVALID_ARGUMENT", "the Kubernetes API server's CA certificate could not be read");
    ws_ = std::make_unique<Stream>(net::make_strand(ExecIo::context()), tls_);
    goodbye_.emplace(ws_->get_executor());

    // Connect, TLS with the server's name (or address) checked, upgrade.
    auto& tcp_layer = beast::get_lowest_layer(*ws_);
    tcp_layer.expires_after(e.timeout);  // asynchronous steps only: the timeout applies to those
    tcp::resolver resolver(ExecIo::context());
    const auto addresses = resolver.resolve(e.host, std::to_string(e.port), ec);
    if (!ec) ec = await([&](auto done) { tcp_layer.async_connect(addresses, done); });
    if (ec) refused("cannot reach the API server: " + ec.message());
    SSL* ssl = ws_->next_layer().native_handle();
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
    if (!X509_VERIFY_PARAM_set1_ip_asc(param, e.host.c_str())) {
      X509_VERIFY_PARAM_set1_host(param, e.host.c_str(), 0);
      SSL_set_tlsext_host_name(ssl, e.host.c_str());
    }
    ec = await([&](auto done) { ws_->next_layer().async_handshake(ssl::stream_base::client, done); });
    if (ec) refused("TLS with the API server failed: " + ec.message());
    const std::string bearer = "Bearer " + e.bearer();
    ws_->set_option(websocket::stream_base::decorator([bearer](websocket::request_type& req) {
      req.set(http::field::authorization, bearer);
      req.set(http::field::sec_websocket_protocol, kProtocols);
    }));
    // (Boost 1.74's synchronous upgrade also returns before reading the answer
    // of a refused one, and its Status says why.)
    websocket::response_type response;
    ec = await([&](auto done) { ws_->async_handshake(response, e.host + ":" + std::to_string(e.port), target, done); });
    if (ec) {
      const Json body = Json::parse(response.body(), nullptr, false);
      const std::string message = body.is_object() ? body.value("message", std::string()) : std::string();
      refused("exec refused: " + std::to_string(response.result_int()) + (message.empty() ? "" : " " + message));
    }
    protocol_ = std::string(response[http::field::sec_websocket_protocol]);
    if (protocol_ != "v5.channel.k8s.io" && protocol_ != "v4.channel.k8s.io")
      refused("the API server chose no exec protocol this client speaks ('" + protocol_ + "')");
    ws_->binary(true);
    net::post(ws_->get_executor(), [self = shared_from_this()] {
      beast::get_lowest_layer(*self->ws_).expires_never();
      self->read_next();
    });
  }

  std::optional<std::string> read(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    cv_.wait_for(lock, timeout, [&] { return !output_.empty() || ended_; });
    if (!output_.empty()) {
      // Under the lock, so that a later signal stays; an end stays readable.
      uint64_t signals;
      if (!ended_) (void)!::read(ready_.fd, &signals, sizeof signals);
      return std::exchange(output_, {});
    }
    if (ended_) return std::nullopt;
    return std::string();
  }

  int wait_fd() const { return ready_.fd; }

  bool send(uint8_t channel, std::string_view data) {
    {
      std::lock_guard lock(mutex_);
      if (ended_) return false;
    }
    std::string message(1, static_cast<char>(channel));
    message.append(data);
    net::post(ws_->get_executor(), [self = shared_from_this(), m = std::move(message)]() mutable {
      self->writes_.push_back(std::move(m));
      if (self->writes_.size() == 1) self->write_next();
    });
    return true;
  }

  // Says goodbye; a server that does not answer within a second is hung up on
  // (the pending read would otherwise wait for its answer forever).
  void close() {
    net::post(ws_->get_executor(), [self = shared_from_this()] {
      if (self->closing_) return;
      self->closing_ = true;
      self->goodbye_->expires_after(std::chrono::seconds(1));
      self->goodbye_->async_wait([self](beast::error_code ec) {
        if (!ec) beast::get_lowest_layer(*self->ws_).close();
      });
      self->ws_->async_close(websocket::close_code::normal, [self](beast::error_code) {
        self->goodbye_->cancel();
        self->end();
      });
    });
  }

  Json status() {
    std::lock_guard lock(mutex_);
    return status_;
  }

 private:
  using Stream = websocket::stream<beast::ssl_stream<beast::tcp_stream>>;

  // Starts an operation on the stream's strand and waits for its end: `start`
  // gets the completion handler to pass it.
  template <class Start>
  beast::error_code await(Start start) {
    auto result = std::make_shared<std::promise<beast::error_code>>();  // the handler's own
    auto ended = result->get_future();
    net::post(ws_->get_executor(),
              [&start, result] { start([result](beast::error_code ec, auto&&...) { result->set_value(ec); }); });
    return ended.get();
  }

  [[noreturn]] static void refused(const std::string& why) {
    throw Error("ENVIRONMENT_NOT_FOUND", "The environment's terminal could not be opened: " + why,
                Json{{"reason", why}});
  }

  void read_next() {
    ws_->async_read(buffer_, [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec) return self->end();
      const std::string data = beast::buffers_to_string(self->buffer_.data());
      self->buffer_.consume(self->buffer_.size());
      if (!data.empty()) {
        const auto channel = static_cast<uint8_t>(data[0]);
        std::lock_guard lock(self->mutex_);
        if (channel == kStdout || channel == kStderr) {
          self->output_.append(data, 1);
          self->signal();
          self->cv_.notify_all();
        } else if (channel == kStatus) {
          self->status_ = Json::parse(data.substr(1), nullptr, false);
        }
      }
      self->read_next();
    });
  }

  void write_next() {
    if (closing_) return;
    ws_->async_write(net::buffer(writes_.front()), [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec) return self->end();
      self->writes_.pop_front();
      if (!self->writes_.empty()) self->write_next();
    });
  }

  void end() {
    std::lock_guard lock(mutex_);
    ended_ = true;
    signal();
    cv_.notify_all();
  }

  void signal() {
    const uint64_t one = 1;
    (void)!::write(ready_.fd, &one, sizeof one);
  }

  ssl::context tls_;
  std::unique_ptr<Stream> ws_;
  std::optional<net::steady_timer> goodbye_;  // on the strand only
  beast::flat_buffer buffer_;
  std::deque<std::string> writes_;  // on the strand only
  bool closing_ = false;            // on the strand only
  std::string protocol_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::string output_;
  Json status_;
  bool ended_ = false;
  // An eventfd, readable while output_ holds something or the stream ended.
  struct EventFd {
    int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    ~EventFd() {
      if (fd >= 0) ::close(fd);
    }
  } ready_;
};

// What the driver holds: dropping it closes the stream.
class ExecHandle final : public KubeExec {
 public:
  explicit ExecHandle(std::shared_ptr<BeastExec> exec) : exec_(std::move(exec)) {}
  ~ExecHandle() override { exec_->close(); }
  std::optional<std::string> read(std::chrono::milliseconds timeout) override { return exec_->read(timeout); }
  int wait_fd() const override { return exec_->wait_fd(); }
  bool send(uint8_t channel, std::string_view data) override { return exec_->send(channel, data); }
  void close() override { exec_->close(); }
  Json status() override { return exec_->status(); }

 private:
  std::shared_ptr<BeastExec> exec_;
};

}  // namespace

std::unique_ptr<KubeExec> KubeExec::open(const KubeEndpoint& endpoint, const std::string& path_and_query) {
  auto exec = std::make_shared<BeastExec>();
  exec->connect(endpoint, path_and_query);
  return std::make_unique<ExecHandle>(std::move(exec));
}

}  // namespace examiso::environment
