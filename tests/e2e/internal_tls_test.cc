// Internal gRPC is mutual TLS (common/internal_tls.h): only a certificate of
// the platform's CA gets a call through, each method answers only the roles
// that need it, and a client talks only to the service it meant to reach.
// Each refusal has its control: the same call with the right certificate.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <cstdlib>

#include "common/files.h"
#include "common/grpc_server.h"
#include "common/internal_tls.h"
#include "common/uuid.h"
#include "examiso/v1/environment.grpc.pb.h"
#include "examiso/v1/identity.grpc.pb.h"
#include "examiso/v1/lifecycle.grpc.pb.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "tests/support/eventually.h"
#include "tests/support/platform.h"
#include "tests/support/postgres.h"

namespace examiso {
namespace {

using namespace std::chrono_literals;

void make_certificates(const std::string& dir, const std::string& roles) {
  const std::string command = std::string(EXAMISO_SOURCE_DIR) + "/scripts/internal-certs " + dir + " " + roles;
  ASSERT_EQ(std::system(command.c_str()), 0) << command;
}

std::string file(const std::string& path) { return read_file(path).value_or(""); }

// A channel to `service` at `address` with these credentials, checking that
// the server's certificate is `service`'s.
std::shared_ptr<grpc::Channel> channel(const std::string& address, const std::string& service,
                                       const std::shared_ptr<grpc::ChannelCredentials>& credentials) {
  grpc::ChannelArguments args;
  args.SetSslTargetNameOverride(service);
  return grpc::CreateCustomChannel(address, credentials, args);
}

grpc::Status health(const std::shared_ptr<grpc::Channel>& channel) {
  auto stub = grpc::health::v1::Health::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + 5s);
  grpc::health::v1::HealthCheckRequest request;
  grpc::health::v1::HealthCheckResponse response;
  return stub->Check(&context, request, &response);
}

class InternalTls : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    platform_ = new testing::Platform(testing::shared_postgres().create_database(),
                                      {{"EXAMISO_LIFECYCLE_PROVISIONER_WORKERS", "0"}});
    for (const char* s : {"identity", "lifecycle", "environment"}) platform_->start(s);
    // A certificate of the platform's CA for a role no method names.
    make_certificates(testing::internal_tls_dir(), "candidate");
  }
  static void TearDownTestSuite() { delete platform_; }

  static std::string address(const std::string& service) { return platform_->address(service); }
  static std::string ca() { return file(testing::internal_tls_dir() + "/ca.crt"); }

  // A Transition of a session that does not exist, as `role`: refused, or
  // answered (SESSION_NOT_FOUND) when the role may call it.
  static grpc::Status transition_as(const std::string& role) {
    auto stub = v1::LifecycleService::NewStub(make_channel(address("lifecycle"), "lifecycle", role));
    v1::TransitionRequest request;
    request.set_session_id(new_uuid());
    request.set_to(v1::SESSION_STATE_TERMINATED);
    request.set_reason("test");
    v1::TransitionResponse response;
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + 5s);
    return stub->Transition(&context, request, &response);
  }

  // A terminal on a session that does not exist, as `role`.
  static grpc::Status attach_as(const std::string& role) {
    auto stub = v1::EnvironmentService::NewStub(make_channel(address("environment"), "environment", role));
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + 5s);
    auto stream = stub->Attach(&context);
    v1::AttachRequest start;
    start.mutable_start()->set_session_id(new_uuid());
    stream->Write(start);
    stream->WritesDone();
    v1::AttachResponse response;
    while (stream->Read(&response)) {
    }
    return stream->Finish();
  }

  static grpc::Status ticket_as(const std::string& role) {
    auto stub = v1::IdentityService::NewStub(make_channel(address("identity"), "identity", role));
    v1::IssueTerminalTicketRequest request;
    request.set_user_id(new_uuid());
    request.set_session_id(new_uuid());
    v1::IssueTerminalTicketResponse response;
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + 5s);
    return stub->IssueTerminalTicket(&context, request, &response);
  }

  static testing::Platform* platform_;
};

testing::Platform* InternalTls::platform_ = nullptr;

bool refused(const grpc::Status& s) { return s.error_code() == grpc::StatusCode::PERMISSION_DENIED; }
// Through the caller check: an answer of the service itself.
bool answered(const grpc::Status& s) {
  return s.error_code() != grpc::StatusCode::PERMISSION_DENIED && s.error_code() != grpc::StatusCode::UNAVAILABLE &&
         s.error_code() != grpc::StatusCode::DEADLINE_EXCEEDED;
}

