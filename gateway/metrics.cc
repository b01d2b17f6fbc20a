#include "gateway/metrics.h"

#include <sstream>

namespace examiso::gateway {

void Metrics::request(const std::string& route, int status, std::chrono::nanoseconds took) {
  const double secs = std::chrono::duration<double>(took).count();
  std::lock_guard lock(mutex_);
  ++requests_[{route, status}];
  Histogram& h = latency_[route];
  for (size_t i = 0; i < kBuckets.size(); ++i)
    if (secs <= kBuckets[i]) ++h.counts[i];
  ++h.count;
  h.sum += secs;
}

void Metrics::adjust(const std::string& kind, int by) {
  std::lock_guard lock(mutex_);
  websockets_[kind] += by;
}

std::string Metrics::render() const {
  std::ostringstream out;
  std::lock_guard lock(mutex_);
  out << "# HELP examiso_http_requests_total HTTP requests by route and status code.\n"
         "# TYPE examiso_http_requests_total counter\n";
  for (const auto& [key, n] : requests_)
    out << "examiso_http_requests_total{route=\"" << key.first << "\",code=\"" << key.second << "\"} " << n << "\n";
  out << "# HELP examiso_http_request_duration_seconds Time to answer, by route.\n"
         "# TYPE examiso_http_request_duration_seconds histogram\n";
  for (const auto& [route, h] : latency_) {
    for (size_t i = 0; i < kBuckets.size(); ++i)
      out << "examiso_http_request_duration_seconds_bucket{route=\"" << route << "\",le=\"" << kBuckets[i] << "\"} "
          << h.counts[i] << "\n";
    out << "examiso_http_request_duration_seconds_bucket{route=\"" << route << "\",le=\"+Inf\"} " << h.count << "\n"
        << "examiso_http_request_duration_seconds_sum{route=\"" << route << "\"} " << h.sum << "\n"
        << "examiso_http_request_duration_seconds_count{route=\"" << route << "\"} " << h.count << "\n";
  }
  out << "# HELP examiso_websockets_open Open WebSockets by kind.\n# TYPE examiso_websockets_open gauge\n";
  for (const auto& [kind, n] : websockets_) out << "examiso_websockets_open{kind=\"" << kind << "\"} " << n << "\n";
  out << "# HELP examiso_terminal_bytes_total Bytes through terminals.\n# TYPE examiso_terminal_bytes_total counter\n"
      << "examiso_terminal_bytes_total{direction=\"to_client\"} " << bytes_out_.load() << "\n"
      << "examiso_terminal_bytes_total{direction=\"from_client\"} " << bytes_in_.load() << "\n";
  return out.str();
}

}  // namespace examiso::gateway
