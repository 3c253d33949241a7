// control/admin/call_gate.h on a grpc::Server in this process: every method of a guarded
// service (here grpc.health.v1.Health: a unary and a server-streaming method) refuses a call
// without the token before the service runs, and lets one with the token through. The
// bidirectional stream is covered by reflection_service_test; a real brrr-echo's every RPC by
// admin_test. Requests carry a long (heap-allocated) string, so a refused request that was not
// destroyed would show as a leak under ASan.
#include "control/admin/call_gate.h"

#include <atomic>
#include <memory>
#include <string>

#include "control/admin/call_auth.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "gtest/gtest.h"
#include "tests/control/raw_call.h"

namespace brrr {
namespace {

namespace health = grpc::health::v1;

// Counts the calls that reach it.
class CountingHealth final : public health::Health::Service {
 public:
  grpc::Status Check(grpc::ServerContext*, const health::HealthCheckRequest*,
                     health::HealthCheckResponse* response) override {
    ++calls;
    response->set_status(health::HealthCheckResponse::SERVING);
    return grpc::Status::OK;
  }
  grpc::Status Watch(grpc::ServerContext*, const health::HealthCheckRequest*,
                     grpc::ServerWriter<health::HealthCheckResponse>* writer) override {
    ++calls;
    health::HealthCheckResponse response;
    response.set_status(health::HealthCheckResponse::SERVING);
    writer->Write(response);
    return grpc::Status::OK;
  }
  std::atomic<int> calls{0};
};

class CallGateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    guarded_ = control::GuardEveryMethod(service_, auth_);
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    address_ = "127.0.0.1:" + std::to_string(port);
    stub_ = health::Health::NewStub(grpc::CreateChannel(address_, grpc::InsecureChannelCredentials()));
  }
  void TearDown() override { server_->Shutdown(); }

  static std::unique_ptr<grpc::ClientContext> Context(const std::string& authorization) {
    auto context = std::make_unique<grpc::ClientContext>();
    context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    if (!authorization.empty()) context->AddMetadata("authorization", authorization);
    return context;
  }
  static health::HealthCheckRequest Request() {
    health::HealthCheckRequest request;
    request.set_service(std::string(200, 's'));  // on the heap
    return request;
  }

  const control::CallAuth auth_ = control::CallAuth::WithToken("s3cret");
  CountingHealth service_;
  int guarded_ = 0;
  std::unique_ptr<grpc::Server> server_;
  std::string address_;
  std::unique_ptr<health::Health::Stub> stub_;
};

TEST_F(CallGateTest, EveryMethodIsGuarded) { EXPECT_EQ(guarded_, 2); }

TEST_F(CallGateTest, AUnaryCallWithoutTheTokenNeverReachesTheService) {
  health::HealthCheckResponse response;
  grpc::Status status = stub_->Check(Context("").get(), Request(), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_NE(status.error_message().find("authorization"), std::string::npos) << status.error_message();
  status = stub_->Check(Context("Bearer guess").get(), Request(), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(status.error_message(), "wrong admin token");
  EXPECT_EQ(service_.calls.load(), 0);
}

TEST_F(CallGateTest, AServerStreamWithoutTheTokenNeverReachesTheService) {
  auto context = Context("");
  auto reader = stub_->Watch(context.get(), Request());
  health::HealthCheckResponse response;
  EXPECT_FALSE(reader->Read(&response));
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(service_.calls.load(), 0);
}

TEST_F(CallGateTest, CallsWithTheTokenAreServed) {
  health::HealthCheckResponse response;
  ASSERT_TRUE(stub_->Check(Context("Bearer s3cret").get(), Request(), &response).ok());
  EXPECT_EQ(response.status(), health::HealthCheckResponse::SERVING);
  auto context = Context("Bearer s3cret");
  auto reader = stub_->Watch(context.get(), Request());
  ASSERT_TRUE(reader->Read(&response));
  EXPECT_FALSE(reader->Read(&response));
  EXPECT_TRUE(reader->Finish().ok());
  EXPECT_EQ(service_.calls.load(), 2);
}

// A request whose bytes are not its message is the caller's to fix: INVALID_ARGUMENT, naming
// the message expected (gRPC alone answers INTERNAL with an empty message); the service never
// sees it. A caller without the token hears only that.
TEST_F(CallGateTest, ARequestThatDoesNotParseIsAnInvalidArgument) {
  grpc::GenericStub raw(grpc::CreateChannel(address_, grpc::InsecureChannelCredentials()));
  const std::string not_a_message = "\xff\xff\xff\xff";
  grpc::Status status =
      testing::RawUnaryCall(raw, Context("Bearer s3cret").get(), "/grpc.health.v1.Health/Check", not_a_message);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message(),
            "the request is not a valid grpc.health.v1.HealthCheckRequest: its bytes do not parse as that protobuf "
            "message");
  status = testing::RawUnaryCall(raw, Context("").get(), "/grpc.health.v1.Health/Check", not_a_message);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  // A well-formed request over the same path is served.
  std::string valid;
  ASSERT_TRUE(Request().SerializeToString(&valid));
  EXPECT_TRUE(testing::RawUnaryCall(raw, Context("Bearer s3cret").get(), "/grpc.health.v1.Health/Check", valid).ok());
  EXPECT_EQ(service_.calls.load(), 1);
}

}  // namespace
}  // namespace brrr
