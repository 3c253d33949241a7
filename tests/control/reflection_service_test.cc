// control/admin/reflection_service.h on a grpc::Server in this process, in both versions of
// the protocol, guarded as the admin server guards it (call_gate.h): the token rule on a
// bidirectional stream, and the extension answers, which brrr-echo's own protos cannot show
// (they have no extensions).
#include "control/admin/reflection_service.h"

#include <memory>
#include <string>
#include <vector>

#include "control/admin/call_auth.h"
#include "control/admin/call_gate.h"
#include "gmock/gmock.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "gtest/gtest.h"
#include "tests/control/reflection_client.h"
#include "tests/control/testdata/extensions.pb.h"

namespace brrr {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

template <typename Version>
class ReflectionServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // The generated pool holds a .proto once the binary links its code: use it.
    ASSERT_EQ(brrr::testdata::Extendable::descriptor()->full_name(), "brrr.testdata.Extendable");
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    ASSERT_EQ(control::GuardEveryMethod(service_, auth_), 1);
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ASSERT_NE(port, 0);
    channel_ = grpc::CreateChannel("127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials());
  }

  void TearDown() override {
    if (server_ != nullptr) server_->Shutdown();
  }

  const control::CallAuth auth_ = control::CallAuth::WithToken("s3cret");
  control::ReflectionService<Version> service_{{"brrr.testdata.Nothing"}};
  std::unique_ptr<grpc::Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
};

TYPED_TEST_SUITE(ReflectionServiceTest, testing::ReflectionVersions, testing::ReflectionVersionNames);

TYPED_TEST(ReflectionServiceTest, ACallWithoutTheTokenIsUnauthenticated) {
  testing::ReflectionClient<TypeParam> client(this->channel_);
  EXPECT_FALSE(client.ListServices().has_value());
  grpc::Status status = client.Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_THAT(status.error_message(), HasSubstr("authorization"));
}

TYPED_TEST(ReflectionServiceTest, ACallWithAWrongTokenIsUnauthenticated) {
  testing::ReflectionClient<TypeParam> client(this->channel_, "Bearer guess");
  EXPECT_FALSE(client.ListServices().has_value());
  grpc::Status status = client.Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_THAT(status.error_message(), HasSubstr("wrong admin token"));
}

TYPED_TEST(ReflectionServiceTest, ACallWithTheTokenIsAnswered) {
  testing::ReflectionClient<TypeParam> client(this->channel_, "Bearer s3cret");
  auto answer = client.ListServices();
  ASSERT_TRUE(answer.has_value()) << client.Finish().error_message();
  EXPECT_THAT(testing::ServiceNames(*answer), ElementsAre("brrr.testdata.Nothing"));
  EXPECT_TRUE(client.Finish().ok());
}

TYPED_TEST(ReflectionServiceTest, FindsTheFileOfAnExtension) {
  testing::ReflectionClient<TypeParam> client(this->channel_, "Bearer s3cret");
  for (int number : {100, 120, 150}) {
    auto answer = client.FileContainingExtension("brrr.testdata.Extendable", number);
    ASSERT_TRUE(answer.has_value()) << client.Finish().error_message();
    EXPECT_THAT(testing::FileNames(*answer), ElementsAre("tests/control/testdata/extensions.proto"))
        << number << ": " << answer->error_response().error_message();
  }
  auto unknown = client.FileContainingExtension("brrr.testdata.Extendable", 101);
  ASSERT_TRUE(unknown.has_value());
  EXPECT_EQ(unknown->error_response().error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(unknown->error_response().error_message(), HasSubstr("101"));
  auto not_a_message = client.FileContainingExtension("brrr.testdata.Nothing", 100);
  ASSERT_TRUE(not_a_message.has_value());
  EXPECT_EQ(not_a_message->error_response().error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_TRUE(client.Finish().ok());
}

TYPED_TEST(ReflectionServiceTest, ListsTheExtensionNumbersOfAType) {
  testing::ReflectionClient<TypeParam> client(this->channel_, "Bearer s3cret");
  auto answer = client.AllExtensionNumbersOfType("brrr.testdata.Extendable");
  ASSERT_TRUE(answer.has_value()) << client.Finish().error_message();
  ASSERT_TRUE(answer->has_all_extension_numbers_response()) << answer->error_response().error_message();
  EXPECT_EQ(answer->all_extension_numbers_response().base_type_name(), "brrr.testdata.Extendable");
  EXPECT_THAT(answer->all_extension_numbers_response().extension_number(), ElementsAre(100, 120, 150));

  auto none = client.AllExtensionNumbersOfType("brrr.testdata.Holder");
  ASSERT_TRUE(none.has_value());
  ASSERT_TRUE(none->has_all_extension_numbers_response()) << none->error_response().error_message();
  EXPECT_TRUE(none->all_extension_numbers_response().extension_number().empty());
  EXPECT_TRUE(client.Finish().ok());
}

}  // namespace
}  // namespace brrr
