// Server reflection of a real brrr-echo, over a real gRPC channel, in both versions of the
// protocol (grpc.reflection.v1, which grpcurl asks for first, and v1alpha): what a client
// with no .proto file does to find and call the admin plane.
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "control/admin/reflection_service.h"
#include "gmock/gmock.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/descriptor.pb.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/byte_buffer.h"
#include "gtest/gtest.h"
#include "tests/control/admin_fixture.h"
#include "tests/control/reflection_client.h"
#include "tests/testing/net.h"
#include "tests/testing/process.h"

namespace brrr {
namespace {

using ::testing::ElementsAre;
using ::testing::UnorderedElementsAre;
namespace protobuf = google::protobuf;

// What a ServerReflectionInfo stream of raw messages got: the answers, and how it ended.
struct RawStream {
  int answers = 0;
  grpc::Status status;
};

// Sends each of `requests` as it is on one ServerReflectionInfo stream of `Version`, then
// half-closes and reads every answer. Bounded by a 10 s deadline.
template <typename Version>
RawStream CallWithRawRequests(const std::shared_ptr<grpc::Channel>& channel, const std::vector<std::string>& requests) {
  grpc::GenericStub stub(channel);
  grpc::CompletionQueue cq;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  auto next = [&cq] {
    void* tag = nullptr;
    bool ok = false;
    EXPECT_TRUE(cq.Next(&tag, &ok));
    return ok;
  };
  const std::string method = std::string("/") + Version::Api::service_full_name() + "/ServerReflectionInfo";
  std::unique_ptr<grpc::GenericClientAsyncReaderWriter> call = stub.PrepareCall(&context, method, &cq);
  call->StartCall(nullptr);
  bool open = next();
  for (const std::string& request : requests) {
    if (!open) break;
    grpc::Slice slice(request);
    grpc::ByteBuffer message(&slice, 1);
    call->Write(message, nullptr);
    open = next();
  }
  if (open) {
    call->WritesDone(nullptr);
    next();
  }
  RawStream result;
  grpc::ByteBuffer answer;
  for (;;) {
    call->Read(&answer, nullptr);
    if (!next()) break;
    ++result.answers;
  }
  call->Finish(&result.status, nullptr);
  next();
  cq.Shutdown();
  void* tag = nullptr;
  bool ok = false;
  while (cq.Next(&tag, &ok)) {
  }
  return result;
}

// A real brrr-echo with its admin plane (the shared fixture), for one version of reflection.
template <typename Version>
class ReflectionTest : public testing::AdminFixture {
 protected:
  void SetUp() override { Start(); }
};

TYPED_TEST_SUITE(ReflectionTest, testing::ReflectionVersions, testing::ReflectionVersionNames);

// What grpcurl does first: list the services, then fetch the file that describes one.
TYPED_TEST(ReflectionTest, ListsAllFourServices) {
  testing::ReflectionClient<TypeParam> client(this->channel_);
  auto answer = client.ListServices();
  ASSERT_TRUE(answer.has_value()) << client.Finish().error_message();
  EXPECT_THAT(testing::ServiceNames(*answer),
              UnorderedElementsAre("brrr.admin.v1.Admin", "grpc.health.v1.Health",
                                   "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"));
  EXPECT_TRUE(client.Finish().ok());
}

TYPED_TEST(ReflectionTest, DescribesTheAdminServiceAndItsMethods) {
  testing::ReflectionClient<TypeParam> client(this->channel_);
  auto answer = client.FileContainingSymbol("brrr.admin.v1.Admin");
  ASSERT_TRUE(answer.has_value()) << client.Finish().error_message();
  ASSERT_TRUE(answer->has_file_descriptor_response()) << answer->error_response().error_message();
  std::vector<protobuf::FileDescriptorProto> files = testing::Files(*answer);
  ASSERT_EQ(files.size(), 1u);  // admin.proto imports nothing
  EXPECT_EQ(files[0].name(), "brrr/admin/v1/admin.proto");
  EXPECT_EQ(files[0].package(), "brrr.admin.v1");

  // The file is complete: a pool builds it, and the methods resolve to their message types.
  protobuf::DescriptorPool pool;
  ASSERT_NE(pool.BuildFile(files[0]), nullptr);
  const protobuf::ServiceDescriptor* admin = pool.FindServiceByName("brrr.admin.v1.Admin");
  ASSERT_NE(admin, nullptr);
  ASSERT_NE(admin->FindMethodByName("GetServerInfo"), nullptr);
  const protobuf::MethodDescriptor* get_stats = admin->FindMethodByName("GetStats");
  ASSERT_NE(get_stats, nullptr);
  EXPECT_EQ(get_stats->input_type()->full_name(), "brrr.admin.v1.GetStatsRequest");
  EXPECT_EQ(get_stats->output_type()->full_name(), "brrr.admin.v1.Stats");
  EXPECT_NE(get_stats->output_type()->FindFieldByName("loops"), nullptr);
  EXPECT_TRUE(client.Finish().ok());
}

TYPED_TEST(ReflectionTest, DescribesTheHealthService) {
  testing::ReflectionClient<TypeParam> client(this->channel_);
  auto answer = client.FileContainingSymbol("grpc.health.v1.Health");
  ASSERT_TRUE(answer.has_value()) << client.Finish().error_message();
  std::vector<protobuf::FileDescriptorProto> files = testing::Files(*answer);
  ASSERT_EQ(files.size(), 1u) << answer->error_response().error_message();
  EXPECT_EQ(files[0].name(), "grpc/health/v1/health.proto");
  ASSERT_EQ(files[0].service_size(), 1);
  EXPECT_EQ(files[0].service(0).name(), "Health");
  std::vector<std::string> methods;
  for (const auto& method : files[0].service(0).method()) methods.push_back(method.name());
  EXPECT_THAT(methods, UnorderedElementsAre("Check", "Watch"));
  EXPECT_TRUE(client.Finish().ok());
}

// Any symbol a client may start from leads to its file: methods, messages, fields, nested
// enums and their values, and the reflection services themselves; so does the file's name.
TYPED_TEST(ReflectionTest, FindsTheFileOfEveryKindOfSymbol) {
  testing::ReflectionClient<TypeParam> client(this->channel_);
  struct Case {
    std::string symbol;
    std::string file;
  };
  for (const Case& c : std::vector<Case>{
           {"brrr.admin.v1.Admin.GetStats", "brrr/admin/v1/admin.proto"},
           {"brrr.admin.v1.LoopStats", "brrr/admin/v1/admin.proto"},
           {"brrr.admin.v1.LoopStats.bytes_in", "brrr/admin/v1/admin.proto"},
           {"grpc.health.v1.HealthCheckResponse.ServingStatus", "grpc/health/v1/health.proto"},
           {"grpc.health.v1.HealthCheckResponse.SERVING", "grpc/health/v1/health.proto"},
           {"grpc.reflection.v1.ServerReflection", "grpc/reflection/v1/reflection.proto"},
           {"grpc.reflection.v1alpha.ServerReflectionRequest", "grpc/reflection/v1alpha/reflection.proto"},
       }) {
    auto answer = client.FileContainingSymbol(c.symbol);
    ASSERT_TRUE(answer.has_value()) << client.Finish().error_message();
    EXPECT_THAT(testing::FileNames(*answer), ElementsAre(c.file))
        << c.symbol << ": " << answer->error_response().error_message();
  }
  auto by_name = client.FileByFilename("brrr/admin/v1/admin.proto");
  ASSERT_TRUE(by_name.has_value());
  EXPECT_THAT(testing::FileNames(*by_name), ElementsAre("brrr/admin/v1/admin.proto"));
  EXPECT_TRUE(client.Finish().ok());
}

// A wrong name gets an error in the answer, not the end of the stream.
TYPED_TEST(ReflectionTest, UnknownNamesAreNotFoundAndTheStreamGoesOn) {
  testing::ReflectionClient<TypeParam> client(this->channel_);
  auto symbol = client.FileContainingSymbol("brrr.admin.v1.NoSuchThing");
  ASSERT_TRUE(symbol.has_value()) << client.Finish().error_message();
  EXPECT_EQ(symbol->error_response().error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(symbol->error_response().error_message(), ::testing::HasSubstr("\"brrr.admin.v1.NoSuchThing\""));

  auto file = client.FileByFilename("brrr/no_such.proto");
  ASSERT_TRUE(file.has_value());
  EXPECT_EQ(file->error_response().error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(file->error_response().error_message(), ::testing::HasSubstr("\"brrr/no_such.proto\""));

  auto extension = client.FileContainingExtension("brrr.admin.v1.Stats", 1000);
  ASSERT_TRUE(extension.has_value());
  EXPECT_EQ(extension->error_response().error_code(), grpc::StatusCode::NOT_FOUND);
  auto numbers = client.AllExtensionNumbersOfType("no.such.Message");
  ASSERT_TRUE(numbers.has_value());
  EXPECT_EQ(numbers->error_response().error_code(), grpc::StatusCode::NOT_FOUND);

  typename TypeParam::Request nothing;
  auto empty = client.Ask(nothing);
  ASSERT_TRUE(empty.has_value());
  EXPECT_EQ(empty->error_response().error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  auto list = client.ListServices();
  ASSERT_TRUE(list.has_value());
  EXPECT_EQ(list->list_services_response().service_size(), 4);
  EXPECT_TRUE(client.Finish().ok());
}

// A request that is not a ServerReflectionRequest ends the stream INVALID_ARGUMENT, as the Admin
// methods answer one; it ended OK, and the requests after it went unanswered.
TYPED_TEST(ReflectionTest, ARequestThatDoesNotParseEndsTheStreamInvalidArgument) {
  const std::string list_services("\x3a\x00", 2);  // field 7, list_services: ""
  for (const std::string& garbage : {std::string("\xff\xff"), list_services + "\xff"}) {
    RawStream stream = CallWithRawRequests<TypeParam>(this->channel_, {list_services, garbage, list_services});
    EXPECT_EQ(stream.answers, 1);
    EXPECT_EQ(stream.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << stream.status.error_message();
    EXPECT_EQ(stream.status.error_message(), std::string("the request is not a valid ") +
                                                 TypeParam::Request::descriptor()->full_name() +
                                                 ": its bytes do not parse as that protobuf message");
  }
  // The admin plane goes on: a new stream is answered.
  testing::ReflectionClient<TypeParam> client(this->channel_);
  ASSERT_TRUE(client.ListServices().has_value()) << client.Finish().error_message();
  EXPECT_TRUE(client.Finish().ok());
}

TYPED_TEST(ReflectionTest, EveryAnswerEchoesTheHostAndTheRequest) {
  testing::ReflectionClient<TypeParam> client(this->channel_);
  typename TypeParam::Request request;
  request.set_host("admin.example:5001");
  request.set_file_containing_symbol("grpc.health.v1.Health");
  auto found = client.Ask(request);
  ASSERT_TRUE(found.has_value()) << client.Finish().error_message();
  EXPECT_EQ(found->valid_host(), "admin.example:5001");
  EXPECT_EQ(found->original_request().SerializeAsString(), request.SerializeAsString());

  request.set_file_containing_symbol("no.such.Symbol");
  auto not_found = client.Ask(request);
  ASSERT_TRUE(not_found.has_value());
  EXPECT_EQ(not_found->valid_host(), "admin.example:5001");
  EXPECT_EQ(not_found->original_request().file_containing_symbol(), "no.such.Symbol");
  EXPECT_TRUE(client.Finish().ok());
}

// google/protobuf/api.proto imports type.proto and source_context.proto, and type.proto
// imports source_context.proto too (and any.proto): each crosses a stream once. The file
// asked for always comes first, even if sent before, since clients read it as the answer.
TYPED_TEST(ReflectionTest, AStreamSendsEachFileOnce) {
  testing::ReflectionClient<TypeParam> client(this->channel_);
  auto api = client.FileByFilename("google/protobuf/api.proto");
  ASSERT_TRUE(api.has_value()) << client.Finish().error_message();
  std::vector<std::string> names = testing::FileNames(*api);
  ASSERT_FALSE(names.empty()) << api->error_response().error_message();
  EXPECT_EQ(names[0], "google/protobuf/api.proto");
  EXPECT_THAT(names, UnorderedElementsAre("google/protobuf/api.proto", "google/protobuf/source_context.proto",
                                          "google/protobuf/type.proto", "google/protobuf/any.proto"));

  auto type = client.FileContainingSymbol("google.protobuf.Type");
  ASSERT_TRUE(type.has_value());
  EXPECT_THAT(testing::FileNames(*type), ElementsAre("google/protobuf/type.proto"));
  auto api_again = client.FileByFilename("google/protobuf/api.proto");
  ASSERT_TRUE(api_again.has_value());
  EXPECT_THAT(testing::FileNames(*api_again), ElementsAre("google/protobuf/api.proto"));
  EXPECT_TRUE(client.Finish().ok());

  // A new stream starts afresh.
  testing::ReflectionClient<TypeParam> fresh(this->channel_);
  auto type_fresh = fresh.FileContainingSymbol("google.protobuf.Type");
  ASSERT_TRUE(type_fresh.has_value());
  EXPECT_THAT(testing::FileNames(*type_fresh),
              UnorderedElementsAre("google/protobuf/type.proto", "google/protobuf/any.proto",
                                   "google/protobuf/source_context.proto"));
  EXPECT_TRUE(fresh.Finish().ok());
}

}  // namespace
}  // namespace brrr
