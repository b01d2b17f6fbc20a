#include "tests/support/http_client.h"

#include <sys/socket.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

#include <array>
#include <condition_variable>
#include <functional>
#include <utility>
#include <deque>
#include <mutex>
#include <stdexcept>
#include <thread>

namespace examiso::testing {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
namespace websocket = beast::websocket;
using tcp = net::ip::tcp;

tcp::endpoint endpoint_of(const std::string& address) {
  const auto colon = address.rfind(':');
  return {net::ip::make_address(address.substr(0, colon)),
          static_cast<unsigned short>(std::stoi(address.substr(colon + 1)))};
}

HttpResult result_of(const bhttp::response<bhttp::string_body>& res) {
  HttpResult out;
  out.status = res.result_int();
  out.body = res.body();
  for (const auto& field : res) {
    std::string name(field.name_string());
    for (auto& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    out.headers[name] = std::string(field.value());
  }
  return out;
}

}  // namespace

HttpResult http(const std::string& address, const std::string& method, const std::string& target,
                const std::string& body, const Headers& headers) {
  net::io_context ioc;
  beast::tcp_stream stream(ioc);
  bhttp::request<bhttp::string_body> req{bhttp::string_to_verb(method), target, 11};
  if (req.method() == bhttp::verb::unknown) req.method_string(method);
  req.set(bhttp::field::host, address);
  for (const auto& [k, v] : headers) req.set(k, v);
  req.body() = body;
  if (!body.empty() || method == "POST") req.prepare_payload();
  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(boost::none);
  beast::flat_buffer buffer;
  beast::error_code failure;
  stream.expires_after(std::chrono::seconds(30));
  stream.async_connect(endpoint_of(address), [&](beast::error_code ec) {
    if (ec) return void(failure = ec);
    bhttp::async_write(stream, req, [&](beast::error_code ec, size_t) {
      if (ec) return void(failure = ec);
      bhttp::async_read(stream, buffer, parser, [&](beast::error_code ec, size_t) { failure = ec; });
    });
  });
  ioc.run();
  if (failure) throw std::runtime_error(method + " " + target + ": " + failure.message());
  return result_of(parser.get());
}

HttpResult http_as(const std::string& token, const std::string& address, const std::string& method,
                   const std::string& target, const std::string& body) {
  Headers headers{{"Authorization", "Bearer " + token}};
  if (!body.empty()) headers.emplace_back("Content-Type", "application/json");
  return http(address, method, target, body, headers);
}

RawResult raw_exchange(const std::string& address, const std::string& bytes, std::chrono::milliseconds timeout,
                       bool then_eof) {
  net::io_context ioc;
  beast::tcp_stream stream(ioc);
  RawResult out;
  std::array<char, 4096> chunk{};
  std::function<void()> read = [&] {
    stream.async_read_some(net::buffer(chunk), [&](beast::error_code ec, size_t n) {
      out.received.append(chunk.data(), n);
      if (ec == beast::error::timeout) return void(out.timed_out = true);
      if (ec) return void(out.closed = true);
      read();
    });
  };
  stream.expires_after(timeout);
  stream.async_connect(endpoint_of(address), [&](beast::error_code ec) {
    if (ec) throw std::runtime_error("connect " + address + ": " + ec.message());
    net::async_write(stream, net::buffer(bytes), [&](beast::error_code ec, size_t) {
      // The server may answer and close before it read everything: still read.
      if (ec == beast::error::timeout) return void(out.timed_out = true);
      beast::error_code ignored;
      if (then_eof) stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
      read();
    });
  });
  ioc.run();
  return out;
}

bool wait_http(const std::string& address, std::chrono::milliseconds timeout) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < until) {
    try {
      if (http(address, "GET", "/healthz").status == 200) return true;
    } catch (const std::exception&) {
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

struct WsClient::Impl {
  net::io_context ioc;
  net::executor_work_guard<net::io_context::executor_type> work = net::make_work_guard(ioc);
  websocket::stream<beast::tcp_stream> ws{ioc};
  std::thread thread;
  beast::flat_buffer buffer;
  std::deque<std::string> outbox;
  bool writing = false;

  mutable std::mutex m;
  std::condition_variable cv;
  std::deque<std::string> inbox;
  bool closed = false, paused = false, stopped = false;  // stopped: paused with no read under way
  uint16_t code = 0;
  std::string reason;
  std::optional<HttpResult> refused;

  void finish() {
    std::lock_guard lock(m);
    closed = true;
    code = ws.reason().code;
    reason = std::string(ws.reason().reason.c_str());
    cv.notify_all();
  }

  void read() {
    ws.async_read(buffer, [this](beast::error_code ec, size_t) {
      if (ec) return finish();
      {
        std::lock_guard lock(m);
        inbox.push_back(beast::buffers_to_string(buffer.data()));
        cv.notify_all();
      }
      buffer.consume(buffer.size());
      std::lock_guard lock(m);
      stopped = paused;
      if (!paused) {
        // Unlocked before the next read starts (it may complete inline).
        net::post(ioc, [this] { read(); });
      }
    });
  }

  void write_next() {
    if (outbox.empty()) return void(writing = false);
    writing = true;
    ws.text(true);
    ws.async_write(net::buffer(outbox.front()), [this](beast::error_code ec, size_t) {
      outbox.pop_front();
      if (ec) return void(writing = false);
      write_next();
    });
  }
};

WsClient::WsClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

std::unique_ptr<WsClient> WsClient::connect(const std::string& address, const std::string& target,
                                            const Headers& headers) {
  auto impl = std::make_unique<Impl>();
  beast::get_lowest_layer(impl->ws).connect(endpoint_of(address));
  impl->ws.set_option(websocket::stream_base::decorator([headers](websocket::request_type& req) {
    for (const auto& [k, v] : headers) req.set(k, v);
  }));
  impl->ws.read_message_max(64 << 20);
  websocket::response_type res;
  beast::error_code ec;
  beast::get_lowest_layer(impl->ws).expires_after(std::chrono::seconds(30));
  // The asynchronous handshake keeps a refusing server's answer (the
  // synchronous one drops it).
  bool done = false;
  impl->ws.async_handshake(res, address, target, [&](beast::error_code e) {
    ec = e;
    done = true;
  });
  while (!done) impl->ioc.run_one();
  beast::get_lowest_layer(impl->ws).expires_never();
  Impl* raw = impl.get();
  std::unique_ptr<WsClient> client(new WsClient(std::move(impl)));
  if (ec) {
    raw->refused = result_of(res);
    if (raw->refused->status == 0) raw->refused->status = -1;  // no HTTP answer at all
    raw->closed = true;
    return client;
  }
  raw->thread = std::thread([raw] { raw->ioc.run(); });
  net::post(raw->ioc, [raw] { raw->read(); });
  return client;
}

WsClient::~WsClient() {
  if (impl_->thread.joinable()) {
    drop();
    impl_->work.reset();
    impl_->ioc.stop();
    impl_->thread.join();
  }
}

const std::optional<HttpResult>& WsClient::refused() const { return impl_->refused; }

bool WsClient::open() const {
  std::lock_guard lock(impl_->m);
  return !impl_->closed;
}

void WsClient::send(const std::string& text) {
  Impl* i = impl_.get();
  net::post(i->ioc, [i, text] {
    i->outbox.push_back(text);
    if (!i->writing) i->write_next();
  });
}

std::optional<std::string> WsClient::receive(std::chrono::milliseconds timeout) {
  std::unique_lock lock(impl_->m);
  impl_->cv.wait_for(lock, timeout, [&] { return !impl_->inbox.empty() || impl_->closed; });
  if (impl_->inbox.empty()) return std::nullopt;
  std::string out = std::move(impl_->inbox.front());
  impl_->inbox.pop_front();
  return out;
}

uint16_t WsClient::wait_closed(std::chrono::milliseconds timeout) {
  std::unique_lock lock(impl_->m);
  impl_->cv.wait_for(lock, timeout, [&] { return impl_->closed; });
  return impl_->closed ? impl_->code : 0;
}

uint16_t WsClient::close_code() const {
  std::lock_guard lock(impl_->m);
  return impl_->code;
}

std::string WsClient::close_reason() const {
  std::lock_guard lock(impl_->m);
  return impl_->reason;
}

void WsClient::pause_reading() {
  std::lock_guard lock(impl_->m);
  impl_->paused = true;
}

void WsClient::resume_reading() {
  std::lock_guard lock(impl_->m);
  impl_->paused = false;
  if (std::exchange(impl_->stopped, false)) net::post(impl_->ioc, [i = impl_.get()] { i->read(); });
}

void WsClient::close() {
  Impl* i = impl_.get();
  if (!i->thread.joinable()) return;
  net::post(i->ioc, [i] { i->ws.async_close(websocket::close_code::normal, [](beast::error_code) {}); });
  wait_closed(std::chrono::seconds(5));
}

void WsClient::drop() {
  Impl* i = impl_.get();
  if (!i->thread.joinable()) return;
  net::post(i->ioc, [i] {
    beast::error_code ignored;
    beast::get_lowest_layer(i->ws).socket().shutdown(tcp::socket::shutdown_both, ignored);
    beast::get_lowest_layer(i->ws).socket().close(ignored);
  });
  wait_closed(std::chrono::seconds(5));
}

struct BlockingWsClient::Impl {
  net::io_context ioc;
  websocket::stream<tcp::socket> ws{ioc};
  beast::flat_buffer buffer;
};

BlockingWsClient::BlockingWsClient(const std::string& address, const std::string& target, const Headers& headers)
    : impl_(std::make_unique<Impl>()) {
  auto& socket = impl_->ws.next_layer();
  socket.connect(endpoint_of(address));
  socket.set_option(tcp::no_delay(true));
  impl_->ws.set_option(websocket::stream_base::decorator([headers](websocket::request_type& req) {
    for (const auto& [k, v] : headers) req.set(k, v);
  }));
  impl_->ws.read_message_max(64 << 20);
  impl_->ws.handshake(address, target);
  impl_->ws.text(true);
}

BlockingWsClient::~BlockingWsClient() {
  beast::error_code ignored;
  impl_->ws.next_layer().close(ignored);
}

void BlockingWsClient::send(const std::string& text) { impl_->ws.write(net::buffer(text)); }

void BlockingWsClient::close() { ::shutdown(impl_->ws.next_layer().native_handle(), SHUT_RDWR); }

std::string BlockingWsClient::receive() {
  impl_->buffer.clear();
  impl_->ws.read(impl_->buffer);
  return beast::buffers_to_string(impl_->buffer.data());
}

}  // namespace examiso::testing
