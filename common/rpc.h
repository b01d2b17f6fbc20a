#pragma once
// The body of every RPC handler: run the domain call, turn its Error into the
// gRPC status (with ErrorDetail), and never let anything else escape.
#include <grpcpp/support/status.h>

#include "common/errors.h"
#include "common/log.h"

namespace examiso {

template <class F>
grpc::Status handle_rpc(F&& body) {
  try {
    body();
    return grpc::Status::OK;
  } catch (const Error& e) {
    if (e.kind().grpc == grpc::StatusCode::INTERNAL || e.kind().grpc == grpc::StatusCode::UNAVAILABLE)
      log::warn("rpc_failed", {{"code", e.code()}, {"message", e.what()}});
    return to_grpc_status(e);
  } catch (const std::exception& e) {
    log::error("rpc_crashed", {{"message", e.what()}});
    return to_grpc_status(Error("INTERNAL_ERROR", "Internal error"));
  }
}

}  // namespace examiso
