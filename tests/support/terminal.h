#pragma once
// A terminal client of the environment service's Attach stream, for tests and
// benchmarks: send keystrokes, wait for output.
#include <grpcpp/grpcpp.h>

#include <condition_variable>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "examiso/v1/environment.grpc.pb.h"

namespace examiso::testing {

class TerminalClient final {
 public:
  // `observe`: staff's read-only view.
  TerminalClient(const std::string& address, const std::string& session_id, uint32_t cols = 80, uint32_t rows = 24,
                 bool observe = false);
  ~TerminalClient();

  bool send(const std::string& input);
  bool resize(uint32_t cols, uint32_t rows);

  // Waits until the output received so far contains `needle` after `from`;
  // returns the position just past it, or nullopt after `timeout`.
  std::optional<size_t> wait_for(const std::string& needle, std::chrono::milliseconds timeout, size_t from = 0);
  // Waits until at least `bytes` bytes of output have arrived.
  bool wait_bytes(size_t bytes, std::chrono::milliseconds timeout);

  std::string output();
  size_t output_size();
  bool ended();  // the stream ended (an `ended` message or an error)
  std::string ended_reason();
  // The staff messages received, and the last number of observers told (-1: none told).
  std::vector<std::string> messages();
  int observers();

  // From now on output is read and counted, not kept (a flood of it).
  void discard_output();
  size_t discarded_bytes();

  // Ends this client's side: the shell keeps running for the next client.
  grpc::Status detach();

 private:
  grpc::ClientContext context_;
  std::unique_ptr<v1::EnvironmentService::Stub> stub_;
  std::unique_ptr<grpc::ClientReaderWriter<v1::AttachRequest, v1::AttachResponse>> stream_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::string output_;
  bool ended_ = false;
  std::string ended_reason_;
  std::vector<std::string> messages_;
  int observers_ = -1;
  bool detached_ = false;
  bool discard_ = false;
  size_t discarded_ = 0;
  grpc::Status status_;
  std::thread reader_;
};

}  // namespace examiso::testing
