#include "common/errors.h"

#include <google/protobuf/struct.pb.h>

#include <array>

#include "examiso/v1/common.pb.h"
#include "google/rpc/status.pb.h"

namespace examiso {
namespace {

using C = grpc::StatusCode;

// code, gRPC status, HTTP status, CLI exit code, WebSocket close code
constexpr std::array kErrors{
    ErrorKind{"INTERNAL_ERROR", C::INTERNAL, 500, 1, 1011},
    ErrorKind{"INVALID_USAGE", C::INVALID_ARGUMENT, 400, 2, 1008},
    ErrorKind{"INVALID_IDENTITY", C::INVALID_ARGUMENT, 400, 3, 1008},
    ErrorKind{"INVALID_ARGUMENT", C::INVALID_ARGUMENT, 400, 3, 1008},
    ErrorKind{"INVALID_EXAM_ID", C::INVALID_ARGUMENT, 400, 3, 1008},
    ErrorKind{"INVALID_JSON", C::INVALID_ARGUMENT, 400, 3, 1007},
    ErrorKind{"PAYLOAD_TOO_LARGE", C::INVALID_ARGUMENT, 413, 3, 1009},
    ErrorKind{"HEADERS_TOO_LARGE", C::INVALID_ARGUMENT, 431, 3, 1008},
    ErrorKind{"METHOD_NOT_ALLOWED", C::INVALID_ARGUMENT, 405, 2, 1008},
    ErrorKind{"UNAUTHENTICATED", C::UNAUTHENTICATED, 401, 5, 4001},
    ErrorKind{"ACCESS_DENIED", C::PERMISSION_DENIED, 403, 5, 4003},
    ErrorKind{"NOT_FOUND", C::NOT_FOUND, 404, 4, 1008},
    ErrorKind{"SESSION_NOT_FOUND", C::NOT_FOUND, 404, 4, 4003},
    ErrorKind{"ENVIRONMENT_NOT_FOUND", C::NOT_FOUND, 404, 4, 4003},
    ErrorKind{"INVALID_TRANSITION", C::FAILED_PRECONDITION, 409, 6, 1008},
    ErrorKind{"ACTIVE_SESSION_EXISTS", C::ALREADY_EXISTS, 409, 6, 1008},
    ErrorKind{"SESSION_EXISTS", C::ALREADY_EXISTS, 409, 6, 1008},
    ErrorKind{"SESSION_NOT_READY", C::FAILED_PRECONDITION, 409, 6, 4005},
    ErrorKind{"SESSION_TERMINATED", C::FAILED_PRECONDITION, 409, 6, 4006},
    ErrorKind{"SESSION_ALREADY_TERMINATED", C::FAILED_PRECONDITION, 400, 6, 4006},
    ErrorKind{"TERMINAL_OPENED_ELSEWHERE", C::ABORTED, 409, 6, 4008},
    ErrorKind{"ENVIRONMENT_CREATE_FAILED", C::ABORTED, 500, 1, 1011},
    ErrorKind{"ENVIRONMENT_CAPACITY_REACHED", C::RESOURCE_EXHAUSTED, 503, 1, 1013},
    ErrorKind{"TOKEN_ISSUING_DISABLED", C::FAILED_PRECONDITION, 403, 1, 1008},
    ErrorKind{"RATE_LIMITED", C::RESOURCE_EXHAUSTED, 429, 1, 1013},
    ErrorKind{"BACKEND_UNAVAILABLE", C::UNAVAILABLE, 503, 1, 1013},
    ErrorKind{"TIMEOUT", C::DEADLINE_EXCEEDED, 504, 1, 1011},
};

const ErrorKind& kind_for_grpc(C code) {
  switch (code) {
    case C::UNAVAILABLE: return error_kind("BACKEND_UNAVAILABLE");
    case C::DEADLINE_EXCEEDED: return error_kind("TIMEOUT");
    case C::UNAUTHENTICATED: return error_kind("UNAUTHENTICATED");
    case C::PERMISSION_DENIED: return error_kind("ACCESS_DENIED");
    case C::INVALID_ARGUMENT: return error_kind("INVALID_ARGUMENT");
    case C::RESOURCE_EXHAUSTED: return error_kind("RATE_LIMITED");
    default: return error_kind("INTERNAL_ERROR");
  }
}

// nlohmann JSON -> google.protobuf.Value, directly: protobuf's JSON parser
// would cost every error ~100 us.
void to_value(const Json& j, google::protobuf::Value* v) {
  if (j.is_null()) {
    v->set_null_value(google::protobuf::NULL_VALUE);
  } else if (j.is_boolean()) {
    v->set_bool_value(j.get<bool>());
  } else if (j.is_number()) {
    v->set_number_value(j.get<double>());
  } else if (j.is_string()) {
    v->set_string_value(j.get<std::string>());
  } else if (j.is_array()) {
    auto* list = v->mutable_list_value();
    for (const auto& item : j) to_value(item, list->add_values());
  } else {
    auto* fields = v->mutable_struct_value()->mutable_fields();
    for (const auto& [key, item] : j.items()) to_value(item, &(*fields)[key]);
  }
}

}  // namespace

const ErrorKind& error_kind(std::string_view code) {
  for (const auto& k : kErrors)
    if (k.code == code) return k;
  return kErrors[0];
}

Error::Error(std::string code, const std::string& message, Json details)
    : std::runtime_error(message), code_(std::move(code)), details_(std::move(details)) {
  if (!details_.is_object()) details_ = Json::object();
}

Json Error::to_json() const {
  return Json{{"error", true}, {"code", code_}, {"message", what()}, {"details", details_}};
}

grpc::Status to_grpc_status(const Error& error) {
  v1::ErrorDetail detail;
  detail.set_code(error.code());
  google::protobuf::Value details;
  to_value(error.details(), &details);
  *detail.mutable_details() = details.struct_value();
  detail.set_details_json(compact_json(error.details()));
  google::rpc::Status rich;
  rich.set_code(static_cast<int>(error.kind().grpc));
  rich.set_message(error.what());
  rich.add_details()->PackFrom(detail);
  return grpc::Status(error.kind().grpc, error.what(), rich.SerializeAsString());
}

Error from_grpc_status(const grpc::Status& status, std::string_view address) {
  google::rpc::Status rich;
  v1::ErrorDetail detail;
  if (!status.error_details().empty() && rich.ParseFromString(status.error_details())) {
    for (const auto& any : rich.details()) {
      if (!any.UnpackTo(&detail)) continue;
      Json details = Json::parse(detail.details_json(), nullptr, false);
      return Error(detail.code(), status.error_message(), details.is_object() ? details : Json::object());
    }
  }
  const ErrorKind& kind = kind_for_grpc(status.error_code());
  if (kind.code == "BACKEND_UNAVAILABLE")
    return Error("BACKEND_UNAVAILABLE", "Service unavailable at " + std::string(address),
                 Json{{"address", address}, {"reason", status.error_message()}});
  if (kind.code == "TIMEOUT")
    return Error("TIMEOUT", "No answer in time from " + std::string(address),
                 Json{{"address", address}});
  if (kind.code != "INTERNAL_ERROR") return Error(std::string(kind.code), status.error_message());
  // Not an examiso error (gRPC's own, or a peer that is not ours): say where
  // and what, for the log; clients never see an INTERNAL_ERROR's message.
  std::string message =
      "gRPC status " + std::to_string(static_cast<int>(status.error_code())) + " from " + std::string(address);
  if (!status.error_message().empty()) message += ": " + status.error_message();
  return Error("INTERNAL_ERROR", message);
}

}  // namespace examiso