TEST_F(InternalTls, AClientWithoutAValidCertificateIsRefused) {
  const std::string dir = testing::internal_tls_dir();
  // Control: the operator's certificate.
  ASSERT_TRUE(health(make_channel(address("lifecycle"), "lifecycle")).ok());
  // No TLS at all.
  EXPECT_EQ(health(grpc::CreateChannel(address("lifecycle"), grpc::InsecureChannelCredentials())).error_code(),
            grpc::StatusCode::UNAVAILABLE);
  // TLS that trusts the server but shows no certificate of its own.
  EXPECT_EQ(health(channel(address("lifecycle"), "lifecycle", grpc::SslCredentials({ca(), "", ""}))).error_code(),
            grpc::StatusCode::UNAVAILABLE);
  // A certificate of the right name from another authority.
  testing::TempDir other;
  make_certificates(other.path(), "operator gateway");
  for (const char* role : {"operator", "gateway"}) {
    const auto forged = grpc::SslCredentials(
        {ca(), file(other.path() + "/" + role + "/tls.key"), file(other.path() + "/" + role + "/tls.crt")});
    EXPECT_EQ(health(channel(address("lifecycle"), "lifecycle", forged)).error_code(), grpc::StatusCode::UNAVAILABLE)
        << role;
    EXPECT_EQ(health(channel(address("environment"), "environment", forged)).error_code(),
              grpc::StatusCode::UNAVAILABLE)
        << role;
  }
  // A certificate of the platform's CA whose role no method names.
  const grpc::Status stranger = health(make_channel(address("lifecycle"), "lifecycle", "candidate"));
  EXPECT_TRUE(refused(stranger)) << stranger.error_message();
  EXPECT_NE(stranger.error_message().find("candidate"), std::string::npos) << stranger.error_message();
}

TEST_F(InternalTls, AClientTalksOnlyToTheServiceItMeant) {
  // Control.
  ASSERT_TRUE(health(make_channel(address("lifecycle"), "lifecycle")).ok());
  // lifecycle's address, but environment was meant: lifecycle's certificate does not do.
  EXPECT_EQ(health(make_channel(address("lifecycle"), "environment")).error_code(), grpc::StatusCode::UNAVAILABLE);
  // A server with a certificate of another authority, in lifecycle's name.
  testing::TempDir other;
  make_certificates(other.path(), "lifecycle operator");
  testing::Env env = platform_->env();
  env["EXAMISO_GRPC_TLS_DIR"] = other.path();
  env["EXAMISO_LIFECYCLE_LISTEN"] = "127.0.0.1:" + std::to_string(testing::free_port());
  testing::Daemon impostor({"examiso-lifecycle"}, env);
  const auto theirs = grpc::SslCredentials({file(other.path() + "/ca.crt"), file(other.path() + "/operator/tls.key"),
                                            file(other.path() + "/operator/tls.crt")});
  // Control: it serves, to its own authority's clients.
  ASSERT_TRUE(testing::eventually(
      [&] { return health(channel(env["EXAMISO_LIFECYCLE_LISTEN"], "lifecycle", theirs)).ok(); }, 20s))
      << impostor.log();
  EXPECT_EQ(health(make_channel(env["EXAMISO_LIFECYCLE_LISTEN"], "lifecycle")).error_code(),
            grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(impostor.stop(), 0) << impostor.log();
}

TEST_F(InternalTls, EnvironmentsTerminalsOnlyFromTheGateway) {
  EXPECT_TRUE(answered(attach_as("gateway"))) << attach_as("gateway").error_message();
  for (const char* role : {"operator", "lifecycle", "cleanup", "access", "identity", "candidate"}) {
    const grpc::Status s = attach_as(role);
    EXPECT_TRUE(refused(s)) << role << ": " << s.error_code() << " " << s.error_message();
  }
  // Said in the service's log, for whoever looks into it.
  EXPECT_NE(platform_->daemon("environment").log().find("caller_refused"), std::string::npos);
}

TEST_F(InternalTls, TransitionsOnlyFromTheServicesThatDriveASession) {
  for (const char* role : {"gateway", "environment", "cleanup", "operator"}) {
    const grpc::Status s = transition_as(role);
    EXPECT_TRUE(answered(s)) << role << ": " << s.error_code() << " " << s.error_message();
  }
  for (const char* role : {"access", "identity", "lifecycle", "candidate"}) {
    const grpc::Status s = transition_as(role);
    EXPECT_TRUE(refused(s)) << role << ": " << s.error_code() << " " << s.error_message();
  }
}

TEST_F(InternalTls, TerminalTicketsOnlyForTheGateway) {
  EXPECT_TRUE(answered(ticket_as("gateway"))) << ticket_as("gateway").error_message();
  for (const char* role : {"operator", "environment", "access", "candidate"}) {
    const grpc::Status s = ticket_as(role);
    EXPECT_TRUE(refused(s)) << role << ": " << s.error_code() << " " << s.error_message();
  }
}

// The CLIs speak as `operator`: with another authority's certificates they
// get nothing, and say so.
TEST_F(InternalTls, ACliWithoutThePlatformsCertificateGetsNothing) {
  const auto works = platform_->sh("session-lifecycle list");
  ASSERT_EQ(works.exit_code, 0) << works.err;
  testing::TempDir other;
  make_certificates(other.path(), "operator");
  const auto forged = platform_->sh("session-lifecycle list", {{"EXAMISO_GRPC_TLS_DIR", other.path()}});
  EXPECT_EQ(forged.exit_code, 1) << forged.out;
  EXPECT_NE(forged.err.find("BACKEND_UNAVAILABLE"), std::string::npos) << forged.err;
  const auto plain = platform_->sh("session-lifecycle list", {{"EXAMISO_GRPC_TLS_DIR", ""}});
  EXPECT_EQ(plain.exit_code, 1) << plain.out;
}

}  // namespace
}  // namespace examiso
