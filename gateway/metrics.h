#pragma once
// Prometheus metrics of the gateway: requests by route and code, latency
// histograms, open WebSockets, bytes through terminals.
#include <array>
#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <string>

namespace examiso::gateway {

class Metrics final {
 public:
  void request(const std::string& route, int status, std::chrono::nanoseconds took);
  void websocket_opened(const std::string& kind) { adjust(kind, +1); }
  void websocket_closed(const std::string& kind) { adjust(kind, -1); }
  void terminal_bytes(bool to_client, size_t n) { (to_client ? bytes_out_ : bytes_in_) += n; }
  std::string render() const;

 private:
  static constexpr std::array<double, 12> kBuckets{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                   0.05,   0.1,   0.25,   0.5,   1.0,  2.5};
  struct Histogram {
    std::array<uint64_t, kBuckets.size()> counts{};
    uint64_t count = 0;
    double sum = 0;
  };
  void adjust(const std::string& kind, int by);

  mutable std::mutex mutex_;
  std::map<std::pair<std::string, int>, uint64_t> requests_;
  std::map<std::string, Histogram> latency_;
  std::map<std::string, int64_t> websockets_;
  std::atomic<uint64_t> bytes_out_{0}, bytes_in_{0};
};

}  // namespace examiso::gateway
