#pragma once
// What every examiso CLI shares: CLI11 parsing with JSON errors (exit 2),
// --address/--config for its service, calling it with a deadline, and printing
// one JSON document: the result on stdout (exit 0) or the contract's error on
// stderr (exit code from the error table).
#include <grpcpp/grpcpp.h>

#include <CLI/CLI.hpp>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "common/config.h"
#include "common/errors.h"

namespace examiso::cli {

class Command final {
 public:
  // `service` names the config section of the service this CLI talks to.
  Command(const std::string& binary, const std::string& description, std::string service);

  // Adds a subcommand whose action returns the JSON to print.
  CLI::App* subcommand(const std::string& name, const std::string& description, std::function<Json()> action);

  int run(int argc, char** argv);

  // The service's address, and a channel to it (valid inside actions).
  const std::string& address() const { return address_; }
  std::shared_ptr<grpc::Channel> channel();

  // Calls `method` with the configured deadline; a failure becomes the
  // contract's Error (unreachable: BACKEND_UNAVAILABLE naming the address).
  template <class Stub, class Request, class Response>
  Response call(grpc::Status (Stub::*method)(grpc::ClientContext*, const Request&, Response*), Stub& stub,
                const Request& request, std::chrono::milliseconds timeout = {}) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + (timeout.count() ? timeout : timeout_));
    Response response;
    const grpc::Status status = (stub.*method)(&context, request, &response);
    if (!status.ok()) throw from_grpc_status(status, address_);
    return response;
  }

 private:
  CLI::App app_;
  std::string service_;
  std::string address_;
  std::string config_path_;
  std::chrono::milliseconds timeout_{5000};
  std::map<CLI::App*, std::function<Json()>> actions_;
  std::shared_ptr<grpc::Channel> channel_;
};

// Prints `error` as the contract's JSON on stderr and returns its exit code.
int fail(const Error& error);

}  // namespace examiso::cli
