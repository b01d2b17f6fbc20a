#pragma once
// The one error model. Every contract error code has one row saying how it
// travels over each surface; nobody maps errors by hand elsewhere.
#include <grpcpp/support/status.h>

#include <stdexcept>
#include <string>
#include <string_view>

#include "common/json.h"

namespace examiso {

struct ErrorKind {
  std::string_view code;
  grpc::StatusCode grpc;
  int http;
  int exit_code;
  int ws_close;
};

// The row for `code`; unknown codes get INTERNAL_ERROR's row.
const ErrorKind& error_kind(std::string_view code);

// Thrown by domain code; `code` is a contract code, `details` the contract's
// details object, `what()` the human message.
class Error : public std::runtime_error {
 public:
  Error(std::string code, const std::string& message, Json details = Json::object());

  const std::string& code() const { return code_; }
  const Json& details() const { return details_; }
  const ErrorKind& kind() const { return error_kind(code_); }

  // {"error": true, "code": ..., "message": ..., "details": {...}}: the CLI form.
  Json to_json() const;

 private:
  std::string code_;
  Json details_;
};

// gRPC status with an examiso.v1.ErrorDetail inside google.rpc.Status details.
grpc::Status to_grpc_status(const Error& error);

// The contract error a caller of `address` should see for `status`: the
// ErrorDetail when the server sent one, otherwise one derived from the status
// code (an unreachable server is BACKEND_UNAVAILABLE naming the address).
Error from_grpc_status(const grpc::Status& status, std::string_view address);

}  // namespace examiso
