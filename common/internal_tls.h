#pragma once
// Mutual TLS between the services, the gateway and the CLIs, and who may call
// what.
//
// Every process has a role: a service's name (identity, lifecycle,
// environment, access, cleanup, gateway) or `operator` (the CLIs, grpcurl).
// With `grpc.tls_dir` set, a process of role R presents
// <tls_dir>/R/tls.crt (key tls.key), trusts only <tls_dir>/R/ca.crt (the
// layout of a Kubernetes TLS Secret, as cert-manager writes it), and:
//   - as a server, requires a client certificate from that CA and accepts a
//     call only from the roles the caller table (internal_tls.cc) names for
//     its method: PERMISSION_DENIED otherwise;
//   - as a client, talks only to a server whose certificate names the service
//     it meant to reach (DNS name = that service's role).
// A certificate's role is its DNS subject alternative name. Without
// `grpc.tls_dir`, internal gRPC is plaintext and unchecked (logged loudly).
#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "common/config.h"

namespace examiso::internal_tls {

// Once, at start, before any channel or server is made. Throws Error
// (INVALID_ARGUMENT) when a file is missing or unreadable.
void configure(const Config& config, const std::string& role);
void configure_dir(const std::string& tls_dir, const std::string& role);

bool enabled();
const std::string& role();

// Credentials of this process's role, or of `as` (tests and tools that act
// for a service hold its files): insecure when TLS is off.
std::shared_ptr<grpc::ChannelCredentials> channel_credentials(const std::string& as = "");
// With the caller check attached.
std::shared_ptr<grpc::ServerCredentials> server_credentials();

// Whether `caller` may call `method` ("/examiso.v1.EnvironmentService/Attach").
bool allowed(const std::string& method, const std::string& caller);

}  // namespace examiso::internal_tls
