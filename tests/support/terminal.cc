#include "tests/support/terminal.h"
#include "common/grpc_server.h"

namespace examiso::testing {

TerminalClient::TerminalClient(const std::string& address, const std::string& session_id, uint32_t cols,
                               uint32_t rows, bool observe)
    : stub_(v1::EnvironmentService::NewStub(make_channel(address, "environment", "gateway"))) {
  stream_ = stub_->Attach(&context_);
  v1::AttachRequest start;
  start.mutable_start()->set_session_id(session_id);
  start.mutable_start()->mutable_size()->set_cols(cols);
  start.mutable_start()->mutable_size()->set_rows(rows);
  start.mutable_start()->set_observe(observe);
  stream_->Write(start);
  reader_ = std::thread([this] {
    v1::AttachResponse r;
    while (stream_->Read(&r)) {
      std::lock_guard lock(mutex_);
      if (r.has_ended()) {
        ended_ = true;
        ended_reason_ = r.ended().reason();
      } else if (r.message_case() == v1::AttachResponse::kStaffMessage) {
        messages_.push_back(r.staff_message());
      } else if (r.message_case() == v1::AttachResponse::kObservers) {
        observers_ = static_cast<int>(r.observers());
      } else if (discard_) {
        discarded_ += r.output().size();
      } else {
        output_ += r.output();
      }
      cv_.notify_all();
    }
    std::lock_guard lock(mutex_);
    ended_ = true;
    cv_.notify_all();
  });
}

TerminalClient::~TerminalClient() {
  if (!detached_) context_.TryCancel();
  reader_.join();
}

bool TerminalClient::send(const std::string& input) {
  v1::AttachRequest m;
  m.set_input(input);
  return stream_->Write(m);
}

bool TerminalClient::resize(uint32_t cols, uint32_t rows) {
  v1::AttachRequest m;
  m.mutable_resize()->set_cols(cols);
  m.mutable_resize()->set_rows(rows);
  return stream_->Write(m);
}

std::optional<size_t> TerminalClient::wait_for(const std::string& needle, std::chrono::milliseconds timeout,
                                               size_t from) {
  std::unique_lock lock(mutex_);
  // Scan only what arrived since the last look (large outputs stay linear).
  size_t scanned = from, at = std::string::npos;
  const auto look = [&] {
    const size_t start = scanned > from + needle.size() ? scanned - needle.size() : from;
    at = output_.size() > start ? output_.find(needle, start) : std::string::npos;
    scanned = output_.size();
    return at != std::string::npos;
  };
  cv_.wait_for(lock, timeout, [&] { return look() || ended_; });
  if (at == std::string::npos && !look()) return std::nullopt;
  return at + needle.size();
}

bool TerminalClient::wait_bytes(size_t bytes, std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  return cv_.wait_for(lock, timeout, [&] { return output_.size() >= bytes || ended_; }) && output_.size() >= bytes;
}

std::vector<std::string> TerminalClient::messages() {
  std::lock_guard lock(mutex_);
  return messages_;
}

int TerminalClient::observers() {
  std::lock_guard lock(mutex_);
  return observers_;
}

std::string TerminalClient::output() {
  std::lock_guard lock(mutex_);
  return output_;
}

size_t TerminalClient::output_size() {
  std::lock_guard lock(mutex_);
  return output_.size();
}

bool TerminalClient::ended() {
  std::lock_guard lock(mutex_);
  return ended_;
}

std::string TerminalClient::ended_reason() {
  std::lock_guard lock(mutex_);
  return ended_reason_;
}

grpc::Status TerminalClient::detach() {
  detached_ = true;
  stream_->WritesDone();
  reader_.join();
  reader_ = std::thread([] {});
  return stream_->Finish();
}

}  // namespace examiso::testing

namespace examiso::testing {

void TerminalClient::discard_output() {
  std::lock_guard lock(mutex_);
  discard_ = true;
}

size_t TerminalClient::discarded_bytes() {
  std::lock_guard lock(mutex_);
  return discarded_;
}

}  // namespace examiso::testing
