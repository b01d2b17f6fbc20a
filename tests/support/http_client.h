#pragma once
// A small real HTTP/1.1 and WebSocket client for tests and benchmarks (the
// one translation unit of the tests with Boost.Beast in it).
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace examiso::testing {

using Headers = std::vector<std::pair<std::string, std::string>>;

struct HttpResult {
  int status = 0;
  std::string body;
  std::map<std::string, std::string> headers;  // names in lower case
};

// One request on a fresh connection to `address` (host:port).
HttpResult http(const std::string& address, const std::string& method, const std::string& target,
                const std::string& body = "", const Headers& headers = {});

// Same, with "Authorization: Bearer <token>" (and a JSON content type with a body).
HttpResult http_as(const std::string& token, const std::string& address, const std::string& method,
                   const std::string& target, const std::string& body = "");

// Sends `bytes` as they are and returns whatever comes back before the server
// closes the connection or `timeout` passes (then `timed_out` is set).
struct RawResult {
  std::string received;
  bool timed_out = false;
  bool closed = false;
};
// `then_eof`: end the sending side after `bytes` (a request that is not whole
// can then never become whole).
RawResult raw_exchange(const std::string& address, const std::string& bytes,
                       std::chrono::milliseconds timeout = std::chrono::seconds(5), bool then_eof = false);

// A WebSocket client: a reader runs in the background and queues what arrives.
class WsClient {
 public:
  struct Message {
    std::string text;
  };

  // Connects; when the server refuses the upgrade, `refused()` holds its answer.
  static std::unique_ptr<WsClient> connect(const std::string& address, const std::string& target,
                                           const Headers& headers = {});
  ~WsClient();

  const std::optional<HttpResult>& refused() const;
  bool open() const;

  void send(const std::string& text);
  // The next message, or nothing once closed (or after `timeout`).
  std::optional<std::string> receive(std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // Waits for the server to close; its close code (0 when it did not within `timeout`).
  uint16_t wait_closed(std::chrono::milliseconds timeout = std::chrono::seconds(10));
  uint16_t close_code() const;
  std::string close_reason() const;
  // Stops reading (the server's queue then fills): for backpressure tests.
  void pause_reading();
  void resume_reading();
  void close();  // a normal close (1000)
  void drop();   // the TCP connection ends without a close frame

  struct Impl;

 private:
  explicit WsClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// A WebSocket client with no thread of its own: each call reads or writes on
// the caller's thread, so that a latency measured with it is the server's.
class BlockingWsClient {
 public:
  // Throws when the connection or the upgrade fails.
  BlockingWsClient(const std::string& address, const std::string& target, const Headers& headers = {});
  ~BlockingWsClient();
  void send(const std::string& text);
  // Waits for the next message (without a time limit); throws when the connection ends.
  std::string receive();
  // Ends the connection, from any thread: a receive() waiting on it throws.
  void close();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Waits for the gateway at `address` to answer /healthz.
bool wait_http(const std::string& address, std::chrono::milliseconds timeout);

}  // namespace examiso::testing
