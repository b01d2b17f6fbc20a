#include "tests/support/reflection.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/descriptor.pb.h>
#include <grpcpp/grpcpp.h>

#include "grpc/reflection/v1alpha/reflection.grpc.pb.h"
#include "common/grpc_server.h"

namespace examiso::testing {
namespace {

namespace rv = grpc::reflection::v1alpha;

rv::ServerReflectionResponse ask(const std::string& address, const std::string& role, const rv::ServerReflectionRequest& request) {
  auto stub = rv::ServerReflection::NewStub(make_channel(address, role));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  auto stream = stub->ServerReflectionInfo(&context);
  rv::ServerReflectionResponse response;
  stream->Write(request);
  stream->WritesDone();
  stream->Read(&response);
  stream->Finish();
  return response;
}

}  // namespace

std::vector<std::string> reflection_list(const std::string& address, const std::string& role) {
  rv::ServerReflectionRequest request;
  request.set_list_services("");
  std::vector<std::string> names;
  const auto response = ask(address, role, request);
  for (const auto& s : response.list_services_response().service()) names.push_back(s.name());
  return names;
}

std::string reflection_describe(const std::string& address, const std::string& role, const std::string& service) {
  rv::ServerReflectionRequest request;
  request.set_file_containing_symbol(service);
  const auto response = ask(address, role, request);
  google::protobuf::DescriptorPool pool;
  // Files arrive dependencies included, in any order: add until all resolve.
  std::vector<google::protobuf::FileDescriptorProto> pending;
  for (const auto& bytes : response.file_descriptor_response().file_descriptor_proto()) {
    google::protobuf::FileDescriptorProto file;
    if (file.ParseFromString(bytes)) pending.push_back(file);
  }
  for (size_t round = 0; round < 10 && !pending.empty(); ++round) {
    std::vector<google::protobuf::FileDescriptorProto> later;
    for (const auto& file : pending) {
      bool ready = true;
      for (const auto& dep : file.dependency()) ready = ready && pool.FindFileByName(dep) != nullptr;
      if (!ready || !pool.BuildFile(file)) later.push_back(file);
    }
    pending.swap(later);
  }
  const auto* descriptor = pool.FindServiceByName(service);
  return descriptor ? descriptor->DebugString() : "";
}

}  // namespace examiso::testing
